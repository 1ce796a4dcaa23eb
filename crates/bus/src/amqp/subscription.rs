//! One subscriber of a consumer's quorum queue: a channel with a prefetch of one batch, manual
//! acks, and naks that park the delivery in a delay queue until it is due again.
//!
//! Order: RabbitMQ hands one consumer a queue's messages in queue order, and the consumer
//! runtime settles a whole batch before it asks for the next, so one subscriber applies one
//! aggregate's events in publish order, as a JetStream pull does. Deliveries returned by a
//! closed channel (a crashed replica) go back to the head of a quorum queue, ahead of later
//! events. Replicas sharing the queue each take different messages, as with a shared JetStream
//! consumer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use tracing::{error, warn};

use super::link::{Link, unavailable};
use super::topology::{self, Names, delay_tier};
use crate::broker::backoff;
use crate::{Acker, BusError, ConsumerSpec, Delivery, Envelope, Subscription};

/// Deliveries the broker may have handed a subscriber before it acknowledges any: one batch of
/// the consumer runtime (`consumer::BATCH`), so the next batch is on its way while one is applied.
const PREFETCH: u16 = 256;
/// Bound on a nak's publish to the delay queue.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// Our attempt counter, carried by a nak'd delivery through its delay queue (which starts its
/// own `x-delivery-count` from zero).
const ATTEMPT_HEADER: &str = "x-bazaar-attempt";

/// What one consumer is, for the figures `stats` reports: its queues, and the deliveries this
/// process holds (AMQP reports only the messages still waiting in a queue).
#[derive(Default)]
pub struct ConsumerState {
    pub queue: String,
    /// Delay queues this process declared for it.
    pub delay_queues: Mutex<BTreeSet<String>>,
    pub delivered: AtomicU64,
    pub held: AtomicU64,
    pub held_redeliveries: AtomicU64,
}

impl ConsumerState {
    pub fn new(queue: String) -> ConsumerState {
        ConsumerState {
            queue,
            ..Default::default()
        }
    }
}

pub struct AmqpSubscription {
    link: Arc<Link>,
    names: Names,
    spec: ConsumerSpec,
    state: Arc<ConsumerState>,
    /// The channel consuming the queue; `None` before the first `next_batch` and after a failure.
    open: Option<(Channel, lapin::Consumer)>,
    failures: u32,
}

impl AmqpSubscription {
    /// Declares the queue and its bindings, so events published once this returns are kept;
    /// consuming starts with the first `next_batch` (a subscription dropped unused holds nothing).
    pub async fn new(
        link: Arc<Link>,
        names: Names,
        spec: ConsumerSpec,
        state: Arc<ConsumerState>,
    ) -> Result<AmqpSubscription, BusError> {
        let channel = link.channel().await?;
        let declared = declare(&channel, &names, &state.queue, &spec).await;
        let _ = channel.close(200, "declared".into()).await;
        declared?;
        Ok(AmqpSubscription {
            link,
            names,
            spec,
            state,
            open: None,
            failures: 0,
        })
    }

    async fn open(&mut self) -> Result<(), BusError> {
        let channel = self.link.channel().await?;
        declare(&channel, &self.names, &self.state.queue, &self.spec).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|e| unavailable("setting the prefetch", e))?;
        let consumer = channel
            .basic_consume(
                self.state.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable(&format!("consuming {}", self.state.queue), e))?;
        self.open = Some((channel, consumer));
        Ok(())
    }

    async fn pause(&mut self, reason: &str) {
        // A channel still open after a consumer error would keep deliveries it never hands out.
        if let Some((channel, _)) = self.open.take()
            && channel.status().connected()
        {
            let _ = channel.close(200, "re-opening".into()).await;
        }
        let delay = backoff(self.failures);
        warn!(consumer = %self.spec.name, %reason, ?delay, "RabbitMQ subscription interrupted, retrying");
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }

    /// Turns a message into a delivery; one that is not an event, or not of this consumer's
    /// types (a binding left from an older deployment), is settled here and skipped.
    async fn accept(&self, message: lapin::message::Delivery, out: &mut Vec<Delivery>) {
        let event = match serde_json::from_slice::<Envelope>(&message.data) {
            Ok(event) => event,
            Err(e) => {
                error!(consumer = %self.spec.name, routing_key = %message.routing_key, error = %e,
                    "message is not an event envelope; dropping it");
                let _ = message
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await;
                return;
            }
        };
        if !self.spec.wants(&event.event_type) {
            let _ = message.acker.ack(BasicAckOptions::default()).await;
            return;
        }
        let attempt = attempt(message.properties.headers().as_ref());
        self.state.delivered.fetch_add(1, Ordering::Relaxed);
        self.state.held.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            self.state.held_redeliveries.fetch_add(1, Ordering::Relaxed);
        }
        let acker = AmqpAcker {
            acker: message.acker,
            link: self.link.clone(),
            state: self.state.clone(),
            body: message.data,
            message_id: event.id.clone(),
            attempt,
        };
        out.push(Delivery::new(event, attempt, Box::new(acker)));
    }
}

