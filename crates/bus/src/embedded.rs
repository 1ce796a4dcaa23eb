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
use bazaar_db::{Db, DbTarget, Migration, Prune, now_millis};
use futures::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::transport::{
    Acker, ConsumerSpec, ConsumerStats, Delivery, StreamStats, Subscription, Transport,
};
use crate::{BusError, Envelope};

/// Events older than this are pruned, like the JetStream stream's `max_age`.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Upper bound on how long an idle subscriber sleeps before looking again.
const IDLE_POLL: Duration = Duration::from_millis(500);

const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: "0002_event_types",
        // Consumers receive only the types they name: the log keeps each event's type beside it.
        sql: "
        ALTER TABLE bus_messages ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
        UPDATE bus_messages SET event_type = COALESCE(json_extract(body, '$.type'), '');
        ALTER TABLE bus_consumers ADD COLUMN event_types TEXT NOT NULL DEFAULT '';
    ",
    },
];

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
    /// Subscriptions waiting for new events.
    waiters: Arc<Waiters>,
    /// Fan-out of published events to live listeners in this process.
    live: tokio::sync::broadcast::Sender<Envelope>,
    /// The one writer of publishes (see [`write_publishes`]).
    publishes: mpsc::UnboundedSender<PublishRequest>,
}

/// Subscriptions waiting for events, each woken only by events of the types it takes: a publish
/// does not set every consumer of the process claiming (each claim is a turn in the log's
/// writers' queue) when one or two of them want the event.
#[derive(Default)]
struct Waiters(std::sync::Mutex<Vec<Waiter>>);

struct Waiter {
    /// Empty: every type.
    types: Vec<String>,
    wake: Arc<Notify>,
}

impl Waiters {
    /// The wake-up of a new subscription to `types`.
    fn register(&self, types: &[String]) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let waiter = Waiter {
            types: types.to_vec(),
            wake: wake.clone(),
        };
        self.0.lock().expect("waiters").push(waiter);
        wake
    }

    /// Wakes the subscriptions that take any of `types` (all of them for `None`), and forgets
    /// those that are gone. A subscription busy claiming keeps the wake-up for its next look.
    fn wake(&self, types: Option<&[&str]>) {
        let mut waiters = self.0.lock().expect("waiters");
        waiters.retain(|w| Arc::strong_count(&w.wake) > 1);
        for waiter in waiters.iter() {
            let wanted = match types {
                Some(types) => {
                    waiter.types.is_empty()
                        || types.iter().any(|t| waiter.types.iter().any(|w| w == t))
                }
                None => true,
            };
            if wanted {
                waiter.wake.notify_one();
            }
        }
    }
}

