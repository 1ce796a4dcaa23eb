//! The product availability replica: name, stock and whether the product was withdrawn, as
//! the catalogue's events report them. Events of one product arrive in emission order, so the
//! latest event simply wins.

use bazaar_db::params::{ROWS_PER_STATEMENT, case_by_key};
use bazaar_db::{DbError, Tx, now_millis, sqlx};

/// Records the full product (created or updated). A withdrawn product stays withdrawn: the
/// catalogue never brings one back, and this keeps a late update from reviving it.
pub async fn upsert_product(
    tx: &mut Tx,
    product_id: &str,
    name: &str,
    stock: i64,
    deleted: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO products (product_id, name, stock, deleted, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, stock = excluded.stock,
             deleted = CASE WHEN products.deleted = 1 THEN 1 ELSE excluded.deleted END,
             updated_at = excluded.updated_at",
    )
    .bind(product_id)
    .bind(name)
    .bind(stock)
    .bind(i64::from(deleted))
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets the stock of each known product, in one statement per [`ROWS_PER_STATEMENT`]; returns
/// how many were known. A product the replica never heard of stays unknown (it is not
/// recommended until its `ProductCreated` arrives with the stock).
pub async fn set_stocks(tx: &mut Tx, levels: &[(&str, i64)]) -> Result<u64, DbError> {
    let mut known = 0;
    for chunk in levels.chunks(ROWS_PER_STATEMENT) {
        let (stock, ids) = case_by_key("product_id", 2, chunk.len());
        let update = format!(
            "UPDATE products SET stock = {stock}, updated_at = $1 WHERE product_id IN ({ids})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update)).bind(now_millis());
        for (id, units) in chunk {
            query = query.bind(*id).bind(*units);
        }
        known += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(known)
}

/// Marks the product withdrawn, recording it even when unknown so that nothing arriving later
/// can list it.
pub async fn delete_product(tx: &mut Tx, product_id: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO products (product_id, name, stock, deleted, updated_at) VALUES ($1, '', 0, 1, $2)
         ON CONFLICT (product_id) DO UPDATE SET deleted = 1, updated_at = excluded.updated_at",
    )
    .bind(product_id)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
