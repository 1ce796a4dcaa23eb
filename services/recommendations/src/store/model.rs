//! The purchase history and the item-to-item co-purchase model, updated incrementally as
//! orders are confirmed: one multi-row upsert each for the purchases, popularity and the
//! co-purchased pairs of an order.

use bazaar_db::params::{ROWS_PER_STATEMENT, value_rows};
use bazaar_db::{DbError, Tx, sqlx};

use super::Conn;
use crate::domain::co_purchase_pairs;

/// One product of a confirmed order, its lines merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub product_id: String,
    pub units: i64,
}

/// The products `user_id` has bought, in id order.
pub async fn bought_by(conn: &mut Conn, user_id: &str) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT product_id FROM purchases WHERE user_id = $1 ORDER BY product_id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Adds a confirmed order of `user_id` to the history, to popularity and to the co-purchase
/// model, in one statement each whatever the number of pairs. Pairs are formed against what
/// the user bought before this order, so it must run once per order: the consumer's inbox
/// sees to that.
pub async fn record_order(
    tx: &mut Tx,
    user_id: &str,
    purchases: &[Purchase],
) -> Result<(), DbError> {
    if purchases.is_empty() {
        return Ok(());
    }
    let earlier = bought_by(tx, user_id).await?;
    let ordered: Vec<String> = purchases.iter().map(|p| p.product_id.clone()).collect();
    // Merged lines name each product once, so no row is upserted twice in one statement.
    let history = format!(
        "INSERT INTO purchases (user_id, product_id, units) VALUES {}
         ON CONFLICT (user_id, product_id) DO UPDATE SET units = purchases.units + excluded.units",
        value_rows(1, purchases.len(), 3)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(history));
    for p in purchases {
        query = query.bind(user_id).bind(&p.product_id).bind(p.units);
    }
    query.execute(&mut **tx).await?;
    let popularity = format!(
        "INSERT INTO popularity (product_id, units) VALUES {}
         ON CONFLICT (product_id) DO UPDATE SET units = popularity.units + excluded.units",
        value_rows(1, purchases.len(), 2)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(popularity));
    for p in purchases {
        query = query.bind(&p.product_id).bind(p.units);
    }
    query.execute(&mut **tx).await?;
    // Both directions are stored so that "what goes with A" is one index range on product_a.
    let pairs = co_purchase_pairs(&ordered, &earlier);
    let directed: Vec<(&String, &String)> =
        pairs.iter().flat_map(|(a, b)| [(a, b), (b, a)]).collect();
    for chunk in directed.chunks(ROWS_PER_STATEMENT) {
        let upsert = format!(
            "INSERT INTO co_purchases (product_a, product_b, weight) VALUES {}
             ON CONFLICT (product_a, product_b) DO UPDATE SET weight = co_purchases.weight + 1",
            value_rows(1, chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(upsert));
        for (from, to) in chunk {
            query = query.bind(*from).bind(*to).bind(1_i64);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
