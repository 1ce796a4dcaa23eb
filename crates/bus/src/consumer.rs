//! The consumer runtime: applies each delivered event once through the inbox, retries technical
//! failures with backoff, and moves events that keep failing to the dead-letter table.
//!
//! Deliveries come in batches. A batch is split into lanes by aggregate (events of one order
//! stay in sequence in one lane; lanes run concurrently on PostgreSQL), and each lane is one
//! transaction with its inbox rows (group commit), each event under a savepoint so a failing
//! one is retried or dead-lettered alone while its siblings commit.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{Db, Dialect, new_id, now_millis, sqlx};
use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use crate::trace;
use crate::{BusError, ConsumerSpec, Delivery, Envelope, EventTx, Outbox, Subscription, Transport};

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (database busy, dependency down): retried with backoff.
    #[error("{0}")]
    Retry(String),
    /// Will never work (malformed payload): dead-lettered at once.
    #[error("{0}")]
    Reject(String),
}

impl From<bazaar_db::DbError> for HandlerError {
    fn from(e: bazaar_db::DbError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<BusError> for HandlerError {
    fn from(e: BusError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::Reject(format!("payload does not match its contract: {e}"))
    }
}

/// What one consumer does with the events it cares about.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Event types this consumer applies; the broker hands it no others.
    fn event_types(&self) -> &[&'static str];

    /// Runs first in each transaction that applies a batch of events, before any of them: the
    /// place to take row locks in one fixed order (so concurrent batches cannot deadlock) or
    /// to load what the whole batch needs once.
    async fn prepare(&self, _tx: &mut EventTx, _events: &[&Envelope]) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Applies `event` inside `tx`, the transaction that also records it in the inbox: the
    /// effect and the record commit together or not at all.
    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError>;
}

/// Bounded redelivery with exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        (self.base_delay * factor).min(self.max_delay)
    }
}

/// An event a consumer gave up on, kept for inspection and redrive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub consumer: String,
    pub event_id: String,
    pub event_type: String,
    pub event: Envelope,
    pub error: String,
    pub attempts: u32,
    pub failed_at: i64,
}

/// Deliveries fetched per broker round trip and applied together.
const BATCH: usize = 256;
/// Lanes per consumer on PostgreSQL: events of different aggregates apply in this many
/// concurrent transactions. SQLite has one writer, so there a batch is one transaction.
const LANES: usize = 4;

/// One durable consumer of one service.
#[derive(Clone)]
pub struct Consumer {
    outbox: Outbox,
    transport: Arc<dyn Transport>,
    pub spec: ConsumerSpec,
    handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    lanes: usize,
}

enum Outcome {
    Applied,
    Duplicate,
}

/// How a delivery is settled once its batch is done.
enum Verdict {
    Ack,
    Nak(Duration),
}

