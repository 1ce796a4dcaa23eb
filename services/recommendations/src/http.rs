//! The recommendations service's internal API, called by the gateway: the route of
//! `bazaar_contracts::recommendations`.

use axum::Router;
use bazaar_contracts::recommendations::{RecommendationsForCaller, RecommendationsRequest};
use bazaar_contracts::{Principal, Routes};
use bazaar_runtime::ServiceResult;

use crate::app::Recommendations;

pub fn routes(recommendations: Recommendations) -> Router {
    Routes::new()
        .serve::<RecommendationsForCaller>(recommendations_for_caller)
        .with_state(recommendations)
}

/// Anyone may ask: anonymous callers get best sellers.
async fn recommendations_for_caller(
    r: Recommendations,
    p: Principal,
    req: RecommendationsRequest,
) -> ServiceResult<Vec<String>> {
    r.for_caller(&p, req.first).await
}
