//! `labeljob-operator`: parse the arguments and hand over to the library.

use anyhow::Context as _;
use clap::Parser;
use labeljob_operator::args::{Args, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Some(Command::Crd) => print!("{}", labeljob_operator::runtime::crd_yaml().context("CRD")?),
        Some(Command::Rbac) => println!("{}", labeljob_operator::rbac::rules_json().context("RBAC rules")?),
        Some(Command::RbacChart) => print!("{}", labeljob_operator::rbac::chart_template()),
        None => {
            labeljob_operator::runtime::init_logging(args.log_format)?;
            labeljob_operator::runtime::run(args).await?;
        }
    }
    Ok(())
}
