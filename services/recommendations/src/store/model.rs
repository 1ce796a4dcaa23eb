//! The purchase history and the item-to-item co-purchase model, updated incrementally as
//! orders are confirmed: one upsert per purchased product and per co-purchased pair.

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
/// model. Pairs are formed against what the user bought before this order, so it must run
/// once per order: the consumer's inbox sees to that.
pub async fn record_order(
    tx: &mut Tx,
    user_id: &str,
    purchases: &[Purchase],
) -> Result<(), DbError> {
    let earlier = bought_by(tx, user_id).await?;
    let ordered: Vec<String> = purchases.iter().map(|p| p.product_id.clone()).collect();
    for p in purchases {
        sqlx::query(
            "INSERT INTO purchases (user_id, product_id, units) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, product_id) DO UPDATE SET units = purchases.units + excluded.units",
        )
        .bind(user_id)
        .bind(&p.product_id)
        .bind(p.units)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO popularity (product_id, units) VALUES ($1, $2)
             ON CONFLICT (product_id) DO UPDATE SET units = popularity.units + excluded.units",
        )
        .bind(&p.product_id)
        .bind(p.units)
        .execute(&mut **tx)
        .await?;
    }
    // Both directions are stored so that "what goes with A" is one index range on product_a.
    for (a, b) in co_purchase_pairs(&ordered, &earlier) {
        for (from, to) in [(&a, &b), (&b, &a)] {
            sqlx::query(
                "INSERT INTO co_purchases (product_a, product_b, weight) VALUES ($1, $2, 1)
                 ON CONFLICT (product_a, product_b) DO UPDATE SET weight = co_purchases.weight + 1",
            )
            .bind(from)
            .bind(to)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
