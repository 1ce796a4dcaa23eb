//! Storing published events: every relay's batch goes to one writer task that stores the
//! batches arriving together in one transaction, claims them there for idle subscriptions and
//! hands them over (see [`super::wake`]), wakes the other subscriptions and live listeners that
//! want them, and leaves answering the relays to [`super::durable`].

use std::path::PathBuf;
use std::sync::Arc;

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
    let mut tx = log.begin().await?;
    let mut stored = Vec::new();
    for event in events {
        let body = serde_json::to_string(event).map_err(|e| BusError::Malformed(e.to_string()))?;
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO bus_messages (id, body, stored_at, event_type) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING RETURNING seq",
        )
        .bind(&event.id)
        .bind(body)
        .bind(now_millis())
        .bind(&event.event_type)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(seq) = seq {
            stored.push((seq, event));
        }
    }
    let Some(&(last, _)) = stored.last() else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let reserved = waiters.reserve(&stored);
    let claimed = async {
        let mut claimed = Vec::with_capacity(reserved.len());
        for (waiter, events) in &reserved {
            claimed.push(claim_for(&mut tx, waiter, events, last).await?);
        }
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

/// Claims `events`, just stored up to `last`, for `waiter`'s consumer, moving its cursor to
/// `last`: only when no older event of its types is still unclaimed, so it never skips one.
/// False when there is one (the subscription then claims for itself, in log order).
async fn claim_for(
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
    if query.execute(&mut **tx).await?.rows_affected() == 0 {
        return Ok(false);
    }
    let due_at = now_millis() + spec.ack_wait.as_millis() as i64;
    record_claims(tx, &spec.name, events.iter().map(|(seq, _)| *seq), due_at).await?;
    Ok(true)
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
