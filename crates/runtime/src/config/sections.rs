//! Reading each section of the configuration, in the order problems are reported: where the
//! process listens and keeps its data, its databases and brokers, the first administrator,
//! accounts, orders, mail, schedules, the GraphQL cost model, capacity, logging and the JWT
//! secret.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::settings::{Secret, ServiceName};
use super::sources::{Loader, env, env_secret, first};
use super::validate;
use crate::connections::Connections;
use crate::schedule::Schedule;

/// The listener, the data directory and the namespace.
pub(super) fn server(l: &mut Loader) -> (SocketAddr, PathBuf, String) {
    let listen_raw = first([l.args.listen.clone(), l.file.listen.clone()])
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let listen = listen_raw.parse().unwrap_or_else(|_| {
        l.errors.push(format!(
            "listen address {listen_raw:?} is not HOST:PORT (e.g. 127.0.0.1:8000)"
        ));
        SocketAddr::from(([127, 0, 0, 1], 8000))
    });
    let data_dir = first([l.args.data_dir.clone(), l.file.data_dir.clone()])
        .unwrap_or_else(|| PathBuf::from("./data"));
    let namespace = first([l.args.namespace.clone(), l.file.namespace.clone()])
        .unwrap_or_else(|| "bazaar".into());
    validate::namespace(&namespace, &mut l.errors);
    (listen, data_dir, namespace)
}

/// PostgreSQL: one URL for every service and per-service URLs, where the services that run
/// elsewhere answer, and the TLS and credentials of the database, Redis and NATS connections.
pub(super) struct Databases {
    pub database_url: Option<Secret>,
    pub service_database_urls: BTreeMap<ServiceName, Secret>,
    pub service_urls: BTreeMap<ServiceName, String>,
    pub connections: Connections,
}

pub(super) fn databases(l: &mut Loader) -> Databases {
    let database_url = first([
        env_secret("BAZAAR_DATABASE_URL"),
        l.file.database_url.clone(),
    ]);
    let mut service_database_urls = BTreeMap::new();
    let mut service_urls = BTreeMap::new();
    for &service in l.services {
        let prefix = service.env_prefix();
        let file = l.file.services.get(service.as_str());
        let from_file = file.and_then(|s| s.database_url.clone());
        if let Some(url) = first([env_secret(&format!("{prefix}DATABASE_URL")), from_file]) {
            service_database_urls.insert(service, url);
        }
        let from_file = file.and_then(|s| s.url.clone());
        if let Some(url) = first([env(&format!("{prefix}URL")), from_file]) {
            service_urls.insert(service, url);
        }
    }
    for name in l.file.services.keys() {
        if !l.services.iter().any(|s| s.as_str() == name) {
            l.errors.push(format!(
                "[services.{name}] in the config file names no service"
            ));
        }
    }
    let f = &l.file;
    let connections = crate::connections::load(&f.database, &f.redis, &f.nats, &mut l.errors);
    let named_urls = database_url
        .iter()
        .map(|url| ("BAZAAR_DATABASE_URL".to_owned(), url))
        .chain(
            service_database_urls
                .iter()
                .map(|(s, url)| (format!("{}DATABASE_URL", s.env_prefix()), url)),
        );
    let ca_file = connections.database_ca_file.as_deref();
    validate::database_urls(named_urls, ca_file, &mut l.errors);
    Databases {
        database_url,
        service_database_urls,
        service_urls,
        connections,
    }
}

/// The event bus's broker (NATS, RabbitMQ or Kafka, or none for the embedded log) and Redis.
pub(super) struct Brokers {
    pub nats_url: Option<String>,
    pub amqp_url: Option<Secret>,
    pub amqp_ca_file: Option<PathBuf>,
    pub kafka: Option<bazaar_bus::KafkaConfig>,
    pub redis_url: Option<Secret>,
}

pub(super) fn brokers(l: &mut Loader) -> Brokers {
    // Empty means unset, as for every variable (compose passes `BAZAAR_NATS_URL=` when
    // RabbitMQ carries the events).
    let nats_url = first([
        l.args.nats_url.clone().filter(|u| !u.is_empty()),
        l.file.nats_url.clone(),
    ]);
    let amqp_url = first([env_secret("BAZAAR_AMQP_URL"), l.file.amqp_url.clone()]);
    let amqp_ca_file = first([
        env("BAZAAR_AMQP_CA_FILE").map(PathBuf::from),
        l.file.amqp_ca_file.clone(),
    ]);
    let (nats, amqp, ca) = (
        nats_url.as_deref(),
        amqp_url.as_ref(),
        amqp_ca_file.as_deref(),
    );
    validate::brokers(nats, amqp, ca, &mut l.errors);
    let kafka = super::kafka::load(l, nats_url.is_some() || amqp_url.is_some());
    let redis_url = first([env_secret("BAZAAR_REDIS_URL"), l.file.redis_url.clone()]);
    let (schemes, message) = (
        &["redis://", "rediss://"],
        "Redis URL must start with redis:// or rediss://",
    );
    validate::url_scheme(redis_url.as_ref(), schemes, message, &mut l.errors);
    Brokers {
        nats_url,
        amqp_url,
        amqp_ca_file,
        kafka,
        redis_url,
    }
}

