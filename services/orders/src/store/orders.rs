//! Orders and their lines. Status changes are conditional on the status the caller saw, so
//! two writers (a replica's sweeper, a payment, an event) can never both move one order.

use std::collections::HashMap;

use bazaar_contracts::orders::{Order, OrderItem, OrderStatus};
use bazaar_contracts::users::Address;
use bazaar_db::params::placeholders;
use bazaar_db::{DbError, Dialect, Tx, sqlx};

use super::Conn;

const ORDER_COLUMNS: &str = "id, user_id, status, status_reason, total_cents, shipping_address, charge_id, created_at, updated_at";

type OrderRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    i64,
    i64,
);

/// An order with what only this service needs to know about it.
pub struct StoredOrder {
    pub order: Order,
    /// The payment to refund if a paid order is cancelled.
    pub charge_id: Option<String>,
}

fn corrupt(what: String) -> DbError {
    DbError::Sqlx(sqlx::Error::Decode(what.into()))
}

fn to_order(row: OrderRow, items: Vec<OrderItem>) -> Result<StoredOrder, DbError> {
    let (
        id,
        user_id,
        status,
        status_reason,
        total_cents,
        address,
        charge_id,
        created_at,
        updated_at,
    ) = row;
    let status = OrderStatus::parse(&status)
        .ok_or_else(|| corrupt(format!("order {id} has status {status:?}")))?;
    let shipping_address = Some(
        serde_json::from_str(&address).map_err(|e| corrupt(format!("order {id} address: {e}")))?,
    );
    let order = Order {
        id,
        user_id,
        status,
        status_reason,
        items,
        total_cents,
        shipping_address,
        created_at,
        updated_at,
    };
    Ok(StoredOrder { order, charge_id })
}

fn address_json(address: &Address) -> String {
    // Serialising a plain struct of strings cannot fail.
    serde_json::to_string(address).unwrap_or_default()
}

pub struct NewOrder<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub total_cents: i64,
    pub shipping_address: &'a Address,
    /// The address was taken from the profile, so later profile changes move it too.
    pub address_from_profile: bool,
    pub items: Vec<OrderItem>,
    pub now: i64,
}

/// Inserts a PENDING order and its lines (prices and names as snapshotted by the caller).
pub async fn insert_order(tx: &mut Tx, new: NewOrder<'_>) -> Result<Order, DbError> {
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, total_cents, shipping_address, address_from_profile,
             created_at, updated_at)
         VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $6)",
    )
    .bind(new.id)
    .bind(new.user_id)
    .bind(new.total_cents)
    .bind(address_json(new.shipping_address))
    .bind(i64::from(new.address_from_profile))
    .bind(new.now)
    .execute(&mut **tx)
    .await?;
    for (line_no, item) in new.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_items (order_id, line_no, product_id, name, quantity, unit_price_cents)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.id)
        .bind(line_no as i64)
        .bind(&item.product_id)
        .bind(&item.name)
        .bind(item.quantity)
        .bind(item.unit_price_cents)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Order {
        id: new.id.to_owned(),
        user_id: new.user_id.to_owned(),
        status: OrderStatus::Pending,
        status_reason: None,
        items: new.items,
        total_cents: new.total_cents,
        shipping_address: Some(new.shipping_address.clone()),
        created_at: new.now,
        updated_at: new.now,
    })
}

/// The lines of each of `ids`, in line order.
async fn items_of(
    conn: &mut Conn,
    ids: &[&str],
) -> Result<HashMap<String, Vec<OrderItem>>, DbError> {
    let mut items: HashMap<String, Vec<OrderItem>> = HashMap::new();
    if ids.is_empty() {
        return Ok(items);
    }
    let sql = format!(
        "SELECT order_id, product_id, name, quantity, unit_price_cents FROM order_items
         WHERE order_id IN ({}) ORDER BY order_id, line_no",
        placeholders(1, ids.len())
    );
    let mut query =
        sqlx::query_as::<_, (String, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    for (order_id, product_id, name, quantity, unit_price_cents) in
        query.fetch_all(&mut *conn).await?
    {
        items.entry(order_id).or_default().push(OrderItem {
            product_id,
            name,
            quantity,
            unit_price_cents,
        });
    }
    Ok(items)
}

pub async fn order_by_id(conn: &mut Conn, id: &str) -> Result<Option<StoredOrder>, DbError> {
    Ok(orders_by_ids(conn, &[id]).await?.remove(id))
}

/// Those of `ids` that exist, by id.
pub async fn orders_by_ids(
    conn: &mut Conn,
    ids: &[&str],
) -> Result<HashMap<String, StoredOrder>, DbError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut items = items_of(conn, ids).await?;
    rows.into_iter()
        .map(|row| {
            let lines = items.remove(&row.0).unwrap_or_default();
            to_order(row, lines).map(|stored| (stored.order.id.clone(), stored))
        })
        .collect()
}

