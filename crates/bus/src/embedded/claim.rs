//! Handing out deliveries: one bookkeeping transaction claims the redeliveries that are due
//! and the consumer's new events, moves its cursor, and reads the events' bodies.

use std::time::Duration;

use bazaar_db::params::ROWS_PER_STATEMENT;
use bazaar_db::{Tx, now_millis, sqlx};

use super::sql::{seq_list, type_filter};
use super::subscription::{EmbeddedAcker, EmbeddedSubscription};
use crate::transport::{Acker, Delivery};
use crate::{BusError, Envelope};

impl EmbeddedSubscription {
    /// Claims up to `max` deliveries in one bookkeeping transaction: redeliveries that are
    /// due, then new events of the consumer's types, in log order. When there is nothing to
    /// do, returns the time until the earliest pending redelivery.
    pub(super) async fn claim(
        &self,
        max: usize,
    ) -> Result<Result<Vec<Delivery>, Option<Duration>>, BusError> {
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
            let rows: Vec<_> = fresh
                .iter()
                .map(|&seq| (name.as_str(), seq, redeliver_at))
                .collect();
            record_claims(&mut tx, &rows).await?;
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
            // A pruned or unreadable message can never succeed: settle it so it stops coming back.
            match bodies
                .get(&seq)
                .map(|b| serde_json::from_str::<Envelope>(b))
            {
                Some(Ok(event)) => deliveries.push(self.delivery(seq, attempt as u32, event)),
                other => {
                    tracing::error!(consumer = %name, seq, ?other, "dropping unreadable event");
                    EmbeddedAcker::new(self.inner.clone(), name.clone(), seq)
                        .ack()
                        .await?;
                }
            }
        }
        if deliveries.is_empty() {
            return Ok(Err(Some(Duration::ZERO)));
        }
        Ok(Ok(deliveries))
    }
}

/// Records first deliveries: each (consumer, log sequence, due again at unless settled).
pub(super) async fn record_claims(
    tx: &mut Tx,
    deliveries: &[(&str, i64, i64)],
) -> Result<(), BusError> {
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, (_, seq, _))| format!("(${}, {seq}, 1, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let insert = format!(
            "INSERT INTO bus_pending (consumer, seq, attempts, due_at) VALUES {}",
            rows.join(",")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert)).persistent(false);
        for (consumer, _, due_at) in chunk {
            query = query.bind(*consumer).bind(*due_at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
