//! The envelope every event travels in, whatever the transport.

use serde::{Deserialize, Serialize};

use crate::trace::TraceContext;

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
    /// The trace this event belongs to (W3C trace context), when the process that recorded
    /// or published it traces. Absent in events written before tracing existed, and omitted
    /// when empty, so old and new events decode alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
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
            trace: None,
        }
    }

    /// Decodes the payload into the contract type for this event.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_without_a_trace_decode_and_encode_as_before() {
        let old = r#"{"id":"1","type":"OrderPlaced","version":1,"source":"orders",
            "aggregate_id":"o-1","occurred_at":5,"payload":{}}"#;
        let event: Envelope = serde_json::from_str(old).expect("an event from before tracing");
        assert_eq!(event.trace, None);
        let encoded = serde_json::to_string(&event).expect("encode");
        assert!(!encoded.contains("trace"), "{encoded}");
    }

    #[test]
    fn the_trace_context_travels_with_the_event() {
        let mut event = Envelope::new("orders", "OrderPlaced", 1, "o-1", serde_json::json!({}));
        event.trace = Some(TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            tracestate: String::new(),
        });
        let encoded = serde_json::to_string(&event).expect("encode");
        assert!(!encoded.contains("tracestate"), "{encoded}");
        let decoded: Envelope = serde_json::from_str(&encoded).expect("decode");
        assert_eq!(decoded, event);
    }
}
