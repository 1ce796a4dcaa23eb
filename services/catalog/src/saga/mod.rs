//! The catalog's part of the order saga: reserve stock when an order is placed (all lines or
//! none), give it back when the order is cancelled. Runs in the consumer's transaction, which
//! also records the event in the inbox, so a redelivered event has no second effect.
//! [`together`] reserves a run of placed orders set-based, with the same decisions.

mod together;

pub use together::reserve_all;

use bazaar_bus::{EventTx, HandlerError};
use bazaar_contracts::events::{
    Event, OrderPlaced, StockLine, StockRejected, StockReleased, StockReserved,
};

use crate::app::SERVICE;
use crate::domain::merge_lines;
use crate::products::{RELEASE, RESERVATION, stock_changed};
use crate::store::reservations::{self, Status};
use crate::store::stock::{self, Level};

/// Reserves every line of a placed order, or none of them.
pub async fn reserve(tx: &mut EventTx, placed: OrderPlaced) -> Result<(), HandlerError> {
    let order_id = placed.order_id;
    // An existing row means this order was decided already or cancelled before it arrived.
    if !reservations::claim(tx, &order_id, Status::Reserved).await? {
        tracing::debug!(
            order_id,
            "order already has a reservation; placement ignored"
        );
        return Ok(());
    }
    let lines = match merge_lines(&placed.items) {
        Ok(lines) => lines,
        Err(reason) => return reject(tx, &order_id, &reason).await,
    };
    let mut taken: Vec<(&StockLine, i64)> = Vec::with_capacity(lines.len());
    for line in &lines {
        match stock::take_stock(tx, &line.product_id, line.quantity).await? {
            Some(stock) => taken.push((line, stock)),
            None => {
                let level = stock::levels(tx, std::slice::from_ref(&line.product_id)).await?;
                let reason = shortfall(line, level.get(&line.product_id));
                // All or nothing: what this order already took goes back in this transaction.
                for (done, _) in &taken {
                    stock::put_back_stock(tx, &done.product_id, done.quantity).await?;
                }
                return reject(tx, &order_id, &reason).await;
            }
        }
    }
    reservations::settle(tx, &order_id, Status::Reserved, &lines, None).await?;
    tx.emit(
        &StockReserved {
            order_id: order_id.clone(),
            items: lines.clone(),
        }
        .envelope(SERVICE),
    )
    .await?;
    for (line, units) in taken {
        tx.emit(&stock_changed(
            &line.product_id,
            units,
            -line.quantity,
            RESERVATION,
        ))
        .await?;
    }
    tracing::info!(order_id, lines = lines.len(), "stock reserved");
    Ok(())
}

/// Why `line` could not be taken from `product` (absent: `None`), in words a customer can read.
fn shortfall(line: &StockLine, product: Option<&Level>) -> String {
    match product {
        Some(p) if p.sold => format!(
            "not enough stock for {} (requested {}, available {})",
            p.name, line.quantity, p.stock
        ),
        _ => format!("{} is no longer sold", line.product_id),
    }
}

async fn reject(tx: &mut EventTx, order_id: &str, reason: &str) -> Result<(), HandlerError> {
    reservations::settle(tx, order_id, Status::Rejected, &[], Some(reason)).await?;
    let event = StockRejected {
        order_id: order_id.to_owned(),
        reason: reason.to_owned(),
    };
    tx.emit(&event.envelope(SERVICE)).await?;
    tracing::info!(order_id, reason, "stock reservation rejected");
    Ok(())
}

/// Gives a cancelled order's reserved stock back.
pub async fn release(tx: &mut EventTx, order_id: &str) -> Result<(), HandlerError> {
    // The cancellation overtook the placement: leave a marker so the placement is ignored.
    if reservations::claim(tx, order_id, Status::Cancelled).await? {
        tracing::info!(order_id, "order cancelled before its placement arrived");
        return Ok(());
    }
    // Only a RESERVED reservation holds stock; REJECTED, RELEASED and CANCELLED hold none.
    let Some(lines) = reservations::release(tx, order_id).await? else {
        return Ok(());
    };
    let mut restocked = Vec::with_capacity(lines.len());
    for line in &lines {
        match stock::put_back_stock(tx, &line.product_id, line.quantity).await? {
            Some(stock) => restocked.push((line, stock)),
            // Products are never hard-deleted; if one were, its units have nowhere to go.
            None => {
                tracing::warn!(order_id, product_id = %line.product_id, "reserved product vanished; units dropped")
            }
        }
    }
    tx.emit(
        &StockReleased {
            order_id: order_id.to_owned(),
            items: lines.clone(),
        }
        .envelope(SERVICE),
    )
    .await?;
    for (line, units) in restocked {
        tx.emit(&stock_changed(
            &line.product_id,
            units,
            line.quantity,
            RELEASE,
        ))
        .await?;
    }
    tracing::info!(order_id, "reservation released");
    Ok(())
}
