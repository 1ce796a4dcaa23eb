//! `bazaar events`: what operators want to know about the event stream: per consumer how much
//! was delivered, is pending or was redelivered, and which events ended as dead letters.

use std::sync::Arc;

use bazaar_runtime::Settings;

/// Prints the stream's figures and each service's dead letters (listed with `list`).
pub async fn report(settings: Settings, list: bool) -> anyhow::Result<()> {
    let platform = crate::infrastructure::connect(Arc::new(settings)).await?;
    let stream = platform.transport.stats().await?;
    println!(
        "stream {} ({}): {} events",
        stream.name,
        platform.transport.kind(),
        stream.messages
    );
    println!(
        "{:<24} {:>10} {:>10} {:>12} {:>12}",
        "consumer", "delivered", "pending", "ack_pending", "redelivered"
    );
    for c in &stream.consumers {
        println!(
            "{:<24} {:>10} {:>10} {:>12} {:>12}",
            c.name, c.delivered, c.pending, c.ack_pending, c.redelivered
        );
    }
    let settings = &platform.settings;
    for (service, open_db) in crate::registry::with_db() {
        let db = open_db(settings).await?;
        let dead = bazaar_bus::dead_letters(&db, 1000).await?;
        println!("dead letters in {service}: {}", dead.len());
        if list {
            for d in dead {
                println!("{}", serde_json::to_string(&d)?);
            }
        }
        db.close().await;
    }
    Ok(())
}
