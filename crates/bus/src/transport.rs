//! The transport contract both brokers implement: the embedded SQLite log and NATS JetStream.
//!
//! Semantics (checked by the conformance suite in `tests/conformance.rs`):
//! - `publish` returns only once the broker has stored the event; publishing the same event id
//!   twice stores it once.
//! - A durable consumer sees every event in the stream (from the beginning, within retention),
//!   at least once, until it acknowledges it. Several subscribers with one consumer name share the work:
//!   each event goes to one of them.
//! - Events are handed out in publish order; a `nak` puts one back for redelivery after a delay
//!   without holding back the others.
//! - `Delivery::attempt` counts deliveries of that event to that consumer, starting at 1.

use std::time::Duration;

use async_trait::async_trait;

use crate::{BusError, Envelope};

/// How a durable consumer is set up.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, unique per service and purpose (e.g. `orders`).
    pub name: String,
    /// An unacknowledged delivery is handed out again after this long (crashed or stuck handler).
    pub ack_wait: Duration,
}

impl ConsumerSpec {
    pub fn new(name: impl Into<String>) -> Self {
        ConsumerSpec {
            name: name.into(),
            ack_wait: Duration::from_secs(10),
        }
    }
}

/// Figures about one durable consumer, for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub name: String,
    /// Events handed out at least once.
    pub delivered: u64,
    /// Events in the stream not yet acknowledged by this consumer.
    pub pending: u64,
    /// Deliveries handed out but not yet acknowledged.
    pub ack_pending: u64,
    /// Deliveries beyond the first.
    pub redelivered: u64,
}

/// Figures about the stream as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub name: String,
    pub messages: u64,
    pub consumers: Vec<ConsumerStats>,
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Stores the event durably; a repeated id is accepted and stored once.
    async fn publish(&self, event: &Envelope) -> Result<(), BusError>;

    /// Joins (creating when missing) the durable consumer described by `spec`.
    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError>;

    /// True when the broker can take publishes right now (for /readyz).
    async fn ready(&self) -> bool;

    /// Counts for the stream and its consumers.
    async fn stats(&self) -> Result<StreamStats, BusError>;

    /// A short name for logs and metrics: `embedded` or `nats`.
    fn kind(&self) -> &'static str;

    /// Every event `source` publishes from now on, in publish order, to this process only: no
    /// history, no acks, nothing durable. For pushing live updates (WebSocket subscriptions);
    /// a slow listener may miss events. Every replica gets every event.
    async fn live(&self, source: &str) -> Result<LiveEvents, BusError>;
}

/// A live feed of events (see [`Transport::live`]); ends when the transport goes away.
pub type LiveEvents = futures::stream::BoxStream<'static, Envelope>;

/// A stream of deliveries for one durable consumer.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next delivery. `None` means the subscription ended for good.
    async fn next(&mut self) -> Result<Option<Delivery>, BusError>;
}

/// One event handed to one consumer, to be settled exactly once.
pub struct Delivery {
    pub event: Envelope,
    /// 1 on first delivery, 2 on the first redelivery, and so on.
    pub attempt: u32,
    pub(crate) acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(event: Envelope, attempt: u32, acker: Box<dyn Acker>) -> Self {
        Delivery {
            event,
            attempt,
            acker,
        }
    }

    /// Done with it: never deliver it to this consumer again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Failed for now: deliver it again after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }
}

/// How a transport settles one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    async fn nak(&self, delay: Duration) -> Result<(), BusError>;
}
