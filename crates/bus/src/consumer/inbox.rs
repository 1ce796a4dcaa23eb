//! The idempotent inbox: an event's effect and its inbox row commit in one transaction, so a
//! redelivered event is recognised and applied only once.

use bazaar_db::{now_millis, sqlx};
use tracing::Instrument;

use super::{Consumer, HandlerError};
use crate::{Envelope, EventTx, trace};

/// What applying an event did.
pub(super) enum Outcome {
    Applied,
    Duplicate,
}

impl Consumer {
    /// Runs the handler and the inbox record in one transaction of their own; a redriven
    /// dead letter leaves the dead-letter table in it too.
    pub(super) async fn apply(
        &self,
        event: &Envelope,
        dead_letter_id: Option<&str>,
    ) -> Result<Outcome, HandlerError> {
        let mut tx = self.outbox.begin().await?;
        self.handler.prepare(&mut tx, &[event]).await?;
        let outcome = self.record_and_handle(&mut tx, event).await?;
        if let Some(id) = dead_letter_id {
            sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records `event` in the inbox and, the first time, applies it.
    pub(super) async fn record_and_handle(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let span = trace::process_span(&self.spec.name, event);
        let result = self
            .record_and_handle_untraced(tx, event)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            trace::fail(&span);
        }
        result
    }

    async fn record_and_handle_untraced(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let fresh = sqlx::query(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
             ON CONFLICT (consumer, event_id) DO NOTHING",
        )
        .bind(&self.spec.name)
        .bind(&event.id)
        .bind(now_millis())
        .execute(&mut ***tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(tx, event).await?;
        Ok(Outcome::Applied)
    }
}