/// The administrator created at start-up, if any: email and password.
pub(super) fn admin(l: &mut Loader) -> (Option<String>, Option<Secret>) {
    let email = first([env("BAZAAR_ADMIN_EMAIL"), l.file.admin_email.clone()]);
    let password = first([
        env_secret("BAZAAR_ADMIN_PASSWORD"),
        l.file.admin_password.clone(),
    ]);
    validate::admin(email.as_deref(), password.as_ref(), &mut l.errors);
    (email, password)
}

/// Token lifetimes and sign-in limits (seconds, days, counts), checked with
/// [`validate::accounts`] once the sign-up limit is read too.
pub(super) struct Accounts {
    pub access_ttl_secs: u64,
    pub refresh_days: u64,
    pub per_account: u64,
    pub per_ip: u64,
    pub window_secs: u64,
}

pub(super) fn accounts(l: &mut Loader) -> Accounts {
    let f = &l.file;
    let [
        access_ttl_secs,
        refresh_days,
        per_account,
        per_ip,
        window_secs,
    ] = l.numbers([
        ("BAZAAR_ACCESS_TOKEN_TTL_SECS", f.access_token_ttl_secs, 900),
        (
            "BAZAAR_REFRESH_TOKEN_TTL_DAYS",
            f.refresh_token_ttl_days,
            30,
        ),
        (
            "BAZAAR_LOGIN_LIMIT_PER_ACCOUNT",
            f.login_limit_per_account,
            5,
        ),
        ("BAZAAR_LOGIN_LIMIT_PER_IP", f.login_limit_per_ip, 30),
        (
            "BAZAAR_LOGIN_LIMIT_WINDOW_SECS",
            f.login_limit_window_secs,
            60,
        ),
    ]);
    Accounts {
        access_ttl_secs,
        refresh_days,
        per_account,
        per_ip,
        window_secs,
    }
}

/// The unpaid-order timeout (seconds), the open orders one customer may hold, and the PENDING
/// orders over which placeOrder waits for the saga.
pub(super) fn orders(l: &mut Loader) -> (u64, u64, u64) {
    let unpaid = l.number(
        "BAZAAR_UNPAID_ORDER_TIMEOUT_SECS",
        l.file.unpaid_order_timeout_secs,
        1800,
    );
    validate::positive(
        unpaid,
        "the unpaid order timeout must be positive",
        &mut l.errors,
    );
    let open_orders = l.number(
        "BAZAAR_MAX_OPEN_ORDERS_PER_CUSTOMER",
        l.file.max_open_orders_per_customer,
        20,
    );
    let message = "max_open_orders_per_customer must be positive";
    validate::positive(open_orders, message, &mut l.errors);
    let pending = l.number("BAZAAR_MAX_PENDING_ORDERS", l.file.max_pending_orders, 64);
    let message = "max_pending_orders must be positive";
    validate::positive(pending, message, &mut l.errors);
    (unpaid, open_orders, pending)
}

/// The SMTP server (none: .eml files) and the sender of every mail.
pub(super) fn mail(l: &mut Loader) -> (Option<Secret>, String) {
    let smtp_url = first([env_secret("BAZAAR_SMTP_URL"), l.file.smtp_url.clone()]);
    let (schemes, message) = (
        &["smtp://", "smtps://"],
        "BAZAAR_SMTP_URL must start with smtp:// or smtps://",
    );
    validate::url_scheme(smtp_url.as_ref(), schemes, message, &mut l.errors);
    let mail_from = first([env("BAZAAR_MAIL_FROM"), l.file.mail_from.clone()])
        .unwrap_or_else(|| "bazaar <no-reply@bazaar.local>".into());
    (smtp_url, mail_from)
}

/// When promotions are announced and when recommendation digests go out.
pub(super) fn schedules(l: &mut Loader) -> (Schedule, Schedule) {
    let promotions = l.file.promotion_schedule.clone();
    let promotions = l.schedule("BAZAAR_PROMOTION_SCHEDULE", promotions, "0 * * * * *");
    let digests = l.file.recommendation_schedule.clone();
    let digests = l.schedule("BAZAAR_RECOMMENDATION_SCHEDULE", digests, "0 0 9 * * MON");
    (promotions, digests)
}

/// The GraphQL cost model's bounds and the largest request body.
pub(super) struct QueryLimits {
    pub depth: usize,
    pub complexity: usize,
    pub body: usize,
    pub tokens: usize,
    pub aliases: usize,
    pub directives: usize,
    pub spreads: usize,
    pub selections: usize,
    pub introspection_depth: usize,
}

