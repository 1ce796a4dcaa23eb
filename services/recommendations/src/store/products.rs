//! The product availability replica: name, stock and whether the product was withdrawn, as
//! the catalogue's events report them. Events of one product arrive in emission order, so the
//! latest event simply wins.

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

/// Sets the stock of a known product; false when the replica has never heard of it (it is
/// then not recommended until its `ProductCreated` arrives with the stock).
pub async fn set_stock(tx: &mut Tx, product_id: &str, stock: i64) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE products SET stock = $2, updated_at = $3 WHERE product_id = $1")
        .bind(product_id)
        .bind(stock)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
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
