//! Moving orders after placement: cancelling, paying, shipping, and cancelling orders left
//! unpaid. Every move goes through `transitions::apply`.

use std::time::Duration;

use bazaar_contracts::orders::{Order, OrderStatus, PayOrderRequest, SetOrderStatusRequest};
use bazaar_contracts::{ApiError, Principal, Role};
use bazaar_db::now_millis;
use bazaar_runtime::ServiceResult;

use crate::app::Orders;
use crate::domain::check_transition;
use crate::payments::{Charge, PaymentError};
use crate::queries::not_found;
use crate::store;
use crate::transitions;

/// How often a move is retried when another writer keeps moving the order first. Each retry
/// re-reads, so the answer reflects the order's newest status.
const ATTEMPTS: usize = 3;

fn busy() -> ApiError {
    ApiError::conflict("the order is changing right now; try again")
}

impl Orders {
    /// Cancels an order for its owner or an admin. A paid order's charge is refunded; the
    /// catalogue releases the stock when it sees the `CANCELLED` event.
    pub async fn cancel_order(&self, principal: &Principal, id: &str) -> ServiceResult<Order> {
        let caller = principal.require_user()?;
        for _ in 0..ATTEMPTS {
            let mut tx = self.outbox.begin().await?;
            let Some(stored) = store::order_by_id(&mut tx, id).await? else {
                return Err(not_found().into());
            };
            let by_owner = stored.order.user_id == caller.id;
            if !by_owner && caller.role != Role::Admin {
                return Err(not_found().into());
            }
            check_transition(stored.order.status, OrderStatus::Cancelled, "id")?;
            let reason = if by_owner {
                "cancelled by customer"
            } else {
                "cancelled by admin"
            };
            let Some(order) = transitions::apply(
                &mut tx,
                &stored.order,
                OrderStatus::Cancelled,
                Some(reason),
                None,
            )
            .await?
            else {
                tx.rollback().await?;
                continue;
            };
            // The refund is owed from the moment the cancellation commits: recorded with it.
            let refund = stored
                .charge_id
                .as_deref()
                .filter(|_| stored.order.status == OrderStatus::Paid);
            if let Some(charge_id) = refund {
                store::insert_refund(
                    &mut tx,
                    charge_id,
                    &order.id,
                    order.total_cents,
                    now_millis(),
                )
                .await?;
            }
            tx.commit().await?;
            if let Some(charge_id) = refund {
                self.attempt_refund(&order.id, charge_id).await;
            }
            return Ok(order);
        }
        Err(busy().into())
    }

    /// Ships or delivers an order (admins only), following the state machine.
    pub async fn set_order_status(
        &self,
        principal: &Principal,
        req: &SetOrderStatusRequest,
    ) -> ServiceResult<Order> {
        principal.require_admin()?;
        if !matches!(req.status, OrderStatus::Shipped | OrderStatus::Delivered) {
            let message = format!(
                "status: only SHIPPED or DELIVERED can be set, not {}",
                req.status.as_str()
            );
            return Err(ApiError::bad_input("status", message).into());
        }
        for _ in 0..ATTEMPTS {
            let mut tx = self.outbox.begin().await?;
            let Some(stored) = store::order_by_id(&mut tx, &req.id).await? else {
                return Err(not_found().into());
            };
            check_transition(stored.order.status, req.status, "status")?;
            if let Some(order) =
                transitions::apply(&mut tx, &stored.order, req.status, None, None).await?
            {
                tx.commit().await?;
                return Ok(order);
            }
            tx.rollback().await?;
        }
        Err(busy().into())
    }

