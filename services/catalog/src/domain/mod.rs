//! Catalog values parsed once at the edge: a `NewProduct` has a real name and a price GraphQL
//! can carry, a `StockDelta` is non-zero, and so on. Errors name the GraphQL input field.

pub mod promotions;
pub mod reviews;

use std::collections::BTreeMap;

use bazaar_contracts::ApiError;
use bazaar_contracts::catalog::{CreateProductRequest, ListProductsRequest, UpdateProductRequest};
use bazaar_contracts::events::StockLine;
use bazaar_contracts::orders::OrderItem;

/// GraphQL `Int` is 32-bit: money and stock above this could not be shown to clients.
pub const MAX_AMOUNT: i64 = 2_000_000_000;
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
const MAX_CATEGORY: usize = 100;
const MAX_SEARCH: usize = 200;
const MAX_PAGE: i64 = 100;

fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_input(field, format!("{field}: {why}"))
}

/// Trimmed text of bounded length; `allow_empty` for free text such as descriptions.
/// Line breaks and tabs are allowed only where `multiline`.
fn text(
    raw: &str,
    field: &str,
    max: usize,
    allow_empty: bool,
    multiline: bool,
) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() && !allow_empty {
        return Err(bad(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(bad(field, format!("must be at most {max} characters")));
    }
    let forbidden = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if value.chars().any(forbidden) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

pub fn name(raw: &str, field: &str) -> Result<String, ApiError> {
    text(raw, field, MAX_NAME, false, false)
}

pub fn description(raw: &str, field: &str) -> Result<String, ApiError> {
    text(raw, field, MAX_DESCRIPTION, true, true)
}

pub fn category(raw: &str, field: &str) -> Result<String, ApiError> {
    text(raw, field, MAX_CATEGORY, false, false)
}

/// A whole amount between 0 and [`MAX_AMOUNT`]: prices in cents and stock levels.
pub fn amount(value: i64, field: &str) -> Result<i64, ApiError> {
    if value < 0 {
        return Err(bad(field, "must not be negative"));
    }
    if value > MAX_AMOUNT {
        return Err(bad(field, format!("must be at most {MAX_AMOUNT}")));
    }
    Ok(value)
}

/// A product about to be created, every field valid.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub stock: i64,
}

impl NewProduct {
    pub fn parse(req: &CreateProductRequest) -> Result<NewProduct, ApiError> {
        Ok(NewProduct {
            name: name(&req.name, "input.name")?,
            description: description(&req.description, "input.description")?,
            category: category(&req.category, "input.category")?,
            price_cents: amount(req.price_cents, "input.priceCents")?,
            stock: amount(req.stock, "input.stock")?,
        })
    }
}

/// The fields an update sets; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price_cents: Option<i64>,
}

impl ProductChanges {
    pub fn parse(req: &UpdateProductRequest) -> Result<ProductChanges, ApiError> {
        Ok(ProductChanges {
            name: req
                .name
                .as_deref()
                .map(|v| name(v, "input.name"))
                .transpose()?,
            description: req
                .description
                .as_deref()
                .map(|v| description(v, "input.description"))
                .transpose()?,
            category: req
                .category
                .as_deref()
                .map(|v| category(v, "input.category"))
                .transpose()?,
            price_cents: req
                .price_cents
                .map(|v| amount(v, "input.priceCents"))
                .transpose()?,
        })
    }
}

/// A stock adjustment: non-zero and small enough that the result stays representable.
pub fn stock_delta(delta: i64) -> Result<i64, ApiError> {
    if delta == 0 {
        return Err(bad("delta", "must not be zero"));
    }
    if delta.abs() > MAX_AMOUNT {
        return Err(bad(
            "delta",
            format!("must be between -{MAX_AMOUNT} and {MAX_AMOUNT}"),
        ));
    }
    Ok(delta)
}

/// A validated listing query. `search` is already a LIKE pattern (see [`like_pattern`]).
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub first: i64,
    pub after: Option<String>,
    pub category: Option<String>,
    pub search: Option<String>,
}

impl ListFilter {
    pub fn parse(req: &ListProductsRequest) -> Result<ListFilter, ApiError> {
        if !(0..=MAX_PAGE).contains(&req.first) {
            return Err(bad("first", format!("must be between 0 and {MAX_PAGE}")));
        }
        let category = req
            .category
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let search = req
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > MAX_SEARCH) {
            return Err(bad(
                "search",
                format!("must be at most {MAX_SEARCH} characters"),
            ));
        }
        Ok(ListFilter {
            first: req.first,
            after: req.after.clone(),
            category: category.map(str::to_owned),
            search: search.map(like_pattern),
        })
    }
}

/// `%text%` in lower case, with the user's own `%`, `_` and `\` escaped so they match
/// literally (the query says `ESCAPE '\'`).
pub fn like_pattern(search: &str) -> String {
    let mut pattern = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// An order's lines merged by product (quantities summed) and sorted by product id: locking
/// rows in one global order keeps concurrent reservations from deadlocking on PostgreSQL.
/// The error is the readable reason the reservation is refused.
pub fn merge_lines(items: &[OrderItem]) -> Result<Vec<StockLine>, String> {
    if items.is_empty() {
        return Err("the order has no items".into());
    }
    let mut merged: BTreeMap<&str, i64> = BTreeMap::new();
    for item in items {
        if item.quantity <= 0 {
            return Err(format!(
                "invalid quantity {} for {}",
                item.quantity, item.product_id
            ));
        }
        let total = merged.entry(&item.product_id).or_insert(0);
        *total = total
            .checked_add(item.quantity)
            .filter(|t| *t <= MAX_AMOUNT)
            .ok_or_else(|| format!("quantity for {} exceeds {MAX_AMOUNT}", item.product_id))?;
    }
    Ok(merged
        .into_iter()
        .map(|(id, quantity)| StockLine {
            product_id: id.to_owned(),
            quantity,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, quantity: i64) -> OrderItem {
        OrderItem {
            product_id: id.into(),
            name: id.into(),
            quantity,
            unit_price_cents: 100,
        }
    }

    #[test]
    fn lines_are_merged_and_sorted() {
        let lines = merge_lines(&[item("b", 1), item("a", 2), item("b", 3)]).unwrap();
        let got: Vec<(&str, i64)> = lines
            .iter()
            .map(|l| (l.product_id.as_str(), l.quantity))
            .collect();
        assert_eq!(got, [("a", 2), ("b", 4)]);
        assert!(merge_lines(&[]).is_err());
        assert!(merge_lines(&[item("a", 0)]).is_err());
        assert!(merge_lines(&[item("a", MAX_AMOUNT), item("a", 1)]).is_err());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Tea"), "%tea%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn errors_name_the_field() {
        let req = CreateProductRequest {
            name: "  ".into(),
            description: String::new(),
            category: "c".into(),
            price_cents: 1,
            stock: 1,
        };
        assert_eq!(
            NewProduct::parse(&req).unwrap_err().field.as_deref(),
            Some("input.name")
        );
        assert_eq!(
            amount(-1, "input.stock").unwrap_err().field.as_deref(),
            Some("input.stock")
        );
        assert_eq!(stock_delta(0).unwrap_err().field.as_deref(), Some("delta"));
        assert!(description("line one\nline two", "input.description").is_ok());
        assert!(name("bad\nname", "input.name").is_err());
    }
}
