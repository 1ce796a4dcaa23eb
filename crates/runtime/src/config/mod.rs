//! Configuration: command-line flags, `BAZAAR_*` environment variables and an optional TOML
//! file (in that order of precedence), merged and validated once at start-up into [`Settings`].
//! `config.default.toml` at the repository root documents every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bazaar_db::DbTarget;
use serde::Deserialize;

/// The services bazaar is made of, in start-up order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceName {
    Users,
    Catalog,
    Orders,
    Notifications,
    Recommendations,
    Gateway,
}

impl ServiceName {
    pub const ALL: [ServiceName; 6] = [
        ServiceName::Users,
        ServiceName::Catalog,
        ServiceName::Orders,
        ServiceName::Notifications,
        ServiceName::Recommendations,
        ServiceName::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Users => "users",
            ServiceName::Catalog => "catalog",
            ServiceName::Orders => "orders",
            ServiceName::Notifications => "notifications",
            ServiceName::Recommendations => "recommendations",
            ServiceName::Gateway => "gateway",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceName> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// Prefix of this service's own environment variables, e.g. `BAZAAR_USERS_`.
    pub fn env_prefix(self) -> String {
        format!("BAZAAR_{}_", self.as_str().to_uppercase())
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that must never be printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

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
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    namespace: Option<String>,
    database_url: Option<Secret>,
    nats_url: Option<String>,
    amqp_url: Option<Secret>,
    amqp_ca_file: Option<PathBuf>,
    redis_url: Option<Secret>,
    jwt_secret: Option<Secret>,
    admin_email: Option<String>,
    admin_password: Option<Secret>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_days: Option<u64>,
    login_limit_per_account: Option<u64>,
    login_limit_per_ip: Option<u64>,
    login_limit_window_secs: Option<u64>,
    unpaid_order_timeout_secs: Option<u64>,
    max_open_orders_per_customer: Option<u64>,
    smtp_url: Option<Secret>,
    mail_from: Option<String>,
    promotion_schedule: Option<String>,
    recommendation_schedule: Option<String>,
    max_query_depth: Option<usize>,
    max_query_complexity: Option<usize>,
    max_query_tokens: Option<usize>,
    max_query_aliases: Option<usize>,
    max_query_directives: Option<usize>,
    max_query_fragment_spreads: Option<usize>,
    max_query_selections: Option<usize>,
    max_introspection_depth: Option<usize>,
    max_body_bytes: Option<usize>,
    register_limit_per_ip: Option<u64>,
    password_hash_concurrency: Option<usize>,
    database_pool_size: Option<usize>,
    password_hash_queue: Option<usize>,
    password_hash_wait_ms: Option<u64>,
    ws_max_connections_per_ip: Option<usize>,
    ws_max_subscriptions: Option<usize>,
    ws_init_timeout_secs: Option<u64>,
    log_format: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, FileServiceConfig>,
    #[serde(default)]
    graphql: crate::edge::FileEdge,
    #[serde(default)]
    retention: crate::retention::FileRetention,
    #[serde(default)]
    database: crate::connections::FileDatabase,
    #[serde(default)]
    redis: crate::connections::FileRedis,
    #[serde(default)]
    nats: crate::connections::FileNats,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServiceConfig {
    database_url: Option<Secret>,
}

/// Everything a bazaar process needs to know, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub namespace: String,
    pub database_url: Option<Secret>,
    pub service_database_urls: BTreeMap<ServiceName, Secret>,
    pub nats_url: Option<String>,
    /// RabbitMQ (AMQP 0-9-1) for the event bus instead of NATS; carries credentials.
    pub amqp_url: Option<Secret>,
    /// PEM file of the CA that signed the RabbitMQ server's certificate (amqps://).
    pub amqp_ca_file: Option<PathBuf>,
    pub redis_url: Option<Secret>,
    /// TLS and credentials for PostgreSQL, Redis and NATS beyond what their URLs carry.
    pub connections: crate::connections::Connections,
    pub jwt_secret: Secret,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_limit_per_account: u64,
    pub login_limit_per_ip: u64,
    pub login_limit_window: Duration,
    /// A confirmed order not paid within this time is cancelled and its stock released.
    pub unpaid_order_timeout: Duration,
    /// Orders one customer may hold PENDING or CONFIRMED (unpaid) at once.
    pub max_open_orders_per_customer: u64,
    /// SMTP server for mail (`smtp://host:port`, `smtps://` for TLS, credentials in the URL);
    /// without one, mail is written as .eml files under `data_dir/mail`.
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    /// When newly active promotions are announced (cron, 5 or 6 fields).
    pub promotion_schedule: crate::schedule::Schedule,
    /// When recommendation digests go out (cron).
    pub recommendation_schedule: crate::schedule::Schedule,
    /// The GraphQL cost model (see `config.default.toml` for what each counts).
    pub max_query_depth: usize,
    pub max_query_complexity: usize,
    pub max_query_tokens: usize,
    pub max_query_aliases: usize,
    pub max_query_directives: usize,
    pub max_query_fragment_spreads: usize,
    pub max_query_selections: usize,
    pub max_introspection_depth: usize,
    /// Largest request body, and largest WebSocket message.
    pub max_body_bytes: usize,
    /// The `/graphql` endpoint's HTTP behaviour: CORS, introspection, persisted queries and
    /// the response cache.
    pub graphql: crate::edge::EdgeSettings,
    /// How long rows kept only for a while are kept (see [`crate::retention`]).
    pub retention: crate::retention::Retention,
    /// Sign-ups allowed per client address within `login_limit_window`.
    pub register_limit_per_ip: u64,
    /// Password hashes computed at once (argon2id, 19 MiB each).
    pub password_hash_concurrency: usize,
    /// PostgreSQL connections each service of this process keeps for requests (its event
    /// pipeline keeps half as many more).
    pub database_pool_size: usize,
    /// Hashes allowed to wait for one of those slots; beyond, RATE_LIMITED at once.
    pub password_hash_queue: usize,
    /// How long a hash waits for a slot before RATE_LIMITED.
    pub password_hash_wait: Duration,
    pub ws_max_connections_per_ip: usize,
    pub ws_max_subscriptions: usize,
    /// A WebSocket that has not sent `connection_init` within this time is closed.
    pub ws_init_timeout: Duration,
    pub log_json: bool,
}

/// Every problem found in the configuration, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Where a value came from, so that the first one present wins.
fn first<T>(values: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    values.into_iter().flatten().next()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_secret(name: &str) -> Option<Secret> {
    env(name).map(Secret)
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

impl Settings {
    /// Merges flags/environment (`args`), the process environment and the TOML file, then
    /// validates. In the embedded mode a missing JWT secret is generated once and kept in the
    /// data directory so tokens survive restarts.
    pub fn load(args: &ConfigArgs) -> Result<Settings, ConfigError> {
        let mut errors = Vec::new();
        let file = match &args.config {
            Some(path) => read_file(path).unwrap_or_else(|e| {
                errors.push(e);
                FileConfig::default()
            }),
            None => FileConfig::default(),
        };

        let listen_raw = first([args.listen.clone(), file.listen.clone()])
            .unwrap_or_else(|| "127.0.0.1:8000".into());
        let listen = listen_raw.parse().unwrap_or_else(|_| {
            errors.push(format!(
                "listen address {listen_raw:?} is not HOST:PORT (e.g. 127.0.0.1:8000)"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8000))
        });
        let data_dir = first([args.data_dir.clone(), file.data_dir.clone()])
            .unwrap_or_else(|| PathBuf::from("./data"));
        let namespace = first([args.namespace.clone(), file.namespace.clone()])
            .unwrap_or_else(|| "bazaar".into());
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            errors.push(format!(
                "namespace {namespace:?} may only contain letters, digits, '_' and '-'"
            ));
        }

        let database_url = first([env_secret("BAZAAR_DATABASE_URL"), file.database_url.clone()]);
        let mut service_database_urls = BTreeMap::new();
        for service in ServiceName::ALL {
            let from_env = env_secret(&format!("{}DATABASE_URL", service.env_prefix()));
            let from_file = file
                .services
                .get(service.as_str())
                .and_then(|s| s.database_url.clone());
            if let Some(url) = first([from_env, from_file]) {
                service_database_urls.insert(service, url);
            }
        }
        for name in file.services.keys() {
            if ServiceName::parse(name).is_none() {
                errors.push(format!(
                    "[services.{name}] in the config file names no service"
                ));
            }
        }
        let connections =
            crate::connections::load(&file.database, &file.redis, &file.nats, &mut errors);
        let named_urls = database_url
            .iter()
            .map(|url| ("BAZAAR_DATABASE_URL".to_owned(), url))
            .chain(
                service_database_urls
                    .iter()
                    .map(|(s, url)| (format!("{}DATABASE_URL", s.env_prefix()), url)),
            );
        for (setting, url) in named_urls {
            if !(url.expose().starts_with("postgres://")
                || url.expose().starts_with("postgresql://"))
            {
                errors.push(
                    "database URLs must be PostgreSQL URLs (postgres://user@host:port/db)".into(),
                );
            } else {
                crate::connections::database_url(
                    &setting,
                    url.expose(),
                    connections.database_ca_file.as_deref(),
                    &mut errors,
                );
            }
        }
        // Empty means unset, as for every variable (compose passes `BAZAAR_NATS_URL=` when
        // RabbitMQ carries the events).
        let nats_url = first([
            args.nats_url.clone().filter(|u| !u.is_empty()),
            file.nats_url.clone(),
        ]);
        if let Some(url) = &nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            errors.push(format!(
                "NATS URL {url:?} must start with nats:// or tls://"
            ));
        }
        let amqp_url = first([env_secret("BAZAAR_AMQP_URL"), file.amqp_url.clone()]);
        let amqp_ca_file = first([
            env("BAZAAR_AMQP_CA_FILE").map(PathBuf::from),
            file.amqp_ca_file.clone(),
        ]);
        if let Some(url) = &amqp_url {
            let url = url.expose();
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                errors.push("AMQP URL must start with amqp:// or amqps://".into());
            }
            if nats_url.is_some() {
                errors.push(
                    "set either a NATS URL or an AMQP URL for the event bus, not both".into(),
                );
            }
            if amqp_ca_file.is_some() && !url.starts_with("amqps://") {
                errors.push("an AMQP CA file needs an amqps:// URL".into());
            }
        } else if amqp_ca_file.is_some() {
            errors.push("an AMQP CA file is set without an AMQP URL".into());
        }
        if let Some(path) = &amqp_ca_file
            && !path.is_file()
        {
            errors.push(format!("AMQP CA file {} does not exist", path.display()));
        }
        let redis_url = first([env_secret("BAZAAR_REDIS_URL"), file.redis_url.clone()]);
        if let Some(url) = &redis_url
            && !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://"))
        {
            errors.push("Redis URL must start with redis:// or rediss://".into());
        }

        let admin_email = first([env("BAZAAR_ADMIN_EMAIL"), file.admin_email.clone()]);
        let admin_password = first([
            env_secret("BAZAAR_ADMIN_PASSWORD"),
            file.admin_password.clone(),
        ]);
        match (&admin_email, &admin_password) {
            (Some(_), None) | (None, Some(_)) => errors
                .push("BAZAAR_ADMIN_EMAIL and BAZAAR_ADMIN_PASSWORD must be set together".into()),
            (Some(email), Some(password)) => {
                if !email.contains('@') {
                    errors.push(format!(
                        "BAZAAR_ADMIN_EMAIL {email:?} is not an email address"
                    ));
                }
                if password.expose().chars().count() < 8 {
                    errors.push("BAZAAR_ADMIN_PASSWORD must be at least 8 characters".into());
                }
            }
            (None, None) => {}
        }

        let number =
            |name: &str, file_value: Option<u64>, default: u64, errors: &mut Vec<String>| {
                first([env_number::<u64>(name, errors), file_value]).unwrap_or(default)
            };
        let access_ttl = number(
            "BAZAAR_ACCESS_TOKEN_TTL_SECS",
            file.access_token_ttl_secs,
            900,
            &mut errors,
        );
        let refresh_days = number(
            "BAZAAR_REFRESH_TOKEN_TTL_DAYS",
            file.refresh_token_ttl_days,
            30,
            &mut errors,
        );
        let per_account = number(
            "BAZAAR_LOGIN_LIMIT_PER_ACCOUNT",
            file.login_limit_per_account,
            5,
            &mut errors,
        );
        let per_ip = number(
            "BAZAAR_LOGIN_LIMIT_PER_IP",
            file.login_limit_per_ip,
            30,
            &mut errors,
        );
        let window = number(
            "BAZAAR_LOGIN_LIMIT_WINDOW_SECS",
            file.login_limit_window_secs,
            60,
            &mut errors,
        );
        let unpaid = number(
            "BAZAAR_UNPAID_ORDER_TIMEOUT_SECS",
            file.unpaid_order_timeout_secs,
            1800,
            &mut errors,
        );
        if unpaid == 0 {
            errors.push("the unpaid order timeout must be positive".into());
        }
        let open_orders = number(
            "BAZAAR_MAX_OPEN_ORDERS_PER_CUSTOMER",
            file.max_open_orders_per_customer,
            20,
            &mut errors,
        );
        if open_orders == 0 {
            errors.push("max_open_orders_per_customer must be positive".into());
        }
        let smtp_url = first([env_secret("BAZAAR_SMTP_URL"), file.smtp_url.clone()]);
        if let Some(url) = &smtp_url
            && !(url.expose().starts_with("smtp://") || url.expose().starts_with("smtps://"))
        {
            errors.push("BAZAAR_SMTP_URL must start with smtp:// or smtps://".into());
        }
        let mail_from = first([env("BAZAAR_MAIL_FROM"), file.mail_from.clone()])
            .unwrap_or_else(|| "bazaar <no-reply@bazaar.local>".into());
        let mut schedule = |name: &str, value: Option<String>, default: &str| {
            let expression = first([env(name), value]).unwrap_or_else(|| default.into());
            crate::schedule::Schedule::parse(&expression).unwrap_or_else(|e| {
                errors.push(format!("{name}: {e}"));
                crate::schedule::Schedule::parse(default).expect("default schedule parses")
            })
        };
        let promotion_schedule = schedule(
            "BAZAAR_PROMOTION_SCHEDULE",
            file.promotion_schedule.clone(),
            "0 * * * * *",
        );
        let recommendation_schedule = schedule(
            "BAZAAR_RECOMMENDATION_SCHEDULE",
            file.recommendation_schedule.clone(),
            "0 0 9 * * MON",
        );
        let depth = number(
            "BAZAAR_MAX_QUERY_DEPTH",
            file.max_query_depth.map(|v| v as u64),
            12,
            &mut errors,
        );
        let complexity = number(
            "BAZAAR_MAX_QUERY_COMPLEXITY",
            file.max_query_complexity.map(|v| v as u64),
            1000,
            &mut errors,
        );
        let body = number(
            "BAZAAR_MAX_BODY_BYTES",
            file.max_body_bytes.map(|v| v as u64),
            1 << 20,
            &mut errors,
        );
        let mut limit = |name: &str, file_value: Option<usize>, default: u64| {
            let value = number(name, file_value.map(|v| v as u64), default, &mut errors);
            if value == 0 {
                errors.push(format!("{name} must be positive"));
            }
            value as usize
        };
        let tokens = limit("BAZAAR_MAX_QUERY_TOKENS", file.max_query_tokens, 2000);
        let aliases = limit("BAZAAR_MAX_QUERY_ALIASES", file.max_query_aliases, 30);
        let directives = limit("BAZAAR_MAX_QUERY_DIRECTIVES", file.max_query_directives, 50);
        let spreads = limit(
            "BAZAAR_MAX_QUERY_FRAGMENT_SPREADS",
            file.max_query_fragment_spreads,
            100,
        );
        let selections = limit(
            "BAZAAR_MAX_QUERY_SELECTIONS",
            file.max_query_selections,
            1000,
        );
        let introspection_depth = limit(
            "BAZAAR_MAX_INTROSPECTION_DEPTH",
            file.max_introspection_depth,
            3,
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let hash_concurrency = limit(
            "BAZAAR_PASSWORD_HASH_CONCURRENCY",
            file.password_hash_concurrency,
            cores,
        );
        let hash_queue = limit("BAZAAR_PASSWORD_HASH_QUEUE", file.password_hash_queue, 64);
        let pool_size = limit("BAZAAR_DATABASE_POOL_SIZE", file.database_pool_size, 10);
        let ws_connections = limit(
            "BAZAAR_WS_MAX_CONNECTIONS_PER_IP",
            file.ws_max_connections_per_ip,
            64,
        );
        let ws_subscriptions = limit("BAZAAR_WS_MAX_SUBSCRIPTIONS", file.ws_max_subscriptions, 16);
        let hash_wait = number(
            "BAZAAR_PASSWORD_HASH_WAIT_MS",
            file.password_hash_wait_ms,
            3000,
            &mut errors,
        );
        let ws_init = number(
            "BAZAAR_WS_INIT_TIMEOUT_SECS",
            file.ws_init_timeout_secs,
            10,
            &mut errors,
        );
        let register_per_ip = number(
            "BAZAAR_REGISTER_LIMIT_PER_IP",
            file.register_limit_per_ip,
            20,
            &mut errors,
        );
        if ws_init == 0 || register_per_ip == 0 {
            errors.push("the WebSocket init timeout and the sign-up limit must be positive".into());
        }
        if !(60..=3600).contains(&access_ttl) {
            errors.push(format!(
                "access token lifetime {access_ttl}s must be between 60 and 3600 seconds"
            ));
        }
        if !(1..=365).contains(&refresh_days) {
            errors.push(format!(
                "refresh token lifetime {refresh_days} days must be between 1 and 365"
            ));
        }
        if per_account == 0 || per_ip == 0 || window == 0 {
            errors.push("login limits and their window must be positive".into());
        }

        let graphql = crate::edge::load(&file.graphql, &mut errors);
        let retention = crate::retention::load(&file.retention, &mut errors);

        let log_format = first([args.log_format.clone(), file.log_format.clone()])
            .unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            errors.push(format!("log format {log_format:?} must be text or json"));
        }

        let jwt_secret = match first([env_secret("BAZAAR_JWT_SECRET"), file.jwt_secret.clone()]) {
            Some(s) if s.expose().len() < bazaar_auth::MIN_SECRET_LEN => {
                errors.push(format!(
                    "BAZAAR_JWT_SECRET must be at least {} bytes",
                    bazaar_auth::MIN_SECRET_LEN
                ));
                s
            }
            Some(s) => s,
            None if database_url.is_some() || !service_database_urls.is_empty() => {
                errors.push("BAZAAR_JWT_SECRET is required when running on PostgreSQL (every process must share it)".into());
                Secret::new("")
            }
            None if errors.is_empty() => match generated_secret(&data_dir) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e);
                    Secret::new("")
                }
            },
            None => Secret::new(""),
        };

        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Settings {
            listen,
            data_dir,
            namespace,
            database_url,
            service_database_urls,
            nats_url,
            amqp_url,
            amqp_ca_file,
            redis_url,
            connections,
            jwt_secret,
            admin_email,
            admin_password,
            access_token_ttl: Duration::from_secs(access_ttl),
            refresh_token_ttl: Duration::from_secs(refresh_days * 24 * 3600),
            login_limit_per_account: per_account,
            login_limit_per_ip: per_ip,
            login_limit_window: Duration::from_secs(window),
            unpaid_order_timeout: Duration::from_secs(unpaid),
            max_open_orders_per_customer: open_orders,
            smtp_url,
            mail_from,
            promotion_schedule,
            recommendation_schedule,
            max_query_depth: depth as usize,
            max_query_complexity: complexity as usize,
            max_query_tokens: tokens,
            max_query_aliases: aliases,
            max_query_directives: directives,
            max_query_fragment_spreads: spreads,
            max_query_selections: selections,
            max_introspection_depth: introspection_depth,
            max_body_bytes: body as usize,
            graphql,
            retention,
            register_limit_per_ip: register_per_ip,
            password_hash_concurrency: hash_concurrency,
            database_pool_size: pool_size,
            password_hash_queue: hash_queue,
            password_hash_wait: Duration::from_millis(hash_wait),
            ws_max_connections_per_ip: ws_connections,
            ws_max_subscriptions: ws_subscriptions,
            ws_init_timeout: Duration::from_secs(ws_init),
            log_json: log_format == "json",
        })
    }

    /// Where `service` keeps its data: its own PostgreSQL schema when a URL is configured,
    /// else its own SQLite file in the data directory.
    pub fn db_target(&self, service: ServiceName) -> DbTarget {
        match self
            .service_database_urls
            .get(&service)
            .or(self.database_url.as_ref())
        {
            Some(url) => DbTarget::Postgres {
                // Checked by `load`; this adds the CA file and the sslmode that uses it.
                url: crate::connections::database_url(
                    "",
                    url.expose(),
                    self.connections.database_ca_file.as_deref(),
                    &mut Vec::new(),
                ),
                schema: service.as_str().to_owned(),
                pool_size: self.database_pool_size as u32,
            },
            None => DbTarget::SqliteFile(self.data_dir.join(format!("{}.db", service.as_str()))),
        }
    }

    /// True when events travel through a broker other processes can reach (NATS or RabbitMQ).
    pub fn has_shared_bus(&self) -> bool {
        self.nats_url.is_some() || self.amqp_url.is_some()
    }

    /// True when nothing outside this process is configured.
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
            && self.service_database_urls.is_empty()
            && self.nats_url.is_none()
            && self.amqp_url.is_none()
            && self.redis_url.is_none()
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Reads the secret generated by an earlier start, or makes one (readable by the owner only).
fn generated_secret(data_dir: &Path) -> Result<Secret, String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= bazaar_auth::MIN_SECRET_LEN {
            return Ok(Secret(existing));
        }
    }
    bazaar_db::private_dir(data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Secret(secret))
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded_and_generate_a_lasting_secret() {
        let dir = tempfile::tempdir().unwrap();
        let args = ConfigArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let a = Settings::load(&args).unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:8000");
        assert!(
            matches!(a.db_target(ServiceName::Users), DbTarget::SqliteFile(p) if p.ends_with("users.db"))
        );
        let b = Settings::load(&args).unwrap();
        assert_eq!(a.jwt_secret, b.jwt_secret, "secret kept across starts");
        assert_eq!(format!("{:?}", a.jwt_secret), "[redacted]");
    }

    #[test]
    fn every_bad_value_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bazaar.toml");
        std::fs::write(
            &file,
            "namespace = \"has space\"\nlog_format = \"xml\"\n[services.nope]\n",
        )
        .unwrap();
        let args = ConfigArgs {
            config: Some(file),
            listen: Some("not-an-address".into()),
            nats_url: Some("http://x".into()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let err = Settings::load(&args).unwrap_err().to_string();
        for needle in [
            "not-an-address",
            "namespace",
            "xml",
            "services.nope",
            "NATS URL",
        ] {
            assert!(err.contains(needle), "{needle} missing from {err}");
        }
    }

    #[test]
    fn rabbitmq_is_a_third_bus_and_excludes_nats() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let file = dir.path().join("bazaar.toml");
        let load = |toml: String, nats: Option<&str>| {
            std::fs::write(&file, toml).unwrap();
            Settings::load(&ConfigArgs {
                config: Some(file.clone()),
                nats_url: nats.map(Into::into),
                data_dir: Some(dir.path().into()),
                ..Default::default()
            })
        };
        let ok = load(
            format!(
                "amqp_url = \"amqps://app:pw@mq:5671/shop\"\namqp_ca_file = {:?}\n",
                ca.display().to_string()
            ),
            None,
        )
        .unwrap();
        assert!(ok.has_shared_bus() && !ok.is_embedded());
        assert_eq!(ok.amqp_ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(format!("{:?}", ok.amqp_url.unwrap()), "[redacted]");

        let err = load(
            "amqp_url = \"amqp://mq\"\namqp_ca_file = \"/nonexistent.pem\"\n".into(),
            Some("nats://127.0.0.1:4222"),
        )
        .unwrap_err()
        .to_string();
        for needle in ["not both", "needs an amqps://", "does not exist"] {
            assert!(err.contains(needle), "{needle} missing from {err}");
        }
        let err = load("amqp_url = \"http://mq\"\n".into(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("amqp:// or amqps://"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bazaar.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let args = ConfigArgs {
            config: Some(file),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        assert!(
            Settings::load(&args)
                .unwrap_err()
                .to_string()
                .contains("lisen")
        );
    }
}
