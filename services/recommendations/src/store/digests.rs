//! What the digest job reads and records: who bought anything, and which (tick, user)
//! digests are already in the outbox, so that running a tick again sends nothing twice.

use bazaar_db::{Db, DbError, Tx, now_millis, sqlx};

/// Up to `limit` users with purchases whose id sorts after `after`, in id order (keyset
/// pages, so the job's memory does not grow with the number of buyers).
pub async fn users_with_purchases(
    db: &Db,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT user_id FROM purchases WHERE user_id > $1 ORDER BY user_id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Claims the digest of `user_id` for `tick_at`; false when it was already sent. One insert,
/// so two runs of the same tick cannot both claim it.
pub async fn mark_digest_sent(tx: &mut Tx, tick_at: i64, user_id: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO digests_sent (tick_at, user_id, sent_at) VALUES ($1, $2, $3)
         ON CONFLICT (tick_at, user_id) DO NOTHING",
    )
    .bind(tick_at)
    .bind(user_id)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets digests of ticks before `before`; a tick that old is never run again.
pub async fn prune_digests(db: &Db, before: i64) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM digests_sent WHERE tick_at < $1")
        .bind(before)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
