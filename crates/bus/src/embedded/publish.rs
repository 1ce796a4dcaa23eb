//! Storing published events: every relay's batch goes to one writer task that group-commits
//! the batches arriving together (one fsync for all), then wakes the subscriptions and live
//! listeners that want them.

use std::sync::Arc;

use bazaar_db::{Db, now_millis, sqlx};
use tokio::sync::{mpsc, oneshot};

use super::wake::Waiters;
use crate::{BusError, Envelope};

/// A relay's batch waiting to be stored, and where to say it was.
pub(super) struct PublishRequest {
    events: Vec<Envelope>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Publish requests stored in one transaction at most.
const MAX_GROUP: usize = 64;

/// Stores publishes by group commit: the batches of every relay that publish at about the same
/// time go into one transaction, so they share one fsync instead of queueing for one each.
/// Each is answered only once its group is durable.
pub(super) async fn write_publishes(
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
