//! The outgoing-mail queue: due mails, a claim so that one replica sends each, and the
//! outcome of each attempt.

use std::collections::HashSet;

use bazaar_db::params::placeholders;
use bazaar_db::{Db, DbError, sqlx};

/// A mail whose time has come.
#[derive(Debug, Clone)]
pub struct DueMail {
    pub notification_id: String,
    pub user_id: String,
    /// The address it was queued with, else the user's current one; `None` while unknown.
    pub to: Option<String>,
    pub subject: String,
    pub body: String,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// Up to `limit` PENDING mails due at `now`, longest waiting first.
pub async fn due_mail(db: &Db, now: i64, limit: i64) -> Result<Vec<DueMail>, DbError> {
    let rows: Vec<(String, String, Option<String>, String, String, i64)> = sqlx::query_as(
        "SELECT m.notification_id, n.user_id, COALESCE(m.to_address, u.email), m.subject, m.body,
             m.attempts
         FROM outgoing_mail m
         JOIN notifications n ON n.id = m.notification_id
         LEFT JOIN users u ON u.user_id = n.user_id
         WHERE m.status = 'PENDING' AND m.next_attempt_at <= $1
         ORDER BY m.next_attempt_at, m.notification_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(notification_id, user_id, to, subject, body, attempts)| DueMail {
                notification_id,
                user_id,
                to,
                subject,
                body,
                attempts,
            },
        )
        .collect())
}

/// Takes mails `ids` for one send each, in one statement: pushes their next attempt to
/// `lease_until`, only for those still PENDING and due. Returns the ids this caller got;
/// another replica that read the same rows gets the others. A sender that dies mid-send leaves
/// its mails to be retried after the lease.
pub async fn claim_mails(
    db: &Db,
    ids: &[&str],
    now: i64,
    lease_until: i64,
) -> Result<HashSet<String>, DbError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let claim = format!(
        "UPDATE outgoing_mail SET next_attempt_at = $2
         WHERE notification_id IN ({}) AND status = 'PENDING' AND next_attempt_at <= $1
         RETURNING notification_id",
        placeholders(3, ids.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(claim))
        .persistent(false)
        .bind(now)
        .bind(lease_until);
    for id in ids {
        query = query.bind(*id);
    }
    // Writes go through a transaction to take their turn among SQLite's writers (`Tx`).
    let mut tx = db.begin().await?;
    let claimed: Vec<String> = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(claimed.into_iter().collect())
}

pub async fn mail_sent(db: &Db, id: &str, to: &str, now: i64) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE outgoing_mail SET status = 'SENT', to_address = $2, sent_at = $3, last_error = NULL
         WHERE notification_id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failed attempt: the new attempt count, when to try again, and why it failed.
pub async fn mail_failed(
    db: &Db,
    id: &str,
    attempts: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE outgoing_mail SET attempts = $2, next_attempt_at = $3, last_error = $4
         WHERE notification_id = $1 AND status = 'PENDING'",
    )
    .bind(id)
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
