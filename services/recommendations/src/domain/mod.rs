//! Domain values of the recommendations service, parsed once at the edge.

use bazaar_contracts::ApiError;

/// How many recommendations a caller may ask for at once.
pub const MAX_FIRST: i64 = 50;

/// How many products one digest offers: a short list reads as a suggestion, not a catalogue.
pub const DIGEST_SIZE: i64 = 5;

/// A requested number of recommendations, within 1..=[`MAX_FIRST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct First(i64);

impl First {
    pub fn parse(first: i64) -> Result<First, ApiError> {
        if (1..=MAX_FIRST).contains(&first) {
            Ok(First(first))
        } else {
            Err(ApiError::bad_input(
                "first",
                format!("first: must be between 1 and {MAX_FIRST}"),
            ))
        }
    }

    /// The digest's fixed size.
    pub fn digest() -> First {
        First(DIGEST_SIZE)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The unordered pairs of distinct products one confirmed order adds to the co-purchase model,
/// smaller id first: every pair within the order, and every product of the order with every
/// product the user bought before. A pair counts once per order however it arises, so buying
/// A and B together after an earlier A still adds one A–B co-purchase, not two.
pub fn co_purchase_pairs(order: &[String], earlier: &[String]) -> Vec<(String, String)> {
    let mut pairs = std::collections::BTreeSet::new();
    for (i, a) in order.iter().enumerate() {
        for b in order[i + 1..].iter().chain(earlier) {
            if a != b {
                let pair = if a < b { (a, b) } else { (b, a) };
                pairs.insert((pair.0.clone(), pair.1.clone()));
            }
        }
    }
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_is_bounded() {
        assert!(First::parse(0).is_err());
        assert!(First::parse(51).is_err());
        assert_eq!(First::parse(1).unwrap().get(), 1);
        assert_eq!(First::parse(50).unwrap().get(), 50);
        assert_eq!(First::parse(0).unwrap_err().field.as_deref(), Some("first"));
    }

    #[test]
    fn pairs_within_the_order_and_with_history_count_once() {
        let pairs = co_purchase_pairs(&ids(&["b", "a"]), &ids(&["a", "c"]));
        let want = [("a", "b"), ("a", "c"), ("b", "c")];
        assert_eq!(
            pairs,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        assert!(co_purchase_pairs(&ids(&["a"]), &ids(&["a"])).is_empty());
        assert!(co_purchase_pairs(&[], &ids(&["a"])).is_empty());
    }
}
