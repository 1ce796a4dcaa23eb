//! Publishing to the stream: each event on its `<namespace>.events.<source>.<type>` subject
//! with its id as the deduplication id, a batch pipelined so it costs one round trip.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use tracing::debug;

use super::{NatsTransport, unavailable};
use crate::broker::sanitize;
use crate::{BusError, Envelope};

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

impl NatsTransport {
    /// The subject an event of `event_type` from `source` is published on.
    fn subject(&self, source: &str, event_type: &str) -> String {
        format!(
            "{}.events.{}.{}",
            self.prefix,
            sanitize(source),
            sanitize(event_type)
        )
    }
}

/// Sends every publish before waiting for the first ack: one round trip for the batch.
pub(super) async fn publish_batch(
    transport: &NatsTransport,
    events: &[Envelope],
) -> Result<(), BusError> {
    let stored = async {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let subject = transport.subject(&event.source, &event.event_type);
            let body = serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
            let message = jetstream::message::PublishMessage::build()
                .payload(Bytes::from(body))
                .message_id(&event.id);
            // Handed to the client now; the stream's ack (stored, or a known duplicate) later.
            let ack = transport
                .js
                .send_publish(subject, message)
                .await
                .map_err(|e| unavailable("publish", e))?;
            acks.push(ack);
        }
        // All are in flight: waiting for them in turn costs one round trip in all.
        for ack in acks {
            let ack = ack.await.map_err(|e| unavailable("publish ack", e))?;
            if ack.duplicate {
                debug!(
                    sequence = ack.sequence,
                    "duplicate publish ignored by JetStream"
                );
            }
        }
        Ok(())
    };
    tokio::time::timeout(PUBLISH_TIMEOUT, stored)
        .await
        .map_err(|_| {
            BusError::Unavailable(format!(
                "publish not acknowledged within {PUBLISH_TIMEOUT:?}"
            ))
        })?
}
