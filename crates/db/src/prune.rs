//! Retention: deleting rows that are only kept for a while (idempotency keys, inbox and sent
//! outbox rows, read notifications...), a small chunk per transaction so that writers on the
//! hot paths never wait long behind a purge.

use std::time::Duration;

use crate::{Db, Result, now_millis};

/// Rows deleted per transaction: small enough that a purge of millions of rows only ever
/// holds the SQLite write lock (or PostgreSQL row locks) for a few milliseconds at a time.
const CHUNK: i64 = 1000;

/// One kind of row kept for a while: rows of `table` whose `expired` condition holds for the
/// cut-off `$1` (unix milliseconds, now minus `keep`) are deleted, by their key `key` (a
/// column, or a comma-separated list of columns for a composite key).
#[derive(Debug, Clone)]
pub struct Prune {
    pub table: &'static str,
    pub key: &'static str,
    /// SQL condition with `$1` the cut-off, e.g. `published_at < $1`.
    pub expired: &'static str,
    pub keep: Duration,
}

impl Prune {
    fn statement(&self) -> String {
        let Prune {
            table,
            key,
            expired,
            ..
        } = self;
        format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {key} FROM {table} WHERE {expired} LIMIT {CHUNK})"
        )
    }
}

/// Deletes every expired row of each rule, in order (so a rule may clear what a later rule's
/// rows are referenced by), and returns how many rows each rule deleted.
pub async fn prune(db: &Db, rules: &[Prune]) -> Result<Vec<(&'static str, u64)>> {
    let mut deleted = Vec::with_capacity(rules.len());
    for rule in rules {
        let cutoff = now_millis().saturating_sub(rule.keep.as_millis() as i64);
        let statement = rule.statement();
        let mut total = 0;
        loop {
            let mut tx = db.begin().await?;
            let done = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            total += done;
            if done < CHUNK as u64 {
                break;
            }
        }
        deleted.push((rule.table, total));
    }
    Ok(deleted)
}
