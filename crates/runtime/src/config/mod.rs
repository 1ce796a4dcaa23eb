//! Configuration: command-line flags, `BAZAAR_*` environment variables and an optional TOML
//! file (in that order of precedence), merged and validated once at start-up into [`Settings`].
//! `config.default.toml` at the repository root documents every key.

mod kafka;
mod sections;
pub mod settings;
pub mod sources;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sections::{Accounts, Brokers, Capacity, Databases, QueryLimits};
use settings::{ConfigError, Secret, ServiceName, Settings};
use sources::{ConfigArgs, Loader};

use crate::edge::EdgeSettings;
use crate::retention::Retention;
use crate::schedule::Schedule;

impl Settings {
    /// Merges flags/environment (`args`), the process environment and the TOML file, then
    /// validates. In the embedded mode a missing JWT secret is generated once and kept in the
    /// data directory so tokens survive restarts. Reads no service's own settings (a service's
    /// own tests); the binary loads with [`Settings::load_for`] its registry's services.
    pub fn load(args: &ConfigArgs) -> Result<Settings, ConfigError> {
        Settings::load_for(args, &[])
    }

    /// [`Settings::load`] with each of `services`' own settings (`[services.<name>]`,
    /// `BAZAAR_<SERVICE>_DATABASE_URL`, `BAZAAR_<SERVICE>_URL`); other names are an error.
    pub fn load_for(args: &ConfigArgs, services: &[ServiceName]) -> Result<Settings, ConfigError> {
        let mut l = Loader::new(args, services);
        let parts = Parts::read(&mut l);
        let d = &parts.databases;
        let on_postgres = d.database_url.is_some() || !d.service_database_urls.is_empty();
        let jwt_secret = sections::jwt_secret(&mut l, &parts.server.1, on_postgres);
        if !l.errors.is_empty() {
            return Err(ConfigError(l.errors));
        }
        Ok(parts.into_settings(jwt_secret))
    }
}

/// Every section read, in the order their problems are reported; the JWT secret comes last
/// because it is only generated when nothing else is wrong.
struct Parts {
    server: (SocketAddr, PathBuf, String),
    databases: Databases,
    brokers: Brokers,
    admin: (Option<String>, Option<Secret>),
    accounts: Accounts,
    orders: (u64, u64, u64),
    mail: (Option<Secret>, String),
    schedules: (Schedule, Schedule),
    query: QueryLimits,
    capacity: Capacity,
    graphql: EdgeSettings,
    retention: Retention,
    log_json: bool,
}

impl Parts {
    fn read(l: &mut Loader) -> Parts {
        let server = sections::server(l);
        let databases = sections::databases(l);
        let brokers = sections::brokers(l);
        let admin = sections::admin(l);
        let accounts = sections::accounts(l);
        let orders = sections::orders(l);
        let mail = sections::mail(l);
        let schedules = sections::schedules(l);
        let query = sections::query_limits(l);
        let capacity = sections::capacity(l);
        validate::accounts(&accounts, &capacity, &mut l.errors);
        Parts {
            server,
            databases,
            brokers,
            admin,
            accounts,
            orders,
            mail,
            schedules,
            query,
            capacity,
            graphql: crate::edge::load(&l.file.graphql, &mut l.errors),
            retention: crate::retention::load(&l.file.retention, &mut l.errors),
            log_json: sections::log_json(l),
        }
    }

    fn into_settings(self, jwt_secret: Secret) -> Settings {
        let Parts {
            server: (listen, data_dir, namespace),
            databases: d,
            brokers: b,
            admin: (admin_email, admin_password),
            accounts: a,
            orders: (unpaid_secs, max_open_orders_per_customer, max_pending_orders),
            mail: (smtp_url, mail_from),
            schedules: (promotion_schedule, recommendation_schedule),
            query: q,
            capacity: c,
            graphql,
            retention,
            log_json,
        } = self;
        Settings {
            listen,
            data_dir,
            namespace,
            database_url: d.database_url,
            service_database_urls: d.service_database_urls,
            service_urls: d.service_urls,
            nats_url: b.nats_url,
            amqp_url: b.amqp_url,
            amqp_ca_file: b.amqp_ca_file,
            kafka: b.kafka,
            redis_url: b.redis_url,
            connections: d.connections,
            jwt_secret,
            admin_email,
            admin_password,
            access_token_ttl: Duration::from_secs(a.access_ttl_secs),
            refresh_token_ttl: Duration::from_secs(a.refresh_days * 24 * 3600),
            login_limit_per_account: a.per_account,
            login_limit_per_ip: a.per_ip,
            login_limit_window: Duration::from_secs(a.window_secs),
            unpaid_order_timeout: Duration::from_secs(unpaid_secs),
            max_open_orders_per_customer,
            max_pending_orders,
            smtp_url,
            mail_from,
            promotion_schedule,
            recommendation_schedule,
            max_query_depth: q.depth,
            max_query_complexity: q.complexity,
            max_query_tokens: q.tokens,
            max_query_aliases: q.aliases,
            max_query_directives: q.directives,
            max_query_fragment_spreads: q.spreads,
            max_query_selections: q.selections,
            max_introspection_depth: q.introspection_depth,
            max_body_bytes: q.body,
            graphql,
            retention,
            register_limit_per_ip: c.register_per_ip,
            password_hash_concurrency: c.hash_concurrency,
            database_pool_size: c.pool_size,
            password_hash_queue: c.hash_queue,
            password_hash_wait: Duration::from_millis(c.hash_wait_ms),
            ws_max_connections_per_ip: c.ws_connections,
            ws_max_subscriptions: c.ws_subscriptions,
            ws_init_timeout: Duration::from_secs(c.ws_init_secs),
            log_json,
        }
    }
}

/// Reads the secret generated by an earlier start, or makes one (readable by the owner only).
fn generated_secret(data_dir: &Path) -> Result<Secret, String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= bazaar_auth::MIN_SECRET_LEN {
            return Ok(Secret::new(existing));
        }
    }
    bazaar_db::private_dir(data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Secret::new(secret))
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
mod tests;
