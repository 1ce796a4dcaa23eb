//! The `bazaar` command: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bazaar::cli::Cli::parse().run().await
}
