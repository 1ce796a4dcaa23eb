//! Reviews, and the two facts learnt from other services' events that decide who may write
//! one and under what name: delivered purchases and reviewers' display names.

use bazaar_contracts::catalog::Review;
use bazaar_db::{Db, DbError, Tx, sqlx};

use crate::domain::reviews::{NewReview, ReviewPage};

/// Shown when the author's `UserRegistered` has not reached the catalog yet. Never the email.
const UNKNOWN_AUTHOR: &str = "Customer";

/// Author names are read at display time, so a profile rename shows on old reviews too.
const SELECT_REVIEW: &str = "SELECT r.id, r.product_id, r.user_id, a.name, r.rating, r.title, \
     r.body, r.created_at FROM reviews r LEFT JOIN reviewers a ON a.user_id = r.user_id";

type ReviewRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    i64,
);

fn to_review(row: ReviewRow) -> Review {
    let (id, product_id, user_id, author, rating, title, body, created_at) = row;
    Review {
        id,
        product_id,
        user_id,
        author: author
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| UNKNOWN_AUTHOR.to_owned()),
        rating,
        title,
        body,
        // Only buyers of a delivered order may review, so every review is verified.
        verified_purchase: true,
        created_at,
    }
}

/// Records that `user_id` received `product_id`; the first delivery is the one kept.
pub async fn record_purchase(
    tx: &mut Tx,
    user_id: &str,
    product_id: &str,
    delivered_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO purchases (user_id, product_id, delivered_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, product_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(product_id)
    .bind(delivered_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn has_received(tx: &mut Tx, user_id: &str, product_id: &str) -> Result<bool, DbError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT delivered_at FROM purchases WHERE user_id = $1 AND product_id = $2",
    )
    .bind(user_id)
    .bind(product_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Stores the display name unless a newer one is already stored: profile events may arrive
/// out of order, and an older name must not overwrite a newer one.
pub async fn upsert_reviewer(
    tx: &mut Tx,
    user_id: &str,
    name: &str,
    updated_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO reviewers (user_id, name, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
         WHERE reviewers.updated_at <= excluded.updated_at",
    )
    .bind(user_id)
    .bind(name)
    .bind(updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The id and rating of the user's review of the product, if they wrote one.
pub async fn existing(
    tx: &mut Tx,
    user_id: &str,
    product_id: &str,
) -> Result<Option<(String, i64)>, DbError> {
    Ok(
        sqlx::query_as("SELECT id, rating FROM reviews WHERE user_id = $1 AND product_id = $2")
            .bind(user_id)
            .bind(product_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

pub async fn insert(
    tx: &mut Tx,
    id: &str,
    user_id: &str,
    r: &NewReview,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO reviews (id, product_id, user_id, rating, title, body, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(&r.product_id)
    .bind(user_id)
    .bind(r.rating)
    .bind(&r.title)
    .bind(&r.body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Overwrites a review's content; its id and `created_at` stay, so it keeps its place in
/// the newest-first listing.
pub async fn replace(tx: &mut Tx, id: &str, r: &NewReview, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE reviews SET rating = $2, title = $3, body = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(r.rating)
    .bind(&r.title)
    .bind(&r.body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_id_tx(tx: &mut Tx, id: &str) -> Result<Option<Review>, DbError> {
    let sql = format!("{SELECT_REVIEW} WHERE r.id = $1");
    let row: Option<ReviewRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(to_review))
}

/// A page of the product's reviews, newest first (ids are time-ordered), whether more
/// follow, and how many the product has.
pub async fn page(db: &Db, page: &ReviewPage) -> Result<(Vec<Review>, bool, i64), DbError> {
    let mut conn = db.pool().acquire().await?;
    let mut rows: Vec<ReviewRow> = match &page.after {
        Some(after) => {
            let sql = format!(
                "{SELECT_REVIEW} WHERE r.product_id = $1 AND r.id < $2 ORDER BY r.id DESC LIMIT $3"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&page.product_id)
                .bind(after)
                .bind(page.first + 1)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            let sql =
                format!("{SELECT_REVIEW} WHERE r.product_id = $1 ORDER BY r.id DESC LIMIT $2");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&page.product_id)
                .bind(page.first + 1)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let has_next = rows.len() as i64 > page.first;
    rows.truncate(page.first as usize);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE product_id = $1")
        .bind(&page.product_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((rows.into_iter().map(to_review).collect(), has_next, total))
}
