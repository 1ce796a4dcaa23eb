//! The consumer runtime: applies each delivered event once through the inbox, retries technical
//! failures with backoff, and moves events that keep failing to the dead-letter table.
//!
//! Deliveries come in batches. A batch is split into lanes by aggregate (events of one order
//! stay in sequence in one lane; lanes run concurrently on PostgreSQL), and each lane is one
//! transaction with its inbox rows (group commit), each event under a savepoint so a failing
//! one is retried or dead-lettered alone while its siblings commit.

mod batch;
mod dead_letters;
mod handler;
mod inbox;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use bazaar_db::{Db, Dialect};
use tokio_util::sync::CancellationToken;

use crate::{ConsumerSpec, Delivery, Outbox, Transport};

pub use self::dead_letters::{DeadLetter, dead_letters, redrive};
pub use self::handler::{Applying, Handler, HandlerError, leading_run};
pub use self::verdict::RetryPolicy;
use self::verdict::{Verdict, settle_result};

/// Deliveries fetched per broker round trip and applied together.
const BATCH: usize = 256;
/// Lanes per consumer on PostgreSQL: events of different aggregates apply in this many
/// concurrent transactions. SQLite has one writer, so there a batch is one transaction.
const LANES: usize = 4;

/// One durable consumer of one service.
#[derive(Clone)]
pub struct Consumer {
    outbox: Outbox,
    transport: Arc<dyn Transport>,
    pub spec: ConsumerSpec,
    handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    lanes: usize,
}

impl Consumer {
    /// The durable consumer `name` of the events `handler` applies, writing through `outbox`.
    pub fn new(
        name: &str,
        outbox: &Outbox,
        transport: Arc<dyn Transport>,
        handler: Arc<dyn Handler>,
    ) -> Self {
        let lanes = match outbox.db().dialect() {
            Dialect::Sqlite => 1,
            Dialect::Postgres => LANES,
        };
        Consumer {
            spec: ConsumerSpec::new(name).for_types(handler.event_types().iter().copied()),
            outbox: outbox.for_pipeline(),
            transport,
            handler,
            policy: RetryPolicy::default(),
            lanes,
        }
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Applies every batch in one transaction: for handlers whose events of different
    /// aggregates write the same rows (shared counters), where concurrent lanes would only
    /// wait on each other.
    pub fn in_one_lane(mut self) -> Self {
        self.lanes = 1;
        self
    }

    /// The service database this consumer writes to.
    pub fn db(&self) -> &Db {
        self.outbox.db()
    }

    /// Consumes until `stop` fires. The subscription is re-opened whenever it fails.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !stop.is_cancelled() {
            let mut subscription = tokio::select! {
                _ = stop.cancelled() => return,
                s = self.transport.subscribe(&self.spec) => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(consumer = %self.spec.name, error = %e, "cannot subscribe; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = subscription.next_batch(BATCH) => next,
                };
                match next {
                    Ok(Some(deliveries)) => {
                        let settled = self.apply_batch(deliveries).await;
                        self.settle(subscription.as_mut(), settled).await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(consumer = %self.spec.name, error = %e, "subscription failed; re-opening");
                        tokio::time::sleep(backoff).await;
                        break;
                    }
                }
            }
        }
    }

    /// Applies one delivery and settles it: ack on success or duplicate, nak with backoff on a
    /// technical failure, dead letter after the last attempt or on a rejected event.
    pub async fn process(&self, delivery: Delivery) {
        self.process_batch(vec![delivery]).await
    }

    /// Applies `deliveries` as one fetched batch (lanes, runs applied together) and settles
    /// each like [`Consumer::process`].
    pub async fn process_batch(&self, deliveries: Vec<Delivery>) {
        for (delivery, verdict) in self.apply_batch(deliveries).await {
            let result = match verdict {
                Verdict::Ack => delivery.ack().await,
                Verdict::Nak(delay) => delivery.nak(delay).await,
            };
            settle_result(result, &self.spec.name);
        }
    }
}
