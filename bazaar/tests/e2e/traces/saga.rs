//! The shape an order's trace must have: a client's own span, and the saga's spans below it
//! (gateway → orders → outbox publish → catalogue reservation → orders confirmation →
//! notification), found in what the OTLP receiver holds.

use rand::Rng;

use super::otlp::{CLIENT, CONSUMER, INTERNAL, PRODUCER, Receiver, SERVER, Span};

/// A client's own span, which bazaar's spans must hang under.
pub struct ClientSpan {
    pub trace_id: String,
    pub span_id: String,
}

impl ClientSpan {
    pub fn new() -> ClientSpan {
        let mut rng = rand::rng();
        ClientSpan {
            trace_id: hex::encode(rng.random::<[u8; 16]>()),
            span_id: hex::encode(rng.random::<[u8; 8]>()),
        }
    }

    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The saga's spans, each the child of the one before.
pub struct Saga {
    pub edge: Span,
    pub field: Span,
    pub call: Span,
    pub served: Span,
    pub placed: Span,
    pub reserve: Span,
    pub reserved: Span,
    pub confirm: Span,
    pub changed: Span,
    pub notify: Span,
}

/// Exactly one span of the trace matching `name`, `kind`, parent and (for consumers) the
/// consumer; Err says what is missing.
pub fn one(
    spans: &[Span],
    kind: i32,
    name: &str,
    parent: &str,
    consumer: Option<&str>,
) -> Result<Span, String> {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == name && s.kind == kind)
        .filter(|s| {
            consumer.is_none_or(|c| {
                s.attributes
                    .get("messaging.consumer.group.name")
                    .map(String::as_str)
                    == Some(c)
            })
        })
        .collect();
    match found.as_slice() {
        [span] if span.parent_span_id == parent => Ok((*span).clone()),
        [span] => Err(format!(
            "{name} has parent {} instead of {parent}",
            span.parent_span_id
        )),
        [] => Err(format!(
            "no {name} span (kind {kind}, consumer {consumer:?})"
        )),
        many => Err(format!("{} {name} spans", many.len())),
    }
}

fn saga(spans: &[Span], client: &ClientSpan) -> Result<Saga, String> {
    let edge = one(spans, SERVER, "POST /graphql", &client.span_id, None)?;
    let field = one(spans, INTERNAL, "Mutation.placeOrder", &edge.span_id, None)?;
    let call = one(spans, CLIENT, "orders place-order", &field.span_id, None)?;
    let served = one(
        spans,
        SERVER,
        "POST /internal/place-order",
        &call.span_id,
        None,
    )?;
    let placed = one(
        spans,
        PRODUCER,
        "publish OrderPlaced",
        &served.span_id,
        None,
    )?;
    let reserve = one(
        spans,
        CONSUMER,
        "process OrderPlaced",
        &placed.span_id,
        Some("catalog"),
    )?;
    let reserved = one(
        spans,
        PRODUCER,
        "publish StockReserved",
        &reserve.span_id,
        None,
    )?;
    let confirm = one(
        spans,
        CONSUMER,
        "process StockReserved",
        &reserved.span_id,
        Some("orders"),
    )?;
    let changed = one(
        spans,
        PRODUCER,
        "publish OrderStatusChanged",
        &confirm.span_id,
        None,
    )?;
    let notify = one(
        spans,
        CONSUMER,
        "process OrderStatusChanged",
        &changed.span_id,
        Some("notifications"),
    )?;
    // No orphans: every span of the trace hangs under another of its spans or the client's.
    for span in spans {
        let linked = span.parent_span_id == client.span_id
            || spans.iter().any(|p| p.span_id == span.parent_span_id);
        if !linked {
            return Err(format!(
                "{} ({}) has parent {}, not in the trace",
                span.name, span.span_id, span.parent_span_id
            ));
        }
    }
    Ok(Saga {
        edge,
        field,
        call,
        served,
        placed,
        reserve,
        reserved,
        confirm,
        changed,
        notify,
    })
}

/// Waits until `receiver` holds the whole saga of the client's trace.
pub async fn received_saga(receiver: &Receiver, client: &ClientSpan) -> Saga {
    let names = |spans: &[Span]| -> Vec<String> {
        spans
            .iter()
            .map(|s| {
                format!(
                    "{} [{}] {} <- {}",
                    s.name, s.service, s.span_id, s.parent_span_id
                )
            })
            .collect()
    };
    match receiver
        .trace_until(&client.trace_id, |spans| saga(spans, client))
        .await
    {
        Ok((saga, spans)) => {
            eprintln!(
                "the trace ({} spans):\n{}",
                spans.len(),
                names(&spans).join("\n")
            );
            saga
        }
        Err((why, spans)) => {
            panic!(
                "the trace is not the saga: {why}\n{} export requests, {} spans in the trace:\n{}",
                receiver.requests(),
                spans.len(),
                names(&spans).join("\n")
            );
        }
    }
}
