//! The toolchain is said in two places that must agree: `rust-toolchain.toml` (what rustup and
//! CI build with) and the workspace's `rust-version` (what Cargo promises). This fails when one
//! changes without the other, or when either file is missing.

use std::path::Path;

fn value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

#[test]
fn rust_version_is_the_pinned_toolchain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let toolchain = std::fs::read_to_string(root.join("rust-toolchain.toml")).expect("rust-toolchain.toml");
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let channel = value(&toolchain, "channel").expect("channel in rust-toolchain.toml");
    let rust_version = value(&cargo, "rust-version").expect("rust-version in Cargo.toml");
    assert!(
        channel == rust_version || channel.starts_with(&format!("{rust_version}.")),
        "rust-toolchain.toml pins {channel}, Cargo.toml says rust-version = {rust_version}"
    );
    let ci = std::fs::read_to_string(root.join(".github/workflows/ci.yml")).expect("ci.yml");
    assert!(
        ci.contains(&format!("toolchain: \"{channel}\"")),
        "ci.yml installs another toolchain than {channel}"
    );
}
