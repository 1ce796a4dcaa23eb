//! The Apache Kafka transport (librdkafka through `rdkafka`): every event of a namespace goes
//! to one topic, keyed by its aggregate id, from an idempotent producer with `acks=all`; each
//! durable consumer is a consumer group that reads the whole topic and keeps only its types.
//!
//! How the contract maps (ARCHITECTURE.md says why):
//! - One topic `<namespace>.events`, not one per type or per source: a partition keeps the
//!   events of one aggregate in publish order whatever their types (`OrderPlaced` before
//!   `OrderConfirmed`), and a consumer filters the types it handles by the `type` header.
//! - Kafka has no per-message ack: a nak is held in memory and the offset committed is the
//!   lowest unsettled one per partition ([`tracker`]); later events are not held back.
//! - No broker-side deduplication across producers: this process skips ids it had stored
//!   within two minutes; repeats from elsewhere (a relay that crashed between publish and
//!   mark) are stored twice and absorbed by the inbox.
//! - A stuck member (no `next_batch` within `ack_wait`, its `max.poll.interval.ms`) leaves its
//!   group, and its unsettled deliveries go to another member.

mod admin;
mod config;
mod live;
mod stats;
mod subscription;
mod tracker;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use config::Context;
pub use config::{KafkaConfig, KafkaSasl, SaslMechanism};
use subscription::{ConsumerState, KafkaSubscription};

use crate::amqp::recent::RecentIds;
use crate::broker::sanitize;
use crate::{BusError, ConsumerSpec, Envelope, LiveEvents, StreamStats, Subscription, Transport};

/// Bounds a publish: librdkafka retries on its own until then, and the outbox keeps the event.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes to and consumes from Kafka under one namespace (a name prefix of the topic and
/// the consumer groups).
#[derive(Clone)]
pub struct KafkaTransport {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<KafkaConfig>,
    context: Context,
    namespace: String,
    topic: String,
    producer: FutureProducer<Context>,
    admin: admin::Admin,
    recent: RecentIds,
    /// Consumers this process subscribed, by durable name.
    consumers: Mutex<BTreeMap<String, Arc<ConsumerState>>>,
    stats: Arc<stats::Readers>,
}

impl KafkaTransport {
    /// Creates the events topic (retrying until `config.startup_timeout`, each retry logged)
    /// and the producer. A refused credential or certificate stops at once, naming the setting.
    pub async fn connect(config: KafkaConfig, namespace: &str) -> Result<KafkaTransport, BusError> {
        let context = Context::default();
        let namespace = sanitize(namespace);
        let topic = format!("{namespace}.events");
        let producer: FutureProducer<Context> = config
            .client()
            // Stored on every in-sync replica before the send is answered, at most once per
            // producer session and in order per partition, even across librdkafka's retries.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set(
                "message.timeout.ms",
                PUBLISH_TIMEOUT.as_millis().to_string(),
            )
            // Java clients' partitioner: the same key lands on the same partition from any client.
            .set("partitioner", "murmur2_random")
            .create_with_context(context.clone())
            .map_err(|e| BusError::Unavailable(format!("creating a Kafka producer: {e}")))?;
        // After the producer: its polling thread is what hands librdkafka's errors (a refused
        // password or certificate) to the context that start-up consults.
        let admin = admin::client(&config, context.clone())?;
        admin::ensure_topic(&admin, &context, &config, &topic).await?;
        admin::wait_for_leaders(&producer, &config, &topic).await?;
        let config = Arc::new(config);
        Ok(KafkaTransport {
            inner: Arc::new(Inner {
                stats: Arc::new(stats::Readers::new(config.clone(), context.clone())),
                config,
                context,
                namespace,
                topic,
                producer,
                admin,
                recent: RecentIds::default(),
                consumers: Mutex::default(),
            }),
        })
    }

    /// The topic every event goes to, e.g. `shop.events`.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The consumer group of durable consumer `name`.
    fn group(&self, name: &str) -> String {
        format!("{}.{}", self.inner.namespace, sanitize(name))
    }

    /// Deletes the namespace's topic and consumer groups (tests, teardown). Subscriptions must
    /// be gone: a group with members is not deleted.
    pub async fn delete_topic(&self) -> Result<(), BusError> {
        let groups = self.inner.stats.groups(&self.inner.namespace).await?;
        admin::delete(&self.inner.admin, &self.inner.topic, &groups).await
    }

    fn consumer_state(&self, name: &str) -> Arc<ConsumerState> {
        let mut consumers = self.inner.consumers.lock().expect("consumers lock");
        consumers.entry(name.to_owned()).or_default().clone()
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[async_trait]
impl Transport for KafkaTransport {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Hands every event to the producer before waiting for the first answer: one round trip
    /// per partition for the batch. Ids stored so far are remembered even when a later one
    /// fails, so the relay's retry does not store them twice.
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        let recent = &self.inner.recent;
        let fresh = recent.fresh(events);
        let mut sent = Vec::with_capacity(fresh.len());
        let mut failure = None;
        for event in &fresh {
            let body = serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(header("id", &event.id))
                .insert(header("type", &event.event_type))
                .insert(header("source", &event.source));
            let record = FutureRecord::to(&self.inner.topic)
                .key(event.aggregate_id.as_bytes())
                .payload(&body)
                .headers(headers);
            match self.inner.producer.send_result(record) {
                Ok(future) => sent.push((event.id.as_str(), future)),
                Err((e, _)) => {
                    // The local queue is full or the producer failed: stop, keep the order.
                    failure = Some(format!("publish not queued: {e}"));
                    break;
                }
            }
        }
        for (id, future) in sent {
            match future.await {
                Ok(Ok(_)) if failure.is_none() => recent.confirmed([id]),
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    failure.get_or_insert_with(|| format!("publish not stored: {e}"));
                }
                Err(_) => {
                    failure.get_or_insert_with(|| "the producer went away".into());
                }
            }
        }
        match failure {
            None => Ok(()),
            Some(why) => Err(BusError::Unavailable(why)),
        }
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(KafkaSubscription::new(
            self.inner.config.clone(),
            self.inner.context.clone(),
            self.inner.topic.clone(),
            self.group(&spec.name),
            spec.clone(),
            self.consumer_state(&spec.name),
        )))
    }

    async fn ready(&self) -> bool {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner
                .producer
                .client()
                .fetch_metadata(Some(&inner.topic), READY_TIMEOUT)
                .is_ok_and(|m| m.topics().iter().any(|t| t.error().is_none()))
        })
        .await
        .unwrap_or(false)
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        let local: Vec<(String, Arc<ConsumerState>)> = self
            .inner
            .consumers
            .lock()
            .expect("consumers lock")
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect();
        self.inner
            .stats
            .stream(&self.inner.namespace, &self.inner.topic, local)
            .await
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn live(&self, source: &str) -> Result<LiveEvents, BusError> {
        live::live(
            &self.inner.config,
            self.inner.context.clone(),
            &self.inner.namespace,
            &self.inner.topic,
            source,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
