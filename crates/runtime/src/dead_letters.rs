//! Every service's dead letters over its internal API, for operators: list them, and redrive
//! one through the consumer that gave up on it. Admins only.

use std::sync::Arc;

use axum::Router;
use bazaar_bus::{Consumer, DeadLetter};
use bazaar_contracts::dead_letters::{DeadLetterIdRequest, DeadLetters, RedriveDeadLetter};
use bazaar_contracts::{ApiError, Empty, Principal, Routes};
use bazaar_db::Db;

use crate::{ServiceName, ServiceResult};

#[derive(Clone)]
struct DeadLetterState {
    db: Db,
    consumers: Arc<Vec<Consumer>>,
}

/// `POST /internal/<service>/dead-letters` and `/internal/<service>/redrive-dead-letter`, to
/// be put behind the service credential (`Platform::internal_only`).
pub fn routes(service: ServiceName, db: Db, consumers: &[Consumer]) -> Router {
    let state = DeadLetterState {
        db,
        consumers: Arc::new(consumers.to_vec()),
    };
    Routes::under(service.as_str())
        .serve::<DeadLetters>(list)
        .serve::<RedriveDeadLetter>(redrive)
        .with_state(state)
}

async fn list(s: DeadLetterState, p: Principal, _: Empty) -> ServiceResult<Vec<DeadLetter>> {
    p.require_admin()?;
    Ok(bazaar_bus::dead_letters(&s.db, 500).await?)
}

/// True when the dead letter was applied and removed; false when no such dead letter exists.
async fn redrive(
    s: DeadLetterState,
    p: Principal,
    req: DeadLetterIdRequest,
) -> ServiceResult<bool> {
    p.require_admin()?;
    match bazaar_bus::redrive(&s.consumers, &req.id).await {
        Ok(done) => Ok(done),
        Err(e) => Err(ApiError::conflict(format!("the event still fails: {e}")).into()),
    }
}
