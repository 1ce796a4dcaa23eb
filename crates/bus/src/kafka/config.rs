//! Where the Kafka brokers are, how to trust and authenticate to them, and the librdkafka
//! settings every client of the transport shares.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{debug, error, info, warn};

/// SASL mechanisms librdkafka supports with OpenSSL alone (no GSSAPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// Parses `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (any case).
    pub fn parse(s: &str) -> Option<SaslMechanism> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SASL user and password.
#[derive(Clone)]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for KafkaSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Everything the Kafka transport needs to know about the cluster.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap list, `host:port[,host:port...]`.
    pub brokers: String,
    /// TLS to the brokers (implied by `ca_file`); unset CA: the system's trust store.
    pub tls: bool,
    /// PEM file with the CA certificate(s) that signed the brokers' certificates.
    pub ca_file: Option<PathBuf>,
    pub sasl: Option<KafkaSasl>,
    /// Partitions of the events topic when this process creates it.
    pub partitions: i32,
    /// Replication factor of the events topic when this process creates it.
    pub replication_factor: i32,
    /// A consumer that stops heartbeating for this long leaves its group.
    pub session_timeout: Duration,
    /// How often consumers heartbeat: bounds how long a rebalance waits for a member.
    pub heartbeat_interval: Duration,
    /// Start-up gives up creating the topic after this long.
    pub startup_timeout: Duration,
}

impl KafkaConfig {
    /// Defaults for `brokers`: 6 partitions, replication factor 1 (one broker), plaintext.
    pub fn new(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            tls: false,
            ca_file: None,
            sasl: None,
            partitions: 6,
            replication_factor: 1,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_millis(500),
            startup_timeout: Duration::from_secs(60),
        }
    }

    /// The settings every producer, consumer and admin client of the transport shares.
    pub(crate) fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        let tls = self.tls || self.ca_file.is_some();
        let protocol = match (tls, self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "bazaar")
            .set("security.protocol", protocol)
            // Never more than 10 s between a lost broker and a new attempt to reach it.
            .set("reconnect.backoff.max.ms", "10000")
            .set_log_level(RDKafkaLogLevel::Warning);
        if let Some(ca) = &self.ca_file {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        c
    }
}

/// What start-up must not retry: the brokers refused our credentials or certificate.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    Credentials(String),
    Certificate(String),
}

/// Routes librdkafka's log and error callbacks to `tracing`, and remembers a refusal so that
/// start-up can stop at once instead of retrying what waiting will not fix.
#[derive(Clone, Default)]
pub(crate) struct Context {
    pub refusal: Arc<Mutex<Option<Refusal>>>,
}

impl Context {
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal.lock().expect("refusal lock").clone()
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let refusal = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication)
            | Some(RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Some(Refusal::Credentials(reason.to_owned()))
            }
            Some(RDKafkaErrorCode::SSL) => Some(Refusal::Certificate(reason.to_owned())),
            // librdkafka reports a certificate that does not verify, or TLS spoken to a
            // plaintext listener, as a transport failure; only the reason tells them apart
            // from a broker that is merely down.
            _ if reason.contains("SSL handshake failed")
                || reason.contains("certificate verify failed") =>
            {
                Some(Refusal::Certificate(reason.to_owned()))
            }
            _ => None,
        };
        match refusal {
            Some(r) => {
                error!(target: "librdkafka", error = %error, %reason, "Kafka refused the connection");
                *self.refusal.lock().expect("refusal lock") = Some(r);
            }
            // Brokers going away and coming back: librdkafka reconnects by itself.
            None => debug!(target: "librdkafka", error = %error, %reason, "Kafka client error"),
        }
    }
}

impl ConsumerContext for Context {}
