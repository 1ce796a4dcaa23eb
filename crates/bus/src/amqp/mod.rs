//! The RabbitMQ transport (AMQP 0-9-1): events go to one durable topic exchange per namespace
//! as persistent messages under publisher confirms; each consumer has one durable quorum queue
//! bound to its event types, consumed with manual acks; a nak parks the delivery in a delay
//! queue that dead-letters it back when due.
//!
//! What differs from JetStream, and how the contract still holds:
//! - RabbitMQ keeps no log: a consumer's queue collects events from its first declaration on
//!   (services declare their consumers at start-up, before they publish), and `messages` counts
//!   the distinct events this process published.
//! - No broker-side deduplication: this process skips ids it had confirmed within two minutes
//!   ([`recent`]); other repeats are delivered and the inbox absorbs them.
//! - AMQP reports only ready messages, so a consumer's in-flight figures (`ack_pending`,
//!   `delivered`, `redelivered`) are this process's, and `stats` lists the consumers this
//!   process subscribed.
//! - A delivery that is never settled is only handed out again when its channel closes (the
//!   subscriber crashed or stopped): RabbitMQ 3.10 has no per-consumer `ack_wait`.

mod link;
mod live;
pub(crate) mod recent;
mod subscription;
mod topology;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use tracing::warn;

pub use link::AmqpConfig;
use link::{Link, unavailable};
use recent::RecentIds;
use subscription::{AmqpSubscription, ConsumerState};
use topology::Names;

use crate::broker::{backoff, sanitize};
use crate::{
    BusError, ConsumerSpec, ConsumerStats, Envelope, LiveEvents, StreamStats, Subscription,
    Transport,
};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(2);
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes to and consumes from RabbitMQ under one namespace (a name prefix; give each
/// deployment its own vhost for stronger isolation).
#[derive(Clone)]
pub struct AmqpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    names: Names,
    recent: RecentIds,
    /// Consumers this process subscribed, by durable name.
    consumers: Mutex<BTreeMap<String, Arc<ConsumerState>>>,
}

impl AmqpTransport {
    /// Connects and declares the exchange, retrying with capped backoff until the broker
    /// answers. Never gives up: wrap it in a timeout or use [`Self::connect_with_timeout`].
    pub async fn connect(config: AmqpConfig, namespace: &str) -> Result<AmqpTransport, BusError> {
        // A CA file that cannot be read will not become readable by waiting: say so now.
        if let Some(path) = &config.ca_file {
            std::fs::metadata(path).map_err(|e| {
                BusError::Unavailable(format!(
                    "cannot read the AMQP CA file {}: {e}",
                    path.display()
                ))
            })?;
        }
        let transport = AmqpTransport {
            inner: Arc::new(Inner {
                link: Arc::new(Link::new(config)),
                names: Names::new(namespace),
                recent: RecentIds::default(),
                consumers: Mutex::default(),
            }),
        };
        let mut attempt = 0u32;
        loop {
            match transport.provision().await {
                Ok(()) => return Ok(transport),
                Err(e) => {
                    let delay = backoff(attempt);
                    warn!(url = %transport.inner.link.url(), attempt = attempt + 1, ?delay, error = %e,
                        "RabbitMQ not reachable yet, retrying");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// [`Self::connect`], giving up with `Unavailable` after `timeout`.
    pub async fn connect_with_timeout(
        config: AmqpConfig,
        namespace: &str,
        timeout: Duration,
    ) -> Result<AmqpTransport, BusError> {
        let url = link::redact(&config.url);
        tokio::time::timeout(timeout, Self::connect(config, namespace))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "RabbitMQ at {url} not reachable within {timeout:?}"
                ))
            })?
    }

    async fn provision(&self) -> Result<(), BusError> {
        let channel = self.inner.link.channel().await?;
        let declared = topology::declare_exchange(&channel, &self.inner.names).await;
        let _ = channel.close(200, "provisioned".into()).await;
        declared
    }

    /// The exchange every event goes to, e.g. `shop.events`.
    pub fn exchange_name(&self) -> String {
        self.inner.names.exchange()
    }

