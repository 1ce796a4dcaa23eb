//! One member of a consumer's group: a librdkafka consumer joined lazily (at the first
//! `next_batch`), client-side filtering by event type, in-memory delayed retries, and offset
//! commits of the lowest unsettled offset per partition (see [`super::tracker`]).
//!
//! The consumer runtime settles a whole batch before it asks for the next, and librdkafka runs
//! rebalance callbacks only inside that next poll. So when the group takes partitions away,
//! every delivery of them has been settled: the commit made in the revocation covers all of
//! them, and their next owner does not get them again (only nak'd retries still waiting here
//! are, from their offset on).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tracing::{debug, error, warn};

use super::config::{Context, KafkaConfig};
use super::tracker::{Position, Tracker};
use crate::broker::backoff;
use crate::{Acker, BusError, ConsumerSpec, Delivery, Envelope, Subscription};

/// How often an idle member wakes to retry a commit the broker did not take.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What one consumer (all its subscriptions in this process) is, for `stats` and attempts.
#[derive(Default)]
pub struct ConsumerState {
    pub delivered: AtomicU64,
    /// Deliveries handed out and not yet settled.
    pub held: AtomicU64,
    pub held_redeliveries: AtomicU64,
    /// Deliveries so far of each unsettled (partition, offset): Kafka counts none, so the
    /// attempt number lives here and survives a new subscription of the same consumer in this
    /// process (after a crash or in another process it starts again at 1).
    attempts: Mutex<HashMap<(i32, i64), u32>>,
    trackers: Mutex<Vec<Weak<Mutex<Tracker>>>>,
}

impl ConsumerState {
    /// Nak'd deliveries waiting in this process for their retry.
    pub fn waiting(&self) -> u64 {
        let mut trackers = self.trackers.lock().expect("trackers lock");
        trackers.retain(|t| t.strong_count() > 0);
        trackers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|t| t.lock().expect("tracker lock").waiting() as u64)
            .sum()
    }

    fn next_attempt(&self, partition: i32, offset: i64) -> u32 {
        let mut attempts = self.attempts.lock().expect("attempts lock");
        let n = attempts.entry((partition, offset)).or_default();
        *n = n.saturating_add(1);
        *n
    }
}

/// The group member's callbacks: commit what is settled before partitions go, start afresh
/// on those that come.
struct Member {
    base: Context,
    tracker: Arc<Mutex<Tracker>>,
    topic: String,
    name: String,
}

impl ClientContext for Member {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.base.log(level, fac, message)
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.base.error(error, reason)
    }
}

impl ConsumerContext for Member {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            let points = self
                .tracker
                .lock()
                .expect("tracker lock")
                .revoke(&partitions);
            debug!(consumer = %self.name, ?partitions, "partitions revoked");
            if !points.is_empty()
                && let Err(e) = consumer.commit(&offsets(&self.topic, &points), CommitMode::Sync)
            {
                // The next owner redelivers from the previous commit; the inbox absorbs it.
                warn!(consumer = %self.name, error = %e, "commit before a rebalance failed");
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            debug!(consumer = %self.name, ?partitions, "partitions assigned");
            self.tracker
                .lock()
                .expect("tracker lock")
                .assign(partitions);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, list: &TopicPartitionList) {
        if let Err(e) = result {
            debug!(consumer = %self.name, error = %e, "offset commit failed; retried on the next round");
            let points: Vec<(i32, i64)> = list
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect();
            self.tracker
                .lock()
                .expect("tracker lock")
                .uncommitted(&points);
        }
    }
}

