//! Reservations: one row per order, the catalog's memory of what it took for that order.
//! The row is the saga's idempotency key: whatever arrives second (a repeated placement, a
//! placement after its cancellation) finds it and does nothing.

use bazaar_contracts::events::StockLine;
use bazaar_db::params::{ROWS_PER_STATEMENT, value_rows};
use bazaar_db::{DbError, Tx, now_millis, sqlx};

/// A reservation's state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Reserved,
    Rejected,
    Released,
    /// The cancellation arrived before the placement; the placement will be ignored.
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reserved => "RESERVED",
            Status::Rejected => "REJECTED",
            Status::Released => "RELEASED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

fn lines_json(lines: &[StockLine]) -> Result<String, DbError> {
    serde_json::to_string(lines).map_err(|e| sqlx::Error::Encode(Box::new(e)).into())
}

/// Claims the order for this transaction by inserting its row in `status` with no lines;
/// false when a row already exists. On PostgreSQL a concurrent claim of the same order waits
/// here until the first commits, then sees the conflict: never two decisions for one order.
pub async fn claim(tx: &mut Tx, order_id: &str, status: Status) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO reservations (order_id, status, items, created_at, updated_at)
         VALUES ($1, $2, '[]', $3, $3) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the outcome of a claimed order: its lines when reserved, the reason when not.
pub async fn settle(
    tx: &mut Tx,
    order_id: &str,
    status: Status,
    lines: &[StockLine],
    reason: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE reservations SET status = $2, items = $3, reason = $4, updated_at = $5 WHERE order_id = $1")
        .bind(order_id)
        .bind(status.as_str())
        .bind(lines_json(lines)?)
        .bind(reason)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Moves a RESERVED reservation to RELEASED and returns its lines, in one statement so two
/// cancellations cannot both give the stock back. `None` when it was not RESERVED.
pub async fn release(tx: &mut Tx, order_id: &str) -> Result<Option<Vec<StockLine>>, DbError> {
    let items: Option<String> = sqlx::query_scalar(
        "UPDATE reservations SET status = $2, updated_at = $3 WHERE order_id = $1 AND status = $4 RETURNING items",
    )
    .bind(order_id)
    .bind(Status::Released.as_str())
    .bind(now_millis())
    .bind(Status::Reserved.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    items
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
        })
        .transpose()
}

/// A reservation decided in memory by the set-based saga, to be stored as it is.
pub struct Decided<'a> {
    order_id: &'a str,
    status: Status,
    lines: Vec<StockLine>,
    reason: Option<&'a str>,
}

impl<'a> Decided<'a> {
    pub fn reserved(order_id: &'a str, lines: Vec<StockLine>) -> Self {
        Decided {
            order_id,
            status: Status::Reserved,
            lines,
            reason: None,
        }
    }

    pub fn rejected(order_id: &'a str, reason: &'a str) -> Self {
        Decided {
            order_id,
            status: Status::Rejected,
            lines: Vec::new(),
            reason: Some(reason),
        }
    }
}

/// Stores reservations decided without a prior claim, one statement per
/// [`ROWS_PER_STATEMENT`]; how many were new. An order with a row already (decided before, or
/// cancelled before it arrived) is left alone, and the caller must not act on its decision.
pub async fn insert_decided(tx: &mut Tx, decided: &[Decided<'_>]) -> Result<u64, DbError> {
    let now = now_millis();
    let mut inserted = 0;
    for chunk in decided.chunks(ROWS_PER_STATEMENT) {
        let insert = format!(
            "INSERT INTO reservations (order_id, status, items, reason, created_at, updated_at)
             VALUES {} ON CONFLICT (order_id) DO NOTHING",
            value_rows(1, chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for row in chunk {
            query = query
                .bind(row.order_id)
                .bind(row.status.as_str())
                .bind(lines_json(&row.lines)?)
                .bind(row.reason)
                .bind(now)
                .bind(now);
        }
        inserted += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}
