//! Review values parsed once at the edge: a `NewReview` has 1 to 5 stars, a one-line title and
//! a bounded body; a `ReviewPage` is a bounded keyset page.

use bazaar_contracts::ApiError;
use bazaar_contracts::catalog::{AddReviewRequest, ListReviewsRequest};

use super::{bad, description, name};

const MAX_PAGE: i64 = 50;

/// A review about to be stored (or to replace the author's earlier one).
#[derive(Debug, Clone)]
pub struct NewReview {
    pub product_id: String,
    pub rating: i64,
    pub title: String,
    pub body: String,
}

impl NewReview {
    pub fn parse(req: &AddReviewRequest) -> Result<NewReview, ApiError> {
        if !(1..=5).contains(&req.rating) {
            return Err(bad("input.rating", "must be between 1 and 5"));
        }
        Ok(NewReview {
            product_id: req.product_id.trim().to_owned(),
            rating: req.rating,
            title: name(&req.title, "input.title")?,
            // Same bounds as a product description: free text, line breaks allowed.
            body: description(&req.body, "input.body")?,
        })
    }
}

/// A validated reviews query: newest first, `after` the id of the last review already seen.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    pub product_id: String,
    pub first: i64,
    pub after: Option<String>,
}

impl ReviewPage {
    pub fn parse(req: &ListReviewsRequest) -> Result<ReviewPage, ApiError> {
        if !(0..=MAX_PAGE).contains(&req.first) {
            return Err(bad("first", format!("must be between 0 and {MAX_PAGE}")));
        }
        Ok(ReviewPage {
            product_id: req.product_id.clone(),
            first: req.first,
            after: req.after.clone().filter(|a| !a.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let req = |rating: i64, title: &str, body: String| AddReviewRequest {
            product_id: "p".into(),
            rating,
            title: title.into(),
            body,
        };
        let field = |r: AddReviewRequest| NewReview::parse(&r).unwrap_err().field;
        assert_eq!(
            field(req(0, "t", "b".into())).as_deref(),
            Some("input.rating")
        );
        assert_eq!(
            field(req(6, "t", "b".into())).as_deref(),
            Some("input.rating")
        );
        assert_eq!(
            field(req(3, " ", "b".into())).as_deref(),
            Some("input.title")
        );
        assert_eq!(
            field(req(3, "t", "x".repeat(5001))).as_deref(),
            Some("input.body")
        );
        assert!(NewReview::parse(&req(5, "Great", "line\nline".into())).is_ok());
        assert!(NewReview::parse(&req(5, "Great", String::new())).is_ok());
    }
}
