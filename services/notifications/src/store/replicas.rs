//! What this service keeps from others' events (users' addresses and names, promotions) and
//! the one thing users tell it directly: their preferences.

use std::collections::HashSet;

use bazaar_contracts::catalog::Promotion;
use bazaar_contracts::notifications::{Preferences, UpdatePreferencesRequest};
use bazaar_db::params::{ROWS_PER_STATEMENT, placeholders};
use bazaar_db::{DbError, sqlx};

use super::Conn;
use crate::domain::PromotionInfo;

/// A user as the latest applied users event described them.
pub struct UserReplica<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    /// When the users service made this state (registration or profile update time).
    pub updated_at: i64,
}

/// Stores `user` unless what is stored is newer (events can be applied late). True when stored.
pub async fn upsert_user(conn: &mut Conn, user: &UserReplica<'_>) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO users (user_id, email, name, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, name = excluded.name,
             updated_at = excluded.updated_at
         WHERE users.updated_at <= excluded.updated_at",
    )
    .bind(user.user_id)
    .bind(user.email)
    .bind(user.name)
    .bind(user.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The user's preferences; everything on for a user who never changed them.
pub async fn preferences(conn: &mut Conn, user_id: &str) -> Result<Preferences, DbError> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT order_updates, promotions, recommendations FROM preferences WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((order_updates, promotions, recommendations)) => Preferences {
            order_updates: order_updates != 0,
            promotions: promotions != 0,
            recommendations: recommendations != 0,
        },
        None => Preferences::default(),
    })
}

/// Of `user_ids`, those who switched order updates off, in one statement per thousand.
pub async fn without_order_updates(
    conn: &mut Conn,
    user_ids: &[&str],
) -> Result<HashSet<String>, DbError> {
    let mut off = HashSet::new();
    for chunk in user_ids.chunks(ROWS_PER_STATEMENT) {
        let select = format!(
            "SELECT user_id FROM preferences WHERE order_updates = 0 AND user_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(select)).persistent(false);
        for id in chunk {
            query = query.bind(*id);
        }
        off.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(off)
}

/// Applies a partial change (`None` keeps a preference) in one statement, so concurrent
/// changes of different preferences all land; returns the preferences now stored.
pub async fn update_preferences(
    conn: &mut Conn,
    user_id: &str,
    change: &UpdatePreferencesRequest,
    now: i64,
) -> Result<Preferences, DbError> {
    let (order_updates, promotions, recommendations): (i64, i64, i64) = sqlx::query_as(
        "INSERT INTO preferences (user_id, order_updates, promotions, recommendations, updated_at)
         VALUES ($1, COALESCE($2, 1), COALESCE($3, 1), COALESCE($4, 1), $5)
         ON CONFLICT (user_id) DO UPDATE SET
             order_updates = COALESCE($2, preferences.order_updates),
             promotions = COALESCE($3, preferences.promotions),
             recommendations = COALESCE($4, preferences.recommendations),
             updated_at = $5
         RETURNING order_updates, promotions, recommendations",
    )
    .bind(user_id)
    .bind(change.order_updates.map(i64::from))
    .bind(change.promotions.map(i64::from))
    .bind(change.recommendations.map(i64::from))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Preferences {
        order_updates: order_updates != 0,
        promotions: promotions != 0,
        recommendations: recommendations != 0,
    })
}

/// Records a new promotion. A repeat is ignored, so it can never undo an earlier end.
pub async fn insert_promotion(conn: &mut Conn, p: &Promotion) -> Result<(), DbError> {
    // Serialising a list of strings cannot fail.
    let product_ids = serde_json::to_string(&p.product_ids).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO promotions (promotion_id, title, product_ids, percent_off, starts_at, ends_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (promotion_id) DO NOTHING",
    )
    .bind(&p.id)
    .bind(&p.title)
    .bind(product_ids)
    .bind(p.percent_off)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Brings a promotion's end forward to `ended_at` (never pushes it back).
pub async fn end_promotion(conn: &mut Conn, id: &str, ended_at: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE promotions SET ends_at = $2 WHERE promotion_id = $1 AND ends_at > $2")
        .bind(id)
        .bind(ended_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Promotions running at `at`: started, not yet ended.
pub async fn active_promotions(conn: &mut Conn, at: i64) -> Result<Vec<PromotionInfo>, DbError> {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT promotion_id, title, product_ids, percent_off, ends_at FROM promotions
         WHERE starts_at <= $1 AND ends_at > $1 ORDER BY promotion_id",
    )
    .bind(at)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, title, product_ids, percent_off, ends_at)| PromotionInfo {
                id,
                title,
                product_count: serde_json::from_str::<Vec<String>>(&product_ids)
                    .map_or(0, |ids| ids.len()),
                percent_off,
                ends_at,
            },
        )
        .collect())
}
