//! The rules a loaded value must meet beyond parsing: URL schemes, settings that only make
//! sense together, and numbers within their bounds. Each rule adds its message to the list,
//! so one start-up reports every problem.

use super::sections::{Accounts, Capacity};
use super::settings::Secret;

/// Only characters every backend accepts in a name: the namespace prefixes NATS streams,
/// RabbitMQ exchanges and Redis keys alike.
pub(super) fn namespace(namespace: &str, errors: &mut Vec<String>) {
    if namespace.is_empty()
        || !namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.push(format!(
            "namespace {namespace:?} may only contain letters, digits, '_' and '-'"
        ));
    }
}

/// True when `url` starts with one of `schemes`.
fn has_scheme(url: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| url.starts_with(scheme))
}

/// Each of the `(setting, url)` database URLs is PostgreSQL's, and sound with the CA file.
pub(super) fn database_urls<'a>(
    urls: impl IntoIterator<Item = (String, &'a Secret)>,
    ca_file: Option<&std::path::Path>,
    errors: &mut Vec<String>,
) {
    for (setting, url) in urls {
        if !has_scheme(url.expose(), &["postgres://", "postgresql://"]) {
            errors.push(
                "database URLs must be PostgreSQL URLs (postgres://user@host:port/db)".into(),
            );
        } else {
            crate::connections::database_url(&setting, url.expose(), ca_file, errors);
        }
    }
}

/// One broker at most, each URL with its own scheme, and an AMQP CA file only for amqps://.
pub(super) fn brokers(
    nats_url: Option<&str>,
    amqp_url: Option<&Secret>,
    amqp_ca_file: Option<&std::path::Path>,
    errors: &mut Vec<String>,
) {
    if let Some(url) = nats_url
        && !has_scheme(url, &["nats://", "tls://"])
    {
        errors.push(format!(
            "NATS URL {url:?} must start with nats:// or tls://"
        ));
    }
    if let Some(url) = amqp_url {
        let url = url.expose();
        if !has_scheme(url, &["amqp://", "amqps://"]) {
            errors.push("AMQP URL must start with amqp:// or amqps://".into());
        }
        if nats_url.is_some() {
            errors.push("set either a NATS URL or an AMQP URL for the event bus, not both".into());
        }
        if amqp_ca_file.is_some() && !url.starts_with("amqps://") {
            errors.push("an AMQP CA file needs an amqps:// URL".into());
        }
    } else if amqp_ca_file.is_some() {
        errors.push("an AMQP CA file is set without an AMQP URL".into());
    }
    if let Some(path) = amqp_ca_file
        && !path.is_file()
    {
        errors.push(format!("AMQP CA file {} does not exist", path.display()));
    }
}

/// `message` unless `url`, when set, starts with one of `schemes`.
pub(super) fn url_scheme(
    url: Option<&Secret>,
    schemes: &[&str],
    message: &str,
    errors: &mut Vec<String>,
) {
    if let Some(url) = url
        && !has_scheme(url.expose(), schemes)
    {
        errors.push(message.into());
    }
}

/// The first administrator: both settings or neither, a plausible email, a long password.
pub(super) fn admin(email: Option<&str>, password: Option<&Secret>, errors: &mut Vec<String>) {
    match (email, password) {
        (Some(_), None) | (None, Some(_)) => {
            errors.push("BAZAAR_ADMIN_EMAIL and BAZAAR_ADMIN_PASSWORD must be set together".into())
        }
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
}

/// `message` when `value` is 0.
pub(super) fn positive(value: u64, message: &str, errors: &mut Vec<String>) {
    if value == 0 {
        errors.push(message.into());
    }
}

/// Lifetimes a token can sensibly have, and limits that let someone in at all.
pub(super) fn accounts(a: &Accounts, c: &Capacity, errors: &mut Vec<String>) {
    if c.ws_init_secs == 0 || c.register_per_ip == 0 {
        errors.push("the WebSocket init timeout and the sign-up limit must be positive".into());
    }
    let access_ttl = a.access_ttl_secs;
    if !(60..=3600).contains(&access_ttl) {
        errors.push(format!(
            "access token lifetime {access_ttl}s must be between 60 and 3600 seconds"
        ));
    }
    let refresh_days = a.refresh_days;
    if !(1..=365).contains(&refresh_days) {
        errors.push(format!(
            "refresh token lifetime {refresh_days} days must be between 1 and 365"
        ));
    }
    if a.per_account == 0 || a.per_ip == 0 || a.window_secs == 0 {
        errors.push("login limits and their window must be positive".into());
    }
}

/// A log format the logger knows.
pub(super) fn log_format(format: &str, errors: &mut Vec<String>) {
    if format != "text" && format != "json" {
        errors.push(format!("log format {format:?} must be text or json"));
    }
}
