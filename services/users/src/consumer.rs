//! The users service's consumer: it follows no other service's events (it is where accounts
//! begin), so it subscribes to none. An event it should follow gets a `Handler` here.

use bazaar_bus::Consumer;

/// The durable consumers this service runs: none.
pub fn consumers() -> Vec<Consumer> {
    Vec::new()
}
