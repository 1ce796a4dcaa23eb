//! A subscription to the log: waits for events of its types (or a redelivery that falls due),
//! taking those the writer hands it or claiming them itself, and settles deliveries: acks
//! delete them from the pending set, naks push their due time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{now_millis, sqlx};

use super::Inner;
use super::sql::seq_list;
use super::wake::{Waiter, Woken};
use crate::transport::{Acker, ConsumerSpec, Delivery, Subscription};
use crate::{BusError, Envelope};

/// Upper bound on how long an idle subscriber sleeps before looking again.
const IDLE_POLL: Duration = Duration::from_millis(500);

pub(super) struct EmbeddedSubscription {
    pub(super) inner: Arc<Inner>,
    /// Woken by publishes of this consumer's types, and handed some of them.
    pub(super) waiter: Arc<Waiter>,
    pub(super) spec: ConsumerSpec,
}

impl EmbeddedSubscription {
    /// The delivery of `event`, at `seq` in the log, for the `attempt`th time.
    pub(super) fn delivery(&self, seq: i64, attempt: u32, event: Envelope) -> Delivery {
        let acker = EmbeddedAcker::new(self.inner.clone(), self.spec.name.clone(), seq);
        let mut delivery = Delivery::new(event, attempt, Box::new(acker));
        delivery.position = seq;
        delivery
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        let room = max.max(1);
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.waiter.wake.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            match self.waiter.woken() {
                Woken::Take(events) => {
                    let deliveries = events
                        .into_iter()
                        .map(|(seq, event)| self.delivery(seq, 1, event))
                        .collect();
                    return Ok(Some(deliveries));
                }
                // The writer is committing events for us and wakes us when done.
                Woken::Wait => {
                    published.await;
                    continue;
                }
                Woken::Claim => {}
            }
            let wait = match self.claim(room).await? {
                Ok(deliveries) => return Ok(Some(deliveries)),
                Err(wait) => wait.unwrap_or(IDLE_POLL).min(IDLE_POLL),
            };
            if wait.is_zero() {
                continue;
            }
            self.waiter.park(room);
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
