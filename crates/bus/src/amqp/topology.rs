//! What the RabbitMQ transport declares, and under which names: one topic exchange per
//! namespace, one durable quorum queue per consumer bound to its event types, and per consumer
//! a few delay queues that hand nak'd deliveries back after a fixed time.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use super::link::unavailable;
use crate::BusError;
use crate::broker::sanitize;

/// Shortest and longest retry delays. A nak is parked in the delay queue of the smallest power
/// of two milliseconds not below the requested delay (so never earlier than asked, at most
/// twice as late); one TTL per queue, because RabbitMQ expires messages only at a queue's head
/// and a short delay behind a long one would wait for it.
const MIN_DELAY_MS: u64 = 16;
const MAX_DELAY_MS: u64 = 1 << 21; // about 35 minutes

/// Names of everything one namespace owns on the broker.
#[derive(Debug, Clone)]
pub struct Names {
    namespace: String,
}

impl Names {
    pub fn new(namespace: &str) -> Names {
        Names {
            namespace: sanitize(namespace),
        }
    }

    /// The topic exchange every event is published to, e.g. `shop.events`.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    /// `<source>.<type>`: consumers bind `*.<type>`, live feeds `<source>.*`.
    pub fn routing_key(source: &str, event_type: &str) -> String {
        format!("{}.{}", sanitize(source), sanitize(event_type))
    }

    /// The durable queue of consumer `name`, shared by every replica that runs it.
    pub fn queue(&self, consumer: &str) -> String {
        format!("{}.consumer.{}", self.namespace, sanitize(consumer))
    }

    /// The delay queue of `queue` that holds deliveries for `delay_ms`.
    pub fn delay_queue(queue: &str, delay_ms: u64) -> String {
        format!("{queue}.retry.{delay_ms}ms")
    }
}

/// The delay tier for a requested delay: see [`MIN_DELAY_MS`].
pub fn delay_tier(delay: Duration) -> u64 {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    ms.clamp(MIN_DELAY_MS, MAX_DELAY_MS).next_power_of_two()
}

/// The durable topic exchange; declaring it again is a no-op.
pub async fn declare_exchange(channel: &Channel, names: &Names) -> Result<(), BusError> {
    channel
        .exchange_declare(
            names.exchange().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable("declaring the events exchange", e))
}

/// Declares the consumer's quorum queue and binds it to each of its event types (every type
/// when it names none). Bindings only add: a type a consumer stopped handling keeps its binding
/// until an operator removes it, and the subscription acknowledges and drops such events.
pub async fn declare_consumer_queue(
    channel: &Channel,
    names: &Names,
    queue: &str,
    event_types: &[String],
) -> Result<(), BusError> {
    channel
        .queue_declare(queue.into(), durable(), quorum(FieldTable::default()))
        .await
        .map_err(|e| unavailable(&format!("declaring queue {queue}"), e))?;
    let keys: Vec<String> = match event_types {
        [] => vec!["#".into()],
        types => types.iter().map(|t| format!("*.{}", sanitize(t))).collect(),
    };
    for key in keys {
        channel
            .queue_bind(
                queue.into(),
                names.exchange().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable(&format!("binding {queue} to {key}"), e))?;
    }
    Ok(())
}

/// Declares the delay queue of `queue` for `delay_ms`: a quorum queue whose messages expire
/// after that long and are dead-lettered, at least once (the broker confirms the move
/// internally, so a broker crash cannot drop a parked retry), back into `queue` through the
/// default exchange.
pub async fn declare_delay_queue(
    channel: &Channel,
    queue: &str,
    delay_ms: u64,
) -> Result<String, BusError> {
    let name = Names::delay_queue(queue, delay_ms);
    let mut args = FieldTable::default();
    args.insert(
        "x-message-ttl".into(),
        AMQPValue::LongLongInt(delay_ms as i64),
    );
    args.insert("x-dead-letter-exchange".into(), text(""));
    args.insert("x-dead-letter-routing-key".into(), text(queue));
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    // Required by at-least-once dead-lettering: a full queue refuses publishes rather than
    // dropping its head.
    args.insert("x-overflow".into(), text("reject-publish"));
    channel
        .queue_declare(name.as_str().into(), durable(), quorum(args))
        .await
        .map_err(|e| unavailable(&format!("declaring delay queue {name}"), e))?;
    Ok(name)
}

/// Messages ready in `queue` (not those handed to a consumer and unacknowledged, which AMQP
/// does not report); 0 when the queue does not exist. A passive declare of a missing queue
/// closes the channel, so the caller passes one it can lose.
pub async fn ready_count(channel: &Channel, queue: &str) -> Result<Option<u64>, BusError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(q) => Ok(Some(u64::from(q.message_count()))),
        Err(e) if e.to_string().contains("NOT_FOUND") || e.to_string().contains("404") => Ok(None),
        Err(e) => Err(unavailable(&format!("counting {queue}"), e)),
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Quorum queues replicate through Raft and survive broker restarts and node loss; they
/// count redeliveries (`x-delivery-count`) and hand returned messages out first.
fn quorum(mut args: FieldTable) -> FieldTable {
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}
