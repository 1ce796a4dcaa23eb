//! Products and their stock. Every stock change is one conditional statement, so concurrent
//! writers can never take stock below zero (the CHECK constraint is the second line).
//! Every product read also prices the product at the best promotion active at that moment.

use std::collections::HashSet;

use bazaar_contracts::catalog::Product;
use bazaar_db::{Db, DbError, Tx, now_millis, sqlx};

use crate::domain::promotions::discounted;
use crate::domain::{ListFilter, MAX_AMOUNT, NewProduct, ProductChanges};
use crate::store::promotions;

type Conn = sqlx::AnyConnection;

const PRODUCT_COLUMNS: &str = "id, name, description, category, price_cents, stock, deleted_at, \
     created_at, updated_at, rating_sum, rating_count";

type ProductRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
);

/// The product as stored, at its list price; [`finish`] applies promotions.
fn to_product(row: ProductRow) -> Product {
    let (
        id,
        name,
        description,
        category,
        price_cents,
        stock,
        deleted_at,
        created_at,
        updated_at,
        rating_sum,
        rating_count,
    ) = row;
    Product {
        id,
        name,
        description,
        category,
        price_cents,
        effective_price_cents: price_cents,
        active_promotion: None,
        rating_average: (rating_count > 0).then(|| rating_sum as f64 / rating_count as f64),
        rating_count,
        stock,
        deleted_at,
        created_at,
        updated_at,
    }
}

/// Products from `rows`, priced now. Promotions start and end by the clock without any write,
/// so the price is worked out at every read rather than stored: one extra query per batch.
async fn finish(conn: &mut Conn, rows: Vec<ProductRow>) -> Result<Vec<Product>, DbError> {
    let mut products: Vec<Product> = rows.into_iter().map(to_product).collect();
    let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
    let mut best = promotions::best_active(conn, &ids, now_millis()).await?;
    for product in &mut products {
        if let Some(promotion) = best.remove(&product.id) {
            product.effective_price_cents = discounted(product.price_cents, promotion.percent_off);
            product.active_promotion = Some(promotion);
        }
    }
    Ok(products)
}

async fn finish_one(conn: &mut Conn, row: Option<ProductRow>) -> Result<Option<Product>, DbError> {
    Ok(match row {
        Some(row) => finish(conn, vec![row]).await?.pop(),
        None => None,
    })
}

pub async fn insert(tx: &mut Tx, id: &str, p: &NewProduct) -> Result<Product, DbError> {
    let sql = format!(
        "INSERT INTO products (id, name, description, category, price_cents, stock, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {PRODUCT_COLUMNS}"
    );
    let row: ProductRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.category)
        .bind(p.price_cents)
        .bind(p.stock)
        .bind(now_millis())
        .fetch_one(&mut **tx)
        .await?;
    // A product created this instant is in no promotion yet: the list price stands.
    Ok(to_product(row))
}

/// The product, deleted or not.
pub async fn by_id(db: &Db, id: &str) -> Result<Option<Product>, DbError> {
    by_id_conn(&mut *db.pool().acquire().await?, id).await
}

/// The product, deleted or not, as this transaction sees it.
pub async fn by_id_tx(tx: &mut Tx, id: &str) -> Result<Option<Product>, DbError> {
    by_id_conn(tx, id).await
}

async fn by_id_conn(conn: &mut Conn, id: &str) -> Result<Option<Product>, DbError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1");
    let row: Option<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    finish_one(conn, row).await
}

pub async fn by_ids(
    db: &Db,
    ids: &[String],
    include_deleted: bool,
) -> Result<Vec<Product>, DbError> {
    by_ids_conn(&mut *db.pool().acquire().await?, ids, include_deleted).await
}

/// The products as this transaction sees them (for events announcing their new state).
pub async fn by_ids_tx(
    tx: &mut Tx,
    ids: &[String],
    include_deleted: bool,
) -> Result<Vec<Product>, DbError> {
    by_ids_conn(tx, ids, include_deleted).await
}

async fn by_ids_conn(
    conn: &mut Conn,
    ids: &[String],
    include_deleted: bool,
) -> Result<Vec<Product>, DbError> {
    let mut products = Vec::with_capacity(ids.len());
    // Batches come from the gateway's DataLoader, bounded in size; one query per 100 ids.
    for chunk in ids.chunks(100) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let live = if include_deleted {
            ""
        } else {
            " AND deleted_at IS NULL"
        };
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({}){live} ORDER BY id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        products.extend(finish(conn, rows).await?);
    }
    Ok(products)
}

/// Which of `ids` are live products, as this transaction sees them.
pub async fn live_ids(tx: &mut Tx, ids: &[String]) -> Result<HashSet<String>, DbError> {
    let mut live = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id FROM products WHERE id IN ({}) AND deleted_at IS NULL",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        live.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(live)
}

