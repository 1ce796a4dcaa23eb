//! The recommendations service's internal API.

use serde::{Deserialize, Serialize};

use crate::{ApiError, Principal, ServiceClient};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommendationsRequest {
    /// At most this many (1..=50).
    pub first: i64,
}

routes! {
    /// Product ids for the caller, best first (best sellers for anonymous callers).
    query RecommendationsForCaller = "recommendations": RecommendationsRequest => Vec<String>;
}

/// Typed calls to the recommendations service.
#[derive(Clone)]
pub struct RecommendationsClient(pub ServiceClient);

impl RecommendationsClient {
    /// Product ids for the caller, best first: co-purchases of what they bought, then best
    /// sellers; never what they already bought, deleted or out-of-stock products. Anonymous
    /// callers get best sellers.
    pub async fn for_caller(&self, p: &Principal, first: i64) -> Result<Vec<String>, ApiError> {
        let req = RecommendationsRequest { first };
        self.0.call::<RecommendationsForCaller>(p, &req).await
    }
}