impl Consumer {
    /// The durable consumer `name` of the events `handler` applies, writing through `outbox`.
    pub fn new(
        name: &str,
        outbox: &Outbox,
        transport: Arc<dyn Transport>,
        handler: Arc<dyn Handler>,
    ) -> Self {
        let lanes = match outbox.db().dialect() {
            Dialect::Sqlite => 1,
            Dialect::Postgres => LANES,
        };
        Consumer {
            spec: ConsumerSpec::new(name).for_types(handler.event_types().iter().copied()),
            outbox: outbox.for_pipeline(),
            transport,
            handler,
            policy: RetryPolicy::default(),
            lanes,
        }
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Applies every batch in one transaction: for handlers whose events of different
    /// aggregates write the same rows (shared counters), where concurrent lanes would only
    /// wait on each other.
    pub fn in_one_lane(mut self) -> Self {
        self.lanes = 1;
        self
    }

    /// The service database this consumer writes to.
    pub fn db(&self) -> &Db {
        self.outbox.db()
    }

    /// Consumes until `stop` fires. The subscription is re-opened whenever it fails.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !stop.is_cancelled() {
            let mut subscription = tokio::select! {
                _ = stop.cancelled() => return,
                s = self.transport.subscribe(&self.spec) => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(consumer = %self.spec.name, error = %e, "cannot subscribe; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = subscription.next_batch(BATCH) => next,
                };
                match next {
                    Ok(Some(deliveries)) => {
                        let settled = self.apply_batch(deliveries).await;
                        self.settle(subscription.as_mut(), settled).await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(consumer = %self.spec.name, error = %e, "subscription failed; re-opening");
                        tokio::time::sleep(backoff).await;
                        break;
                    }
                }
            }
        }
    }

    /// Applies one delivery and settles it: ack on success or duplicate, nak with backoff on a
    /// technical failure, dead letter after the last attempt or on a rejected event.
    pub async fn process(&self, delivery: Delivery) {
        for (delivery, verdict) in self.apply_batch(vec![delivery]).await {
            let result = match verdict {
                Verdict::Ack => delivery.ack().await,
                Verdict::Nak(delay) => delivery.nak(delay).await,
            };
            settle_result(result, &self.spec.name);
        }
    }

    /// Applies a batch: events of one aggregate in order in one lane, lanes concurrently.
    async fn apply_batch(&self, deliveries: Vec<Delivery>) -> Vec<(Delivery, Verdict)> {
        let mut lanes: Vec<Vec<Delivery>> = (0..self.lanes).map(|_| Vec::new()).collect();
        let mut settled = Vec::new();
        for delivery in deliveries {
            if self.spec.wants(&delivery.event.event_type) {
                lanes[lane_of(&delivery.event.aggregate_id, self.lanes)].push(delivery);
            } else {
                settled.push((delivery, Verdict::Ack));
            }
        }
        let lanes = lanes.into_iter().filter(|lane| !lane.is_empty());
        for lane in futures::future::join_all(lanes.map(|lane| self.apply_lane(lane))).await {
            settled.extend(lane);
        }
        settled
    }

    /// Applies one lane's events in one transaction, each under a savepoint so a failing event
    /// leaves its siblings' effects; when the transaction itself fails (commit, savepoint),
    /// applies them again one transaction each, which the inbox makes safe.
    async fn apply_lane(&self, lane: Vec<Delivery>) -> Vec<(Delivery, Verdict)> {
        let events: Vec<&Envelope> = lane.iter().map(|d| &d.event).collect();
        let results = match self.apply_together(&events).await {
            Ok(results) => results,
            Err(e) => {
                tracing::debug!(consumer = %self.spec.name, error = %e, events = events.len(),
                    "batch transaction failed; applying its events one by one");
                let mut results = Vec::with_capacity(events.len());
                for event in &events {
                    results.push(self.apply(event, None).await);
                }
                results
            }
        };
        let mut settled = Vec::with_capacity(lane.len());
        for (delivery, result) in lane.into_iter().zip(results) {
            let verdict = self.verdict(&delivery, result).await;
            settled.push((delivery, verdict));
        }
        settled
    }

    async fn apply_together(
        &self,
        events: &[&Envelope],
    ) -> Result<Vec<Result<Outcome, HandlerError>>, HandlerError> {
        if let [event] = events {
            return Ok(vec![self.apply(event, None).await]);
        }
        let mut tx = self.outbox.begin().await?;
        self.handler.prepare(&mut tx, events).await?;
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            execute(&mut tx, "SAVEPOINT event").await?;
            let result = self.record_and_handle(&mut tx, event).await;
            if result.is_err() {
                execute(&mut tx, "ROLLBACK TO SAVEPOINT event").await?;
            }
            execute(&mut tx, "RELEASE SAVEPOINT event").await?;
            results.push(result);
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Settles the outcome of applying `delivery`: what to tell the broker.
    async fn verdict(&self, delivery: &Delivery, result: Result<Outcome, HandlerError>) -> Verdict {
        let consumer = &self.spec.name;
        let event_type = delivery.event.event_type.clone();
        let err = match result {
            Ok(Outcome::Applied) => {
                metrics::counter!("bazaar_events_consumed_total", "consumer" => consumer.clone(), "type" => event_type)
                    .increment(1);
                return Verdict::Ack;
            }
            Ok(Outcome::Duplicate) => return Verdict::Ack,
            Err(err) => err,
        };
        metrics::counter!("bazaar_events_failed_total", "consumer" => consumer.clone(), "type" => event_type)
            .increment(1);
        let give_up =
            matches!(err, HandlerError::Reject(_)) || delivery.attempt >= self.policy.max_attempts;
        tracing::warn!(consumer = %consumer, event_id = %delivery.event.id, attempt = delivery.attempt,
            error = %err, give_up, "event handler failed");
        if !give_up {
            return Verdict::Nak(self.policy.delay(delivery.attempt));
        }
        match self.dead_letter(delivery, &err).await {
            Ok(()) => Verdict::Ack,
            Err(e) => {
                tracing::error!(consumer = %consumer, error = %e, "cannot store dead letter");
                Verdict::Nak(self.policy.max_delay)
            }
        }
    }

    async fn settle(&self, subscription: &mut dyn Subscription, settled: Vec<(Delivery, Verdict)>) {
        let mut acks = Vec::with_capacity(settled.len());
        let mut naks = Vec::new();
        for (delivery, verdict) in settled {
            match verdict {
                Verdict::Ack => acks.push(delivery),
                Verdict::Nak(delay) => naks.push(delivery.nak(delay)),
            }
        }
        settle_result(subscription.ack_batch(acks).await, &self.spec.name);
        for result in futures::future::join_all(naks).await {
            settle_result(result, &self.spec.name);
        }
    }

    /// Runs the handler and the inbox record in one transaction of their own; a redriven
    /// dead letter leaves the dead-letter table in it too.
    async fn apply(
        &self,
        event: &Envelope,
        dead_letter_id: Option<&str>,
    ) -> Result<Outcome, HandlerError> {
        let mut tx = self.outbox.begin().await?;
        self.handler.prepare(&mut tx, &[event]).await?;
        let outcome = self.record_and_handle(&mut tx, event).await?;
        if let Some(id) = dead_letter_id {
            sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records `event` in the inbox and, the first time, applies it.
    async fn record_and_handle(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let span = trace::process_span(&self.spec.name, event);
        let result = self
            .record_and_handle_untraced(tx, event)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            trace::fail(&span);
        }
        result
    }

    async fn record_and_handle_untraced(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let fresh = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
             ON CONFLICT (consumer, event_id) DO NOTHING",
        )
        .bind(&self.spec.name)
        .bind(&event.id)
        .bind(now_millis())
        .execute(&mut ***tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(tx, event).await?;
        Ok(Outcome::Applied)
    }

    async fn dead_letter(&self, delivery: &Delivery, err: &HandlerError) -> Result<(), BusError> {
        let body = serde_json::to_string(&delivery.event)
            .map_err(|e| BusError::Malformed(e.to_string()))?;
        let mut tx = self.db().begin().await?;
        sqlx::query(
            "INSERT INTO dead_letters (id, consumer, event_id, event_type, body, error, attempts, failed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (consumer, event_id) DO UPDATE SET error = $6, attempts = $7, failed_at = $8",
        )
        .bind(new_id())
        .bind(&self.spec.name)
        .bind(&delivery.event.id)
        .bind(&delivery.event.event_type)
        .bind(body)
        .bind(err.to_string())
        .bind(delivery.attempt as i64)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::counter!("bazaar_events_dead_lettered_total", "consumer" => self.spec.name.clone(),
            "type" => delivery.event.event_type.clone())
        .increment(1);
        Ok(())
    }

    /// Applies a dead-lettered event again; on success it leaves the dead-letter table.
    pub async fn redrive(&self, dead_letter_id: &str) -> Result<bool, HandlerError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM dead_letters WHERE id = $1 AND consumer = $2")
                .bind(dead_letter_id)
                .bind(&self.spec.name)
                .fetch_optional(self.db().pool())
                .await?;
        let Some(body) = body else { return Ok(false) };
        let event: Envelope = serde_json::from_str(&body)?;
        self.apply(&event, Some(dead_letter_id)).await?;
        Ok(true)
    }
}

