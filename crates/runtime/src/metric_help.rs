//! The HELP text of every metric bazaar exports, registered with the recorder at start-up.
//!
//! The Prometheus exporter writes a `# HELP` line only for a described metric, and
//! `promtool check metrics` flags every metric without one. The metrics are recorded across
//! the crates and services; describing them here, in one list, keeps the catalogue reviewable
//! (docs/operations.md's Metrics section mirrors it) without every crate needing a start-up hook.

use metrics::Unit;

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// (name, kind, unit, help). Names follow Prometheus conventions: counters end in `_total`,
/// quantities carry their base unit (`_seconds`).
const METRICS: &[(&str, Kind, Option<Unit>, &str)] = &[
    // GraphQL gateway.
    (
        "bazaar_graphql_requests_total",
        Kind::Counter,
        None,
        "GraphQL requests answered, by operation name and outcome (ok or an error code).",
    ),
    (
        "bazaar_graphql_request_duration_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time to answer a GraphQL request, by operation name.",
    ),
    (
        "bazaar_graphql_refused_total",
        Kind::Counter,
        None,
        "GraphQL requests refused before execution, by the limit they exceeded.",
    ),
    (
        "bazaar_graphql_response_cache_total",
        Kind::Counter,
        None,
        "Lookups in the gateway's anonymous response cache, by outcome (hit or miss).",
    ),
    (
        "bazaar_internal_calls_total",
        Kind::Counter,
        None,
        "Internal HTTP calls made to another service, by callee service and operation.",
    ),
    (
        "bazaar_password_hash_refused_total",
        Kind::Counter,
        None,
        "Password hashes refused because the hashing queue was full.",
    ),
    // Orders.
    (
        "bazaar_orders",
        Kind::Gauge,
        None,
        "Orders currently in each status.",
    ),
    (
        "bazaar_order_confirmation_duration_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time from an order being placed to its confirmation (stock reserved): the saga's latency.",
    ),
    (
        "bazaar_refunds_total",
        Kind::Counter,
        None,
        "Refund attempts on cancelled paid orders, by outcome (refunded or retry).",
    ),
    // Event bus.
    (
        "bazaar_events_published_total",
        Kind::Counter,
        None,
        "Events published from an outbox to the transport, by service and event type.",
    ),
    (
        "bazaar_events_consumed_total",
        Kind::Counter,
        None,
        "Events a consumer applied and acknowledged, by consumer and event type.",
    ),
    (
        "bazaar_events_failed_total",
        Kind::Counter,
        None,
        "Event deliveries whose handler failed, by consumer and event type.",
    ),
    (
        "bazaar_events_dead_lettered_total",
        Kind::Counter,
        None,
        "Events moved to the dead-letter store after their last attempt, by consumer and event type.",
    ),
    (
        "bazaar_outbox_backlog",
        Kind::Gauge,
        None,
        "Outbox rows not yet published, per service.",
    ),
    (
        "bazaar_outbox_oldest_age_seconds",
        Kind::Gauge,
        Some(Unit::Seconds),
        "Age of the oldest unpublished outbox row per service (0 when the outbox is drained).",
    ),
    (
        "bazaar_dead_letters",
        Kind::Gauge,
        None,
        "Events in the dead-letter store, per service.",
    ),
    (
        "bazaar_stream_messages",
        Kind::Gauge,
        None,
        "Events held in the event stream.",
    ),
    (
        "bazaar_consumer_pending",
        Kind::Gauge,
        None,
        "Consumer lag: events in the stream not yet acknowledged by this consumer.",
    ),
    (
        "bazaar_consumer_ack_pending",
        Kind::Gauge,
        None,
        "Events handed to this consumer and not yet acknowledged.",
    ),
    (
        "bazaar_consumer_redelivered",
        Kind::Gauge,
        None,
        "Deliveries to this consumer beyond the first, as the transport reports them.",
    ),
    (
        "bazaar_consumer_delivered",
        Kind::Gauge,
        None,
        "Events handed to this consumer at least once, as the transport reports them.",
    ),
    // Housekeeping and mail.
    (
        "bazaar_retention_deleted_rows_total",
        Kind::Counter,
        None,
        "Rows deleted by the retention pruner, by service and table.",
    ),
    (
        "bazaar_mail_sent_total",
        Kind::Counter,
        None,
        "Notification mails sent.",
    ),
    (
        "bazaar_mail_failed_total",
        Kind::Counter,
        None,
        "Notification mails that could not be sent.",
    ),
    (
        "bazaar_recommendation_digests_total",
        Kind::Counter,
        None,
        "Recommendation digest mails sent.",
    ),
];

/// Describes every metric to the installed recorder.
pub fn describe_all() {
    for (name, kind, unit, help) in METRICS {
        let name = *name;
        let help = *help;
        match (kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(name, *u, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(name, *u, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(name, *u, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// Every metric name described here (the deploy-file tests check dashboards against it).
pub fn names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().map(|(name, ..)| *name)
}
