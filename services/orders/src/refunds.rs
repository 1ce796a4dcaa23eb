//! Refunds that are never lost: a refund owed is recorded in the same transaction as the
//! change that makes it owed (a paid order cancelled, a charge that arrived after the order
//! stopped being payable), tried at once, and retried with backoff by a background task until
//! the provider confirms it. Admins see the ones still pending.

use std::time::Duration;

use bazaar_contracts::Principal;
use bazaar_contracts::orders::PendingRefund;
use bazaar_db::now_millis;
use bazaar_runtime::{ServiceResult, Task};
use tokio_util::sync::CancellationToken;

use crate::app::Orders;
use crate::store;

/// How long one attempt holds a refund against other replicas.
const LEASE_MS: i64 = 60_000;
/// Retry delays double from 1 s up to 10 minutes.
const MAX_BACKOFF_MS: i64 = 600_000;
/// How often due refunds are looked for.
const TICK: Duration = Duration::from_secs(1);

fn backoff_ms(attempts: i64) -> i64 {
    (1_000i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS)
}

impl Orders {
    /// Tries the recorded refund of `charge_id` now, unless another replica holds it. A
    /// failure is recorded for the retry task; it never fails the caller's request, whose
    /// state change is already committed.
    pub(crate) async fn attempt_refund(&self, order_id: &str, charge_id: &str) {
        if let Err(e) = self.try_refund(charge_id).await {
            tracing::warn!(order_id, charge_id, error = %e, "refund attempt not recorded; the retry task will try again");
        }
    }

    async fn try_refund(&self, charge_id: &str) -> ServiceResult<bool> {
        let now = now_millis();
        let claimed = {
            let mut conn = self.db.pool().acquire().await?;
            store::claim_refund(&mut conn, charge_id, now, now + LEASE_MS).await?
        };
        let Some(attempts) = claimed else {
            return Ok(false);
        };
        // Outside any transaction: a slow provider must not hold the database.
        let outcome = self.payments.refund(charge_id).await;
        let mut conn = self.db.pool().acquire().await?;
        match outcome {
            Ok(()) => {
                store::refund_done(&mut conn, charge_id, now_millis()).await?;
                tracing::info!(charge_id, "charge refunded");
                metrics::counter!("bazaar_refunds_total", "outcome" => "refunded").increment(1);
            }
            Err(e) => {
                let next = now_millis() + backoff_ms(attempts);
                store::refund_failed(&mut conn, charge_id, &e.to_string(), next).await?;
                tracing::warn!(charge_id, attempts = attempts + 1, error = %e, "refund failed; will retry");
                metrics::counter!("bazaar_refunds_total", "outcome" => "retry").increment(1);
            }
        }
        Ok(true)
    }

    /// Tries every refund that is due. Returns how many were attempted.
    pub async fn retry_due_refunds(&self) -> ServiceResult<usize> {
        let due = {
            let mut conn = self.db.pool().acquire().await?;
            store::due_refunds(&mut conn, now_millis(), 100).await?
        };
        let mut attempted = 0;
        for charge_id in due {
            attempted += usize::from(self.try_refund(&charge_id).await?);
        }
        Ok(attempted)
    }

    /// Refunds the provider has not confirmed yet (admins only), oldest first.
    pub async fn pending_refunds(
        &self,
        principal: &Principal,
    ) -> ServiceResult<Vec<PendingRefund>> {
        principal.require_admin()?;
        let mut conn = self.db.pool().acquire().await?;
        let pending = store::pending_refunds(&mut conn, 100).await?;
        Ok(pending
            .into_iter()
            .map(|r| PendingRefund {
                order_id: r.order_id,
                charge_id: r.charge_id,
                amount_cents: r.amount_cents,
                attempts: r.attempts,
                last_error: r.last_error,
                next_attempt_at: r.next_attempt_at,
                created_at: r.created_at,
            })
            .collect())
    }
}

/// The retry task: every second, the refunds that are due.
pub fn task(orders: Orders) -> Task {
    Box::new(move |stop: CancellationToken| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                }
                if let Err(e) = orders.retry_due_refunds().await {
                    tracing::warn!(error = %e, "refund retry pass failed");
                }
            }
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(super::backoff_ms(0), 1_000);
        assert_eq!(super::backoff_ms(3), 8_000);
        assert_eq!(super::backoff_ms(60), super::MAX_BACKOFF_MS);
    }
}
