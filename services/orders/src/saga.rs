//! The orders service's part of the saga: the catalogue's answer moves a PENDING order to
//! CONFIRMED (stock reserved) or REJECTED. One answer at a time ([`settle`]), or a run of
//! answers for different orders set-based ([`settle_all`]: their orders read in one
//! statement, moved in one, announced in one), with the same outcome.

use std::collections::HashSet;

use bazaar_bus::{Applying, Envelope, EventTx, HandlerError};
use bazaar_contracts::events::{Event, StockRejected, StockReserved, decode};
use bazaar_contracts::orders::{Order, OrderStatus};
use bazaar_db::now_millis;

use crate::domain::can_move;
use crate::store::{self, Answer};
use crate::transitions;

/// The order and the status a stock answer asks for.
pub fn answer(event: &Envelope) -> Result<(String, OrderStatus, Option<String>), HandlerError> {
    Ok(match event.event_type.as_str() {
        StockReserved::TYPE => {
            let e: StockReserved = decode(event)?;
            (e.order_id, OrderStatus::Confirmed, None)
        }
        _ => {
            let e: StockRejected = decode(event)?;
            (e.order_id, OrderStatus::Rejected, Some(e.reason))
        }
    })
}

/// How many of `events`, from the first, are stock answers for orders distinct from each
/// other: what [`settle_all`] takes together.
pub fn run_length(events: &[&Envelope]) -> usize {
    let mut orders = HashSet::new();
    events
        .iter()
        .take_while(|e| {
            matches!(
                e.event_type.as_str(),
                StockReserved::TYPE | StockRejected::TYPE
            ) && orders.insert(e.aggregate_id.as_str())
        })
        .count()
}

/// Applies a run of stock answers (see [`run_length`]) as [`settle`] would, one by one. Fails
/// when an order moved between its read and the update (the consumer then goes one by one).
pub async fn settle_all(tx: &mut EventTx, run: &[Applying<'_>]) -> Result<(), HandlerError> {
    let answers = run
        .iter()
        .map(|applying| answer(applying.event))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = answers.iter().map(|(id, _, _)| id.as_str()).collect();
    let orders = store::orders_by_ids(tx, &ids).await?;
    let at = now_millis();
    let mut moves = Vec::with_capacity(run.len());
    let mut events = Vec::with_capacity(run.len());
    let mut moved = Vec::with_capacity(run.len());
    for (applying, (order_id, to, reason)) in run.iter().zip(&answers) {
        let _span = applying.span.enter();
        let Some(order) = orders.get(order_id).map(|stored| &stored.order) else {
            tracing::warn!(order_id, "stock answer for an unknown order; ignored");
            continue;
        };
        if order.status != OrderStatus::Pending || !can_move(order.status, *to) {
            tracing::info!(
                order_id,
                status = order.status.as_str(),
                to = to.as_str(),
                "order no longer pending; stock answer ignored"
            );
            continue;
        }
        let reason = reason.as_deref();
        moves.push(Answer {
            id: order_id,
            to: *to,
            reason,
        });
        let mut announced = transitions::announcement(order, *to, reason, at);
        announced.trace = applying.trace();
        events.push(announced);
        moved.push(transitions::moved(order, *to, reason, at));
    }
    if store::settle_pending(tx, &moves, at).await? < moves.len() as u64 {
        return Err(HandlerError::Retry(
            "an order moved while its stock answer was applied".into(),
        ));
    }
    tx.emit_all(&events).await?;
    moved.iter().for_each(observe);
    Ok(())
}

/// Applies the catalogue's answer to a PENDING order. An order that is no longer PENDING (the
/// customer cancelled meanwhile) stays as it is: the catalogue releases stock on the
/// cancellation event it receives.
pub async fn settle(
    tx: &mut EventTx,
    order_id: &str,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<(), HandlerError> {
    let Some(stored) = store::order_by_id(tx, order_id).await? else {
        tracing::warn!(order_id, "stock answer for an unknown order; ignored");
        return Ok(());
    };
    if stored.order.status != OrderStatus::Pending {
        tracing::info!(
            order_id,
            status = stored.order.status.as_str(),
            to = to.as_str(),
            "order no longer pending; stock answer ignored"
        );
        return Ok(());
    }
    // We hold the write transaction the status was read in, so the move cannot be stale;
    // if it were, the order moved on and the answer is moot, as above.
    let moved = transitions::apply(tx, &stored.order, to, reason, None).await?;
    if let Some(order) = moved {
        observe(&order);
    }
    Ok(())
}

/// The saga's latency, placed to confirmed, of an order that just moved. Observed before the
/// batch commits (the bus has no after-commit hook): a batch whose commit fails is retried
/// and may observe the same order twice, which skews nothing a quantile would show.
fn observe(order: &Order) {
    if order.status == OrderStatus::Confirmed {
        let ms = (order.updated_at - order.created_at).max(0);
        metrics::histogram!("bazaar_order_confirmation_duration_seconds")
            .record(ms as f64 / 1000.0);
    }
}
