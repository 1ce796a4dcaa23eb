//! Storing published events: every relay's batch goes to one writer task that stores the
//! batches arriving together in one transaction, claims them there for idle subscriptions and
//! hands them over (see [`super::wake`]), wakes the other subscriptions and live listeners that
//! want them, and leaves answering the relays to [`super::durable`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bazaar_db::params::{ROWS_PER_STATEMENT, value_rows};
use bazaar_db::{Db, Tx, now_millis, sqlx};
use tokio::sync::{mpsc, oneshot};

use super::claim::record_claims;
use super::durable::{Answer, answer_when_durable};
use super::sql::type_filter;
use super::wake::{Waiter, Waiters};
use crate::{BusError, Envelope};

/// A relay's batch waiting to be stored, and where to say it was.
pub(super) struct PublishRequest {
    events: Vec<Envelope>,
    done: Answer,
}

/// Publish requests stored in one transaction at most.
const MAX_GROUP: usize = 64;

/// Stores publishes by group commit: the batches of every relay that publish at about the same
/// time go into one transaction on `log` (a handle whose commits skip the fsync), and share
/// one fsync of `wal`, the log's write-ahead file, before their relays are answered.
pub(super) async fn write_publishes(
    log: Db,
    wal: PathBuf,
    mut requests: mpsc::UnboundedReceiver<PublishRequest>,
    waiters: Arc<Waiters>,
    live: tokio::sync::broadcast::Sender<Envelope>,
) {
    let (stored_groups, stored) = mpsc::unbounded_channel();
    tokio::spawn(answer_when_durable(wal, stored));
    while let Some(first) = requests.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let events = group.iter().flat_map(|r| &r.events);
        match store_events(&log, events, &waiters).await {
            Ok(stored) => {
                let mut types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
                types.sort_unstable();
                types.dedup();
                waiters.wake(Some(&types));
                // Live listeners see each event once, like the log; nobody listening is fine.
                for event in stored {
                    let _ = live.send(event.clone());
                }
                let _ = stored_groups.send(group.into_iter().map(|r| r.done).collect());
            }
            Err(e) => {
                for request in group {
                    let _ = request.done.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Inserts `events` in one transaction, claiming them there for the idle subscriptions that
/// take them, and hands those their events once it has committed. Returns the events
/// that were new (not duplicates).
async fn store_events<'a>(
    log: &Db,
    events: impl Iterator<Item = &'a Envelope>,
    waiters: &Waiters,
) -> Result<Vec<&'a Envelope>, BusError> {
    let events: Vec<&Envelope> = events.collect();
    let mut tx = log.begin().await?;
    let stored = insert_new(&mut tx, &events).await?;
    let Some(&(last, _)) = stored.last() else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let reserved = waiters.reserve(&stored);
    let claimed = async {
        let mut claimed = Vec::with_capacity(reserved.len());
        for (waiter, events) in &reserved {
            claimed.push(advance_cursor(&mut tx, waiter, events, last).await?);
        }
        let now = now_millis();
        let mut rows = Vec::new();
        for ((waiter, events), _) in reserved.iter().zip(&claimed).filter(|(_, ok)| **ok) {
            let due_at = now + waiter.spec.ack_wait.as_millis() as i64;
            rows.extend(
                events
                    .iter()
                    .map(|(seq, _)| (waiter.spec.name.as_str(), *seq, due_at)),
            );
        }
        record_claims(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok::<_, BusError>(claimed)
    }
    .await;
    match claimed {
        Ok(claimed) => {
            for ((waiter, events), claimed) in reserved.into_iter().zip(claimed) {
                match claimed {
                    true => waiter.hand(events),
                    false => waiter.release(),
                }
            }
            Ok(stored.into_iter().map(|(_, event)| event).collect())
        }
        Err(e) => {
            reserved.iter().for_each(|(waiter, _)| waiter.release());
            Err(e)
        }
    }
}

/// Inserts the `events` not stored before (the log deduplicates by id), a statement per
/// [`ROWS_PER_STATEMENT`]; returns the new ones with their sequence numbers, in log order.
async fn insert_new<'a>(
    tx: &mut Tx,
    events: &[&'a Envelope],
) -> Result<Vec<(i64, &'a Envelope)>, BusError> {
    let now = now_millis();
    let mut stored = Vec::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let insert = format!(
            "INSERT INTO bus_messages (id, body, stored_at, event_type) VALUES {}
             ON CONFLICT (id) DO NOTHING RETURNING seq, id",
            value_rows(1, chunk.len(), 4)
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(insert));
        for event in chunk {
            let body =
                serde_json::to_string(event).map_err(|e| BusError::Malformed(e.to_string()))?;
            query = query
                .bind(&event.id)
                .bind(body)
                .bind(now)
                .bind(&event.event_type);
        }
        let by_id: HashMap<&str, &Envelope> = chunk.iter().map(|e| (e.id.as_str(), *e)).collect();
        for (seq, id) in query.fetch_all(&mut **tx).await? {
            if let Some(event) = by_id.get(id.as_str()) {
                stored.push((seq, *event));
            }
        }
    }
    // SQLite returns the rows of a multi-row insert in no promised order.
    stored.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(stored)
}

/// Moves the cursor of `waiter`'s consumer over `events`, just stored up to `last`, so they are
/// its to take: only when no older event of its types is still unclaimed, so it never skips
/// one. False when there is one (the subscription then claims for itself, in log order).
async fn advance_cursor(
    tx: &mut Tx,
    waiter: &Waiter,
    events: &[(i64, Envelope)],
    last: i64,
) -> Result<bool, BusError> {
    let spec = &waiter.spec;
    let first = events[0].0;
    let (filter, types) = type_filter(&spec.event_types, 5);
    let advance = format!(
        "UPDATE bus_consumers SET cursor = $2, delivered = delivered + $3
         WHERE name = $1 AND cursor < $4 AND NOT EXISTS (
             SELECT 1 FROM bus_messages WHERE seq > bus_consumers.cursor AND seq < $4{filter})"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(advance))
        .bind(&spec.name)
        .bind(last)
        .bind(events.len() as i64)
        .bind(first);
    for t in types {
        query = query.bind(t);
    }
    Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
}

/// Hands `events` to the writer and waits until they are durable (or were already stored).
pub(super) async fn publish_batch(
    publishes: &mpsc::UnboundedSender<PublishRequest>,
    events: &[Envelope],
) -> Result<(), BusError> {
    let (done, answer) = oneshot::channel();
    let request = PublishRequest {
        events: events.to_vec(),
        done,
    };
    let closed = || BusError::Unavailable("the event log's writer stopped".into());
    publishes.send(request).map_err(|_| closed())?;
    answer
        .await
        .map_err(|_| closed())?
        .map_err(|e| BusError::Unavailable(format!("event log write failed: {e}")))
}
