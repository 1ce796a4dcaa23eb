//! Stock, as the order saga takes and returns it. Every change made one order at a time is one
//! conditional statement, so concurrent writers can never take stock below zero (the CHECK
//! constraint is the second line); the set-based path reads its products locked and writes
//! their final stock once.

use std::collections::HashMap;

use bazaar_db::params::{ROWS_PER_STATEMENT, case_by_key, placeholders};
use bazaar_db::{DbError, Tx, now_millis, sqlx};

/// A product as the saga sees it: its units, whether it is still sold, its name for a refusal.
#[derive(Debug, Clone)]
pub struct Level {
    pub name: String,
    pub stock: i64,
    pub sold: bool,
}

/// True where row locks matter: on PostgreSQL. SQLite's one writer already excludes everyone
/// else, so there the batch need not even be read for product ids.
pub fn takes_row_locks(tx: &Tx) -> bool {
    tx.backend_name() == "PostgreSQL"
}

/// Locks the rows of `ids` in id order (see [`takes_row_locks`]), so transactions that take
/// stock of several products never deadlock.
pub async fn lock_in_order(tx: &mut Tx, mut ids: Vec<String>) -> Result<(), DbError> {
    if ids.is_empty() || !takes_row_locks(tx) {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let lock = format!(
        "SELECT id FROM products WHERE id IN ({}) ORDER BY id FOR UPDATE",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(lock));
    for id in &ids {
        query = query.bind(id);
    }
    query.fetch_all(&mut **tx).await?;
    Ok(())
}

/// Takes `quantity` units of a live product if that many are in stock; the new stock, or
/// `None` when the product is absent, deleted or short.
pub async fn take_stock(tx: &mut Tx, id: &str, quantity: i64) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE products SET stock = stock - $2, updated_at = $3
         WHERE id = $1 AND deleted_at IS NULL AND stock >= $2 RETURNING stock",
    )
    .bind(id)
    .bind(quantity)
    .bind(now_millis())
    .fetch_optional(&mut **tx)
    .await?)
}

/// Returns units taken earlier, deleted product or not: stock that was reserved was real.
/// The new stock, or `None` if the row is gone (products are never hard-deleted).
pub async fn put_back_stock(tx: &mut Tx, id: &str, quantity: i64) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE products SET stock = stock + $2, updated_at = $3 WHERE id = $1 RETURNING stock",
    )
    .bind(id)
    .bind(quantity)
    .bind(now_millis())
    .fetch_optional(&mut **tx)
    .await?)
}

/// The stock of those of `ids` that exist, locked for this transaction where row locks matter.
pub async fn levels(tx: &mut Tx, ids: &[String]) -> Result<HashMap<String, Level>, DbError> {
    let lock = if takes_row_locks(tx) {
        " ORDER BY id FOR UPDATE"
    } else {
        ""
    };
    // In id order across chunks too, so that rows are always locked in one order.
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut levels = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let select = format!(
            "SELECT id, name, stock, deleted_at FROM products WHERE id IN ({}){lock}",
            placeholders(1, chunk.len())
        );
        let mut query =
            sqlx::query_as::<_, (String, String, i64, Option<i64>)>(sqlx::AssertSqlSafe(select));
        for id in chunk {
            query = query.bind(id);
        }
        for (id, name, stock, deleted_at) in query.fetch_all(&mut **tx).await? {
            let sold = deleted_at.is_none();
            levels.insert(id, Level { name, stock, sold });
        }
    }
    Ok(levels)
}

/// Sets each product's stock to the number given, in one statement per
/// [`ROWS_PER_STATEMENT`] products. Only for rows read with [`levels`] in this transaction.
pub async fn set_stock(tx: &mut Tx, stock: &[(&str, i64)]) -> Result<(), DbError> {
    for chunk in stock.chunks(ROWS_PER_STATEMENT) {
        let (stock, ids) = case_by_key("id", 2, chunk.len());
        let update =
            format!("UPDATE products SET stock = {stock}, updated_at = $1 WHERE id IN ({ids})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update)).bind(now_millis());
        for (id, units) in chunk {
            query = query.bind(*id).bind(*units);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
