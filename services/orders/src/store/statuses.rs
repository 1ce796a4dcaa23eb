//! Order statuses: every change is conditional on the status the caller saw, so two writers
//! (a replica's sweeper, a payment, an event) can never both move one order; and the counts
//! the gauges and the saga's backpressure read.

use bazaar_contracts::orders::OrderStatus;
use bazaar_db::params::ROWS_PER_STATEMENT;
use bazaar_db::{DbError, sqlx};

use super::Conn;

/// One status change, applied only if the order is still in `from`.
pub struct StatusChange<'a> {
    pub id: &'a str,
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// Replaces the stored reason; `None` clears it.
    pub reason: Option<&'a str>,
    /// Set when the change confirms the order (starts the payment window).
    pub confirmed_at: Option<i64>,
    /// Set when the change records a payment.
    pub charge_id: Option<&'a str>,
    pub at: i64,
}

/// True when the order was in `change.from` and now is in `change.to`; false when another
/// writer moved it first (nothing changed then).
pub async fn set_status(conn: &mut Conn, change: &StatusChange<'_>) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE orders SET status = $3, status_reason = $4, updated_at = $5,
             confirmed_at = COALESCE($6, confirmed_at), charge_id = COALESCE($7, charge_id)
         WHERE id = $1 AND status = $2",
    )
    .bind(change.id)
    .bind(change.from.as_str())
    .bind(change.to.as_str())
    .bind(change.reason)
    .bind(change.at)
    .bind(change.confirmed_at)
    .bind(change.charge_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records why an order stays where it is (e.g. a declined card), if it is still in `status`.
pub async fn set_status_reason(
    conn: &mut Conn,
    id: &str,
    status: OrderStatus,
    reason: &str,
    at: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE orders SET status_reason = $3, updated_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(reason)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Orders waiting for the catalogue's answer (read through the status index).
pub async fn count_pending(db: &bazaar_db::Db) -> Result<u64, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'PENDING'")
        .fetch_one(db.pool())
        .await?;
    Ok(n.max(0) as u64)
}

pub async fn count_by_status(db: &bazaar_db::Db) -> Result<Vec<(String, i64)>, DbError> {
    Ok(
        sqlx::query_as("SELECT status, COUNT(*) FROM orders GROUP BY status")
            .fetch_all(db.pool())
            .await?,
    )
}

/// The catalogue's answer for one PENDING order, as [`settle_pending`] stores it.
pub struct Answer<'a> {
    pub id: &'a str,
    pub to: OrderStatus,
    pub reason: Option<&'a str>,
}

/// Moves every order of `answers` out of PENDING, one statement per [`ROWS_PER_STATEMENT`];
/// how many were still PENDING (and so moved). Confirmation opens the payment window.
pub async fn settle_pending(
    conn: &mut Conn,
    answers: &[Answer<'_>],
    at: i64,
) -> Result<u64, DbError> {
    let mut moved = 0;
    for chunk in answers.chunks(ROWS_PER_STATEMENT) {
        let case = |column: usize| -> String {
            (0..chunk.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 3 * i + 2, 3 * i + 2 + column))
                .collect()
        };
        let ids: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", 3 * i + 2))
            .collect();
        let update = format!(
            "UPDATE orders SET status = CASE id{} END, status_reason = CASE id{} END,
                 confirmed_at = CASE WHEN (CASE id{} END) = 'CONFIRMED' THEN $1 ELSE confirmed_at END,
                 updated_at = $1
             WHERE status = 'PENDING' AND id IN ({})",
            case(1),
            case(2),
            case(1),
            ids.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update)).bind(at);
        for answer in chunk {
            query = query
                .bind(answer.id)
                .bind(answer.to.as_str())
                .bind(answer.reason);
        }
        moved += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(moved)
}
