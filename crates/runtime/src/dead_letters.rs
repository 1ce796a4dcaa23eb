//! Every service's dead letters over its internal API, for operators: list them, and redrive
//! one through the consumer that gave up on it. Admins only.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_bus::{Consumer, DeadLetter};
use bazaar_contracts::{ApiError, Caller, Input, require_service_token};
use bazaar_db::Db;
use serde::Deserialize;

use crate::{ServiceName, ServiceResult};

#[derive(Clone)]
struct DeadLetterState {
    db: Db,
    consumers: Arc<Vec<Consumer>>,
}

#[derive(Deserialize)]
struct RedriveRequest {
    id: String,
}

/// `POST /internal/<service>/dead-letters` and `/internal/<service>/redrive-dead-letter`.
pub fn routes(service: ServiceName, db: Db, consumers: Vec<Consumer>, token: Arc<str>) -> Router {
    let state = DeadLetterState {
        db,
        consumers: Arc::new(consumers),
    };
    Router::new()
        .route(&format!("/internal/{service}/dead-letters"), post(list))
        .route(
            &format!("/internal/{service}/redrive-dead-letter"),
            post(redrive),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| {
            require_service_token(token.clone(), req, next)
        }))
}

async fn list(
    State(s): State<DeadLetterState>,
    Caller(p): Caller,
) -> ServiceResult<Json<Vec<DeadLetter>>> {
    p.require_admin()?;
    Ok(Json(bazaar_bus::dead_letters(&s.db, 500).await?))
}

/// True when the dead letter was applied and removed; false when no such dead letter exists.
async fn redrive(
    State(s): State<DeadLetterState>,
    Caller(p): Caller,
    Input(req): Input<RedriveRequest>,
) -> ServiceResult<Json<bool>> {
    p.require_admin()?;
    match bazaar_bus::redrive(&s.consumers, &req.id).await {
        Ok(done) => Ok(Json(done)),
        Err(e) => Err(ApiError::conflict(format!("the event still fails: {e}")).into()),
    }
}
