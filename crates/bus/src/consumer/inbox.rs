//! The idempotent inbox: an event's effect and its inbox row commit in one transaction, so a
//! redelivered event is recognised and applied only once.

use std::collections::HashSet;

use bazaar_db::params::{ROWS_PER_STATEMENT, value_rows};
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
        let outcome = if self.record(&mut tx, &[event]).await?[0] {
            self.handle(&mut tx, event).await?;
            Outcome::Applied
        } else {
            Outcome::Duplicate
        };
        if let Some(id) = dead_letter_id {
            sqlx::query("DELETE FROM dead_letters WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records `events` in the inbox, one statement for up to [`ROWS_PER_STATEMENT`] of them;
    /// for each, whether this is the first time (an event twice in `events` is new once).
    pub(super) async fn record(
        &self,
        tx: &mut EventTx,
        events: &[&Envelope],
    ) -> Result<Vec<bool>, HandlerError> {
        let now = now_millis();
        let mut new = HashSet::new();
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let insert = format!(
                "INSERT INTO inbox (consumer, event_id, processed_at) VALUES {}
                 ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
                value_rows(1, chunk.len(), 3)
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(insert));
            for event in chunk {
                query = query.bind(&self.spec.name).bind(&event.id).bind(now);
            }
            new.extend(query.fetch_all(&mut ***tx).await?);
        }
        Ok(events.iter().map(|event| new.remove(&event.id)).collect())
    }

    /// Takes back the inbox record of an event whose effects were rolled back, so that its
    /// redelivery applies it.
    pub(super) async fn forget(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        sqlx::query("DELETE FROM inbox WHERE consumer = $1 AND event_id = $2")
            .bind(&self.spec.name)
            .bind(&event.id)
            .execute(&mut ***tx)
            .await?;
        Ok(())
    }

    /// Applies a newly recorded `event` in its own span.
    pub(super) async fn handle(
        &self,
        tx: &mut EventTx,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let span = trace::process_span(&self.spec.name, event);
        let result = self
            .handler
            .handle(tx, event)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            trace::fail(&span);
        }
        result
    }
}
