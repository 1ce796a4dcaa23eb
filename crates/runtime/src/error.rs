//! The error type of every service's handlers: client-facing `ApiError`s pass through; storage
//! and bus failures are logged and become an opaque internal error, except unique-constraint
//! violations, which are a CONFLICT.

use axum::response::{IntoResponse, Response};
use bazaar_contracts::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Db(#[from] bazaar_db::DbError),
    #[error(transparent)]
    Bus(#[from] bazaar_bus::BusError),
    #[error("{0}")]
    Internal(String),
}

impl From<bazaar_db::sqlx::Error> for ServiceError {
    fn from(e: bazaar_db::sqlx::Error) -> Self {
        ServiceError::Db(e.into())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Api(api) => api,
            ServiceError::Db(db) if db.is_unique_violation() => {
                ApiError::conflict("already exists")
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
