//! The live feed of one source's events: a core NATS subscription sees what JetStream stores
//! on the subject, live, without a consumer, so every gateway replica gets every event.

use futures::StreamExt;

use super::{NatsTransport, unavailable};
use crate::broker::sanitize;
use crate::{BusError, Envelope, LiveEvents};

/// Every event `source` publishes from now on; a message that is not an event is skipped.
pub(super) async fn live(transport: &NatsTransport, source: &str) -> Result<LiveEvents, BusError> {
    let subject = format!("{}.events.{}.>", transport.prefix, sanitize(source));
    let messages = transport
        .client
        .subscribe(subject)
        .await
        .map_err(|e| unavailable("live subscribe", e))?;
    Ok(Box::pin(messages.filter_map(|m| {
        std::future::ready(serde_json::from_slice::<Envelope>(&m.payload).ok())
    })))
}
