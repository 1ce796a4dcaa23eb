//! The embedded transport: a durable event log in one SQLite file, shared in process.
//!
//! It mirrors what the code relies on from JetStream: deduplication by event id, durable
//! consumers with a cursor, explicit acks, redelivery after a nak delay or after `ack_wait`
//! (a handler that never answered), and shared work among subscribers of one consumer name.
//! Every hand-out and settlement is a SQLite transaction, so a crash at any point leaves the
//! event either still pending or acknowledged, never lost.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_db::{Db, DbTarget, Migration, now_millis};
use futures::StreamExt;
use tokio::sync::Notify;

use crate::transport::{
    Acker, ConsumerSpec, ConsumerStats, Delivery, StreamStats, Subscription, Transport,
};
use crate::{BusError, Envelope};

/// Events older than this are pruned, like the JetStream stream's `max_age`.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Upper bound on how long an idle subscriber sleeps before looking again.
const IDLE_POLL: Duration = Duration::from_millis(500);

const MIGRATIONS: &[Migration] = &[Migration {
    version: "0001_log",
    sql: "
        CREATE TABLE bus_messages (
            seq {{id_seq}},
            id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            stored_at BIGINT NOT NULL
        );
        CREATE TABLE bus_consumers (
            name TEXT PRIMARY KEY,
            cursor BIGINT NOT NULL,
            delivered BIGINT NOT NULL DEFAULT 0,
            redelivered BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE bus_pending (
            consumer TEXT NOT NULL,
            seq BIGINT NOT NULL,
            attempts INTEGER NOT NULL,
            due_at BIGINT NOT NULL,
            PRIMARY KEY (consumer, seq)
        );
        CREATE INDEX bus_pending_due ON bus_pending (consumer, due_at);
    ",
}];

/// The in-process durable log. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedTransport {
    inner: Arc<Inner>,
}

struct Inner {
    /// Publishes commit with fsync: a stored event must survive power loss.
    db: Db,
    /// Claims, acks and naks skip the fsync: losing the last ones only causes redeliveries.
    bookkeeping: Db,
    published: Notify,
    /// Fan-out of published events to live listeners in this process.
    live: tokio::sync::broadcast::Sender<Envelope>,
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
        Ok(EmbeddedTransport {
            inner: Arc::new(Inner {
                db,
                bookkeeping,
                published: Notify::new(),
                live,
            }),
        })
    }
}

use bazaar_db::sqlx;