fn offsets(topic: &str, points: &[(i32, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (p, offset) in points {
        // Only offsets we read ourselves, which are valid for the partition.
        let _ = list.add_partition_offset(topic, *p, Offset::Offset(*offset));
    }
    list
}

pub struct KafkaSubscription {
    config: Arc<KafkaConfig>,
    context: Context,
    topic: String,
    group: String,
    spec: ConsumerSpec,
    state: Arc<ConsumerState>,
    tracker: Arc<Mutex<Tracker>>,
    consumer: Option<StreamConsumer<Member>>,
    failures: u32,
}

impl KafkaSubscription {
    pub fn new(
        config: Arc<KafkaConfig>,
        context: Context,
        topic: String,
        group: String,
        spec: ConsumerSpec,
        state: Arc<ConsumerState>,
    ) -> KafkaSubscription {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        state
            .trackers
            .lock()
            .expect("trackers lock")
            .push(Arc::downgrade(&tracker));
        KafkaSubscription {
            config,
            context,
            topic,
            group,
            spec,
            state,
            tracker,
            consumer: None,
            failures: 0,
        }
    }

    fn join(&self) -> Result<StreamConsumer<Member>, BusError> {
        let session = self.config.session_timeout;
        // A member that does not come back for the next batch within `ack_wait` (a stuck
        // handler) leaves the group, and its unsettled deliveries go to another member.
        let max_poll = self.spec.ack_wait.max(session);
        let consumer: StreamConsumer<Member> = self
            .config
            .client()
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", millis(session))
            .set(
                "heartbeat.interval.ms",
                millis(self.config.heartbeat_interval),
            )
            .set("max.poll.interval.ms", millis(max_poll))
            .create_with_context(Member {
                base: self.context.clone(),
                tracker: self.tracker.clone(),
                topic: self.topic.clone(),
                name: self.spec.name.clone(),
            })
            .map_err(|e| BusError::Unavailable(format!("creating a Kafka consumer: {e}")))?;
        consumer
            .subscribe(&[&self.topic])
            .map_err(|e| BusError::Unavailable(format!("subscribing to {}: {e}", self.topic)))?;
        Ok(consumer)
    }

    /// Sends the commit points that moved; librdkafka answers in `commit_callback`.
    fn commit(&self) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let points = self.tracker.lock().expect("tracker lock").commits();
        if !points.is_empty()
            && let Err(e) = consumer.commit(&offsets(&self.topic, &points), CommitMode::Async)
        {
            debug!(consumer = %self.spec.name, error = %e, "offset commit not sent");
            self.tracker
                .lock()
                .expect("tracker lock")
                .uncommitted(&points);
        }
    }

    fn delivery(&self, at: Position, event: Envelope) -> Delivery {
        let attempt = self.state.next_attempt(at.partition, at.offset);
        self.state.delivered.fetch_add(1, Ordering::Relaxed);
        self.state.held.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            self.state.held_redeliveries.fetch_add(1, Ordering::Relaxed);
        }
        let acker = KafkaAcker {
            tracker: self.tracker.clone(),
            state: self.state.clone(),
            at,
            event: event.clone(),
            attempt,
        };
        Delivery::new(event, attempt, Box::new(acker))
    }

    /// Turns a message into a delivery, or settles it here: one of another type (every
    /// consumer reads the whole topic), or one that is not an event.
    fn accept(&self, message: &BorrowedMessage<'_>, out: &mut Vec<Delivery>) {
        let (partition, offset) = (message.partition(), message.offset());
        let event_type = message.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == "type")
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        });
        let wanted = event_type.is_none_or(|t| self.spec.wants(t));
        let event = if wanted {
            match serde_json::from_slice::<Envelope>(message.payload().unwrap_or_default()) {
                Ok(event) if self.spec.wants(&event.event_type) => Some(event),
                Ok(_) => None,
                Err(e) => {
                    error!(consumer = %self.spec.name, partition, offset, error = %e,
                        "message is not an event envelope; skipping it");
                    None
                }
            }
        } else {
            None
        };
        let mut tracker = self.tracker.lock().expect("tracker lock");
        if let Some(at) = tracker.read(partition, offset, event.is_some())
            && let Some(event) = event
        {
            drop(tracker);
            out.push(self.delivery(at, event));
        }
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let max = max.max(1);
        if self.consumer.is_none() {
            self.consumer = Some(self.join()?);
        }
        loop {
            self.commit();
            let due = self
                .tracker
                .lock()
                .expect("tracker lock")
                .take_due(Instant::now(), max);
            let mut out: Vec<Delivery> = due
                .into_iter()
                .map(|r| self.delivery(r.at, r.event))
                .collect();
            let wake = self
                .tracker
                .lock()
                .expect("tracker lock")
                .next_due()
                .map_or(IDLE_TICK, |at| {
                    at.saturating_duration_since(Instant::now()).min(IDLE_TICK)
                });
            let consumer = self.consumer.as_ref().expect("joined above");
            if out.is_empty() {
                let first = tokio::select! {
                    message = consumer.recv() => message,
                    _ = tokio::time::sleep(wake) => continue,
                };
                match first {
                    Ok(message) => self.accept(&message, &mut out),
                    Err(e) => {
                        // librdkafka reconnects by itself; this only paces the reports.
                        let delay = backoff(self.failures);
                        warn!(consumer = %self.spec.name, error = %e, ?delay, "Kafka consumer error");
                        self.failures = self.failures.saturating_add(1);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
            self.failures = 0;
            // Take only what is already here: a batch never waits for stragglers.
            while out.len() < max {
                match consumer.recv().now_or_never() {
                    Some(Ok(message)) => self.accept(&message, &mut out),
                    _ => break,
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // What is settled is committed before the member leaves (closing the consumer sends
        // the queued commit and leaves the group), so the next member starts right after it.
        self.commit();
    }
}

/// Settles one delivery in its member's tracker; the commit follows with the next batch.
struct KafkaAcker {
    tracker: Arc<Mutex<Tracker>>,
    state: Arc<ConsumerState>,
    at: Position,
    event: Envelope,
    attempt: u32,
}

impl Drop for KafkaAcker {
    fn drop(&mut self) {
        self.state.held.fetch_sub(1, Ordering::Relaxed);
        if self.attempt > 1 {
            self.state.held_redeliveries.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl Acker for KafkaAcker {
    async fn ack(&self) -> Result<(), BusError> {
        if self.tracker.lock().expect("tracker lock").settle(self.at) {
            self.state
                .attempts
                .lock()
                .expect("attempts lock")
                .remove(&(self.at.partition, self.at.offset));
        }
        Ok(())
    }

    /// Held in memory, not written anywhere: the offset stays uncommitted until the retry is
    /// settled, so a crash meanwhile redelivers it from the broker.
    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        let due = Instant::now() + delay;
        self.tracker
            .lock()
            .expect("tracker lock")
            .park(self.at, due, self.event.clone());
        Ok(())
    }
}