    fn consumer_state(&self, name: &str) -> Arc<ConsumerState> {
        let mut consumers = self.inner.consumers.lock().expect("consumers lock");
        consumers
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(ConsumerState::new(self.inner.names.queue(name))))
            .clone()
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Sends every publish before waiting for the first confirm: one round trip for the batch.
    /// Returns once the broker confirmed each (stored on every queue bound to it).
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        let recent = &self.inner.recent;
        let fresh = recent.fresh(events);
        if fresh.is_empty() {
            return Ok(());
        }
        let exchange = self.inner.names.exchange();
        let stored = async {
            let channel = self.inner.link.publisher().await?;
            let mut confirms = Vec::with_capacity(fresh.len());
            for event in &fresh {
                let body =
                    serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
                let properties = BasicProperties::default()
                    .with_delivery_mode(2) // persistent
                    .with_message_id(event.id.as_str().into())
                    .with_content_type("application/json".into())
                    .with_type(event.event_type.as_str().into());
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        Names::routing_key(&event.source, &event.event_type).into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| unavailable("publish", e))?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                let confirmation = confirm
                    .await
                    .map_err(|e| unavailable("publish confirm", e))?;
                if confirmation.is_nack() {
                    return Err(BusError::Unavailable(
                        "the broker refused a publish (nack)".into(),
                    ));
                }
            }
            Ok(())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, stored)
            .await
            .map_err(|_| {
                BusError::Unavailable(format!("publish not confirmed within {PUBLISH_TIMEOUT:?}"))
            })??;
        recent.confirmed(fresh.iter().map(|e| e.id.as_str()));
        Ok(())
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        let state = self.consumer_state(&spec.name);
        let subscription = AmqpSubscription::new(
            self.inner.link.clone(),
            self.inner.names.clone(),
            spec.clone(),
            state,
        )
        .await?;
        Ok(Box::new(subscription))
    }

    async fn ready(&self) -> bool {
        matches!(
            tokio::time::timeout(READY_TIMEOUT, self.inner.link.publisher()).await,
            Ok(Ok(_))
        )
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        let consumers: Vec<(String, Arc<ConsumerState>)> = self
            .inner
            .consumers
            .lock()
            .expect("consumers lock")
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect();
        let fetch = async {
            let mut channel = self.inner.link.channel().await?;
            let mut figures = Vec::with_capacity(consumers.len());
            for (name, state) in consumers {
                let delay_queues: Vec<String> = state
                    .delay_queues
                    .lock()
                    .expect("delay queues lock")
                    .iter()
                    .cloned()
                    .collect();
                let mut waiting = 0;
                for queue in std::iter::once(&state.queue).chain(&delay_queues) {
                    match topology::ready_count(&channel, queue).await? {
                        Some(n) => waiting += n,
                        // A passive declare of a missing queue closed the channel.
                        None => channel = self.inner.link.channel().await?,
                    }
                }
                let held = state.held.load(Ordering::Relaxed);
                figures.push(ConsumerStats {
                    // Consumer names as the broker knows them (the queue's last word), like NATS durable names.
                    name: sanitize(&name),
                    delivered: state.delivered.load(Ordering::Relaxed),
                    pending: waiting + held,
                    ack_pending: held,
                    redelivered: state.held_redeliveries.load(Ordering::Relaxed),
                });
            }
            let _ = channel.close(200, "stats".into()).await;
            Ok::<_, BusError>(figures)
        };
        let consumers = tokio::time::timeout(STATS_TIMEOUT, fetch)
            .await
            .map_err(|_| BusError::Unavailable("stats timed out".into()))??;
        Ok(StreamStats {
            name: self.inner.names.exchange(),
            messages: self.inner.recent.total(),
            consumers,
        })
    }

    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    async fn live(&self, source: &str) -> Result<LiveEvents, BusError> {
        live::live(self.inner.link.clone(), self.inner.names.clone(), source).await
    }
}

#[cfg(test)]
mod tests;
