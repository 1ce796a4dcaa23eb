//! The transport contract every broker implements: the embedded SQLite log, NATS JetStream,
//! RabbitMQ and Kafka.
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
//! - A consumer that names its event types receives only events of those types.
//! - `next_batch` waits for one delivery and hands out as many as are ready (up to a bound) in
//!   publish order; `publish_batch` stores many events in one round trip, in order.

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
    /// The event types this consumer receives; empty means every type.
    pub event_types: Vec<String>,
}

impl ConsumerSpec {
    /// A consumer of every event type.
    pub fn new(name: impl Into<String>) -> Self {
        ConsumerSpec {
            name: name.into(),
            ack_wait: Duration::from_secs(10),
            event_types: Vec::new(),
        }
    }

    /// Narrows the consumer to `types`: the broker hands out nothing else.
    pub fn for_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.event_types = types.into_iter().map(Into::into).collect();
        self.event_types.sort();
        self.event_types.dedup();
        self
    }

    /// True when events of `event_type` are for this consumer.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
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

    /// Stores `events` durably and in order, as [`Transport::publish`] would one by one, but in
    /// as few round trips as the broker allows. On error, a prefix may have been stored (the
    /// caller publishes them again; duplicates are stored once).
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        for event in events {
            self.publish(event).await?;
        }
        Ok(())
    }

    /// Joins (creating when missing) the durable consumer described by `spec`.
    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError>;

    /// True when the broker can take publishes right now (for /readyz).
    async fn ready(&self) -> bool;

    /// Counts for the stream and its consumers.
    async fn stats(&self) -> Result<StreamStats, BusError>;

    /// A short name for logs and metrics: `embedded`, `nats`, `rabbitmq` or `kafka`.
    fn kind(&self) -> &'static str;

    /// Deletes stored events older than `keep` that every consumer has acknowledged, and
    /// returns how many. Only the embedded log does work here: a JetStream stream drops old
    /// events by its own `max_age`.
    async fn prune(&self, keep: Duration) -> Result<u64, BusError> {
        let _ = keep;
        Ok(0)
    }

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
    /// Waits for at least one delivery and returns those ready, at most `max` (≥ 1), in
    /// publish order. `None` means the subscription ended for good.
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError>;

    /// Waits for the next delivery. `None` means the subscription ended for good.
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        Ok(self
            .next_batch(1)
            .await?
            .and_then(|batch| batch.into_iter().next()))
    }

    /// Acknowledges deliveries this subscription handed out, in as few round trips as the
    /// broker allows.
    async fn ack_batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let acks = deliveries.into_iter().map(Delivery::ack);
        futures::future::join_all(acks).await.into_iter().collect()
    }
}

/// One event handed to one consumer, to be settled exactly once.
pub struct Delivery {
    pub event: Envelope,
    /// 1 on first delivery, 2 on the first redelivery, and so on.
    pub attempt: u32,
    pub(crate) acker: Box<dyn Acker>,
    /// Where the transport keeps it (the embedded log's sequence), for settling in bulk.
    pub(crate) position: i64,
}

impl Delivery {
    pub fn new(event: Envelope, attempt: u32, acker: Box<dyn Acker>) -> Self {
        Delivery {
            event,
            attempt,
            acker,
            position: 0,
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
