//! Order rules with no I/O: the one status state machine, and request values parsed once at
//! the edge (order lines, idempotency keys, addresses, totals). Errors name the input field.

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_contracts::ApiError;
use bazaar_contracts::orders::{OrderLineRequest, OrderStatus};
use bazaar_contracts::users::Address;
pub use bazaar_contracts::validate::address;
use sha2::{Digest, Sha256};

/// Most lines one order may have (before duplicates are merged).
pub const MAX_LINES: usize = 100;
/// Most units of one product in one order.
pub const MAX_QUANTITY: i64 = 10_000;
/// Largest order total: totals travel as GraphQL `Int`, which is 32-bit.
pub const MAX_TOTAL_CENTS: i64 = 2_000_000_000;

/// True when the state machine allows `from` → `to`. Every status change goes through here.
pub fn can_move(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (Pending, Confirmed)
            | (Pending, Rejected)
            | (Pending, Cancelled)
            | (Confirmed, Paid)
            | (Confirmed, Cancelled)
            | (Paid, Shipped)
            | (Paid, Cancelled)
            | (Shipped, Delivered)
    )
}

/// The state machine as a BAD_USER_INPUT on `field` when the move is not allowed.
pub fn check_transition(from: OrderStatus, to: OrderStatus, field: &str) -> Result<(), ApiError> {
    if can_move(from, to) {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            field,
            format!(
                "cannot move order from {} to {}",
                from.as_str(),
                to.as_str()
            ),
        ))
    }
}

