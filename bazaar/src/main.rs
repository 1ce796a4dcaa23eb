//! The `bazaar` command: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Every TLS client in the process (PostgreSQL, Redis, NATS, HTTP, SMTP) uses ring; one
    // installed provider keeps rustls from guessing should a dependency enable another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    bazaar::cli::Cli::parse().run().await
}
