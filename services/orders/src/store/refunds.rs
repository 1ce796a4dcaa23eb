//! Refunds owed: recorded with the change that makes them owed, claimed by one replica at a
//! time through `next_attempt_at`, and kept (with `refunded_at`) once the provider confirmed.

use bazaar_db::{DbError, sqlx};

use super::Conn;

/// A refund the provider has not confirmed yet, as admins see it.
#[derive(Debug, Clone)]
pub struct PendingRefund {
    pub charge_id: String,
    pub order_id: String,
    pub amount_cents: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// Records that `charge_id` must be refunded; a second record of the same charge is a no-op.
pub async fn insert_refund(
    conn: &mut Conn,
    charge_id: &str,
    order_id: &str,
    amount_cents: i64,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO refunds (charge_id, order_id, amount_cents, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (charge_id) DO NOTHING",
    )
    .bind(charge_id)
    .bind(order_id)
    .bind(amount_cents)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Charges whose refund is due at `now`, oldest first.
pub async fn due_refunds(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT charge_id FROM refunds WHERE refunded_at IS NULL AND next_attempt_at <= $1
         ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Takes the refund of `charge_id` for one attempt if it is due: pushes its next attempt to
/// `lease_until`, so no other replica tries it meanwhile. Returns the attempts made before
/// this one, or `None` when it is not due (another replica holds it, or it is done).
pub async fn claim_refund(
    conn: &mut Conn,
    charge_id: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE refunds SET next_attempt_at = $3
         WHERE charge_id = $1 AND refunded_at IS NULL AND next_attempt_at <= $2
         RETURNING attempts",
    )
    .bind(charge_id)
    .bind(now)
    .bind(lease_until)
    .fetch_optional(&mut *conn)
    .await?)
}

pub async fn refund_done(conn: &mut Conn, charge_id: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE refunds SET refunded_at = $2, attempts = attempts + 1, last_error = NULL
         WHERE charge_id = $1",
    )
    .bind(charge_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub async fn refund_failed(
    conn: &mut Conn,
    charge_id: &str,
    error: &str,
    next_attempt_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE refunds SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
         WHERE charge_id = $1",
    )
    .bind(charge_id)
    .bind(error)
    .bind(next_attempt_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type RefundRow = (String, String, i64, i64, Option<String>, i64, i64);

/// Refunds not yet confirmed, oldest first.
pub async fn pending_refunds(conn: &mut Conn, limit: i64) -> Result<Vec<PendingRefund>, DbError> {
    let rows: Vec<RefundRow> = sqlx::query_as(
        "SELECT charge_id, order_id, amount_cents, attempts, last_error, next_attempt_at, created_at
         FROM refunds WHERE refunded_at IS NULL ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PendingRefund {
            charge_id: r.0,
            order_id: r.1,
            amount_cents: r.2,
            attempts: r.3,
            last_error: r.4,
            next_attempt_at: r.5,
            created_at: r.6,
        })
        .collect())
}