#[async_trait]
impl Transport for EmbeddedTransport {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        let body = serde_json::to_string(event).map_err(|e| BusError::Malformed(e.to_string()))?;
        let stored = sqlx::query(
            "INSERT INTO bus_messages (id, body, stored_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(body)
        .bind(now_millis())
        .execute(self.inner.db.pool())
        .await?;
        self.inner.published.notify_waiters();
        // Live listeners see each event once, like the log; nobody listening is fine.
        if stored.rows_affected() == 1 {
            let _ = self.inner.live.send(event.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, spec: &ConsumerSpec) -> Result<Box<dyn Subscription>, BusError> {
        sqlx::query(
            "INSERT INTO bus_consumers (name, cursor) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&spec.name)
        .execute(self.inner.db.pool())
        .await?;
        Ok(Box::new(EmbeddedSubscription {
            inner: self.inner.clone(),
            spec: spec.clone(),
        }))
    }

    async fn ready(&self) -> bool {
        self.inner.db.ping().await
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        let pool = self.inner.db.pool();
        let (messages, last_seq): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(seq) FROM bus_messages")
                .fetch_one(pool)
                .await?;
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT c.name, c.cursor, c.delivered, c.redelivered,
                    (SELECT COUNT(*) FROM bus_pending p WHERE p.consumer = c.name)
             FROM bus_consumers c ORDER BY c.name",
        )
        .fetch_all(pool)
        .await?;
        let last_seq = last_seq.unwrap_or(0);
        let consumers = rows
            .into_iter()
            .map(
                |(name, cursor, delivered, redelivered, in_flight)| ConsumerStats {
                    name,
                    delivered: delivered as u64,
                    pending: (last_seq - cursor).max(0) as u64 + in_flight as u64,
                    ack_pending: in_flight as u64,
                    redelivered: redelivered as u64,
                },
            )
            .collect();
        Ok(StreamStats {
            name: "embedded".into(),
            messages: messages as u64,
            consumers,
        })
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn live(&self, source: &str) -> Result<crate::LiveEvents, BusError> {
        let source = source.to_owned();
        let events = live_stream(self.inner.live.subscribe());
        Ok(Box::pin(
            events.filter(move |e| std::future::ready(e.source == source)),
        ))
    }
}

/// A broadcast receiver as a stream that skips what a slow listener missed.
fn live_stream(
    rx: tokio::sync::broadcast::Receiver<Envelope>,
) -> impl futures::Stream<Item = Envelope> {
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => return Some((event, rx)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

struct EmbeddedSubscription {
    inner: Arc<Inner>,
    spec: ConsumerSpec,
}

impl EmbeddedSubscription {
    /// Claims the next delivery, if any: a redelivery that is due, else the next new event.
    /// Returns the time until the earliest pending redelivery when there is nothing to do.
    async fn claim(&self) -> Result<Result<Delivery, Option<Duration>>, BusError> {
        let db = &self.inner.bookkeeping;
        let now = now_millis();
        let redeliver_at = now + self.spec.ack_wait.as_millis() as i64;
        let mut tx = db.begin().await?;
        let due: Option<(i64, i64)> = sqlx::query_as(
            "SELECT seq, attempts FROM bus_pending WHERE consumer = $1 AND due_at <= $2
             ORDER BY seq LIMIT 1",
        )
        .bind(&self.spec.name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq, attempt) = if let Some((seq, attempts)) = due {
            sqlx::query(
                "UPDATE bus_pending SET attempts = attempts + 1, due_at = $3 WHERE consumer = $1 AND seq = $2",
            )
            .bind(&self.spec.name)
            .bind(seq)
            .bind(redeliver_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE bus_consumers SET redelivered = redelivered + 1 WHERE name = $1")
                .bind(&self.spec.name)
                .execute(&mut *tx)
                .await?;
            (seq, attempts + 1)
        } else {
            let next: Option<i64> = sqlx::query_scalar(
                "SELECT m.seq FROM bus_messages m, bus_consumers c
                 WHERE c.name = $1 AND m.seq > c.cursor ORDER BY m.seq LIMIT 1",
            )
            .bind(&self.spec.name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(seq) = next else {
                let earliest: Option<i64> =
                    sqlx::query_scalar("SELECT MIN(due_at) FROM bus_pending WHERE consumer = $1")
                        .bind(&self.spec.name)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                let wait = earliest.map(|at| Duration::from_millis((at - now).max(1) as u64));
                return Ok(Err(wait));
            };
            sqlx::query(
                "INSERT INTO bus_pending (consumer, seq, attempts, due_at) VALUES ($1, $2, 1, $3)",
            )
            .bind(&self.spec.name)
            .bind(seq)
            .bind(redeliver_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE bus_consumers SET cursor = $2, delivered = delivered + 1 WHERE name = $1",
            )
            .bind(&self.spec.name)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            (seq, 1)
        };
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM bus_messages WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        let acker = Box::new(EmbeddedAcker {
            inner: self.inner.clone(),
            consumer: self.spec.name.clone(),
            seq,
        });
        // A pruned or unreadable message can never succeed: settle it so it stops coming back.
        let event = body.as_deref().map(serde_json::from_str::<Envelope>);
        match event {
            Some(Ok(event)) => Ok(Ok(Delivery::new(event, attempt as u32, acker))),
            other => {
                tracing::error!(consumer = %self.spec.name, seq, ?other, "dropping unreadable event");
                acker.ack().await?;
                Ok(Err(Some(Duration::ZERO)))
            }
        }
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.inner.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let wait = match self.claim().await? {
                Ok(delivery) => return Ok(Some(delivery)),
                Err(wait) => wait.unwrap_or(IDLE_POLL).min(IDLE_POLL),
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = &mut published => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

struct EmbeddedAcker {
    inner: Arc<Inner>,
    consumer: String,
    seq: i64,
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<(), BusError> {
        sqlx::query("DELETE FROM bus_pending WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .execute(self.inner.bookkeeping.pool())
            .await?;
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        sqlx::query("UPDATE bus_pending SET due_at = $3 WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .bind(now_millis() + delay.as_millis() as i64)
            .execute(self.inner.bookkeeping.pool())
            .await?;
        // Wake idle subscribers so a zero-delay nak is picked up at once.
        self.inner.published.notify_waiters();
        Ok(())
    }
}