/// A quantity one order line may carry: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub fn parse(raw: i64, field: &str) -> Result<Quantity, ApiError> {
        if !(1..=MAX_QUANTITY).contains(&raw) {
            return Err(ApiError::bad_input(
                field,
                format!("{field}: must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        Ok(Quantity(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One product of an order after duplicates were merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product_id: String,
    pub quantity: Quantity,
    /// Index of the product's first line in the request, for error fields.
    pub index: usize,
}

/// The lines of an order: 1 to [`MAX_LINES`] requested, one per product, sorted by product id
/// (so that equal requests compare and hash equal whatever their line order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<Line>);

impl OrderLines {
    pub fn parse(raw: &[OrderLineRequest]) -> Result<OrderLines, ApiError> {
        if raw.is_empty() || raw.len() > MAX_LINES {
            return Err(ApiError::bad_input(
                "input.items",
                format!("input.items: must have 1 to {MAX_LINES} lines"),
            ));
        }
        let mut merged: BTreeMap<String, Line> = BTreeMap::new();
        for (i, line) in raw.iter().enumerate() {
            let id_field = format!("input.items[{i}].productId");
            let qty_field = format!("input.items[{i}].quantity");
            let product_id = line.product_id.trim();
            if product_id.is_empty() {
                return Err(ApiError::bad_input(
                    &id_field,
                    format!("{id_field}: must not be empty"),
                ));
            }
            if product_id.len() > 100 || product_id.chars().any(char::is_control) {
                return Err(ApiError::bad_input(
                    &id_field,
                    format!("{id_field}: is not a product id"),
                ));
            }
            let quantity = Quantity::parse(line.quantity, &qty_field)?;
            match merged.get_mut(product_id) {
                // A repeated product is one line; the sum obeys the same bound as any line.
                Some(existing) => {
                    existing.quantity =
                        Quantity::parse(existing.quantity.get() + quantity.get(), &qty_field)?
                }
                None => {
                    merged.insert(
                        product_id.to_owned(),
                        Line {
                            product_id: product_id.to_owned(),
                            quantity,
                            index: i,
                        },
                    );
                }
            }
        }
        Ok(OrderLines(merged.into_values().collect()))
    }

    pub fn lines(&self) -> &[Line] {
        &self.0
    }

    pub fn product_ids(&self) -> Vec<String> {
        self.0.iter().map(|l| l.product_id.clone()).collect()
    }
}

/// A client-chosen key that makes retrying `placeOrder` safe: 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<IdempotencyKey, ApiError> {
        const FIELD: &str = "input.idempotencyKey";
        let n = raw.chars().count();
        if n == 0 || n > 255 {
            return Err(ApiError::bad_input(
                FIELD,
                format!("{FIELD}: must be 1 to 255 characters"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(ApiError::bad_input(
                FIELD,
                format!("{FIELD}: must not contain control characters"),
            ));
        }
        Ok(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Fingerprint of what a `placeOrder` asked for, stored with its idempotency key: SHA-256 of
/// a canonical JSON of the merged, sorted lines and the address given (if any).
pub fn request_hash(lines: &OrderLines, address: Option<&Address>) -> String {
    #[derive(serde::Serialize)]
    struct Canonical<'a> {
        items: Vec<(&'a str, i64)>,
        shipping_address: Option<&'a Address>,
    }
    let canonical = Canonical {
        items: lines
            .lines()
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity.get()))
            .collect(),
        shipping_address: address,
    };
    // Serialising plain structs, strings and integers cannot fail.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Σ quantity × unit price, refusing totals a GraphQL `Int` cannot carry.
pub fn order_total(priced: impl IntoIterator<Item = (i64, i64)>) -> Result<i64, ApiError> {
    let too_large = || ApiError::bad_input("input.items", "input.items: order total too large");
    let mut total: i64 = 0;
    for (quantity, unit_price) in priced {
        let line = quantity.checked_mul(unit_price).ok_or_else(too_large)?;
        total = total.checked_add(line).ok_or_else(too_large)?;
    }
    if total > MAX_TOTAL_CENTS {
        return Err(too_large());
    }
    Ok(total)
}

/// How often the unpaid-order sweeper looks: a quarter of the payment window, between 1 s and
/// 30 s, so an expired order is cancelled within about a quarter window of expiring.
pub fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn line(id: &str, quantity: i64) -> OrderLineRequest {
        OrderLineRequest {
            product_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn only_listed_transitions_are_allowed() {
        let allowed = [
            (Pending, Confirmed),
            (Pending, Rejected),
            (Pending, Cancelled),
            (Confirmed, Paid),
            (Confirmed, Cancelled),
            (Paid, Shipped),
            (Paid, Cancelled),
            (Shipped, Delivered),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    can_move(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        let err = check_transition(Shipped, Cancelled, "id").unwrap_err();
        assert_eq!(err.message, "cannot move order from SHIPPED to CANCELLED");
        assert_eq!(err.field.as_deref(), Some("id"));
    }

    #[test]
    fn lines_are_checked_merged_and_sorted() {
        let lines = OrderLines::parse(&[line("b", 2), line(" a ", 1), line("b", 3)]).unwrap();
        let got: Vec<(&str, i64, usize)> = lines
            .lines()
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity.get(), l.index))
            .collect();
        assert_eq!(got, vec![("a", 1, 1), ("b", 5, 0)]);
        let field = |r: Result<OrderLines, ApiError>| r.unwrap_err().field.unwrap();
        assert_eq!(field(OrderLines::parse(&[])), "input.items");
        assert_eq!(
            field(OrderLines::parse(&vec![line("a", 1); 101])),
            "input.items"
        );
        assert_eq!(
            field(OrderLines::parse(&[line("a", 1), line(" ", 1)])),
            "input.items[1].productId"
        );
        assert_eq!(
            field(OrderLines::parse(&[line("a", 0)])),
            "input.items[0].quantity"
        );
        assert_eq!(
            field(OrderLines::parse(&[line("a", 10_001)])),
            "input.items[0].quantity"
        );
        assert_eq!(
            field(OrderLines::parse(&[line("a", 9_000), line("a", 2_000)])),
            "input.items[1].quantity"
        );
    }

    #[test]
    fn hash_ignores_line_order_but_not_content() {
        let a = OrderLines::parse(&[line("x", 1), line("y", 2)]).unwrap();
        let b = OrderLines::parse(&[line("y", 1), line("x", 1), line("y", 1)]).unwrap();
        let c = OrderLines::parse(&[line("x", 1), line("y", 3)]).unwrap();
        assert_eq!(request_hash(&a, None), request_hash(&b, None));
        assert_ne!(request_hash(&a, None), request_hash(&c, None));
        let addr = Address {
            line1: "1 St".into(),
            line2: None,
            city: "C".into(),
            postal_code: "1".into(),
            country: "X".into(),
        };
        assert_ne!(request_hash(&a, None), request_hash(&a, Some(&addr)));
    }

    #[test]
    fn totals_are_checked() {
        assert_eq!(order_total([(2, 150), (1, 99)]).unwrap(), 399);
        assert!(order_total([(10_000, 200_001)]).is_err());
        assert!(order_total([(2, i64::MAX)]).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert_eq!(
            sweep_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(1800)),
            Duration::from_secs(30)
        );
    }
}
