//! Naming and reconnect rules the two broker transports (NATS JetStream, RabbitMQ) share, so
//! a consumer's durable name and a retry's pace are the same whichever broker carries events.

use std::time::Duration;

/// First and longest pause between attempts to reach a broker that does not answer.
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(200);
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Stream, queue and consumer names and subject or routing-key words allow only these
/// characters (a dot would split a word).
pub(crate) fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// The pause before attempt `attempt + 1`: doubling from [`BACKOFF_START`] up to [`BACKOFF_CAP`].
pub(crate) fn backoff(attempt: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_CAP)
}
