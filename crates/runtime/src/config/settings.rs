//! What a bazaar process is configured with, once loaded and validated: service names,
//! secrets that never print, and [`Settings`] with what they derive (where each service
//! keeps its data, whether events leave the process).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bazaar_db::DbTarget;
use serde::Deserialize;

/// A service's name: its event source, its durable consumer, its database schema (or SQLite
/// file), its internal routes' prefix and its `BAZAAR_<SERVICE>_*` settings. Each service
/// crate declares its own (`app::NAME`); which services exist is the binary's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(&'static str);

impl ServiceName {
    /// A name of lower-case letters, as the service's directory is called.
    pub const fn new(name: &'static str) -> ServiceName {
        ServiceName(name)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// Prefix of this service's own environment variables, e.g. `BAZAAR_USERS_`.
    pub fn env_prefix(self) -> String {
        format!("BAZAAR_{}_", self.0.to_uppercase())
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

/// Everything a bazaar process needs to know, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub namespace: String,
    pub database_url: Option<Secret>,
    pub service_database_urls: BTreeMap<ServiceName, Secret>,
    /// Where services that do not run in this process answer (`BAZAAR_<SERVICE>_URL`).
    pub service_urls: BTreeMap<ServiceName, String>,
    pub nats_url: Option<String>,
    /// RabbitMQ (AMQP 0-9-1) for the event bus instead of NATS; carries credentials.
    pub amqp_url: Option<Secret>,
    /// PEM file of the CA that signed the RabbitMQ server's certificate (amqps://).
    pub amqp_ca_file: Option<PathBuf>,
    /// Apache Kafka for the event bus instead of NATS or RabbitMQ (its password redacted in
    /// `Debug`).
    pub kafka: Option<bazaar_bus::KafkaConfig>,
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
    /// Orders waiting for the catalogue's answer (PENDING) over which placeOrder waits for
    /// the saga to catch up (backpressure), up to 10 s, then answers SERVICE_UNAVAILABLE.
    pub max_pending_orders: u64,
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

/// Every problem found in the configuration, one per line. Not folded into
/// [`crate::ServiceError`]: it stops a process at start-up, before there is any request to
/// answer, and carries every problem at once so one attempt shows them all.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Settings {
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

    /// True when events travel through a broker other processes can reach (NATS, RabbitMQ or
    /// Kafka).
    pub fn has_shared_bus(&self) -> bool {
        self.nats_url.is_some() || self.amqp_url.is_some() || self.kafka.is_some()
    }

    /// True when nothing outside this process is configured.
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
            && self.service_database_urls.is_empty()
            && self.nats_url.is_none()
            && self.amqp_url.is_none()
            && self.kafka.is_none()
            && self.redis_url.is_none()
    }
}
