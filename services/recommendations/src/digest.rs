//! The scheduled recommendation digest: at each tick of `recommendation_schedule` (claimed
//! by one replica), every buyer with something to recommend gets a `RecommendationDigest`
//! through the outbox; the notifications service delivers it to those who opted in.

use std::time::Duration;

use bazaar_bus::Outbox;
use bazaar_contracts::events::{Event, RecommendationDigest};
use bazaar_runtime::Task;
use bazaar_runtime::schedule::{self, Schedule};
use tokio_util::sync::CancellationToken;

use crate::app::Recommendations;
use crate::domain::First;
use crate::store;

/// The job's name in the schedule's claim table.
const JOB: &str = "recommendation-digest";
/// Users read per page.
const PAGE: i64 = 500;
/// How long the record of sent digests is kept: far past any re-run of a tick.
const KEEP_SENT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The digest job on `schedule`, until stopped.
pub fn task(recommendations: Recommendations, outbox: Outbox, schedule: Schedule) -> Task {
    Box::new(move |stop: CancellationToken| {
        Box::pin(async move {
            let db = recommendations.db.clone();
            schedule::run(db, JOB, schedule, stop, move |tick_at| {
                let (recommendations, outbox) = (recommendations.clone(), outbox.clone());
                async move {
                    let sent = send_digests(&recommendations, &outbox, tick_at)
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(tick_at, sent, "recommendation digests enqueued");
                    Ok(())
                }
            })
            .await
        })
    })
}

/// Enqueues the digests of tick `tick_at`; returns how many were new. Each user's digest
/// commits with its (tick, user) record, so running a tick again skips what went out.
pub async fn send_digests(
    recommendations: &Recommendations,
    outbox: &Outbox,
    tick_at: i64,
) -> Result<u64, bazaar_runtime::ServiceError> {
    let db = &recommendations.db;
    let mut sent = 0;
    let mut after = String::new();
    loop {
        let users = store::users_with_purchases(db, &after, PAGE).await?;
        let Some(last) = users.last() else { break };
        after = last.clone();
        for user_id in users {
            let products = recommendations
                .ranked(Some(&user_id), First::digest())
                .await?;
            if products.is_empty() {
                continue;
            }
            let digest = RecommendationDigest {
                // Deterministic, so a digest is recognisable as the same one downstream too.
                digest_id: format!("{tick_at}-{user_id}"),
                user_id,
                products,
            };
            let mut tx = outbox.begin().await?;
            if store::mark_digest_sent(&mut tx, tick_at, &digest.user_id).await? {
                tx.emit(&digest.envelope(crate::app::SERVICE)).await?;
                sent += 1;
            }
            tx.commit().await?;
        }
    }
    metrics::counter!("bazaar_recommendation_digests_total").increment(sent);
    let keep = i64::try_from(KEEP_SENT.as_millis()).unwrap_or(i64::MAX);
    store::prune_digests(db, tick_at.saturating_sub(keep)).await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use bazaar_db::{Db, DbTarget, sqlx};

    use super::*;
    use crate::store::Purchase;

    fn bought(id: &str) -> Purchase {
        Purchase {
            product_id: id.into(),
            units: 1,
        }
    }

    /// A tick run twice (a retry, or two replicas that both think they own it) sends each
    /// user's digest once; the next tick sends them again.
    #[tokio::test]
    async fn rerunning_a_tick_sends_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DbTarget::SqliteFile(dir.path().join("r.db")))
            .await
            .unwrap();
        db.migrate("bus", bazaar_bus::MIGRATIONS).await.unwrap();
        db.migrate("recommendations", store::MIGRATIONS)
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        for id in ["A", "B"] {
            store::upsert_product(&mut tx, id, id, 5, false)
                .await
                .unwrap();
        }
        store::record_order(&mut tx, "u1", &[bought("A"), bought("B")])
            .await
            .unwrap();
        store::record_order(&mut tx, "u2", &[bought("A")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let outbox = Outbox::new(crate::app::SERVICE, db.clone());
        let recommendations = Recommendations { db: db.clone() };
        // u1 bought everything: only u2 has a digest.
        assert_eq!(
            send_digests(&recommendations, &outbox, 1000).await.unwrap(),
            1
        );
        assert_eq!(
            send_digests(&recommendations, &outbox, 1000).await.unwrap(),
            0
        );
        assert_eq!(
            send_digests(&recommendations, &outbox, 2000).await.unwrap(),
            1
        );
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body FROM outbox WHERE event_type = 'RecommendationDigest'")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let ids: Vec<String> = bodies
            .iter()
            .map(|b| {
                let e: bazaar_bus::Envelope = serde_json::from_str(b).unwrap();
                e.decode::<RecommendationDigest>().unwrap().digest_id
            })
            .collect();
        assert_eq!(ids, ["1000-u2", "2000-u2"]);
    }
}
