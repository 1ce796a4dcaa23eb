//! Dead letters: events a consumer gave up on, stored for inspection, and redriven through
//! the consumer again on an admin's request.

use bazaar_db::{Db, new_id, now_millis, sqlx};

use super::{Consumer, HandlerError};
use crate::{BusError, Delivery, Envelope};

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

impl Consumer {
    pub(super) async fn dead_letter(
        &self,
        delivery: &Delivery,
        err: &HandlerError,
    ) -> Result<(), BusError> {
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