/// A relay's batch waiting to be stored, and where to say it was.
struct PublishRequest {
    events: Vec<Envelope>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Publish requests stored in one transaction at most.
const MAX_GROUP: usize = 64;

/// Stores publishes by group commit: the batches of every relay that publish at about the same
/// time go into one transaction, so they share one fsync instead of queueing for one each.
/// Each is answered only once its group is durable.
async fn write_publishes(
    db: Db,
    mut requests: mpsc::UnboundedReceiver<PublishRequest>,
    waiters: Arc<Waiters>,
    live: tokio::sync::broadcast::Sender<Envelope>,
) {
    while let Some(first) = requests.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let events = group.iter().flat_map(|r| &r.events);
        let answer = match store_events(&db, events).await {
            Ok(stored) => {
                let mut types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
                types.sort_unstable();
                types.dedup();
                waiters.wake(Some(&types));
                // Live listeners see each event once, like the log; nobody listening is fine.
                for event in stored {
                    let _ = live.send(event.clone());
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        for request in group {
            let _ = request.done.send(answer.clone());
        }
    }
}

/// Inserts `events` in one transaction; returns those that were new (not duplicates).
async fn store_events<'a>(
    db: &Db,
    events: impl Iterator<Item = &'a Envelope>,
) -> Result<Vec<&'a Envelope>, BusError> {
    let mut tx = db.begin().await?;
    let mut stored = Vec::new();
    for event in events {
        let body = serde_json::to_string(event).map_err(|e| BusError::Malformed(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO bus_messages (id, body, stored_at, event_type) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(body)
        .bind(now_millis())
        .bind(&event.event_type)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            stored.push(event);
        }
    }
    tx.commit().await?;
    Ok(stored)
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
            db.clone(),
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

use bazaar_db::sqlx;

#[async_trait]
impl Transport for EmbeddedTransport {
    async fn publish(&self, event: &Envelope) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(event)).await
    }

    /// Group-committed with the batches other relays publish at the same time.
    async fn publish_batch(&self, events: &[Envelope]) -> Result<(), BusError> {
        let (done, answer) = oneshot::channel();
        let request = PublishRequest {
            events: events.to_vec(),
            done,
        };
        let closed = || BusError::Unavailable("the event log's writer stopped".into());
        self.inner.publishes.send(request).map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(|e| BusError::Unavailable(format!("event log write failed: {e}")))
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
            wake: self.inner.waiters.register(&spec.event_types),
            spec: spec.clone(),
        }))
    }

    async fn ready(&self) -> bool {
        self.inner.db.ping().await
    }

    async fn stats(&self) -> Result<StreamStats, BusError> {
        let pool = self.inner.db.pool();
        let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_messages")
            .fetch_one(pool)
            .await?;
        let rows: Vec<(String, i64, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT c.name, c.cursor, c.delivered, c.redelivered,
                    (SELECT COUNT(*) FROM bus_pending p WHERE p.consumer = c.name), c.event_types
             FROM bus_consumers c ORDER BY c.name",
        )
        .fetch_all(pool)
        .await?;
        let mut consumers = Vec::with_capacity(rows.len());
        for (name, cursor, delivered, redelivered, in_flight, types) in rows {
            let types = split_types(&types);
            let (filter, binds) = type_filter(&types, 2);
            let waiting = format!("SELECT COUNT(*) FROM bus_messages WHERE seq > $1{filter}");
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(waiting)).bind(cursor);
            for t in binds {
                query = query.bind(t);
            }
            let waiting: i64 = query.fetch_one(pool).await?;
            consumers.push(ConsumerStats {
                name,
                delivered: delivered as u64,
                pending: (waiting + in_flight) as u64,
                ack_pending: in_flight as u64,
                redelivered: redelivered as u64,
            });
        }
        Ok(StreamStats {
            name: "embedded".into(),
            messages: messages as u64,
            consumers,
        })
    }

    async fn prune(&self, keep: Duration) -> Result<u64, BusError> {
        // Acknowledged by every consumer: behind every cursor and every pending delivery.
        let acknowledged = Prune {
            table: "bus_messages",
            key: "seq",
            expired: "stored_at < $1
                AND seq <= (SELECT COALESCE(MIN(cursor), 0) FROM bus_consumers)
                AND seq < (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM bus_pending)",
            keep,
        };
        // A lost delete is only done again next time: no fsync needed.
        let deleted = bazaar_db::prune(&self.inner.bookkeeping, &[acknowledged]).await?;
        Ok(deleted.iter().map(|(_, n)| n).sum())
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
    /// Woken by publishes of this consumer's types.
    wake: Arc<Notify>,
    spec: ConsumerSpec,
}

