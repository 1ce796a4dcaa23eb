//! Applying a batch: split into lanes by aggregate, each lane one transaction with one inbox
//! statement for all its events, the runs its handler can apply set-based applied together
//! and every other event under a savepoint of its own, and one transaction per event when the
//! lane's own fails.

use crate::{Delivery, Envelope, EventTx, trace};

use super::inbox::Outcome;
use super::verdict::Verdict;
use super::{Applying, Consumer, HandlerError};
use bazaar_db::sqlx;

impl Consumer {
    /// Applies a batch: events of one aggregate in order in one lane, lanes concurrently.
    pub(super) async fn apply_batch(&self, deliveries: Vec<Delivery>) -> Vec<(Delivery, Verdict)> {
        let mut lanes: Vec<Vec<Delivery>> = (0..self.lanes).map(|_| Vec::new()).collect();
        let mut settled = Vec::new();
        for delivery in deliveries {
            if self.spec.wants(&delivery.event.event_type) {
                lanes[lane_of(&delivery.event.aggregate_id, self.lanes)].push(delivery);
            } else {
                settled.push((delivery, Verdict::Ack));
            }
        }
        let lanes = lanes.into_iter().filter(|lane| !lane.is_empty());
        for lane in futures::future::join_all(lanes.map(|lane| self.apply_lane(lane))).await {
            settled.extend(lane);
        }
        settled
    }

    /// Applies one lane's events in one transaction, each under a savepoint so a failing event
    /// leaves its siblings' effects; when the transaction itself fails (commit, savepoint),
    /// applies them again one transaction each, which the inbox makes safe.
    async fn apply_lane(&self, lane: Vec<Delivery>) -> Vec<(Delivery, Verdict)> {
        let events: Vec<&Envelope> = lane.iter().map(|d| &d.event).collect();
        let results = match self.apply_together(&events).await {
            Ok(results) => results,
            Err(e) => {
                tracing::debug!(consumer = %self.spec.name, error = %e, events = events.len(),
                    "batch transaction failed; applying its events one by one");
                let mut results = Vec::with_capacity(events.len());
                for event in &events {
                    results.push(self.apply(event, None).await);
                }
                results
            }
        };
        let mut settled = Vec::with_capacity(lane.len());
        for (delivery, result) in lane.into_iter().zip(results) {
            let verdict = self.verdict(&delivery, result).await;
            settled.push((delivery, verdict));
        }
        settled
    }

    async fn apply_together(
        &self,
        events: &[&Envelope],
    ) -> Result<Vec<Result<Outcome, HandlerError>>, HandlerError> {
        if let [event] = events {
            return Ok(vec![self.apply(event, None).await]);
        }
        let mut tx = self.outbox.begin().await?;
        self.handler.prepare(&mut tx, events).await?;
        let new = self.record(&mut tx, events).await?;
        let mut results: Vec<_> = new.iter().map(|_| Ok(Outcome::Duplicate)).collect();
        let pending: Vec<usize> = (0..events.len()).filter(|&i| new[i]).collect();
        let pending_events: Vec<&Envelope> = pending.iter().map(|&i| events[i]).collect();
        let mut together = true;
        let mut next = 0;
        while next < pending.len() {
            if together {
                let rest = &pending_events[next..];
                let taken = self.handler.together(rest).min(rest.len());
                if taken > 1 {
                    if self.handle_run(&mut tx, &rest[..taken]).await? {
                        for &i in &pending[next..next + taken] {
                            results[i] = Ok(Outcome::Applied);
                        }
                        next += taken;
                        continue;
                    }
                    // Its events go one by one now, so that the one that failed fails alone.
                    together = false;
                }
            }
            let event = pending_events[next];
            execute(&mut tx, "SAVEPOINT event").await?;
            let result = self.handle(&mut tx, event).await;
            if result.is_err() {
                execute(&mut tx, "ROLLBACK TO SAVEPOINT event").await?;
                self.forget(&mut tx, event).await?;
            }
            execute(&mut tx, "RELEASE SAVEPOINT event").await?;
            results[pending[next]] = result.map(|()| Outcome::Applied);
            next += 1;
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Applies `run` with the handler's set-based `handle_together` under a savepoint; false
    /// (its effects rolled back) when that failed.
    async fn handle_run(&self, tx: &mut EventTx, run: &[&Envelope]) -> Result<bool, HandlerError> {
        let run: Vec<Applying> = run
            .iter()
            .map(|event| Applying {
                event,
                span: trace::process_span(&self.spec.name, event),
            })
            .collect();
        execute(tx, "SAVEPOINT run").await?;
        let result = self.handler.handle_together(tx, &run).await;
        if let Err(e) = &result {
            tracing::debug!(consumer = %self.spec.name, error = %e, events = run.len(),
                "applying events together failed; applying them one by one");
            run.iter().for_each(|applying| trace::fail(&applying.span));
            execute(tx, "ROLLBACK TO SAVEPOINT run").await?;
        }
        execute(tx, "RELEASE SAVEPOINT run").await?;
        Ok(result.is_ok())
    }
}

/// Runs one statement of the consumer's own (savepoints) in `tx`.
async fn execute(tx: &mut EventTx, statement: &'static str) -> Result<(), HandlerError> {
    sqlx::query(statement).execute(&mut ***tx).await?;
    Ok(())
}

/// Which of `lanes` the events of `aggregate_id` go to: always the same one.
fn lane_of(aggregate_id: &str, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    aggregate_id.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}
