//! The command line: `bazaar serve`, `bazaar services`, `bazaar migrate`.

use std::process::ExitCode;

use bazaar_runtime::{ConfigArgs, ServiceName, telemetry};
use clap::{Parser, Subcommand};

use crate::registry;

#[derive(Parser, Debug)]
#[command(name = "bazaar", version, about = "An event-driven e-commerce backend")]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run services: all of them in this process by default.
    Serve {
        /// Comma-separated services to run in this process (see `bazaar services`).
        #[arg(long, env = "BAZAAR_SERVICES", value_delimiter = ',')]
        services: Option<Vec<String>>,
    },
    /// Print the service names, one per line.
    Services,
    /// Apply database migrations for every service and exit.
    Migrate,
    /// Show the event stream: per-consumer delivered/pending/redelivered counts and dead letters.
    Events {
        /// Also print every dead letter (one JSON object per line).
        #[arg(long)]
        dead_letters: bool,
    },
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        match self.execute().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bazaar: {e:#}");
                ExitCode::FAILURE
            }
        }
    }

    async fn execute(self) -> anyhow::Result<()> {
        match self.command {
            Command::Services => {
                for name in registry::names() {
                    println!("{name}");
                }
                Ok(())
            }
            Command::Migrate => {
                let settings = registry::settings(&self.config)?;
                telemetry::init_logging(settings.log_json);
                crate::process::migrate(&settings).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::Events { dead_letters } => {
                let settings = registry::settings(&self.config)?;
                telemetry::init_logging(settings.log_json);
                crate::event_report::report(settings, dead_letters).await
            }
            Command::Serve { services } => {
                let services = parse_services(services)?;
                let settings = registry::settings(&self.config)?;
                let telemetry =
                    telemetry::init_tracing(settings.log_json, &process_name(&services))?;
                let served = match crate::App::build(settings, &services).await {
                    Ok(app) => app.run_until_stopped().await,
                    Err(e) => Err(e),
                };
                telemetry.shutdown().await;
                served
            }
        }
    }
}

/// The service name of this process's spans when `OTEL_SERVICE_NAME` does not give one:
/// `bazaar` for every service in one process, else `bazaar-<service>[+<service>...]`.
fn process_name(services: &[ServiceName]) -> String {
    if registry::SERVICES
        .iter()
        .all(|e| services.contains(&e.name))
    {
        return "bazaar".to_owned();
    }
    let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
    format!("bazaar-{}", names.join("+"))
}

fn parse_services(names: Option<Vec<String>>) -> anyhow::Result<Vec<ServiceName>> {
    let Some(names) = names else {
        return Ok(registry::names());
    };
    let mut services = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let service = registry::find(name).map(|e| e.name).ok_or_else(|| {
            let known: Vec<&str> = registry::names().iter().map(|s| s.as_str()).collect();
            anyhow::anyhow!(
                "unknown service {name:?}; known services: {}",
                known.join(", ")
            )
        })?;
        if !services.contains(&service) {
            services.push(service);
        }
    }
    anyhow::ensure!(!services.is_empty(), "--services names no service");
    services.sort_by_key(|s| registry::position(*s));
    Ok(services)
}
