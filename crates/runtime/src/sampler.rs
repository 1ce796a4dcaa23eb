//! Gauges that are read rather than counted: the outbox backlog, the age of its oldest row and
//! the dead letters of each service database in this process, and the broker's per-consumer
//! figures (`bazaar_consumer_pending` is the consumer lag).

use std::sync::Arc;
use std::time::Duration;

use bazaar_bus::Transport;
use bazaar_db::Db;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(5);

/// Samples until `stop` fires.
pub async fn run(dbs: Vec<(String, Db)>, transport: Arc<dyn Transport>, stop: CancellationToken) {
    loop {
        for (service, db) in &dbs {
            if let Ok(n) = bazaar_bus::outbox_backlog(db).await {
                metrics::gauge!("bazaar_outbox_backlog", "service" => service.clone())
                    .set(n as f64);
            }
            // Age rather than count: a relay that is stuck shows as a steadily growing age even
            // when the backlog is small.
            if let Ok(oldest) = bazaar_bus::outbox_oldest_unpublished(db).await {
                let age_ms = oldest.map_or(0, |at| (bazaar_db::now_millis() - at).max(0));
                metrics::gauge!("bazaar_outbox_oldest_age_seconds", "service" => service.clone())
                    .set(age_ms as f64 / 1000.0);
            }
            if let Ok(n) = bazaar_bus::dead_letter_count(db).await {
                metrics::gauge!("bazaar_dead_letters", "service" => service.clone()).set(n as f64);
            }
        }
        if let Ok(stream) = transport.stats().await {
            metrics::gauge!("bazaar_stream_messages").set(stream.messages as f64);
            for c in stream.consumers {
                metrics::gauge!("bazaar_consumer_pending", "consumer" => c.name.clone())
                    .set(c.pending as f64);
                metrics::gauge!("bazaar_consumer_ack_pending", "consumer" => c.name.clone())
                    .set(c.ack_pending as f64);
                metrics::gauge!("bazaar_consumer_redelivered", "consumer" => c.name.clone())
                    .set(c.redelivered as f64);
                metrics::gauge!("bazaar_consumer_delivered", "consumer" => c.name)
                    .set(c.delivered as f64);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
