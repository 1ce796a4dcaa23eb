//! The event bus: services record events in a transactional outbox, a relay publishes them to
//! a transport (the embedded SQLite log, NATS JetStream, RabbitMQ or Kafka) in batches, and consumers apply
//! each event exactly once through an idempotent inbox, in batches split by aggregate,
//! dead-lettering what keeps failing.

mod amqp;
mod broker;
mod consumer;
mod dead_letter_count;
mod embedded;
mod envelope;
mod kafka;
mod nats;
mod outbox;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;
mod transport;

pub use amqp::{AmqpConfig, AmqpTransport};
pub use consumer::{
    Applying, Consumer, DeadLetter, Handler, HandlerError, RetryPolicy, dead_letters, leading_run,
    redrive,
};
pub use dead_letter_count::dead_letter_count;
pub use embedded::EmbeddedTransport;
pub use envelope::Envelope;
pub use kafka::{KafkaConfig, KafkaSasl, KafkaTransport, SaslMechanism};
pub use nats::NatsTransport;
pub use nats::auth::{NatsAuth, NatsOptions, without_credentials};
pub use outbox::{EventTx, Outbox, OutboxRelay, outbox_backlog, outbox_oldest_unpublished};
pub use schema::{MIGRATIONS, retention};
pub use trace::TraceContext;
pub use transport::{
    Acker, ConsumerSpec, ConsumerStats, Delivery, LiveEvents, StreamStats, Subscription, Transport,
};

/// The bus's one error: the broker or the database could not do what was asked, or an event
/// is not what it claims to be. A handler's verdict on an event is a separate type,
/// [`HandlerError`]: it is not a failure of the bus but the handler telling the consumer
/// runtime what to do next (retry later, or dead-letter now), and a `BusError` met while
/// handling becomes a retry.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event broker unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] bazaar_db::DbError),
    #[error("malformed event: {0}")]
    Malformed(String),
}

impl From<bazaar_db::sqlx::Error> for BusError {
    fn from(e: bazaar_db::sqlx::Error) -> Self {
        BusError::Db(e.into())
    }
}
