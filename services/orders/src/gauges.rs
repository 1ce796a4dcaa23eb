//! Publishes how many orders are in each status as the `bazaar_orders{status}` gauge, read
//! from the database so that it is right however many replicas run.

use std::time::Duration;

use bazaar_contracts::orders::OrderStatus;
use bazaar_db::Db;
use bazaar_runtime::Task;

use crate::store;

const EVERY: Duration = Duration::from_secs(10);

pub fn task(db: Db) -> Task {
    Box::new(move |stop| {
        Box::pin(async move {
            loop {
                if let Ok(counts) = store::count_by_status(&db).await {
                    for status in OrderStatus::ALL {
                        let n = counts
                            .iter()
                            .find(|(s, _)| s == status.as_str())
                            .map_or(0, |(_, n)| *n);
                        metrics::gauge!("bazaar_orders", "status" => status.as_str()).set(n as f64);
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(EVERY) => {}
                }
            }
        })
    })
}
