//! What a service's event tables say: the inbox row a consumer writes with each event it
//! applies (what tests wait on), and the outbox rows of the events it emitted.

use bazaar_bus::Envelope;
use bazaar_db::{Db, sqlx};

/// Whether `consumer` has applied event `event_id`.
pub async fn applied(db: &Db, consumer: &str, event_id: &str) -> bool {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE consumer = $1 AND event_id = $2")
            .bind(consumer)
            .bind(event_id)
            .fetch_one(db.pool())
            .await
            .expect("read inbox");
    n == 1
}

/// How many events `consumer` has applied in all.
pub async fn applied_count(db: &Db, consumer: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE consumer = $1")
        .bind(consumer)
        .fetch_one(db.pool())
        .await
        .expect("count inbox")
}

/// Waits until `consumer` has applied event `event_id`.
pub async fn consumed(db: &Db, consumer: &str, event_id: &str) {
    crate::eventually(&format!("event {event_id} consumed"), || {
        applied(db, consumer, event_id)
    })
    .await;
}

/// Every event of `event_type` in the service's outbox, oldest first.
pub async fn emitted(db: &Db, event_type: &str) -> Vec<Envelope> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM outbox WHERE event_type = $1 ORDER BY seq")
            .bind(event_type)
            .fetch_all(db.pool())
            .await
            .expect("read outbox");
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).expect("envelope"))
        .collect()
}
