//! What the log holds: its events, and for each consumer what it was handed, what is waiting
//! for it and what it has not yet acknowledged.

use bazaar_db::{Db, sqlx};

use super::sql::{split_types, type_filter};
use crate::BusError;
use crate::transport::{ConsumerStats, StreamStats};

/// The log's figures, read from `db`.
pub(super) async fn stream_stats(db: &Db) -> Result<StreamStats, BusError> {
    let pool = db.pool();
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