pub(super) fn query_limits(l: &mut Loader) -> QueryLimits {
    let f = &l.file;
    let [depth, complexity, body] = l
        .numbers([
            (
                "BAZAAR_MAX_QUERY_DEPTH",
                f.max_query_depth.map(|v| v as u64),
                12,
            ),
            (
                "BAZAAR_MAX_QUERY_COMPLEXITY",
                f.max_query_complexity.map(|v| v as u64),
                1000,
            ),
            (
                "BAZAAR_MAX_BODY_BYTES",
                f.max_body_bytes.map(|v| v as u64),
                1 << 20,
            ),
        ])
        .map(|v| v as usize);
    let f = &l.file;
    let [
        tokens,
        aliases,
        directives,
        spreads,
        selections,
        introspection_depth,
    ] = l.limits([
        ("BAZAAR_MAX_QUERY_TOKENS", f.max_query_tokens, 2000),
        ("BAZAAR_MAX_QUERY_ALIASES", f.max_query_aliases, 30),
        ("BAZAAR_MAX_QUERY_DIRECTIVES", f.max_query_directives, 50),
        (
            "BAZAAR_MAX_QUERY_FRAGMENT_SPREADS",
            f.max_query_fragment_spreads,
            100,
        ),
        ("BAZAAR_MAX_QUERY_SELECTIONS", f.max_query_selections, 1000),
        (
            "BAZAAR_MAX_INTROSPECTION_DEPTH",
            f.max_introspection_depth,
            3,
        ),
    ]);
    QueryLimits {
        depth,
        complexity,
        body,
        tokens,
        aliases,
        directives,
        spreads,
        selections,
        introspection_depth,
    }
}

/// What the process takes on at once: password hashes and their queue, database
/// connections, WebSockets; and how long a hash or a WebSocket's `connection_init` may wait.
pub(super) struct Capacity {
    pub hash_concurrency: usize,
    pub hash_queue: usize,
    pub pool_size: usize,
    pub ws_connections: usize,
    pub ws_subscriptions: usize,
    pub hash_wait_ms: u64,
    pub ws_init_secs: u64,
    pub register_per_ip: u64,
}

pub(super) fn capacity(l: &mut Loader) -> Capacity {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let f = &l.file;
    let [
        hash_concurrency,
        hash_queue,
        pool_size,
        ws_connections,
        ws_subscriptions,
    ] = l.limits([
        (
            "BAZAAR_PASSWORD_HASH_CONCURRENCY",
            f.password_hash_concurrency,
            cores,
        ),
        ("BAZAAR_PASSWORD_HASH_QUEUE", f.password_hash_queue, 64),
        ("BAZAAR_DATABASE_POOL_SIZE", f.database_pool_size, 10),
        (
            "BAZAAR_WS_MAX_CONNECTIONS_PER_IP",
            f.ws_max_connections_per_ip,
            64,
        ),
        ("BAZAAR_WS_MAX_SUBSCRIPTIONS", f.ws_max_subscriptions, 16),
    ]);
    let f = &l.file;
    let [hash_wait_ms, ws_init_secs, register_per_ip] = l.numbers([
        (
            "BAZAAR_PASSWORD_HASH_WAIT_MS",
            f.password_hash_wait_ms,
            3000,
        ),
        ("BAZAAR_WS_INIT_TIMEOUT_SECS", f.ws_init_timeout_secs, 10),
        ("BAZAAR_REGISTER_LIMIT_PER_IP", f.register_limit_per_ip, 20),
    ]);
    Capacity {
        hash_concurrency,
        hash_queue,
        pool_size,
        ws_connections,
        ws_subscriptions,
        hash_wait_ms,
        ws_init_secs,
        register_per_ip,
    }
}

/// True for JSON logs, false for text.
pub(super) fn log_json(l: &mut Loader) -> bool {
    let format = first([l.args.log_format.clone(), l.file.log_format.clone()])
        .unwrap_or_else(|| "text".into());
    validate::log_format(&format, &mut l.errors);
    format == "json"
}

/// The JWT secret: configured, or in the embedded mode generated once into the data
/// directory (only when nothing else is wrong, so a bad configuration writes nothing).
pub(super) fn jwt_secret(l: &mut Loader, data_dir: &Path, on_postgres: bool) -> Secret {
    match first([env_secret("BAZAAR_JWT_SECRET"), l.file.jwt_secret.clone()]) {
        Some(s) if s.expose().len() < bazaar_auth::MIN_SECRET_LEN => {
            l.errors.push(format!(
                "BAZAAR_JWT_SECRET must be at least {} bytes",
                bazaar_auth::MIN_SECRET_LEN
            ));
            s
        }
        Some(s) => s,
        None if on_postgres => {
            l.errors.push("BAZAAR_JWT_SECRET is required when running on PostgreSQL (every process must share it)".into());
            Secret::new("")
        }
        None if l.errors.is_empty() => match super::generated_secret(data_dir) {
            Ok(s) => s,
            Err(e) => {
                l.errors.push(e);
                Secret::new("")
            }
        },
        None => Secret::new(""),
    }
}
