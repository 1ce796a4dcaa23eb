//! The one way an order changes status: checked against the state machine, applied only if
//! the order is still where it was read (so concurrent writers cannot both win), and announced
//! by an `OrderStatusChanged` enqueued in the same transaction.

use bazaar_bus::{BusError, Envelope, EventTx};
use bazaar_contracts::events::{Event, OrderStatusChanged};
use bazaar_contracts::orders::{Order, OrderStatus};
use bazaar_db::now_millis;

use crate::app::SERVICE;
use crate::domain::can_move;
use crate::store::{self, StatusChange};

/// Moves `order` (as read inside `tx`) to `to`. `None` when the move is not allowed from the
/// status it was read in, or when another writer moved the order first: nothing changed, and
/// the caller re-reads to decide what to report. The caller commits.
pub async fn apply(
    tx: &mut EventTx,
    order: &Order,
    to: OrderStatus,
    reason: Option<&str>,
    charge_id: Option<&str>,
) -> Result<Option<Order>, BusError> {
    if !can_move(order.status, to) {
        return Ok(None);
    }
    let at = now_millis();
    let change = StatusChange {
        id: &order.id,
        from: order.status,
        to,
        reason,
        // Confirmation opens the payment window the sweeper measures from.
        confirmed_at: (to == OrderStatus::Confirmed).then_some(at),
        charge_id,
        at,
    };
    if !store::set_status(tx, &change).await? {
        return Ok(None);
    }
    tx.emit(&announcement(order, to, reason, at)).await?;
    Ok(Some(moved(order, to, reason, at)))
}

/// The `OrderStatusChanged` that announces `order`'s move to `to` at `at`.
pub fn announcement(order: &Order, to: OrderStatus, reason: Option<&str>, at: i64) -> Envelope {
    OrderStatusChanged {
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        from: order.status,
        to,
        reason: reason.map(str::to_owned),
        items: order.items.clone(),
        total_cents: order.total_cents,
        changed_at: at,
    }
    .envelope(SERVICE)
}

/// `order` as it is after moving to `to` at `at`.
pub fn moved(order: &Order, to: OrderStatus, reason: Option<&str>, at: i64) -> Order {
    Order {
        status: to,
        status_reason: reason.map(str::to_owned),
        updated_at: at,
        ..order.clone()
    }
}
