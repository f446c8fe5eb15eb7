//! `kubectl-labeljob` (run as `kubectl labeljob`): parse the arguments, run the command, print.

use std::process::ExitCode;

use clap::Parser;
use labeljob_kubectl::{Args, client, run};

#[tokio::main]
async fn main() -> ExitCode {
    let Args { namespace, context, command } = Args::parse();
    let result = async {
        let client = client(context.as_deref()).await?;
        let ns = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        run(&client, &ns, command).await
    }
    .await;
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", labeljob_api::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
