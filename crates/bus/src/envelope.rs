//! The envelope every event travels in, whatever the transport.

use serde::{Deserialize, Serialize};

/// One event: a fact a service recorded, with enough metadata to route, deduplicate and order it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUID v7; doubles as the broker's deduplication id and the inbox key.
    pub id: String,
    /// The event's name, e.g. `UserRegistered`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version of `payload` for this `event_type`.
    pub version: u32,
    /// The service that emitted it.
    pub source: String,
    /// The entity the event is about; events of one aggregate are delivered in emission order.
    pub aggregate_id: String,
    /// When it happened, unix milliseconds.
    pub occurred_at: i64,
    pub payload: serde_json::Value,
}

impl Envelope {
    pub fn new(
        source: &str,
        event_type: &str,
        version: u32,
        aggregate_id: &str,
        payload: serde_json::Value,
    ) -> Self {
        Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_owned(),
            version,
            source: source.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
            payload,
        }
    }

    /// Decodes the payload into the contract type for this event.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}