/// Locks a live product's row for the rest of the transaction (a no-op write: portable where
/// `SELECT ... FOR UPDATE` is not). Rating writers take it first, so two reviews of the same
/// product are applied one after the other. False when the product is absent or deleted.
pub async fn lock_live(tx: &mut Tx, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE products SET rating_count = rating_count WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the running rating totals; relative, so concurrent writers never lose an update.
/// `updated_at` stays: a new review is not an edit of the product.
pub async fn add_rating(
    tx: &mut Tx,
    id: &str,
    sum_delta: i64,
    count_delta: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE products SET rating_sum = rating_sum + $2, rating_count = rating_count + $3
         WHERE id = $1",
    )
    .bind(id)
    .bind(sum_delta)
    .bind(count_delta)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies `changes` to a live product in one statement, so two admins editing different
/// fields at once both keep their edit. `None` when the product is absent or deleted.
pub async fn update(
    tx: &mut Tx,
    id: &str,
    changes: &ProductChanges,
) -> Result<Option<Product>, DbError> {
    let sql = format!(
        "UPDATE products SET
             name = COALESCE(CAST($2 AS TEXT), name),
             description = COALESCE(CAST($3 AS TEXT), description),
             category = COALESCE(CAST($4 AS TEXT), category),
             price_cents = COALESCE(CAST($5 AS BIGINT), price_cents),
             updated_at = $6
         WHERE id = $1 AND deleted_at IS NULL RETURNING {PRODUCT_COLUMNS}"
    );
    let row: Option<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(changes.name.clone())
        .bind(changes.description.clone())
        .bind(changes.category.clone())
        .bind(changes.price_cents)
        .bind(now_millis())
        .fetch_optional(&mut **tx)
        .await?;
    finish_one(tx, row).await
}

/// Marks a live product deleted; false when it was absent or already deleted.
pub async fn soft_delete(tx: &mut Tx, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE products SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds `delta` to a live product's stock unless the result would leave 0..=MAX_AMOUNT.
/// `None` when nothing changed (absent, deleted, or out of range: the caller tells which).
pub async fn adjust_stock(tx: &mut Tx, id: &str, delta: i64) -> Result<Option<Product>, DbError> {
    let sql = format!(
        "UPDATE products SET stock = stock + $2, updated_at = $3
         WHERE id = $1 AND deleted_at IS NULL AND stock + $2 >= 0 AND stock + $2 <= $4
         RETURNING {PRODUCT_COLUMNS}"
    );
    let row: Option<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(delta)
        .bind(now_millis())
        .bind(MAX_AMOUNT)
        .fetch_optional(&mut **tx)
        .await?;
    finish_one(tx, row).await
}

/// A bind value of a query assembled from optional filters.
enum Arg {
    Text(String),
    Int(i64),
}

/// `WHERE` clause and its arguments for the listing filters, the cursor only when asked for.
fn filters(filter: &ListFilter, with_cursor: bool) -> (String, Vec<Arg>) {
    let mut clauses = vec!["deleted_at IS NULL".to_owned()];
    let mut args = Vec::new();
    if with_cursor {
        args.push(Arg::Text(filter.after.clone().unwrap_or_default()));
        clauses.push(format!("id > ${}", args.len()));
    }
    if let Some(category) = &filter.category {
        args.push(Arg::Text(category.clone()));
        clauses.push(format!("category = ${}", args.len()));
    }
    if let Some(pattern) = &filter.search {
        args.push(Arg::Text(pattern.clone()));
        let n = args.len();
        clauses.push(format!(
            "(LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(description) LIKE ${n} ESCAPE '\\')"
        ));
    }
    (clauses.join(" AND "), args)
}

fn bind_all<'q, O>(
    mut query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s),
            Arg::Int(i) => query.bind(i),
        };
    }
    query
}

/// A page of live products in id order (ids are time-ordered, so new products land at the
/// end and never shift a page a client is walking through), whether more follow, and the
/// total matching the filters.
pub async fn list(db: &Db, filter: &ListFilter) -> Result<(Vec<Product>, bool, i64), DbError> {
    let mut conn = db.pool().acquire().await?;
    let (where_page, mut args) = filters(filter, true);
    args.push(Arg::Int(filter.first + 1));
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE {where_page} ORDER BY id LIMIT ${}",
        args.len()
    );
    let mut rows: Vec<ProductRow> = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args)
        .fetch_all(&mut *conn)
        .await?;
    let has_next = rows.len() as i64 > filter.first;
    rows.truncate(filter.first as usize);
    let (where_all, args) = filters(filter, false);
    let sql = format!("SELECT COUNT(*) FROM products WHERE {where_all}");
    let (total,): (i64,) = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args)
        .fetch_one(&mut *conn)
        .await?;
    Ok((finish(&mut conn, rows).await?, has_next, total))
}
