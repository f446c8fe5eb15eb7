//! The `labeljob` command.
fn main() {}