async fn declare(
    channel: &Channel,
    names: &Names,
    queue: &str,
    spec: &ConsumerSpec,
) -> Result<(), BusError> {
    topology::declare_exchange(channel, names).await?;
    topology::declare_consumer_queue(channel, names, queue, &spec.event_types).await
}

/// 1 on first delivery; a nak'd delivery carries its count in [`ATTEMPT_HEADER`], and the
/// quorum queue adds `x-delivery-count` for each return (channel closed, crash) since.
fn attempt(headers: Option<&FieldTable>) -> u32 {
    let number = |key: &str| {
        headers
            .and_then(|h| h.inner().get(key))
            .and_then(|v| match v {
                AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
                AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
                AMQPValue::LongUInt(n) => Some(*n),
                AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
                _ => None,
            })
    };
    number(ATTEMPT_HEADER)
        .unwrap_or(1)
        .max(1)
        .saturating_add(number("x-delivery-count").unwrap_or(0))
}

#[async_trait]
impl Subscription for AmqpSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let max = max.max(1);
        loop {
            if self.open.is_none()
                && let Err(e) = self.open().await
            {
                self.pause(&e.to_string()).await;
                continue;
            }
            let (_, consumer) = self.open.as_mut().expect("opened above");
            let first = match consumer.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    self.pause(&e.to_string()).await;
                    continue;
                }
                // Cancelled by the broker (queue deleted) or the channel closed.
                None => {
                    self.pause("consumer cancelled").await;
                    continue;
                }
            };
            self.failures = 0;
            let mut messages = vec![first];
            // Take only what is already here: a batch never waits for stragglers.
            while messages.len() < max {
                match consumer.next().now_or_never() {
                    Some(Some(Ok(message))) => messages.push(message),
                    _ => break,
                }
            }
            let mut out = Vec::with_capacity(messages.len());
            for message in messages {
                self.accept(message, &mut out).await;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

impl Drop for AmqpSubscription {
    fn drop(&mut self) {
        // Closing the channel hands its unacknowledged deliveries back to the queue at once,
        // rather than when the connection ends.
        if let Some((channel, _)) = self.open.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = channel.close(200, "subscription dropped".into()).await;
            });
        }
    }
}

/// Settles one delivery on the channel that received it.
struct AmqpAcker {
    acker: lapin::Acker,
    link: Arc<Link>,
    state: Arc<ConsumerState>,
    body: Vec<u8>,
    message_id: String,
    attempt: u32,
}

impl Drop for AmqpAcker {
    fn drop(&mut self) {
        // Settled, or abandoned (the channel's closing returns it to the queue).
        self.state.held.fetch_sub(1, Ordering::Relaxed);
        if self.attempt > 1 {
            self.state.held_redeliveries.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl AmqpAcker {
    /// Parks a copy in the delay queue for `delay` (confirmed by the broker), then acks this
    /// delivery. A crash in between leaves both: one redelivery more, which the inbox absorbs.
    async fn park(&self, delay: Duration) -> Result<(), BusError> {
        let tier = delay_tier(delay);
        let queue = self.delay_queue(tier).await?;
        let mut headers = FieldTable::default();
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(self.attempt) + 1),
        );
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(self.message_id.as_str().into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let publisher = self.link.publisher().await?;
        let parked = async {
            // Mandatory: were the delay queue gone, the broker returns the copy instead of
            // dropping it, and the original stays unacknowledged.
            let confirm = publisher
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &self.body,
                    properties,
                )
                .await
                .map_err(|e| unavailable("parking a retry", e))?
                .await
                .map_err(|e| unavailable("parking a retry", e))?;
            match confirm {
                lapin::Confirmation::Ack(None) => Ok(()),
                other => Err(BusError::Unavailable(format!(
                    "broker did not take the retry into {queue}: {other:?}"
                ))),
            }
        };
        tokio::time::timeout(CONFIRM_TIMEOUT, parked)
            .await
            .map_err(|_| BusError::Unavailable("retry publish not confirmed in time".into()))??;
        self.ack_now().await
    }

    /// The delay queue for `tier` ms, declared the first time this process uses it.
    async fn delay_queue(&self, tier: u64) -> Result<String, BusError> {
        let name = Names::delay_queue(&self.state.queue, tier);
        if self
            .state
            .delay_queues
            .lock()
            .expect("delay queues lock")
            .contains(&name)
        {
            return Ok(name);
        }
        let channel = self.link.channel().await?;
        let declared = topology::declare_delay_queue(&channel, &self.state.queue, tier).await;
        let _ = channel.close(200, "declared".into()).await;
        let name = declared?;
        self.state
            .delay_queues
            .lock()
            .expect("delay queues lock")
            .insert(name.clone());
        Ok(name)
    }

    async fn ack_now(&self) -> Result<(), BusError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| unavailable("ack", e))
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.ack_now().await
    }

    /// Even an immediate retry goes through the shortest delay queue: a `basic.nack` with
    /// requeue would hand the delivery straight back into this subscriber's prefetch, where
    /// closing the channel returns it once more and counts a delivery nobody saw.
    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.park(delay).await
    }
}
