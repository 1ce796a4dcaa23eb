//! Settling deliveries: success or a duplicate is acked, a technical failure nak'd with
//! backoff, and the last attempt or a rejected event dead-lettered and acked.

use std::time::Duration;

use crate::{BusError, Delivery, Subscription};

use super::inbox::Outcome;
use super::{Consumer, HandlerError};

/// Bounded redelivery with exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        (self.base_delay * factor).min(self.max_delay)
    }
}

/// How a delivery is settled once its batch is done.
pub(super) enum Verdict {
    Ack,
    Nak(Duration),
}

impl Consumer {
    /// Settles the outcome of applying `delivery`: what to tell the broker.
    pub(super) async fn verdict(
        &self,
        delivery: &Delivery,
        result: Result<Outcome, HandlerError>,
    ) -> Verdict {
        let consumer = &self.spec.name;
        let event_type = delivery.event.event_type.clone();
        let err = match result {
            Ok(Outcome::Applied) => {
                metrics::counter!("bazaar_events_consumed_total", "consumer" => consumer.clone(), "type" => event_type)
                    .increment(1);
                return Verdict::Ack;
            }
            Ok(Outcome::Duplicate) => return Verdict::Ack,
            Err(err) => err,
        };
        metrics::counter!("bazaar_events_failed_total", "consumer" => consumer.clone(), "type" => event_type)
            .increment(1);
        let give_up =
            matches!(err, HandlerError::Reject(_)) || delivery.attempt >= self.policy.max_attempts;
        tracing::warn!(consumer = %consumer, event_id = %delivery.event.id, attempt = delivery.attempt,
            error = %err, give_up, "event handler failed");
        if !give_up {
            return Verdict::Nak(self.policy.delay(delivery.attempt));
        }
        match self.dead_letter(delivery, &err).await {
            Ok(()) => Verdict::Ack,
            Err(e) => {
                tracing::error!(consumer = %consumer, error = %e, "cannot store dead letter");
                Verdict::Nak(self.policy.max_delay)
            }
        }
    }

    pub(super) async fn settle(
        &self,
        subscription: &mut dyn Subscription,
        settled: Vec<(Delivery, Verdict)>,
    ) {
        let mut acks = Vec::with_capacity(settled.len());
        let mut naks = Vec::new();
        for (delivery, verdict) in settled {
            match verdict {
                Verdict::Ack => acks.push(delivery),
                Verdict::Nak(delay) => naks.push(delivery.nak(delay)),
            }
        }
        settle_result(subscription.ack_batch(acks).await, &self.spec.name);
        for result in futures::future::join_all(naks).await {
            settle_result(result, &self.spec.name);
        }
    }
}

pub(super) fn settle_result(result: Result<(), BusError>, consumer: &str) {
    // A lost ack only means a redelivery, which the inbox absorbs.
    if let Err(e) = result {
        tracing::warn!(consumer, error = %e, "could not settle delivery; it will be redelivered");
    }
}
