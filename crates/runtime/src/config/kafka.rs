//! The Kafka settings of the event bus: `BAZAAR_KAFKA_*` variables over the `[kafka]` table,
//! checked here (one broker kind, a readable CA file, user and password together, a known SASL
//! mechanism, sane numbers) so a mistake stops start-up with a line naming the setting.

use std::path::PathBuf;
use std::time::Duration;

use bazaar_bus::{KafkaConfig, KafkaSasl, SaslMechanism};
use serde::Deserialize;

use super::settings::Secret;
use super::sources::{Loader, env, env_secret, first};

/// The `[kafka]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileKafka {
    brokers: Option<String>,
    tls: Option<bool>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<Secret>,
    sasl_mechanism: Option<String>,
    partitions: Option<u64>,
    replication_factor: Option<u64>,
    session_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
}

/// The Kafka transport's configuration, or `None` without `BAZAAR_KAFKA_BROKERS`;
/// `other_bus` says whether NATS or RabbitMQ is configured too.
pub(super) fn load(l: &mut Loader, other_bus: bool) -> Option<KafkaConfig> {
    let f = std::mem::take(&mut l.file.kafka);
    let brokers = first([env("BAZAAR_KAFKA_BROKERS"), f.brokers]);
    let ca_file = first([env("BAZAAR_KAFKA_CA_FILE").map(PathBuf::from), f.ca_file]);
    let username = first([env("BAZAAR_KAFKA_USERNAME"), f.username]);
    let password = first([env_secret("BAZAAR_KAFKA_PASSWORD"), f.password]);
    let mechanism = first([env("BAZAAR_KAFKA_SASL_MECHANISM"), f.sasl_mechanism]);
    let tls = match env("BAZAAR_KAFKA_TLS").as_deref() {
        None => f.tls.unwrap_or(false),
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            l.errors
                .push(format!("BAZAAR_KAFKA_TLS={other:?} must be true or false"));
            false
        }
    };
    let [partitions, replication, session_ms, heartbeat_ms] = l.numbers([
        ("BAZAAR_KAFKA_PARTITIONS", f.partitions, 6),
        ("BAZAAR_KAFKA_REPLICATION_FACTOR", f.replication_factor, 1),
        (
            "BAZAAR_KAFKA_SESSION_TIMEOUT_MS",
            f.session_timeout_ms,
            10_000,
        ),
        (
            "BAZAAR_KAFKA_HEARTBEAT_INTERVAL_MS",
            f.heartbeat_interval_ms,
            500,
        ),
    ]);
    let errors = &mut l.errors;
    let Some(brokers) = brokers else {
        if ca_file.is_some() || username.is_some() || password.is_some() {
            errors.push("Kafka CA file or credentials are set without BAZAAR_KAFKA_BROKERS".into());
        }
        return None;
    };
    if other_bus {
        errors.push(
            "set one of BAZAAR_NATS_URL, BAZAAR_AMQP_URL and BAZAAR_KAFKA_BROKERS for the event \
             bus, not several"
                .into(),
        );
    }
    for broker in brokers.split(',').map(str::trim) {
        let port = broker.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            errors.push(format!(
                "BAZAAR_KAFKA_BROKERS entry {broker:?} is not HOST:PORT (e.g. 127.0.0.1:9092)"
            ));
        }
    }
    if let Some(path) = &ca_file {
        crate::connections::check_ca_file("BAZAAR_KAFKA_CA_FILE", path, errors);
    }
    let sasl = match (username, password) {
        (Some(username), Some(password)) => {
            // SCRAM unless told otherwise: PLAIN sends the password itself.
            let raw = mechanism.unwrap_or_else(|| "SCRAM-SHA-512".into());
            let mechanism = SaslMechanism::parse(&raw).unwrap_or_else(|| {
                errors.push(format!(
                    "BAZAAR_KAFKA_SASL_MECHANISM {raw:?} must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                ));
                SaslMechanism::ScramSha512
            });
            Some(KafkaSasl {
                mechanism,
                username,
                password: password.expose().to_owned(),
            })
        }
        (None, None) => {
            if mechanism.is_some() {
                errors
                    .push("BAZAAR_KAFKA_SASL_MECHANISM is set without a user and password".into());
            }
            None
        }
        _ => {
            errors.push(
                "BAZAAR_KAFKA_USERNAME and BAZAAR_KAFKA_PASSWORD must be set together".into(),
            );
            None
        }
    };
    if !(1..=10_000).contains(&partitions) || !(1..=16).contains(&replication) {
        errors.push(
            "BAZAAR_KAFKA_PARTITIONS must be 1 to 10000 and BAZAAR_KAFKA_REPLICATION_FACTOR 1 to 16"
                .into(),
        );
    }
    // librdkafka refuses a heartbeat that is not shorter than the session; brokers refuse
    // sessions under 6 s by default (group.min.session.timeout.ms).
    if heartbeat_ms == 0 || heartbeat_ms >= session_ms || session_ms > 3_600_000 {
        errors.push(
            "BAZAAR_KAFKA_HEARTBEAT_INTERVAL_MS must be positive and below \
             BAZAAR_KAFKA_SESSION_TIMEOUT_MS (at most an hour)"
                .into(),
        );
    }
    let mut config = KafkaConfig::new(brokers);
    config.tls = tls;
    config.ca_file = ca_file;
    config.sasl = sasl;
    config.partitions = partitions as i32;
    config.replication_factor = replication as i32;
    config.session_timeout = Duration::from_millis(session_ms);
    config.heartbeat_interval = Duration::from_millis(heartbeat_ms);
    Some(config)
}
