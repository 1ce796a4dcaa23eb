//! Scheduled jobs (cron expressions) that run once per tick however many replicas run them:
//! each replica sleeps until the next tick, then tries to claim it with one INSERT into the
//! service's own database; only the replica whose insert lands runs the job.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use bazaar_db::{Db, Migration, sqlx};
use croner::Cron;
use tokio_util::sync::CancellationToken;

/// Apply with `db.migrate("schedule", schedule::MIGRATIONS)` in services that schedule jobs.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: "0001_ticks",
    sql: "
        CREATE TABLE schedule_ticks (
            job TEXT NOT NULL,
            tick_at BIGINT NOT NULL,
            claimed_at BIGINT NOT NULL,
            PRIMARY KEY (job, tick_at)
        );
    ",
}];

/// A parsed cron expression (5 fields, or 6 with seconds first).
#[derive(Debug, Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        Cron::from_str(expression)
            .map(Schedule)
            .map_err(|e| format!("{expression:?} is not a cron expression: {e}"))
    }

    /// How long until the next tick from now (an hour if the expression has none left).
    pub fn until_next(&self) -> Duration {
        let now = chrono::Utc::now();
        self.next_after(now)
            .and_then(|tick| (tick - now).to_std().ok())
            .unwrap_or(Duration::from_secs(3600))
    }

    /// The first tick strictly after `now`.
    fn next_after(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.find_next_occurrence(&now, false).ok()
    }
}

/// Runs `job(tick unix millis)` at every tick of `schedule` that this replica claims, until
/// `stop`. A failed job is logged; the tick stays claimed (jobs must themselves be safe to
/// re-run on the next tick, e.g. by recording what they already did).
pub async fn run<F, Fut>(
    db: Db,
    name: &'static str,
    schedule: Schedule,
    stop: CancellationToken,
    mut job: F,
) where
    F: FnMut(i64) -> Fut + Send,
    Fut: Future<Output = Result<(), String>> + Send,
{
    loop {
        let now = chrono::Utc::now();
        let Some(tick) = schedule.next_after(now) else {
            tracing::error!(job = name, "schedule has no next tick; stopping");
            return;
        };
        let wait = (tick - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let tick_at = tick.timestamp_millis();
        match claim(&db, name, tick_at).await {
            Ok(true) => {
                if let Err(e) = job(tick_at).await {
                    tracing::warn!(job = name, error = %e, "scheduled job failed");
                }
            }
            Ok(false) => tracing::debug!(job = name, tick_at, "tick claimed by another replica"),
            Err(e) => tracing::warn!(job = name, error = %e, "cannot claim tick"),
        }
    }
}

async fn claim(db: &Db, job: &str, tick_at: i64) -> Result<bool, bazaar_db::DbError> {
    let done = sqlx::query(
        "INSERT INTO schedule_ticks (job, tick_at, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(job)
    .bind(tick_at)
    .bind(bazaar_db::now_millis())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_replicas_run_each_tick_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&bazaar_db::DbTarget::SqliteFile(dir.path().join("s.db")))
            .await
            .unwrap();
        db.migrate("schedule", MIGRATIONS).await.unwrap();
        let runs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        for _ in 0..2 {
            let (db, runs, stop) = (db.clone(), runs.clone(), stop.clone());
            let schedule = Schedule::parse("* * * * * *").unwrap();
            tokio::spawn(run(db, "job", schedule, stop, move |tick| {
                let runs = runs.clone();
                async move {
                    runs.lock().unwrap().push(tick);
                    Ok(())
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        stop.cancel();
        let mut ticks = runs.lock().unwrap().clone();
        let n = ticks.len();
        ticks.dedup();
        assert!(n >= 2, "ran {n} times");
        assert_eq!(ticks.len(), n, "a tick ran twice");
        assert!(Schedule::parse("not cron").is_err());
    }
}
