//! How many events a service's consumers gave up on: the `bazaar_dead_letters` gauge, read
//! without loading the dead letters themselves (see [`crate::dead_letters`] for those).

use bazaar_db::{Db, sqlx};

use crate::BusError;

/// The number of dead letters in `db`, whichever consumer left them.
pub async fn dead_letter_count(db: &Db) -> Result<i64, BusError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
        .fetch_one(db.pool())
        .await?)
}
