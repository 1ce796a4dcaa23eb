//! Dropping old events: past the log's own retention when it opens (see `open`), and on the
//! retention schedule those that every consumer has acknowledged.

use std::time::Duration;

use bazaar_db::{Db, Prune};

use crate::BusError;

/// Events older than this are pruned, like the JetStream stream's `max_age`.
pub(super) const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deletes events older than `keep` that every consumer has acknowledged; returns how many.
pub(super) async fn prune_acknowledged(bookkeeping: &Db, keep: Duration) -> Result<u64, BusError> {
    // Acknowledged by every consumer: behind every cursor and every pending delivery.
    let acknowledged = Prune {
        table: "bus_messages",
        key: "seq",
        expired: "stored_at < $1
                AND seq <= (SELECT COALESCE(MIN(cursor), 0) FROM bus_consumers)
                AND seq < (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM bus_pending)",
        keep,
    };
    // A lost delete is only done again next time: no fsync needed.
    let deleted = bazaar_db::prune(bookkeeping, &[acknowledged]).await?;
    Ok(deleted.iter().map(|(_, n)| n).sum())
}
