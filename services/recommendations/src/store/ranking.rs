//! The ranking queries: products co-purchased with what a user bought, and best sellers, both
//! limited to products the replica knows as live and in stock, never what the user bought.

use bazaar_db::{DbError, sqlx};

use super::Conn;

/// A recommendable product: its id and name.
pub type Ranked = (String, String);

/// Products bought together with `user_id`'s purchases, by summed co-purchase weight, then
/// popularity, then id (so equal scores still rank the same way every time).
pub async fn co_purchased(
    conn: &mut Conn,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Ranked>, DbError> {
    // COALESCE keeps never-sold products last on both engines (they order NULLs differently).
    Ok(sqlx::query_as(
        "SELECT c.product_b, p.name
         FROM purchases mine
         JOIN co_purchases c ON c.product_a = mine.product_id
         JOIN products p ON p.product_id = c.product_b AND p.deleted = 0 AND p.stock > 0
         LEFT JOIN popularity pop ON pop.product_id = c.product_b
         WHERE mine.user_id = $1
           AND NOT EXISTS (
               SELECT 1 FROM purchases b WHERE b.user_id = $1 AND b.product_id = c.product_b)
         GROUP BY c.product_b, p.name
         ORDER BY SUM(c.weight) DESC, MAX(COALESCE(pop.units, 0)) DESC, c.product_b
         LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The most sold live, in-stock products, most units first; `user_id`'s purchases left out
/// when given. Products never sold are not best sellers and are not listed.
pub async fn best_sellers(
    conn: &mut Conn,
    user_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Ranked>, DbError> {
    // An absent user binds NULL, which equals no row: nothing is excluded.
    Ok(sqlx::query_as(
        "SELECT pop.product_id, p.name
         FROM popularity pop
         JOIN products p ON p.product_id = pop.product_id AND p.deleted = 0 AND p.stock > 0
         WHERE NOT EXISTS (
             SELECT 1 FROM purchases b WHERE b.user_id = $1 AND b.product_id = pop.product_id)
         ORDER BY pop.units DESC, pop.product_id
         LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