    /// Pays a confirmed order with a payment token. Only the buyer may pay: an admin gets
    /// FORBIDDEN, anyone else NOT_FOUND. A declined card is an answer, not an error: the order
    /// stays CONFIRMED with the decline as its reason.
    pub async fn pay_order(
        &self,
        principal: &Principal,
        req: &PayOrderRequest,
    ) -> ServiceResult<Order> {
        let caller = principal.require_user()?;
        let Some(stored) = self.read(&req.id).await? else {
            return Err(not_found().into());
        };
        let order = stored.order;
        if order.user_id != caller.id {
            return Err(match caller.role {
                Role::Admin => {
                    ApiError::forbidden("only the customer who placed an order can pay for it")
                }
                Role::Customer => not_found(),
            }
            .into());
        }
        if order.status != OrderStatus::Confirmed {
            let message = format!(
                "order is {}; only a CONFIRMED order can be paid",
                order.status.as_str()
            );
            return Err(ApiError::bad_input("id", message).into());
        }
        // Outside any transaction: a slow provider must not hold the database.
        match self
            .payments
            .charge(&order.id, order.total_cents, &req.payment_token)
            .await
        {
            Ok(charge) => self.record_payment(&order.id, &charge).await,
            Err(PaymentError::Declined(message)) => {
                let mut tx = self.outbox.begin().await?;
                store::set_status_reason(
                    &mut tx,
                    &order.id,
                    OrderStatus::Confirmed,
                    &message,
                    now_millis(),
                )
                .await?;
                tx.commit().await?;
                Ok(self.read(&order.id).await?.ok_or_else(not_found)?.order)
            }
            Err(PaymentError::InvalidToken(message)) => {
                Err(ApiError::bad_input("paymentToken", message).into())
            }
            Err(PaymentError::Unavailable(message)) => {
                tracing::warn!(order_id = %order.id, error = %message, "payment provider unavailable");
                Err(ApiError::unavailable("the payment provider is unavailable; try again").into())
            }
        }
    }

    /// Marks the order PAID with `charge`. If it stopped being CONFIRMED while the card was
    /// charged (cancelled, expired, or paid by a concurrent request), the charge is refunded.
    async fn record_payment(&self, id: &str, charge: &Charge) -> ServiceResult<Order> {
        let mut tx = self.outbox.begin().await?;
        let current = store::order_by_id(&mut tx, id)
            .await?
            .ok_or_else(not_found)?
            .order;
        if current.status == OrderStatus::Confirmed
            && let Some(order) =
                transitions::apply(&mut tx, &current, OrderStatus::Paid, None, Some(&charge.id))
                    .await?
        {
            tx.commit().await?;
            tracing::info!(order_id = %id, charge_id = %charge.id, "order paid");
            return Ok(order);
        }
        tx.rollback().await?;
        {
            let mut conn = self.db.pool().acquire().await?;
            store::insert_refund(&mut conn, &charge.id, id, current.total_cents, now_millis())
                .await?;
        }
        self.attempt_refund(id, &charge.id).await;
        let now = self
            .read(id)
            .await?
            .map(|s| s.order.status)
            .unwrap_or(current.status);
        let message = format!("order is {} now; the payment was refunded", now.as_str());
        Err(ApiError::bad_input("id", message).into())
    }

    /// Cancels every CONFIRMED order whose payment window of `timeout` has passed. Several
    /// replicas may sweep at once: the conditional move lets exactly one cancel each order
    /// (and only that one emits the event). Returns how many this call cancelled.
    pub async fn cancel_expired(&self, timeout: Duration) -> ServiceResult<usize> {
        const BATCH: i64 = 100;
        let cutoff = now_millis() - i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let mut cancelled = 0;
        // Bounded per sweep; whatever is left waits for the next tick.
        for _ in 0..10 {
            let ids = {
                let mut conn = self.db.pool().acquire().await?;
                store::expired_confirmed(&mut conn, cutoff, BATCH).await?
            };
            for id in &ids {
                let mut tx = self.outbox.begin().await?;
                let Some(stored) = store::order_by_id(&mut tx, id).await? else {
                    continue;
                };
                if stored.order.status != OrderStatus::Confirmed {
                    continue;
                }
                let reason = Some("payment window expired");
                if transitions::apply(&mut tx, &stored.order, OrderStatus::Cancelled, reason, None)
                    .await?
                    .is_some()
                {
                    tx.commit().await?;
                    cancelled += 1;
                }
            }
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        Ok(cancelled)
    }
}
