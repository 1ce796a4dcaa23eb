//! What the NATS transport sets up on the server: the namespace's stream, and each durable
//! pull consumer with its filter subjects, brought to the current settings when an older
//! deployment created it differently.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::Config as PullConfig;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::stream::{Config as StreamConfig, ConsumerErrorKind, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use tracing::{info, warn};

use super::connect::Attempt;
use super::{NatsTransport, is_stream_not_found, unavailable};
use crate::broker::sanitize;
use crate::{BusError, ConsumerSpec};

/// JetStream only deduplicates ids it saw within this window; the outbox relay retries well inside it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Limits retention: the database (outbox/inbox) is the source of truth, the stream a rolling week.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_ACK_PENDING: i64 = 1000;
/// The first server version whose consumers take several filter subjects.
const MULTI_FILTER_VERSION: (u64, u64) = (2, 10);

/// Why a consumer could not be looked up or created.
pub(super) enum Ensure {
    Retry(String),
    /// The stream is gone: nothing left to consume.
    StreamGone,
}

impl NatsTransport {
    /// Creates the stream or brings an existing one to the current config, so config changes roll out.
    pub(super) async fn provision(&self) -> Result<(), Attempt> {
        let config = StreamConfig {
            name: self.stream.clone(),
            subjects: vec![format!("{}.events.>", self.prefix)],
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: MAX_AGE,
            max_messages: -1,
            max_bytes: -1,
            max_consumers: -1,
            num_replicas: 1,
            ..Default::default()
        };
        match self.js.create_or_update_stream(config).await {
            Ok(_) => Ok(()),
            // The server answered with a reason (e.g. subjects overlap another stream): retrying won't help.
            Err(e) if matches!(e.kind(), CreateStreamErrorKind::JetStream(_)) => {
                Err(Attempt::Fatal(BusError::Unavailable(format!(
                    "provisioning stream {}: {e}",
                    self.stream
                ))))
            }
            // No responders or timeouts: JetStream still starting or without quorum.
            Err(e) => Err(Attempt::Retry(format!(
                "provisioning stream {}: {e}",
                self.stream
            ))),
        }
    }

    /// Removes this namespace's stream and its consumers (test clean-up); a missing stream is fine.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        match self.js.delete_stream(&self.stream).await {
            Ok(_) => Ok(()),
            Err(e) if is_stream_not_found(&e.kind()) => Ok(()),
            Err(e) => Err(unavailable("deleting stream", e)),
        }
    }

    /// The durable pull consumer `name` for `spec`: explicit acks, from the stream's start,
    /// filtered by type as far as the server allows.
    pub(super) fn consumer_config(&self, spec: &ConsumerSpec, name: &str) -> PullConfig {
        let (filter_subject, filter_subjects) = self.filters(&spec.event_types, name);
        PullConfig {
            filter_subject,
            filter_subjects,
            durable_name: Some(name.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            deliver_policy: DeliverPolicy::All,
            // Unbounded: the consumer runtime dead-letters by attempt count, the broker must not drop.
            max_deliver: -1,
            max_ack_pending: MAX_ACK_PENDING,
            ..Default::default()
        }
    }

    /// The consumer's filter at the broker: one subject per type where the server takes
    /// several (2.10+), else one subject when there is one type, else none (the subscription
    /// drops other types itself).
    fn filters(&self, event_types: &[String], consumer: &str) -> (String, Vec<String>) {
        let subjects: Vec<String> = event_types
            .iter()
            .map(|t| format!("{}.events.*.{}", self.prefix, sanitize(t)))
            .collect();
        let version = self.client.server_info().version;
        match subjects.len() {
            0 => (String::new(), Vec::new()),
            1 => (subjects[0].clone(), Vec::new()),
            _ if supports_multi_filter(&version) => (String::new(), subjects),
            _ => {
                info!(consumer, %version, "NATS before 2.10 takes one filter subject per consumer; \
                    this consumer receives every event type and drops the others itself");
                (String::new(), Vec::new())
            }
        }
    }
}

/// True for a server version `major.minor.patch` of 2.10 or later.
pub(super) fn supports_multi_filter(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= MULTI_FILTER_VERSION
}

/// Looks up durable `config` on `stream`, creating it when missing and updating it when an
/// older deployment created it with other settings.
pub(super) async fn ensure_consumer(
    js: &jetstream::Context,
    stream: &str,
    config: &PullConfig,
) -> Result<PullConsumer, Ensure> {
    let name = config.durable_name.as_deref().unwrap_or_default();
    let stream = js.get_stream(stream).await.map_err(|e| {
        if is_stream_not_found(&e.kind()) {
            Ensure::StreamGone
        } else {
            Ensure::Retry(format!("stream info: {e}"))
        }
    })?;
    let consumer: PullConsumer = stream
        .get_or_create_consumer(name, config.clone())
        .await
        .map_err(|e| match e.kind() {
            ConsumerErrorKind::JetStream(js) if js.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Ensure::StreamGone
            }
            _ => Ensure::Retry(format!("consumer {name}: {e}")),
        })?;
    let existing = &consumer.cached_info().config;
    if existing.ack_wait != config.ack_wait
        || existing.max_ack_pending != config.max_ack_pending
        || existing.filter_subject != config.filter_subject
        || existing.filter_subjects != config.filter_subjects
    {
        // An older deployment created it differently; 2.9 updates a durable through create.
        if let Err(e) = stream.create_consumer(config.clone()).await {
            warn!(consumer = %name, error = %e, "could not update consumer settings; keeping existing");
        }
    }
    Ok(consumer)
}
