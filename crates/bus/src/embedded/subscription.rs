//! A subscription to the log: waits for events of its types (or a redelivery that falls due),
//! and settles deliveries: acks delete them from the pending set, naks push their due time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{now_millis, sqlx};
use tokio::sync::Notify;

use super::Inner;
use super::sql::seq_list;
use crate::BusError;
use crate::transport::{Acker, ConsumerSpec, Delivery, Subscription};

/// Upper bound on how long an idle subscriber sleeps before looking again.
const IDLE_POLL: Duration = Duration::from_millis(500);

pub(super) struct EmbeddedSubscription {
    pub(super) inner: Arc<Inner>,
    /// Woken by publishes of this consumer's types.
    pub(super) wake: Arc<Notify>,
    pub(super) spec: ConsumerSpec,
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.wake.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let wait = match self.claim(max.max(1)).await? {
                Ok(deliveries) => return Ok(Some(deliveries)),
                Err(wait) => wait.unwrap_or(IDLE_POLL).min(IDLE_POLL),
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = &mut published => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One statement for the whole batch.
    async fn ack_batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let delete = format!(
            "DELETE FROM bus_pending WHERE consumer = $1 AND seq IN ({})",
            seq_list(deliveries.iter().map(|d| d.position))
        );
        // In a transaction, so it waits its turn among the log's writers (see `Tx`).
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .persistent(false)
            .bind(&self.spec.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) struct EmbeddedAcker {
    inner: Arc<Inner>,
    consumer: String,
    seq: i64,
}

impl EmbeddedAcker {
    pub(super) fn new(inner: Arc<Inner>, consumer: String, seq: i64) -> Self {
        EmbeddedAcker {
            inner,
            consumer,
            seq,
        }
    }
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query("DELETE FROM bus_pending WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query("UPDATE bus_pending SET due_at = $3 WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .bind(now_millis() + delay.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Wake idle subscribers so a zero-delay nak is picked up at once.
        self.inner.waiters.wake(None);
        Ok(())
    }
}
