//! Transactional outbox: events are written in the same transaction as the state change that
//! caused them, then a relay publishes them in order and marks them sent.
//!
//! A service writes through its one [`Outbox`]: every transaction begun there ([`EventTx`])
//! wakes the service's relay when it commits, so publishing starts at once and no use case can
//! forget to ask for it. The relay's idle poll is only a safety net (another replica's commits,
//! or a crash between commit and publish).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use bazaar_db::params::{ROWS_PER_STATEMENT, value_rows};
use bazaar_db::{Db, DbError, Dialect, Tx, now_millis, sqlx};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::trace::{self, TraceContext};
use crate::{BusError, Envelope, Transport};

/// Events read and published per relay round; one broker round trip and one update each.
const BATCH: i64 = 500;
/// How often the relay looks even without a wake-up.
const POLL: Duration = Duration::from_millis(500);
/// How soon the relay tries again while another replica of its service holds the relay lock.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// One service's outbox: its database and the wake-up of its relay.
#[derive(Clone)]
pub struct Outbox {
    service: &'static str,
    db: Db,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(service: &'static str, db: Db) -> Self {
        Outbox {
            service,
            db,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The service's database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Starts a write transaction that may emit events; its commit wakes the relay.
    pub async fn begin(&self) -> Result<EventTx, DbError> {
        Ok(EventTx {
            tx: self.db.begin().await?,
            wake: self.wake.clone(),
            emitted: false,
        })
    }

    /// The relay that publishes this outbox to `transport`.
    pub fn relay(&self, transport: Arc<dyn Transport>) -> OutboxRelay {
        OutboxRelay {
            outbox: self.for_pipeline(),
            transport,
        }
    }

    /// This outbox on the connections kept for the event pipeline (see [`Db::pipeline`]).
    pub(crate) fn for_pipeline(&self) -> Outbox {
        Outbox {
            db: self.db.pipeline(),
            ..self.clone()
        }
    }
}

/// A write transaction of a service that can record events; see [`Outbox::begin`]. It derefs
/// to the plain transaction for the service's own statements.
pub struct EventTx {
    tx: Tx,
    wake: Arc<Notify>,
    emitted: bool,
}

impl EventTx {
    /// Records `event` in the outbox; it is published only if this transaction commits.
    pub async fn emit(&mut self, event: &Envelope) -> Result<(), BusError> {
        self.emit_all(std::slice::from_ref(event)).await
    }

    /// Records `events` in the outbox, in order, one statement per [`ROWS_PER_STATEMENT`]: they
    /// are published, in that order, only if this transaction commits.
    pub async fn emit_all(&mut self, events: &[Envelope]) -> Result<(), BusError> {
        // An event without a trace of its own joins the trace of the span recording it (a
        // request, or the consumer applying the event that caused this one).
        let current = TraceContext::current();
        let now = now_millis();
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let insert = format!(
                "INSERT INTO outbox (id, event_type, body, created_at) VALUES {}",
                value_rows(1, chunk.len(), 4)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
            for event in chunk {
                query = query
                    .bind(&event.id)
                    .bind(&event.event_type)
                    .bind(body(event, current.as_ref())?)
                    .bind(now);
            }
            query.execute(&mut *self.tx).await?;
            self.emitted = true;
        }
        Ok(())
    }

    /// Commits, then wakes the relay if an event was recorded.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        if self.emitted {
            self.wake.notify_one();
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        Ok(self.tx.rollback().await?)
    }
}

impl Deref for EventTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for EventTx {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

/// The stored form of `event`, carrying `trace` when it has no trace of its own.
fn body(event: &Envelope, trace: Option<&TraceContext>) -> Result<String, BusError> {
    let body = match trace.filter(|_| event.trace.is_none()) {
        Some(trace) => serde_json::to_string(&Envelope {
            trace: Some(trace.clone()),
            ..event.clone()
        }),
        None => serde_json::to_string(event),
    };
    body.map_err(|e| BusError::Malformed(e.to_string()))
}

/// Events written but not yet published (exported as the outbox backlog metric).
pub async fn outbox_backlog(db: &Db) -> Result<i64, BusError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(db.pool())
            .await?,
    )
}

