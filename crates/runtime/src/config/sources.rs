//! Where a setting's value comes from: a flag, a `BAZAAR_*` environment variable or the TOML
//! file, the first present winning, and the collecting of every problem met on the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::settings::{Secret, ServiceName};
use crate::schedule::Schedule;

/// Settings that can come from flags or the environment. Secrets (`BAZAAR_JWT_SECRET`,
/// `BAZAAR_ADMIN_PASSWORD`, database and Redis URLs with passwords) are read from the
/// environment or the file only, never from flags, so they do not show in `ps`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file; see config.default.toml for every key.
    #[arg(long, env = "BAZAAR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address of the public GraphQL listener (or of the service's own listener).
    #[arg(long, env = "BAZAAR_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Directory for SQLite files, the embedded event log, mail and generated secrets.
    #[arg(long, env = "BAZAAR_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Prefix of every NATS stream/subject and Redis key.
    #[arg(long, env = "BAZAAR_NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// NATS server with JetStream, e.g. nats://127.0.0.1:4222 (default: embedded event log).
    #[arg(long, env = "BAZAAR_NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "BAZAAR_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// The optional TOML file. Unknown keys are an error, so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub namespace: Option<String>,
    pub database_url: Option<Secret>,
    pub nats_url: Option<String>,
    pub amqp_url: Option<Secret>,
    pub amqp_ca_file: Option<PathBuf>,
    pub redis_url: Option<Secret>,
    pub jwt_secret: Option<Secret>,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub access_token_ttl_secs: Option<u64>,
    pub refresh_token_ttl_days: Option<u64>,
    pub login_limit_per_account: Option<u64>,
    pub login_limit_per_ip: Option<u64>,
    pub login_limit_window_secs: Option<u64>,
    pub unpaid_order_timeout_secs: Option<u64>,
    pub max_open_orders_per_customer: Option<u64>,
    pub max_pending_orders: Option<u64>,
    pub smtp_url: Option<Secret>,
    pub mail_from: Option<String>,
    pub promotion_schedule: Option<String>,
    pub recommendation_schedule: Option<String>,
    pub max_query_depth: Option<usize>,
    pub max_query_complexity: Option<usize>,
    pub max_query_tokens: Option<usize>,
    pub max_query_aliases: Option<usize>,
    pub max_query_directives: Option<usize>,
    pub max_query_fragment_spreads: Option<usize>,
    pub max_query_selections: Option<usize>,
    pub max_introspection_depth: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub register_limit_per_ip: Option<u64>,
    pub password_hash_concurrency: Option<usize>,
    pub database_pool_size: Option<usize>,
    pub password_hash_queue: Option<usize>,
    pub password_hash_wait_ms: Option<u64>,
    pub ws_max_connections_per_ip: Option<usize>,
    pub ws_max_subscriptions: Option<usize>,
    pub ws_init_timeout_secs: Option<u64>,
    pub log_format: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, FileServiceConfig>,
    #[serde(default)]
    pub graphql: crate::edge::FileEdge,
    #[serde(default)]
    pub retention: crate::retention::FileRetention,
    #[serde(default)]
    pub database: crate::connections::FileDatabase,
    #[serde(default)]
    pub redis: crate::connections::FileRedis,
    #[serde(default)]
    pub nats: crate::connections::FileNats,
    #[serde(default)]
    pub kafka: super::kafka::FileKafka,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileServiceConfig {
    pub database_url: Option<Secret>,
    pub url: Option<String>,
}

/// The flags and the file being read, and the problems found so far.
pub(super) struct Loader<'a> {
    pub args: &'a ConfigArgs,
    /// The services whose own settings (`[services.<name>]`) are read.
    pub services: &'a [ServiceName],
    pub file: FileConfig,
    pub errors: Vec<String>,
}

impl<'a> Loader<'a> {
    /// Reads the file `args` names, if any; a file that cannot be read or parsed is the first
    /// problem, and loading goes on with no file so the others are found too.
    pub fn new(args: &'a ConfigArgs, services: &'a [ServiceName]) -> Loader<'a> {
        let mut errors = Vec::new();
        let file = match &args.config {
            Some(path) => read_file(path).unwrap_or_else(|e| {
                errors.push(e);
                FileConfig::default()
            }),
            None => FileConfig::default(),
        };
        Loader {
            args,
            services,
            file,
            errors,
        }
    }

    /// A number from variable `name`, else the file, else `default`.
    pub fn number(&mut self, name: &str, file_value: Option<u64>, default: u64) -> u64 {
        first([env_number::<u64>(name, &mut self.errors), file_value]).unwrap_or(default)
    }

    /// A [`Self::number`] that must not be 0 (a bound or a size).
    pub fn limit(&mut self, name: &str, file_value: Option<usize>, default: u64) -> usize {
        let value = self.number(name, file_value.map(|v| v as u64), default);
        if value == 0 {
            self.errors.push(format!("{name} must be positive"));
        }
        value as usize
    }

    /// [`Self::number`] for each `(variable, file value, default)` of `table`.
    pub fn numbers<const N: usize>(&mut self, table: [(&str, Option<u64>, u64); N]) -> [u64; N] {
        table.map(|(name, value, default)| self.number(name, value, default))
    }

    /// [`Self::limit`] for each `(variable, file value, default)` of `table`.
    pub fn limits<const N: usize>(&mut self, table: [(&str, Option<usize>, u64); N]) -> [usize; N] {
        table.map(|(name, value, default)| self.limit(name, value, default))
    }

    /// A cron schedule from variable `name`, else the file, else `default`.
    pub fn schedule(&mut self, name: &str, file_value: Option<String>, default: &str) -> Schedule {
        let expression = first([env(name), file_value]).unwrap_or_else(|| default.into());
        Schedule::parse(&expression).unwrap_or_else(|e| {
            self.errors.push(format!("{name}: {e}"));
            Schedule::parse(default).expect("default schedule parses")
        })
    }
}

/// Where a value came from, so that the first one present wins.
pub(super) fn first<T>(values: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    values.into_iter().flatten().next()
}

/// Variable `name`; empty means unset, as compose passes `NAME=` for a setting it leaves out.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// [`env`] for a value that must never be printed.
pub(crate) fn env_secret(name: &str) -> Option<Secret> {
    env(name).map(Secret::new)
}

/// Reads a number from the environment, recording a clear error when it is not one.
fn env_number<T: std::str::FromStr>(name: &str, errors: &mut Vec<String>) -> Option<T> {
    let raw = env(name)?;
    match raw.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{name}={raw:?} is not a valid non-negative number"));
            None
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}