/// Runs one statement of the consumer's own (savepoints) in `tx`.
async fn execute(tx: &mut EventTx, statement: &'static str) -> Result<(), HandlerError> {
    sqlx::query(statement).execute(&mut ***tx).await?;
    Ok(())
}

/// Which of `lanes` the events of `aggregate_id` go to: always the same one.
fn lane_of(aggregate_id: &str, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    aggregate_id.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

fn settle_result(result: Result<(), BusError>, consumer: &str) {
    // A lost ack only means a redelivery, which the inbox absorbs.
    if let Err(e) = result {
        tracing::warn!(consumer, error = %e, "could not settle delivery; it will be redelivered");
    }
}

/// id, consumer, event id, event type, body, error, attempts, failed at.
type DeadLetterRow = (String, String, String, String, String, String, i64, i64);

/// Dead letters stored in `db`, newest first.
pub async fn dead_letters(db: &Db, limit: i64) -> Result<Vec<DeadLetter>, BusError> {
    let rows: Vec<DeadLetterRow> = sqlx::query_as(
        "SELECT id, consumer, event_id, event_type, body, error, attempts, failed_at
         FROM dead_letters ORDER BY failed_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(
            |(id, consumer, event_id, event_type, body, error, attempts, failed_at)| {
                let event =
                    serde_json::from_str(&body).map_err(|e| BusError::Malformed(e.to_string()))?;
                Ok(DeadLetter {
                    id,
                    consumer,
                    event_id,
                    event_type,
                    event,
                    error,
                    attempts: attempts as u32,
                    failed_at,
                })
            },
        )
        .collect()
}

/// Redrives dead letter `id` through whichever of `consumers` owns it.
pub async fn redrive(consumers: &[Consumer], id: &str) -> Result<bool, HandlerError> {
    for consumer in consumers {
        if consumer.redrive(id).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
