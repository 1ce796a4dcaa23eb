//! What a consumer's handler implements, and how it says an event failed.

use async_trait::async_trait;
use bazaar_db::sqlx;
use tracing::{Instrument, Span};

use crate::{BusError, Envelope, EventTx, TraceContext};

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

    /// How many of `events` (new ones, in delivery order), from the first, `handle_together`
    /// can apply as one. The default, 0, applies every event on its own with `handle`.
    fn together(&self, _events: &[&Envelope]) -> usize {
        0
    }

    /// Applies the run `together` chose in fewer statements than one by one (set-based). It
    /// succeeds or fails as a whole: on failure its effects are rolled back and its events are
    /// applied again one by one, so one bad event still fails alone.
    async fn handle_together(
        &self,
        tx: &mut EventTx,
        run: &[Applying<'_>],
    ) -> Result<(), HandlerError> {
        for applying in run {
            self.handle(tx, applying.event)
                .instrument(applying.span.clone())
                .await?;
        }
        Ok(())
    }
}

/// How many of `events`, from the first, are of `event_type`: the run a handler that applies
/// one type set-based names in [`Handler::together`].
pub fn leading_run(events: &[&Envelope], event_type: &str) -> usize {
    events
        .iter()
        .take_while(|event| event.event_type == event_type)
        .count()
}

/// An event applied together with others, and the span it is processed in.
pub struct Applying<'a> {
    pub event: &'a Envelope,
    /// Disabled while tracing is off. Log lines about the event belong in it, and the events
    /// it causes carry its context ([`Applying::trace`]).
    pub span: Span,
}

impl Applying<'_> {
    /// The trace context for the events this one causes.
    pub fn trace(&self) -> Option<TraceContext> {
        TraceContext::of(&self.span)
    }
}
