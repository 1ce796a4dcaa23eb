//! `bazaar events`: what operators want to know about the event stream: per consumer how much
//! was delivered, is pending or was redelivered, and which events ended as dead letters.

use std::sync::Arc;

use bazaar_runtime::{ServiceName, Settings};

/// Prints the stream's figures and each service's dead letters (listed with `list`).
pub async fn report(settings: Settings, list: bool) -> anyhow::Result<()> {
    let platform = crate::platform::connect(Arc::new(settings)).await?;
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
    for service in ServiceName::ALL {
        let db = match service {
            ServiceName::Users => bazaar_users::open_db(settings).await?,
            ServiceName::Catalog => bazaar_catalog::open_db(settings).await?,
            ServiceName::Orders => bazaar_orders::open_db(settings).await?,
            ServiceName::Notifications => bazaar_notifications::open_db(settings).await?,
            ServiceName::Recommendations => bazaar_recommendations::open_db(settings).await?,
            ServiceName::Gateway => continue,
        };
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
