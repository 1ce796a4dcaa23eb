//! The saga's set-based path: a run of placed orders reserved in four statements whatever its
//! length (its products read and locked once, every order decided in memory in delivery
//! order, then one write each for the reservations, the stock and the outbox), where one by
//! one every order costs that many statements. Under load a lane's batch then holds its
//! product locks for a few round trips instead of several per order.
//!
//! The decisions and the events are [`super::reserve`]'s, order by order.

use std::collections::{BTreeMap, HashMap};

use bazaar_bus::{Applying, Envelope, EventTx, HandlerError, TraceContext};
use bazaar_contracts::events::{
    Event, OrderPlaced, StockLine, StockRejected, StockReserved, decode,
};

use super::shortfall;
use crate::app::SERVICE;
use crate::domain::merge_lines;
use crate::products::{RESERVATION, stock_changed};
use crate::store::reservations::{self, Decided};
use crate::store::stock::{self, Level};

/// Reserves every order of `run` (all `OrderPlaced`), each all lines or none. Fails as a whole
/// when one of them was decided before (the consumer then applies them one by one, and
/// `reserve` ignores that one).
pub async fn reserve_all(tx: &mut EventTx, run: &[Applying<'_>]) -> Result<(), HandlerError> {
    let placed = run
        .iter()
        .map(|applying| decode::<OrderPlaced>(applying.event))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<String> = placed
        .iter()
        .flat_map(|order| order.items.iter().map(|item| item.product_id.clone()))
        .collect();
    let mut levels = stock::levels(tx, &ids).await?;
    let outcomes: Vec<Outcome> = placed
        .iter()
        .map(|order| take(&mut levels, order))
        .collect();
    let mut events = Vec::with_capacity(run.len() * 2);
    let mut decided = Vec::with_capacity(run.len());
    // Each product's stock after the last order that took some: what the rows must say.
    let mut left = BTreeMap::new();
    for ((applying, order), outcome) in run.iter().zip(&placed).zip(&outcomes) {
        let trace = applying.trace();
        let _span = applying.span.enter();
        let order_id = order.order_id.as_str();
        match outcome {
            Ok(taken) => {
                let lines: Vec<StockLine> = taken.iter().map(|(line, _)| line.clone()).collect();
                let reserved = StockReserved {
                    order_id: order_id.to_owned(),
                    items: lines.clone(),
                };
                events.push(traced(reserved.envelope(SERVICE), &trace));
                for (line, units) in taken {
                    let change =
                        stock_changed(&line.product_id, *units, -line.quantity, RESERVATION);
                    events.push(traced(change, &trace));
                    left.insert(line.product_id.as_str(), *units);
                }
                tracing::info!(order_id, lines = lines.len(), "stock reserved");
                decided.push(Decided::reserved(order_id, lines));
            }
            Err(reason) => {
                let rejected = StockRejected {
                    order_id: order_id.to_owned(),
                    reason: reason.clone(),
                };
                events.push(traced(rejected.envelope(SERVICE), &trace));
                tracing::info!(order_id, reason, "stock reservation rejected");
                decided.push(Decided::rejected(order_id, reason));
            }
        }
    }
    if reservations::insert_decided(tx, &decided).await? < decided.len() as u64 {
        return Err(HandlerError::Retry(
            "an order of the run has a reservation already".into(),
        ));
    }
    let left: Vec<(&str, i64)> = left.into_iter().collect();
    stock::set_stock(tx, &left).await?;
    tx.emit_all(&events).await?;
    Ok(())
}

/// What taking an order's lines gave: each line with the stock it leaves, or why not.
type Outcome = Result<Vec<(StockLine, i64)>, String>;

/// Takes every line of `order` from `levels` or none of them: each line with the stock it
/// leaves, or why the order cannot be served, in `reserve`'s words.
fn take(levels: &mut HashMap<String, Level>, order: &OrderPlaced) -> Outcome {
    let mut taken = Vec::new();
    // Merged lines name each product once, so checking them all before taking any is the
    // same as `reserve`'s take-then-put-back.
    for line in merge_lines(&order.items)? {
        match levels.get(&line.product_id) {
            Some(level) if level.sold && level.stock >= line.quantity => {
                let left = level.stock - line.quantity;
                taken.push((line, left));
            }
            level => return Err(shortfall(&line, level)),
        }
    }
    for (line, left) in &taken {
        if let Some(level) = levels.get_mut(&line.product_id) {
            level.stock = *left;
        }
    }
    Ok(taken)
}

/// `event`, carrying the trace of the event that caused it.
fn traced(mut event: Envelope, trace: &Option<TraceContext>) -> Envelope {
    event.trace = trace.clone();
    event
}
