//! Promotion values parsed once at the edge: a `NewPromotion` has a title, a sane discount, a
//! bounded set of products and a window that has not already closed.

use std::collections::BTreeSet;

use bazaar_contracts::ApiError;
use bazaar_contracts::catalog::CreatePromotionRequest;

use super::{bad, name};

const MAX_PERCENT_OFF: i64 = 90;
const MAX_PRODUCTS: usize = 100;

/// A promotion about to be created. Product ids are deduplicated and sorted, the order reads
/// return them in, so the created promotion and a later read of it look the same.
#[derive(Debug, Clone)]
pub struct NewPromotion {
    pub title: String,
    pub product_ids: Vec<String>,
    pub percent_off: i64,
    pub starts_at: i64,
    pub ends_at: i64,
}

impl NewPromotion {
    /// Parses `req` as of `now` (unix milliseconds). Whether the products exist is the
    /// store's question, asked inside the creating transaction.
    pub fn parse(req: &CreatePromotionRequest, now: i64) -> Result<NewPromotion, ApiError> {
        let title = name(&req.title, "input.title")?;
        if !(1..=MAX_PERCENT_OFF).contains(&req.percent_off) {
            return Err(bad(
                "input.percentOff",
                format!("must be between 1 and {MAX_PERCENT_OFF}"),
            ));
        }
        if req.product_ids.is_empty() || req.product_ids.len() > MAX_PRODUCTS {
            return Err(bad(
                "input.productIds",
                format!("must name between 1 and {MAX_PRODUCTS} products"),
            ));
        }
        let product_ids: BTreeSet<String> = req
            .product_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .collect();
        if req.starts_at >= req.ends_at {
            return Err(bad("input.endsAt", "must be after startsAt"));
        }
        if req.ends_at <= now {
            return Err(bad("input.endsAt", "must be in the future"));
        }
        Ok(NewPromotion {
            title,
            product_ids: product_ids.into_iter().collect(),
            percent_off: req.percent_off,
            starts_at: req.starts_at,
            ends_at: req.ends_at,
        })
    }
}

/// The price after `percent_off`, with the discount rounded down to a whole cent: integer
/// arithmetic on minor units, never below zero since `percent_off` is at most 90.
pub fn discounted(price_cents: i64, percent_off: i64) -> i64 {
    price_cents - price_cents * percent_off / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> CreatePromotionRequest {
        CreatePromotionRequest {
            title: " Spring sale ".into(),
            product_ids: vec!["b".into(), "a".into(), "b".into()],
            percent_off: 10,
            starts_at: 0,
            ends_at: 2_000,
        }
    }

    #[test]
    fn parses_and_dedupes() {
        let p = NewPromotion::parse(&req(), 1_000).unwrap();
        assert_eq!(p.title, "Spring sale");
        assert_eq!(p.product_ids, ["a", "b"]);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |f: fn(&mut CreatePromotionRequest)| {
            let mut r = req();
            f(&mut r);
            NewPromotion::parse(&r, 1_000).unwrap_err().field
        };
        assert_eq!(
            field(|r| r.title = " ".into()).as_deref(),
            Some("input.title")
        );
        assert_eq!(
            field(|r| r.percent_off = 0).as_deref(),
            Some("input.percentOff")
        );
        assert_eq!(
            field(|r| r.percent_off = 91).as_deref(),
            Some("input.percentOff")
        );
        assert_eq!(
            field(|r| r.product_ids.clear()).as_deref(),
            Some("input.productIds")
        );
        assert_eq!(
            field(|r| r.starts_at = 2_000).as_deref(),
            Some("input.endsAt")
        );
        assert_eq!(
            field(|r| r.ends_at = 1_000).as_deref(),
            Some("input.endsAt")
        );
    }

    #[test]
    fn discount_rounds_in_the_shops_favour() {
        assert_eq!(discounted(1250, 10), 1125);
        assert_eq!(discounted(999, 15), 850); // 149.85 off, rounded down to 149
        assert_eq!(discounted(1, 90), 1);
        assert_eq!(discounted(0, 50), 0);
        assert_eq!(discounted(2_000_000_000, 90), 200_000_000);
    }
}
