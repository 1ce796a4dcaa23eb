//! The embedded transport: a durable event log in one SQLite file, shared in process.
//!
//! It mirrors what the code relies on from JetStream: deduplication by event id, durable
//! consumers with a cursor, explicit acks, redelivery after a nak delay or after `ack_wait`
//! (a handler that never answered), and shared work among subscribers of one consumer name.
//! Every hand-out and settlement is a SQLite transaction, so a crash at any point leaves the
//! event either still pending or acknowledged, never lost.

mod claim;
mod durable;
mod live;
mod publish;
mod retention;
mod schema;
mod sql;
mod stats;
mod subscription;
#[cfg(test)]
mod tests;
mod wake;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{Db, DbTarget, now_millis, sqlx};
use tokio::sync::mpsc;

use self::publish::{PublishRequest, write_publishes};
use self::retention::RETENTION;
use self::schema::MIGRATIONS;
use self::subscription::EmbeddedSubscription;
use self::wake::Waiters;
use crate::transport::{ConsumerSpec, StreamStats, Subscription, Transport};
use crate::{BusError, Envelope};

/// The in-process durable log. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedTransport {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set-up and figures; commits wait for fsync.
    db: Db,
    /// Publishes, claims, acks and naks: commits skip the fsync. Losing the last claims or acks
    /// only causes redeliveries; publishes are made durable before their relays hear so.
    bookkeeping: Db,
    /// Subscriptions waiting for new events.
    waiters: Arc<Waiters>,
    /// Fan-out of published events to live listeners in this process.
    live: tokio::sync::broadcast::Sender<Envelope>,
    /// The one writer of publishes (see [`publish`]).
    publishes: mpsc::UnboundedSender<PublishRequest>,
}

impl EmbeddedTransport {
    /// Opens (creating when missing) the log at `path`. Deliveries left unacknowledged by a
    /// previous run are due again at once: the process that held them is gone.
    pub async fn open(path: &Path) -> Result<Self, BusError> {
        let db = Db::connect(&DbTarget::SqliteFile(path.to_owned())).await?;
        db.migrate("bus_log", MIGRATIONS).await?;
        let mut tx = db.begin().await?;
        sqlx::query("UPDATE bus_pending SET due_at = $1")
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM bus_messages WHERE stored_at < $1")
            .bind(now_millis() - RETENTION.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let bookkeeping = Db::connect_sqlite_relaxed(path).await?;
        let (live, _) = tokio::sync::broadcast::channel(1024);
        let waiters = Arc::new(Waiters::default());
        let (publishes, requests) = mpsc::unbounded_channel();
        // Ends when the transport is dropped (the last sender goes with it).
        tokio::spawn(write_publishes(
            bookkeeping.clone(),
            wal_of(path),
            requests,
            waiters.clone(),
            live.clone(),
        ));
        Ok(EmbeddedTransport {
            inner: Arc::new(Inner {
                db,
                bookkeeping,
                waiters,
                live,
                publishes,
            }),
        })
    }
}

/// The write-ahead file SQLite keeps beside the log at `path`.
fn wal_of(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

#[async_trait]
impl Transport for EmbeddedTransport {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Group-committed with the batches other relays publish at the same time.
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        publish::publish_batch(&self.inner.publishes, events).await
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        sqlx::query(
            "INSERT INTO bus_consumers (name, cursor, event_types) VALUES ($1, 0, $2)
             ON CONFLICT (name) DO UPDATE SET event_types = $2",
        )
        .bind(&spec.name)
        .bind(spec.event_types.join(","))
        .execute(self.inner.db.pool())
        .await?;
        Ok(Box::new(EmbeddedSubscription {
            inner: self.inner.clone(),
            waiter: self.inner.waiters.register(spec),
            spec: spec.clone(),
        }))
    }

    async fn ready(&self) -> bool {
        self.inner.db.ping().await
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        stats::stream_stats(&self.inner.db).await
    }

    async fn prune(&self, keep: Duration) -> Result<u64, BusError> {
        retention::prune_acknowledged(&self.inner.bookkeeping, keep).await
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn live(&self, source: &str) -> Result<crate::LiveEvents, BusError> {
        Ok(live::of_source(&self.inner.live, source))
    }
}