impl EmbeddedSubscription {
    /// Claims up to `max` deliveries in one bookkeeping transaction: redeliveries that are
    /// due, then new events of the consumer's types, in log order. When there is nothing to
    /// do, returns the time until the earliest pending redelivery.
    async fn claim(&self, max: usize) -> Result<Result<Vec<Delivery>, Option<Duration>>, BusError> {
        let name = &self.spec.name;
        let now = now_millis();
        let redeliver_at = now + self.spec.ack_wait.as_millis() as i64;
        let mut tx = self.inner.bookkeeping.begin().await?;
        let due: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, attempts FROM bus_pending WHERE consumer = $1 AND due_at <= $2
             ORDER BY seq LIMIT $3",
        )
        .bind(name)
        .bind(now)
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed: Vec<(i64, i64)> = due.iter().map(|(seq, n)| (*seq, n + 1)).collect();
        if !due.is_empty() {
            let update = format!(
                "UPDATE bus_pending SET attempts = attempts + 1, due_at = $2
                 WHERE consumer = $1 AND seq IN ({})",
                seq_list(due.iter().map(|(seq, _)| *seq))
            );
            sqlx::query(sqlx::AssertSqlSafe(update))
                .persistent(false)
                .bind(name)
                .bind(redeliver_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE bus_consumers SET redelivered = redelivered + $2 WHERE name = $1")
                .bind(name)
                .bind(due.len() as i64)
                .execute(&mut *tx)
                .await?;
        }
        let room = max - due.len();
        if room > 0 {
            let cursor: i64 =
                sqlx::query_scalar("SELECT cursor FROM bus_consumers WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
            let (filter, binds) = type_filter(&self.spec.event_types, 3);
            let select = format!(
                "SELECT seq FROM bus_messages WHERE seq > $1{filter} ORDER BY seq LIMIT $2"
            );
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
                .bind(cursor)
                .bind(room as i64);
            for t in binds {
                query = query.bind(t);
            }
            let fresh: Vec<i64> = query.fetch_all(&mut *tx).await?;
            // Skipped events of other types count as passed: the cursor moves over them too.
            let new_cursor = match fresh.last() {
                Some(&last) if fresh.len() == room => last,
                _ => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM bus_messages")
                    .fetch_one(&mut *tx)
                    .await?
                    .unwrap_or(cursor)
                    .max(cursor),
            };
            if !fresh.is_empty() {
                let rows: Vec<String> = fresh
                    .iter()
                    .map(|seq| format!("($1, {seq}, 1, $2)"))
                    .collect();
                let insert = format!(
                    "INSERT INTO bus_pending (consumer, seq, attempts, due_at) VALUES {}",
                    rows.join(",")
                );
                sqlx::query(sqlx::AssertSqlSafe(insert))
                    .persistent(false)
                    .bind(name)
                    .bind(redeliver_at)
                    .execute(&mut *tx)
                    .await?;
            }
            if new_cursor != cursor {
                sqlx::query(
                    "UPDATE bus_consumers SET cursor = $2, delivered = delivered + $3 WHERE name = $1",
                )
                .bind(name)
                .bind(new_cursor)
                .bind(fresh.len() as i64)
                .execute(&mut *tx)
                .await?;
            }
            claimed.extend(fresh.into_iter().map(|seq| (seq, 1)));
        }
        if claimed.is_empty() {
            let earliest: Option<i64> =
                sqlx::query_scalar("SELECT MIN(due_at) FROM bus_pending WHERE consumer = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            let wait = earliest.map(|at| Duration::from_millis((at - now).max(1) as u64));
            return Ok(Err(wait));
        }
        claimed.sort_unstable();
        let select = format!(
            "SELECT seq, body FROM bus_messages WHERE seq IN ({})",
            seq_list(claimed.iter().map(|(seq, _)| *seq))
        );
        let bodies: std::collections::HashMap<i64, String> =
            sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(select))
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        tx.commit().await?;
        let mut deliveries = Vec::with_capacity(claimed.len());
        for (seq, attempt) in claimed {
            let acker = EmbeddedAcker {
                inner: self.inner.clone(),
                consumer: name.clone(),
                seq,
            };
            // A pruned or unreadable message can never succeed: settle it so it stops coming back.
            match bodies
                .get(&seq)
                .map(|b| serde_json::from_str::<Envelope>(b))
            {
                Some(Ok(event)) => {
                    let mut delivery = Delivery::new(event, attempt as u32, Box::new(acker));
                    delivery.position = seq;
                    deliveries.push(delivery);
                }
                other => {
                    tracing::error!(consumer = %name, seq, ?other, "dropping unreadable event");
                    acker.ack().await?;
                }
            }
        }
        if deliveries.is_empty() {
            return Ok(Err(Some(Duration::ZERO)));
        }
        Ok(Ok(deliveries))
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BusError> {
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.wake.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let wait = match self.claim(max.max(1)).await? {
                Ok(deliveries) => return Ok(Some(deliveries)),
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

    /// One statement for the whole batch.
    async fn ack_batch(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let delete = format!(
            "DELETE FROM bus_pending WHERE consumer = $1 AND seq IN ({})",
            seq_list(deliveries.iter().map(|d| d.position))
        );
        // In a transaction, so it waits its turn among the log's writers (see `Tx`).
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .persistent(false)
            .bind(&self.spec.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Log sequence numbers (integers we read ourselves) as an SQL list.
fn seq_list(seqs: impl Iterator<Item = i64>) -> String {
    seqs.map(|s| s.to_string()).collect::<Vec<_>>().join(",")
}

/// ` AND event_type IN ($first, ...)` with the values to bind, or nothing for every type.
fn type_filter(types: &[String], first: usize) -> (String, &[String]) {
    if types.is_empty() {
        return (String::new(), types);
    }
    let params: Vec<String> = (first..first + types.len())
        .map(|i| format!("${i}"))
        .collect();
    (format!(" AND event_type IN ({})", params.join(",")), types)
}

fn split_types(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

struct EmbeddedAcker {
    inner: Arc<Inner>,
    consumer: String,
    seq: i64,
}

#[async_trait]
impl Acker for EmbeddedAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query("DELETE FROM bus_pending WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        let mut tx = self.inner.bookkeeping.begin().await?;
        sqlx::query("UPDATE bus_pending SET due_at = $3 WHERE consumer = $1 AND seq = $2")
            .bind(&self.consumer)
            .bind(self.seq)
            .bind(now_millis() + delay.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Wake idle subscribers so a zero-delay nak is picked up at once.
        self.inner.waiters.wake(None);
        Ok(())
    }
}
