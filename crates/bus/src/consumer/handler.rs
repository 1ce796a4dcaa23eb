//! What a consumer's handler implements, and how it says an event failed.

use async_trait::async_trait;
use bazaar_db::sqlx;

use crate::{BusError, Envelope, EventTx};

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (database busy, dependency down): retried with backoff.
    #[error("{0}")]
    Retry(String),
    /// Will never work (malformed payload): dead-lettered at once.
    #[error("{0}")]
    Reject(String),
}

impl From<bazaar_db::DbError> for HandlerError {
    fn from(e: bazaar_db::DbError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<BusError> for HandlerError {
    fn from(e: BusError) -> Self {
        HandlerError::Retry(e.to_string())
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::Reject(format!("payload does not match its contract: {e}"))
    }
}

/// What one consumer does with the events it cares about.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Event types this consumer applies; the broker hands it no others.
    fn event_types(&self) -> &[&'static str];

    /// Runs first in each transaction that applies a batch of events, before any of them: the
    /// place to take row locks in one fixed order (so concurrent batches cannot deadlock) or
    /// to load what the whole batch needs once.
    async fn prepare(&self, _tx: &mut EventTx, _events: &[&Envelope]) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Applies `event` inside `tx`, the transaction that also records it in the inbox: the
    /// effect and the record commit together or not at all.
    async fn handle(&self, tx: &mut EventTx, event: &Envelope) -> Result<(), HandlerError>;
}
