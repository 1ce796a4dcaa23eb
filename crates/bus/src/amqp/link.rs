//! The one AMQP connection a transport keeps, re-opened on demand after the broker dropped it,
//! and the publisher-confirm channel every publish of the process shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::BusError;

/// Bounds the TCP/TLS/AMQP handshake, so a black-holed broker fails a connect instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the broker is and how to trust it.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:5672/vhost` or `amqps://...` (the vhost URL-encoded, `%2f` for `/`).
    pub url: String,
    /// PEM file with the CA certificate(s) that signed the broker's certificate (amqps only);
    /// unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries the password.
        f.debug_struct("AmqpConfig")
            .field("url", &redact(&self.url))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `amqp://user:secret@host/` → `amqp://user:***@host/`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

struct Open {
    connection: Arc<Connection>,
    publisher: Channel,
}

/// A lazily (re)connected AMQP connection. Callers ask for a channel; when the connection is
/// gone they get a fresh one, or `Unavailable` and retry later with their own backoff.
pub struct Link {
    config: AmqpConfig,
    open: Mutex<Option<Open>>,
}

impl Link {
    pub fn new(config: AmqpConfig) -> Link {
        Link {
            config,
            open: Mutex::new(None),
        }
    }

    pub fn url(&self) -> String {
        redact(&self.config.url)
    }

    /// The current connection, re-established when the broker dropped it.
    pub async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut open = self.open.lock().await;
        Ok(self.ensure(&mut open).await?.connection.clone())
    }

    /// The shared publisher-confirm channel (re-opened when the broker closed it, e.g. after
    /// a refused publish).
    pub async fn publisher(&self) -> Result<Channel, BusError> {
        let mut guard = self.open.lock().await;
        let open = self.ensure(&mut guard).await?;
        if !open.publisher.status().connected() {
            open.publisher = confirm_channel(&open.connection).await?;
        }
        Ok(open.publisher.clone())
    }

    /// A channel of its own (subscriptions, live feeds, statistics).
    pub async fn channel(&self) -> Result<Channel, BusError> {
        let connection = self.connection().await?;
        connection
            .create_channel()
            .await
            .map_err(|e| unavailable("opening a channel", e))
    }

    async fn ensure<'a>(&self, open: &'a mut Option<Open>) -> Result<&'a mut Open, BusError> {
        let alive = open
            .as_ref()
            .is_some_and(|o| o.connection.status().connected());
        if !alive {
            if open.is_some() {
                warn!(url = %self.url(), "RabbitMQ connection lost; reconnecting");
            }
            *open = None;
            let connection = Arc::new(self.connect().await?);
            let publisher = confirm_channel(&connection).await?;
            info!(url = %self.url(), "RabbitMQ connected");
            *open = Some(Open {
                connection,
                publisher,
            });
        }
        Ok(open.as_mut().expect("just opened"))
    }

    async fn connect(&self) -> Result<Connection, BusError> {
        let properties = ConnectionProperties::default().with_connection_name("bazaar".into());
        let tls = match &self.config.ca_file {
            Some(path) => OwnedTLSConfig {
                identity: None,
                cert_chain: Some(std::fs::read_to_string(path).map_err(|e| {
                    BusError::Unavailable(format!(
                        "cannot read the AMQP CA file {}: {e}",
                        path.display()
                    ))
                })?),
            },
            None => OwnedTLSConfig::default(),
        };
        let runtime =
            lapin::runtime::default_runtime().map_err(|e| unavailable("AMQP runtime", e))?;
        let connect = Connection::connect_with_config(&self.config.url, properties, tls, runtime);
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "RabbitMQ at {} did not answer within {CONNECT_TIMEOUT:?}",
                    self.url()
                ))
            })?
            .map_err(|e| unavailable(&format!("connecting to RabbitMQ at {}", self.url()), e))
    }
}

async fn confirm_channel(connection: &Connection) -> Result<Channel, BusError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| unavailable("opening the publisher channel", e))?;
    // Every publish on it is answered by the broker once stored (queued on every bound queue).
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| unavailable("enabling publisher confirms", e))?;
    Ok(channel)
}

pub fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}
