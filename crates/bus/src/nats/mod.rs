//! The NATS JetStream transport: one stream per namespace, durable pull consumers that fetch
//! batches and filter by event type at the broker (NATS 2.10+; on 2.9, which allows one
//! filter subject per consumer, the client drops the other types), pipelined publishes.

pub(crate) mod auth;
mod connect;
mod live;
mod publish;
mod stats;
mod stream;
mod subscription;

use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use async_trait::async_trait;
use tokio::sync::watch;

use crate::{BusError, ConsumerSpec, Envelope, LiveEvents, StreamStats, Subscription, Transport};

/// Bounds the readiness probe, so a hung server reads as not ready rather than hanging it.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes to and consumes from the JetStream stream `{NS}_events` (subjects `{namespace}.events.>`).
#[derive(Clone)]
pub struct NatsTransport {
    client: Client,
    js: jetstream::Context,
    prefix: String,
    stream: String,
    /// Bumped on every (re)connect, so subscriptions can re-issue pulls the old connection lost.
    connects: watch::Receiver<u64>,
}

impl NatsTransport {
    /// The JetStream stream name, e.g. `shop_events`.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }
}

#[async_trait]
impl Transport for NatsTransport {
    async fn live(&self, source: &str) -> Result<LiveEvents, BusError> {
        live::live(self, source).await
    }

    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        publish::publish_batch(self, events).await
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        subscription::subscribe(self, spec).await
    }

    async fn ready(&self) -> bool {
        if self.client.connection_state() != State::Connected {
            return false;
        }
        matches!(
            tokio::time::timeout(READY_TIMEOUT, self.js.get_stream(&self.stream)).await,
            Ok(Ok(_))
        )
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        stats::stats(self).await
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}

fn is_stream_not_found(kind: &GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests;
