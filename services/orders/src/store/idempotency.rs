//! Idempotency keys: which order a (customer, key) pair produced, and for which request.

use bazaar_db::{DbError, Tx, now_millis, sqlx};

use super::Conn;

/// What an earlier request with the same key asked for and got.
pub struct StoredKey {
    pub request_hash: String,
    pub order_id: String,
}

/// Claims the key for `order_id`. This insert *is* the claim: a concurrent request with the
/// same key fails here with a unique violation (PostgreSQL waits for the first to commit).
pub async fn insert_key(
    tx: &mut Tx,
    user_id: &str,
    key: &str,
    request_hash: &str,
    order_id: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(key)
    .bind(request_hash)
    .bind(order_id)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn find_key(
    conn: &mut Conn,
    user_id: &str,
    key: &str,
) -> Result<Option<StoredKey>, DbError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(request_hash, order_id)| StoredKey {
        request_hash,
        order_id,
    }))
}
