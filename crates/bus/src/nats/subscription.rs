//! Consuming from a durable pull consumer: each subscriber keeps one pull in flight for as
//! many messages as one batch takes, re-issues it after errors and reconnects, drops the event
//! types a single-filter server sends anyway, and settles messages through their reply subject.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::{Batch, Config as PullConfig};
use async_nats::jetstream::{self, AckKind};
use async_nats::{Client, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::{debug, error, warn};

use super::stream::{Ensure, ensure_consumer};
use super::{NatsTransport, unavailable};
use crate::broker::{backoff, sanitize};
use crate::{Acker, BusError, ConsumerSpec, Delivery, Envelope, Subscription};

const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// A waiting pull request is renewed this often, so a lost one stalls a subscriber at most this long.
const PULL_EXPIRES: Duration = Duration::from_secs(15);

/// Subscribes to the durable consumer `spec` names, creating it now so events published after
/// this returns are seen.
pub(super) async fn subscribe(
    transport: &NatsTransport,
    spec: &ConsumerSpec,
) -> Result<Box<dyn Subscription>, BusError> {
    let name = sanitize(&spec.name);
    let config = transport.consumer_config(spec, &name);
    let mut subscription = NatsSubscription {
        client: transport.client.clone(),
        js: transport.js.clone(),
        stream: transport.stream.clone(),
        name,
        config,
        consumer: None,
        batch: None,
        connects: transport.connects.clone(),
        failures: 0,
        spec: spec.clone(),
    };
    subscription.consumer = Some(subscription.ensure_consumer().await?);
    Ok(Box::new(subscription))
}

/// One subscriber of a durable pull consumer. Each pull asks for as many messages as one
/// `next_batch` takes, so what waits in the client buffer (its ack_wait running) is at most one
/// batch; subscribers sharing the durable each hold one such pull.
struct NatsSubscription {
    client: Client,
    js: jetstream::Context,
    stream: String,
    name: String,
    config: PullConfig,
    /// `None` after an error: re-fetched (or re-created) before the next pull.
    consumer: Option<PullConsumer>,
    /// The pull in flight. Kept across calls so a cancelled `next()` does not orphan it.
    batch: Option<Batch>,
    connects: watch::Receiver<u64>,
    failures: u32,
    spec: ConsumerSpec,
}

impl NatsSubscription {
    async fn ensure_consumer(&self) -> Result<PullConsumer, BusError> {
        self.try_ensure_consumer().await.map_err(|e| match e {
            Ensure::Retry(reason) => BusError::Unavailable(reason),
            Ensure::StreamGone => {
                BusError::Unavailable(format!("stream {} does not exist", self.stream))
            }
        })
    }

    async fn try_ensure_consumer(&self) -> Result<PullConsumer, Ensure> {
        ensure_consumer(&self.js, &self.stream, &self.config).await
    }

    /// Starts a pull for up to `max` messages, (re)creating the consumer first when needed.
    async fn pull(&mut self, max: usize) -> Result<Batch, Ensure> {
        let consumer = match self.consumer.take() {
            Some(c) => c,
            None => self.try_ensure_consumer().await?,
        };
        let batch = consumer
            .batch()
            .max_messages(max)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        match batch {
            Ok(batch) => {
                self.consumer = Some(consumer);
                Ok(batch)
            }
            Err(e) => Err(Ensure::Retry(format!("pull request: {e}"))),
        }
    }

    async fn pause(&mut self, reason: &str) {
        let delay = backoff(self.failures);
        warn!(consumer = %self.name, %reason, ?delay, "NATS subscription interrupted, retrying");
        self.failures = self.failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }

    /// Turns a message into a delivery; a body that is not an Envelope is terminated and skipped.
    async fn delivery(&self, message: jetstream::Message) -> Option<Delivery> {
        let Some(reply) = message.message.reply.clone() else {
            warn!(consumer = %self.name, "JetStream message without reply subject ignored");
            return None;
        };
        let acker = NatsAcker {
            client: self.client.clone(),
            reply,
        };
        let attempt = match message.info() {
            Ok(info) => u32::try_from(info.delivered).unwrap_or(u32::MAX).max(1),
            Err(e) => {
                warn!(consumer = %self.name, error = %e, "unparsable JetStream reply subject; assuming attempt 1");
                1
            }
        };
        match serde_json::from_slice::<Envelope>(&message.message.payload) {
            Ok(event) => Some(Delivery::new(event, attempt, Box::new(acker))),
            Err(e) => {
                error!(consumer = %self.name, subject = %message.message.subject, error = %e,
                    "message is not an event envelope; terminating it");
                if let Err(e) = acker.settle(AckKind::Term).await {
                    warn!(consumer = %self.name, error = %e, "could not terminate malformed message");
                }
                None
            }
        }
    }

    /// Sorts `message` into `out` when it is an event of the consumer's types, else into
    /// `skipped` (a server that filters by one subject only sends the other types too).
    async fn accept(
        &self,
        message: jetstream::Message,
        out: &mut Vec<Delivery>,
        skipped: &mut Vec<Delivery>,
    ) {
        if let Some(delivery) = self.delivery(message).await {
            match self.spec.wants(&delivery.event.event_type) {
                true => out.push(delivery),
                false => skipped.push(delivery),
            }
        }
    }
}

/// Acknowledges events of types the consumer does not handle, all at once.
async fn ack_skipped(name: &str, skipped: &mut Vec<Delivery>) {
    let acks = skipped.drain(..).map(Delivery::ack);
    for result in futures::future::join_all(acks).await {
        if let Err(e) = result {
            debug!(consumer = %name, error = %e, "could not ack a skipped event type");
        }
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let max = max.max(1);
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        loop {
            let Some(batch) = self.batch.as_mut() else {
                ack_skipped(&self.name, &mut skipped).await;
                if !out.is_empty() {
                    return Ok(Some(out));
                }
                match self.pull(max).await {
                    Ok(batch) => self.batch = Some(batch),
                    Err(Ensure::StreamGone) => {
                        error!(consumer = %self.name, stream = %self.stream, "stream deleted; subscription ends");
                        return Ok(None);
                    }
                    Err(Ensure::Retry(reason)) => self.pause(&reason).await,
                }
                continue;
            };
            // Once a message is in hand, take only what is already here.
            if !out.is_empty() || !skipped.is_empty() {
                match batch.next().now_or_never() {
                    Some(Some(Ok(message))) => {
                        self.accept(message, &mut out, &mut skipped).await;
                        if out.len() < max {
                            continue;
                        }
                    }
                    Some(Some(Err(_))) | Some(None) => {
                        self.batch = None;
                        continue;
                    }
                    None => {}
                }
                ack_skipped(&self.name, &mut skipped).await;
                if !out.is_empty() {
                    return Ok(Some(out));
                }
                continue;
            }
            let connects = &mut self.connects;
            tokio::select! {
                item = batch.next() => match item {
                    Some(Ok(message)) => {
                        self.failures = 0;
                        self.accept(message, &mut out, &mut skipped).await;
                    }
                    Some(Err(e)) => {
                        // e.g. 409 consumer deleted or 503 no responders: look the consumer up again.
                        self.batch = None;
                        self.consumer = None;
                        self.pause(&e.to_string()).await;
                    }
                    // Pull expired or fulfilled: issue the next one.
                    None => self.batch = None,
                },
                changed = connects.changed() => {
                    if changed.is_err() {
                        error!(consumer = %self.name, "NATS client closed; subscription ends");
                        return Ok(None);
                    }
                    // The server may have forgotten the waiting pull across the reconnect.
                    debug!(consumer = %self.name, "reconnected; re-issuing pull");
                    self.batch = None;
                }
            }
        }
    }
}

/// Settles a message through its reply subject and waits for the server's confirmation, so a
/// returned `ack()` means the broker recorded it (and stats reflect it).
struct NatsAcker {
    client: Client,
    reply: Subject,
}

impl NatsAcker {
    async fn settle(&self, kind: AckKind) -> Result<(), BusError> {
        tokio::time::timeout(
            ACK_TIMEOUT,
            self.client.request(self.reply.clone(), Bytes::from(kind)),
        )
        .await
        .map_err(|_| {
            BusError::Unavailable(format!("{kind:?} not confirmed within {ACK_TIMEOUT:?}"))
        })?
        .map_err(|e| unavailable("ack", e))?;
        Ok(())
    }
}

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(AckKind::Ack).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.settle(AckKind::Nak(Some(delay))).await
    }
}
