//! Transactional outbox: events are written in the same transaction as the state change that
//! caused them, then a relay publishes them in order and marks them sent.

use std::sync::Arc;
use std::time::Duration;

use bazaar_db::{Db, Dialect, Tx, now_millis, sqlx};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{BusError, Envelope, Transport};

const BATCH: i64 = 200;
/// How often the relay looks even without a wake-up (events written by another replica, or
/// left behind by a crash between commit and publish).
const POLL: Duration = Duration::from_millis(500);

/// Records `event` in the outbox inside `tx`; it is published only if `tx` commits.
pub async fn enqueue(tx: &mut Tx, event: &Envelope) -> Result<(), BusError> {
    let body = serde_json::to_string(event).map_err(|e| BusError::Malformed(e.to_string()))?;
    sqlx::query("INSERT INTO outbox (id, event_type, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(body)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Events written but not yet published (exported as the outbox backlog metric).
pub async fn outbox_backlog(db: &Db) -> Result<i64, BusError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Publishes one service's outbox to the transport.
#[derive(Clone)]
pub struct OutboxRelay {
    service: &'static str,
    db: Db,
    transport: Arc<dyn Transport>,
    wake: Arc<Notify>,
}

impl OutboxRelay {
    pub fn new(service: &'static str, db: Db, transport: Arc<dyn Transport>) -> Self {
        OutboxRelay {
            service,
            db,
            transport,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Call after committing a transaction that enqueued events, so they go out at once.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `stop` fires, then publishes what is left (best effort) and returns.
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let waited = match self.flush().await {
                Ok(()) => {
                    failures = 0;
                    POLL
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(service = self.service, error = %e, "outbox relay failed; retrying");
                    POLL * failures.min(10)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(waited) => {}
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(service = self.service, error = %e, "final outbox flush failed; events stay queued");
        }
    }

    /// Publishes every unpublished event, oldest first, marking each as it goes.
    pub async fn flush(&self) -> Result<(), BusError> {
        loop {
            if self.publish_batch().await? < BATCH as usize {
                return Ok(());
            }
        }
    }

    async fn publish_batch(&self) -> Result<usize, BusError> {
        let mut tx = self.db.begin().await?;
        // One relay per service at a time keeps events in commit order across replicas.
        if self.db.dialect() == Dialect::Postgres {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7412)")
                .fetch_one(&mut *tx)
                .await?;
            if !locked {
                return Ok(0);
            }
        }
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, event_type, body FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let count = rows.len();
        for (seq, event_type, body) in rows {
            match serde_json::from_str::<Envelope>(&body) {
                Ok(event) => {
                    self.transport.publish(&event).await?;
                    metrics::counter!("bazaar_events_published_total",
                        "service" => self.service, "type" => event_type)
                    .increment(1);
                }
                // Cannot happen for rows written by `enqueue`; never let one block the rest.
                Err(e) => {
                    tracing::error!(service = self.service, seq, error = %e, "skipping unreadable outbox row")
                }
            }
            sqlx::query("UPDATE outbox SET published_at = $1 WHERE seq = $2")
                .bind(now_millis())
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(count)
    }
}
