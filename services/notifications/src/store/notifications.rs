//! Notifications and the mail each one queues: inserted together, at most once per
//! (user, kind, dedup key); listed newest first; marked read.

use std::collections::HashSet;

use bazaar_contracts::notifications::{Notification, NotificationKind};
use bazaar_db::params::{ROWS_PER_STATEMENT, placeholders};
use bazaar_db::{DbError, new_id, sqlx};

use super::Conn;
use crate::domain::{self, Content, kind_str};

/// A notification about to be stored.
pub struct NewNotification<'a> {
    pub user_id: &'a str,
    pub kind: NotificationKind,
    /// What makes it unique for the user and kind: the order and status, the promotion id…
    pub dedup_key: &'a str,
    pub content: &'a Content,
}

/// Stores the notification and its PENDING mail, unless the user already has one with this
/// kind and key. Returns the new notification's id, or `None` for a duplicate.
pub async fn insert_notification(
    conn: &mut Conn,
    n: &NewNotification<'_>,
    now: i64,
) -> Result<Option<String>, DbError> {
    Ok(insert_notifications(conn, std::slice::from_ref(n), now)
        .await?
        .pop())
}

/// Stores each notification with its PENDING mail, in two statements per thousand, skipping
/// those the user already has (same kind and key). Returns the ids of the new ones.
pub async fn insert_notifications(
    conn: &mut Conn,
    all: &[NewNotification<'_>],
    now: i64,
) -> Result<Vec<String>, DbError> {
    let mut inserted = Vec::new();
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<String> = chunk.iter().map(|_| new_id()).collect();
        let insert = format!(
            "INSERT INTO notifications (id, user_id, kind, dedup_key, title, body, read_at, created_at)
             VALUES {} ON CONFLICT (user_id, kind, dedup_key) DO NOTHING RETURNING id",
            (0..chunk.len())
                .map(|row| format!("({}, NULL, $1)", placeholders(2 + row * 6, 6)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(insert))
            .persistent(false)
            .bind(now);
        for (id, n) in ids.iter().zip(chunk) {
            query = query
                .bind(id)
                .bind(n.user_id)
                .bind(kind_str(n.kind))
                .bind(n.dedup_key)
                .bind(&n.content.title)
                .bind(&n.content.body);
        }
        let new: HashSet<String> = query.fetch_all(&mut *conn).await?.into_iter().collect();
        let fresh: Vec<(&String, &NewNotification)> = ids
            .iter()
            .zip(chunk)
            .filter(|(id, _)| new.contains(*id))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        // The address may still be unknown (an order event before the registration): the
        // mailer looks it up again when it sends.
        let mails = format!(
            "INSERT INTO outgoing_mail (notification_id, to_address, subject, body, status,
                 attempts, next_attempt_at, last_error, sent_at, created_at)
             VALUES {}",
            (0..fresh.len())
                .map(|row| {
                    let p = 2 + row * 4;
                    format!(
                        "(${p}, (SELECT email FROM users WHERE user_id = ${}), ${}, ${}, \
                         'PENDING', 0, $1, NULL, NULL, $1)",
                        p + 1,
                        p + 2,
                        p + 3
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(mails))
            .persistent(false)
            .bind(now);
        for (id, n) in &fresh {
            query = query
                .bind(*id)
                .bind(n.user_id)
                .bind(&n.content.title)
                .bind(domain::mail_body(&n.content.body));
        }
        query.execute(&mut *conn).await?;
        inserted.extend(fresh.into_iter().map(|(id, _)| id.clone()));
    }
    Ok(inserted)
}

type NotificationRow = (String, String, String, String, String, Option<i64>, i64);

const COLUMNS: &str = "id, user_id, kind, title, body, read_at, created_at";

fn to_notification(row: NotificationRow) -> Result<Notification, DbError> {
    let (id, user_id, kind, title, body, read_at, created_at) = row;
    let kind = domain::parse_kind(&kind).ok_or_else(|| {
        DbError::Sqlx(sqlx::Error::Decode(
            format!("notification {id} has unknown kind {kind:?}").into(),
        ))
    })?;
    Ok(Notification {
        id,
        user_id,
        kind,
        title,
        body,
        read: read_at.is_some(),
        created_at,
    })
}

/// One page of the user's notifications, newest first (ids are time-ordered), after the id
/// `after`; with whether more follow and how many match in all.
pub async fn list_notifications(
    conn: &mut Conn,
    user_id: &str,
    unread_only: bool,
    first: i64,
    after: Option<&str>,
) -> Result<(Vec<Notification>, bool, i64), DbError> {
    let unread = if unread_only {
        " AND read_at IS NULL"
    } else {
        ""
    };
    let count_sql = format!("SELECT COUNT(*) FROM notifications WHERE user_id = $1{unread}");
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<NotificationRow> = match after {
        Some(after) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{unread} AND id < $2
                 ORDER BY id DESC LIMIT $3"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(after)
                .bind(first + 1)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{unread}
                 ORDER BY id DESC LIMIT $2"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(first + 1)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let has_next = rows.len() as i64 > first;
    let items = rows
        .into_iter()
        .take(first.max(0) as usize)
        .map(to_notification)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((items, has_next, total))
}

/// Marks the user's notification `id` read (keeping the first read time) and returns it;
/// `None` when the user has no such notification.
pub async fn mark_read(
    conn: &mut Conn,
    user_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<Notification>, DbError> {
    sqlx::query(
        "UPDATE notifications SET read_at = $3 WHERE id = $1 AND user_id = $2 AND read_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2");
    let row: Option<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(to_notification).transpose()
}

/// Marks every unread notification of the user read; returns how many changed.
pub async fn mark_all_read(conn: &mut Conn, user_id: &str, now: i64) -> Result<i64, DbError> {
    let done =
        sqlx::query("UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() as i64)
}

/// Up to `limit` users, by id after `after`, who want promotions and have not yet been told
/// about promotion `promotion_id`.
pub async fn users_to_announce(
    conn: &mut Conn,
    promotion_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT u.user_id FROM users u
         LEFT JOIN preferences p ON p.user_id = u.user_id
         WHERE COALESCE(p.promotions, 1) = 1 AND u.user_id > $2
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = u.user_id
                           AND n.kind = 'PROMOTION' AND n.dedup_key = $1)
         ORDER BY u.user_id LIMIT $3",
    )
    .bind(promotion_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}
