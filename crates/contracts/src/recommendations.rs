//! The recommendations service's internal API.

use serde::{Deserialize, Serialize};

use crate::{ApiError, Principal, ServiceClient};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommendationsRequest {
    /// At most this many (1..=50).
    pub first: i64,
}

/// Typed calls to the recommendations service.
#[derive(Clone)]
pub struct RecommendationsClient(pub ServiceClient);

impl RecommendationsClient {
    /// Product ids for the caller, best first: co-purchases of what they bought, then best
    /// sellers; never what they already bought, deleted or out-of-stock products. Anonymous
    /// callers get best sellers.
    pub async fn for_caller(&self, p: &Principal, first: i64) -> Result<Vec<String>, ApiError> {
        self.0
            .query("recommendations", p, &RecommendationsRequest { first })
            .await
    }
}
