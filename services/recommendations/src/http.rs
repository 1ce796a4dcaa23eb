//! The recommendations service's internal API (`POST /internal/<op>`), called by the gateway.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_contracts::recommendations::RecommendationsRequest;
use bazaar_contracts::{Caller, Input};
use bazaar_runtime::ServiceResult;

use crate::app::Recommendations;

pub fn routes(recommendations: Recommendations) -> Router {
    Router::new()
        .route(
            "/internal/recommendations",
            post(recommendations_for_caller),
        )
        .with_state(recommendations)
}

/// Anyone may ask: anonymous callers get best sellers.
async fn recommendations_for_caller(
    State(r): State<Recommendations>,
    Caller(p): Caller,
    Input(req): Input<RecommendationsRequest>,
) -> ServiceResult<Json<Vec<String>>> {
    Ok(Json(r.for_caller(&p, req.first).await?))
}