/// How many of `user_id`'s orders are PENDING or CONFIRMED (placed, not yet paid), holding
/// the customer's lock until the transaction ends so that the count and the insert that
/// follows are one step (SQLite runs one writer at a time anyway; PostgreSQL takes a
/// transaction-scoped advisory lock on the customer).
pub async fn open_orders(conn: &mut Conn, dialect: Dialect, user_id: &str) -> Result<u64, DbError> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7413, hashtext($1))")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE user_id = $1 AND status IN ('PENDING', 'CONFIRMED')",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count as u64)
}

/// Ids of confirmed orders whose payment window opened before `confirmed_before`, oldest first.
pub async fn expired_confirmed(
    conn: &mut Conn,
    confirmed_before: i64,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM orders WHERE status = 'CONFIRMED' AND confirmed_at < $1 ORDER BY confirmed_at LIMIT $2",
    )
    .bind(confirmed_before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Moves the user's not-yet-shipped orders that ship to their profile address to `address`.
/// Orders placed with an explicit address keep it.
pub async fn move_profile_addresses(
    conn: &mut Conn,
    user_id: &str,
    address: &Address,
    at: i64,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE orders SET shipping_address = $2, updated_at = $3
         WHERE user_id = $1 AND address_from_profile = 1 AND status IN ('PENDING', 'CONFIRMED', 'PAID')",
    )
    .bind(user_id)
    .bind(address_json(address))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Which orders a listing covers.
pub struct OrderFilter<'a> {
    /// Only this customer's orders; `None` for every order (admins).
    pub user_id: Option<&'a str>,
    pub status: Option<OrderStatus>,
}

/// A page of orders, newest first (ids are time-ordered), after `after`; with whether more
/// follow and how many match the filter in all.
pub async fn list_orders(
    conn: &mut Conn,
    filter: &OrderFilter<'_>,
    first: i64,
    after: Option<&str>,
) -> Result<(Vec<Order>, bool, i64), DbError> {
    let mut conditions = Vec::new();
    let mut args: Vec<String> = Vec::new();
    if let Some(user_id) = filter.user_id {
        args.push(user_id.to_owned());
        conditions.push(format!("user_id = ${}", args.len()));
    }
    if let Some(status) = filter.status {
        args.push(status.as_str().to_owned());
        conditions.push(format!("status = ${}", args.len()));
    }
    let where_clause = |conditions: &[String]| {
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    };
    let count_sql = format!("SELECT COUNT(*) FROM orders {}", where_clause(&conditions));
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
    for arg in &args {
        count = count.bind(arg.clone());
    }
    let total = count.fetch_one(&mut *conn).await?;

    let mut page_args = args;
    let mut page_conditions = conditions;
    if let Some(after) = after {
        page_args.push(after.to_owned());
        page_conditions.push(format!("id < ${}", page_args.len()));
    }
    let page_sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders {} ORDER BY id DESC LIMIT ${}",
        where_clause(&page_conditions),
        page_args.len() + 1
    );
    let mut page = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(page_sql));
    for arg in &page_args {
        page = page.bind(arg.clone());
    }
    let mut rows = page.bind(first + 1).fetch_all(&mut *conn).await?;
    let has_next = rows.len() as i64 > first;
    rows.truncate(first as usize);

    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut items = items_of(conn, &id_refs).await?;
    let orders = rows
        .into_iter()
        .map(|row| {
            let lines = items.remove(&row.0).unwrap_or_default();
            to_order(row, lines).map(|s| s.order)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((orders, has_next, total))
}
