//! Retention (the `[retention]` table of the config file): rows a service keeps only for a
//! while (idempotency keys, inbox and sent outbox rows, read notifications, ...) are deleted at
//! every tick of one schedule, by one replica per tick; the embedded event log drops the events
//! every consumer has acknowledged. Storage therefore stays flat however long bazaar runs.

use std::sync::Arc;
use std::time::Duration;

use bazaar_bus::Transport;
use bazaar_db::{Db, Prune};
use serde::Deserialize;

use crate::config::sources::env;
use crate::edge::env_secs;
use crate::schedule::{self, Schedule};
use crate::{ServiceName, Task};

/// Schedule ticks are only needed until every replica has passed them.
const SCHEDULE_TICKS_KEPT: Duration = Duration::from_secs(86_400);

/// The `[retention]` table as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRetention {
    schedule: Option<String>,
    idempotency_keys_secs: Option<u64>,
    inbox_secs: Option<u64>,
    sent_outbox_secs: Option<u64>,
    event_log_secs: Option<u64>,
    read_notifications_secs: Option<u64>,
}

/// How long each kind of row is kept, and when the purge runs.
#[derive(Debug, Clone)]
pub struct Retention {
    pub schedule: Schedule,
    /// A retried `placeOrder` with the same key finds its order within this time (Stripe keeps
    /// keys 24 hours).
    pub idempotency_keys: Duration,
    /// Consumers recognise a redelivered event within this time; keep it well beyond the
    /// broker's redelivery horizon (the stream keeps events 7 days).
    pub inbox: Duration,
    /// Published outbox rows, kept for operators tracing an event back to its source.
    pub sent_outbox: Duration,
    /// Events in the embedded log that every consumer has acknowledged.
    pub event_log: Duration,
    /// Notifications their reader has marked read.
    pub read_notifications: Duration,
}

const DEFAULT_SCHEDULE: &str = "0 */10 * * * *";

impl Default for Retention {
    fn default() -> Self {
        Retention {
            schedule: Schedule::parse(DEFAULT_SCHEDULE).expect("default schedule parses"),
            idempotency_keys: Duration::from_secs(86_400),
            inbox: Duration::from_secs(14 * 86_400),
            sent_outbox: Duration::from_secs(86_400),
            event_log: Duration::from_secs(86_400),
            read_notifications: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Merges the environment over the file, recording every problem in `errors`.
pub(crate) fn load(file: &FileRetention, errors: &mut Vec<String>) -> Retention {
    let defaults = Retention::default();
    let schedule = env("BAZAAR_RETENTION_SCHEDULE")
        .or_else(|| file.schedule.clone())
        .map_or(defaults.schedule.clone(), |expression| {
            Schedule::parse(&expression).unwrap_or_else(|e| {
                errors.push(format!("BAZAAR_RETENTION_SCHEDULE: {e}"));
                defaults.schedule.clone()
            })
        });
    let mut secs = |name: &str, file_value: Option<u64>, default: Duration| {
        env_secs(name, errors)
            .or(file_value.map(Duration::from_secs))
            .unwrap_or(default)
    };
    Retention {
        schedule,
        idempotency_keys: secs(
            "BAZAAR_RETENTION_IDEMPOTENCY_KEYS_SECS",
            file.idempotency_keys_secs,
            defaults.idempotency_keys,
        ),
        inbox: secs(
            "BAZAAR_RETENTION_INBOX_SECS",
            file.inbox_secs,
            defaults.inbox,
        ),
        sent_outbox: secs(
            "BAZAAR_RETENTION_SENT_OUTBOX_SECS",
            file.sent_outbox_secs,
            defaults.sent_outbox,
        ),
        event_log: secs(
            "BAZAAR_RETENTION_EVENT_LOG_SECS",
            file.event_log_secs,
            defaults.event_log,
        ),
        read_notifications: secs(
            "BAZAAR_RETENTION_READ_NOTIFICATIONS_SECS",
            file.read_notifications_secs,
            defaults.read_notifications,
        ),
    }
}

/// The purge of one service's database: the bus's inbox and sent outbox, the schedule's own
/// ticks and the service's rules (`own`), one replica per tick.
pub fn task(service: ServiceName, db: Db, retention: &Retention, own: Vec<Prune>) -> Task {
    let mut rules: Vec<Prune> =
        bazaar_bus::retention(retention.inbox, retention.sent_outbox).into();
    rules.push(Prune {
        table: "schedule_ticks",
        key: "job, tick_at",
        expired: "tick_at < $1",
        keep: SCHEDULE_TICKS_KEPT,
    });
    rules.extend(own);
    let schedule = retention.schedule.clone();
    Box::new(move |stop| {
        Box::pin(async move {
            if let Err(e) = db.migrate("schedule", schedule::MIGRATIONS).await {
                tracing::error!(%service, error = %e, "retention cannot start");
                return;
            }
            schedule::run(db.clone(), "retention", schedule, stop, move |_| {
                let (db, rules) = (db.clone(), rules.clone());
                async move {
                    let deleted = bazaar_db::prune(&db, &rules)
                        .await
                        .map_err(|e| e.to_string())?;
                    for (table, rows) in deleted {
                        metrics::counter!("bazaar_retention_deleted_rows_total",
                            "service" => service.as_str(), "table" => table)
                        .increment(rows);
                        if rows > 0 {
                            tracing::debug!(%service, table, rows, "pruned");
                        }
                    }
                    Ok(())
                }
            })
            .await;
        })
    })
}

/// The purge of the event log this process holds (the embedded log; a JetStream stream
/// expires events itself). The log belongs to one process, so there is no tick to claim.
pub fn event_log_task(transport: Arc<dyn Transport>, retention: &Retention) -> Task {
    let (schedule, keep) = (retention.schedule.clone(), retention.event_log);
    Box::new(move |stop| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(schedule.until_next()) => {}
                }
                match transport.prune(keep).await {
                    Ok(rows) => metrics::counter!("bazaar_retention_deleted_rows_total",
                        "service" => "bus", "table" => "bus_messages")
                    .increment(rows),
                    Err(e) => tracing::warn!(error = %e, "cannot prune the event log"),
                }
            }
        })
    })
}
