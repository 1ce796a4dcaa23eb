//! The consumer runtime: applies each delivered event once through the inbox, retries technical
//! failures with backoff, and moves events that keep failing to the dead-letter table.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{Db, Tx, new_id, now_millis, sqlx};
use tokio_util::sync::CancellationToken;

use crate::{BusError, ConsumerSpec, Delivery, Envelope, OutboxRelay, Transport};

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
    /// Event types this consumer applies; all others are acknowledged untouched.
    fn handles(&self, event_type: &str) -> bool;

    /// Applies `event` inside `tx`, the transaction that also records it in the inbox: the
    /// effect and the record commit together or not at all.
    async fn handle(&self, tx: &mut Tx, event: &Envelope) -> Result<(), HandlerError>;
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

/// One durable consumer of one service.
#[derive(Clone)]
pub struct Consumer {
    pub db: Db,
    pub transport: Arc<dyn Transport>,
    pub spec: ConsumerSpec,
    pub handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    /// The service's relay, woken when a handler enqueued follow-up events.
    pub relay: Option<OutboxRelay>,
}

enum Outcome {
    Applied,
    Duplicate,
}

impl Consumer {
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
                    next = subscription.next() => next,
                };
                match next {
                    Ok(Some(delivery)) => self.process(delivery).await,
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
        let event_type = delivery.event.event_type.clone();
        let consumer = self.spec.name.clone();
        if !self.handler.handles(&event_type) {
            settle(delivery.ack().await, &consumer);
            return;
        }
        match self.apply(&delivery.event, None).await {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Applied) {
                    metrics::counter!("bazaar_events_consumed_total", "consumer" => consumer.clone(), "type" => event_type)
                        .increment(1);
                }
                settle(delivery.ack().await, &consumer);
            }
            Err(err) => {
                metrics::counter!("bazaar_events_failed_total", "consumer" => consumer.clone(), "type" => event_type)
                    .increment(1);
                let give_up = matches!(err, HandlerError::Reject(_))
                    || delivery.attempt >= self.policy.max_attempts;
                tracing::warn!(consumer = %consumer, event_id = %delivery.event.id, attempt = delivery.attempt,
                    error = %err, give_up, "event handler failed");
                if give_up {
                    match self.dead_letter(&delivery, &err).await {
                        Ok(()) => settle(delivery.ack().await, &consumer),
                        Err(e) => {
                            tracing::error!(consumer = %consumer, error = %e, "cannot store dead letter");
                            let delay = self.policy.max_delay;
                            settle(delivery.nak(delay).await, &consumer);
                        }
                    }
                } else {
                    let delay = self.policy.delay(delivery.attempt);
                    settle(delivery.nak(delay).await, &consumer);
                }
            }
        }
    }

    /// Runs the handler and the inbox record in one transaction; `also` runs in it too.
    async fn apply(
        &self,
        event: &Envelope,
        dead_letter_id: Option<&str>,
    ) -> Result<Outcome, HandlerError> {
        let mut tx = self.db.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
             ON CONFLICT (consumer, event_id) DO NOTHING",
        )
        .bind(&self.spec.name)
        .bind(&event.id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            self.handler.handle(&mut tx, event).await?;
        }
        if let Some(id) = dead_letter_id {
            sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if let Some(relay) = &self.relay {
            relay.wake();
        }
        Ok(if fresh {
            Outcome::Applied
        } else {
            Outcome::Duplicate
        })
    }

    async fn dead_letter(&self, delivery: &Delivery, err: &HandlerError) -> Result<(), BusError> {
        let body = serde_json::to_string(&delivery.event)
            .map_err(|e| BusError::Malformed(e.to_string()))?;
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
        .execute(self.db.pool())
        .await?;
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
                .fetch_optional(self.db.pool())
                .await?;
        let Some(body) = body else { return Ok(false) };
        let event: Envelope = serde_json::from_str(&body)?;
        self.apply(&event, Some(dead_letter_id)).await?;
        Ok(true)
    }
}

fn settle(result: Result<(), BusError>, consumer: &str) {
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
