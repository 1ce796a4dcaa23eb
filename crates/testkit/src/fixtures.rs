//! Values a service's tests feed in as if another service had sent them.

use bazaar_contracts::orders::OrderItem;

/// Order lines of `(product id, quantity)` at 100 cents a unit, named as the orders service
/// would copy them from the catalogue ("product <id>").
pub fn order_items(lines: &[(&str, i64)]) -> Vec<OrderItem> {
    lines
        .iter()
        .map(|(id, quantity)| OrderItem {
            product_id: (*id).into(),
            name: format!("product {id}"),
            quantity: *quantity,
            unit_price_cents: 100,
        })
        .collect()
}
