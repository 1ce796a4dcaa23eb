//! Promotions and the products they discount. A promotion is active while
//! `starts_at <= now < ends_at`; nothing is written when one starts or ends by the clock.

use std::collections::HashMap;

use bazaar_contracts::catalog::{ActivePromotion, Promotion};
use bazaar_db::{Db, DbError, Tx, sqlx};

use crate::domain::promotions::NewPromotion;

type Conn = sqlx::AnyConnection;

const COLUMNS: &str = "id, title, percent_off, starts_at, ends_at, created_at";

type PromotionRow = (String, String, i64, i64, i64, i64);

fn to_promotion(row: PromotionRow, product_ids: Vec<String>) -> Promotion {
    let (id, title, percent_off, starts_at, ends_at, created_at) = row;
    Promotion {
        id,
        title,
        product_ids,
        percent_off,
        starts_at,
        ends_at,
        created_at,
    }
}

/// `$first, $first+1, ...` for `n` bind values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn insert(
    tx: &mut Tx,
    id: &str,
    p: &NewPromotion,
    now: i64,
) -> Result<Promotion, DbError> {
    let sql = format!(
        "INSERT INTO promotions (id, title, percent_off, starts_at, ends_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row: PromotionRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&p.title)
        .bind(p.percent_off)
        .bind(p.starts_at)
        .bind(p.ends_at)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    for product_id in &p.product_ids {
        sqlx::query("INSERT INTO promotion_products (promotion_id, product_id) VALUES ($1, $2)")
            .bind(id)
            .bind(product_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(to_promotion(row, p.product_ids.clone()))
}

/// Ends a running or upcoming promotion at `now`, in one statement so two admins ending it
/// at once agree on when. An upcoming one also gets `starts_at = now`: its window becomes
/// empty rather than inverted. `None` when there is no such promotion or it had ended.
pub async fn end(tx: &mut Tx, id: &str, now: i64) -> Result<Option<Promotion>, DbError> {
    let sql = format!(
        "UPDATE promotions SET ends_at = $2,
             starts_at = CASE WHEN starts_at > $2 THEN $2 ELSE starts_at END
         WHERE id = $1 AND ends_at > $2 RETURNING {COLUMNS}"
    );
    let row: Option<PromotionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(with_products(tx, row.into_iter().collect()).await?.pop())
}

pub async fn by_id_tx(tx: &mut Tx, id: &str) -> Result<Option<Promotion>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM promotions WHERE id = $1");
    let row: Option<PromotionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(with_products(tx, row.into_iter().collect()).await?.pop())
}

/// Newest first, at most `limit`; only those active at `active_at` when given.
pub async fn list(db: &Db, active_at: Option<i64>, limit: i64) -> Result<Vec<Promotion>, DbError> {
    let mut conn = db.pool().acquire().await?;
    // Ids are UUID v7, so id order is creation order.
    let rows: Vec<PromotionRow> = match active_at {
        Some(now) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM promotions WHERE starts_at <= $1 AND ends_at > $1
                 ORDER BY id DESC LIMIT $2"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM promotions ORDER BY id DESC LIMIT $1");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    with_products(&mut conn, rows).await
}

/// Attaches each promotion's product ids (sorted), one query per 100 promotions.
async fn with_products(
    conn: &mut Conn,
    rows: Vec<PromotionRow>,
) -> Result<Vec<Promotion>, DbError> {
    let mut products: HashMap<String, Vec<String>> = HashMap::new();
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for chunk in ids.chunks(100) {
        let sql = format!(
            "SELECT promotion_id, product_id FROM promotion_products
             WHERE promotion_id IN ({}) ORDER BY product_id",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for (promotion_id, product_id) in query.fetch_all(&mut *conn).await? {
            products.entry(promotion_id).or_default().push(product_id);
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let ids = products.remove(&row.0).unwrap_or_default();
            to_promotion(row, ids)
        })
        .collect())
}

/// For each of `product_ids` in an active promotion at `now`, the best one: the highest
/// discount; on a tie the one lasting longest, then the highest id, so every read agrees.
pub async fn best_active(
    conn: &mut Conn,
    product_ids: &[String],
    now: i64,
) -> Result<HashMap<String, ActivePromotion>, DbError> {
    let mut best: HashMap<String, ActivePromotion> = HashMap::new();
    for chunk in product_ids.chunks(100) {
        let sql = format!(
            "SELECT pp.product_id, p.id, p.title, p.percent_off, p.ends_at
             FROM promotion_products pp JOIN promotions p ON p.id = pp.promotion_id
             WHERE pp.product_id IN ({}) AND p.starts_at <= $1 AND p.ends_at > $1",
            placeholders(2, chunk.len())
        );
        let mut query =
            sqlx::query_as::<_, (String, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql))
                .bind(now);
        for id in chunk {
            query = query.bind(id);
        }
        for (product_id, id, title, percent_off, ends_at) in query.fetch_all(&mut *conn).await? {
            let candidate = ActivePromotion {
                id,
                title,
                percent_off,
                ends_at,
            };
            let rank = |p: &ActivePromotion| (p.percent_off, p.ends_at, p.id.clone());
            match best.get(&product_id) {
                Some(current) if rank(current) >= rank(&candidate) => {}
                _ => {
                    best.insert(product_id, candidate);
                }
            }
        }
    }
    Ok(best)
}