/// When the oldest unpublished event was written (ms since the epoch), `None` when the outbox
/// is drained. One cheap query: the partial index `outbox_unpublished` holds only these rows.
pub async fn outbox_oldest_unpublished(db: &Db) -> Result<Option<i64>, BusError> {
    Ok(
        sqlx::query_scalar("SELECT MIN(created_at) FROM outbox WHERE published_at IS NULL")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Publishes one service's outbox to the transport.
#[derive(Clone)]
pub struct OutboxRelay {
    outbox: Outbox,
    transport: Arc<dyn Transport>,
}

/// What one relay round found.
enum Round {
    /// Published this many events.
    Published(usize),
    /// Another replica of this service is publishing.
    Busy,
}

impl OutboxRelay {
    /// Runs until `stop` fires, then publishes what is left (best effort) and returns.
    pub async fn run(self, stop: CancellationToken) {
        let service = self.outbox.service;
        let mut failures = 0u32;
        loop {
            // Register for the wake-up before looking, so a commit in between is not missed.
            let woken = self.outbox.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let waited = match self.flush_round().await {
                Ok(busy) => {
                    failures = 0;
                    if busy { LOCK_RETRY } else { POLL }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(service, error = %e, "outbox relay failed; retrying");
                    POLL * failures.min(10)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = woken => {}
                _ = tokio::time::sleep(waited) => {}
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(service, error = %e, "final outbox flush failed; events stay queued");
        }
    }

    /// Publishes every unpublished event, oldest first (waiting out another replica's round).
    pub async fn flush(&self) -> Result<(), BusError> {
        while self.flush_round().await? {
            tokio::time::sleep(LOCK_RETRY).await;
        }
        Ok(())
    }

    /// Publishes until the outbox is empty; true when another replica held the lock.
    async fn flush_round(&self) -> Result<bool, BusError> {
        loop {
            match self.publish_batch().await? {
                Round::Busy => return Ok(true),
                Round::Published(n) if n < BATCH as usize => return Ok(false),
                Round::Published(_) => {}
            }
        }
    }

    async fn publish_batch(&self) -> Result<Round, BusError> {
        let db = &self.outbox.db;
        if db.dialect() == Dialect::Postgres {
            let mut tx = db.begin().await?;
            // One relay per service at a time keeps its events in commit order across
            // replicas; the key is the service's schema, so services sharing a database never
            // wait on each other.
            let locked: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(7412, hashtext(current_schema()))",
            )
            .fetch_one(&mut *tx)
            .await?;
            if !locked {
                return Ok(Round::Busy);
            }
            let published = self.publish_next(&mut tx).await?;
            mark_published(&mut tx, &published).await?;
            tx.commit().await?;
            return Ok(Round::Published(published.len()));
        }
        // SQLite: one process owns the file and this relay is its one publisher, so there is
        // no lock to take, and the write transaction covers only the marking: the service's
        // own writers are not held up while the broker stores the batch.
        let mut conn = db.pool().acquire().await?;
        let published = self.publish_next(&mut conn).await?;
        drop(conn);
        if !published.is_empty() {
            let mut tx = db.begin().await?;
            mark_published(&mut tx, &published).await?;
            tx.commit().await?;
        }
        Ok(Round::Published(published.len()))
    }

    /// Publishes the oldest unpublished events; returns the outbox rows it dealt with.
    async fn publish_next(&self, conn: &mut sqlx::AnyConnection) -> Result<Vec<i64>, BusError> {
        let service = self.outbox.service;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *conn)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for (seq, body) in &rows {
            match serde_json::from_str::<Envelope>(body) {
                Ok(event) => events.push(event),
                // Cannot happen for rows written by `emit`; never let one block the rest.
                Err(e) => {
                    tracing::error!(service, seq, error = %e, "skipping unreadable outbox row")
                }
            }
        }
        // One span per event, each a child of the span that recorded it, open while the
        // batch is stored; each event then carries its publish span's context to consumers.
        let spans: Vec<tracing::Span> = events
            .iter_mut()
            .map(|event| {
                let span = trace::publish_span(service, event);
                if let Some(context) = TraceContext::of(&span) {
                    event.trace = Some(context);
                }
                span
            })
            .collect();
        if !events.is_empty()
            && let Err(e) = self.transport.publish_batch(&events).await
        {
            spans.iter().for_each(trace::fail);
            return Err(e);
        }
        drop(spans);
        for event in &events {
            metrics::counter!("bazaar_events_published_total",
                "service" => service, "type" => event.event_type.clone())
            .increment(1);
        }
        Ok(rows.into_iter().map(|(seq, _)| seq).collect())
    }
}

/// Marks outbox rows `seqs` as published.
async fn mark_published(tx: &mut Tx, seqs: &[i64]) -> Result<(), BusError> {
    if seqs.is_empty() {
        return Ok(());
    }
    // Sequence numbers are integers we read ourselves: safe to inline.
    let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
    let mark = format!(
        "UPDATE outbox SET published_at = $1 WHERE seq IN ({})",
        list.join(",")
    );
    // A new statement text each time: not worth a place in the prepared-statement cache.
    sqlx::query(sqlx::AssertSqlSafe(mark))
        .persistent(false)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
