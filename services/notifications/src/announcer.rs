//! The promotion announcer: at each tick of `promotion_schedule` (claimed once across
//! replicas), tells every opted-in user about each running promotion they have not heard of.
//! The (user, PROMOTION, promotion id) key makes that exactly once per user and promotion,
//! whatever the number of replicas, ticks or re-runs after a failure.

use std::sync::Arc;

use bazaar_contracts::notifications::NotificationKind;
use bazaar_db::{Db, DbError, now_millis};
use bazaar_runtime::Task;
use bazaar_runtime::schedule::{self, Schedule};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain;
use crate::store::{self, NewNotification};

/// The schedule's job name (its ticks are claimed under it).
pub const JOB: &str = "announce-promotions";
/// Users announced to per transaction: keeps each write transaction short.
const CHUNK: i64 = 200;

pub fn task(db: Db, schedule: Schedule, wake: Arc<Notify>) -> Task {
    Box::new(move |stop: CancellationToken| {
        Box::pin(async move {
            let job_db = db.clone();
            schedule::run(db, JOB, schedule, stop, move |tick| {
                let (db, wake) = (job_db.clone(), wake.clone());
                async move {
                    let n = announce(&db, tick).await.map_err(|e| e.to_string())?;
                    if n > 0 {
                        tracing::info!(notifications = n, "promotions announced");
                        wake.notify_one();
                    }
                    Ok(())
                }
            })
            .await
        })
    })
}

/// Announces the promotions running at `tick` (unix ms) and still running now; returns how
/// many notifications it created.
pub async fn announce(db: &Db, tick: i64) -> Result<u64, DbError> {
    // A tick that runs late (a busy machine, a replica catching up) must not tell anyone about
    // a promotion that has ended since the tick was due: look at the later of the two times.
    let at = tick.max(now_millis());
    let promotions = {
        let mut conn = db.pool().acquire().await?;
        store::active_promotions(&mut conn, at).await?
    };
    let mut created = 0;
    for promotion in &promotions {
        let content = domain::promotion(promotion);
        let mut after = String::new();
        loop {
            let mut tx = db.begin().await?;
            let users = store::users_to_announce(&mut tx, &promotion.id, &after, CHUNK).await?;
            let Some(last) = users.last().cloned() else {
                break;
            };
            for user_id in &users {
                let n = NewNotification {
                    user_id,
                    kind: NotificationKind::Promotion,
                    dedup_key: &promotion.id,
                    content: &content,
                };
                // A concurrent run may have got there first: the insert is then a no-op.
                if store::insert_notification(&mut tx, &n, now_millis())
                    .await?
                    .is_some()
                {
                    created += 1;
                }
            }
            tx.commit().await?;
            after = last;
        }
    }
    Ok(created)
}
