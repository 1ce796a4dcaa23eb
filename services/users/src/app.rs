//! The users service's name and state: what every use case and the internal API share.

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_db::Db;
use bazaar_runtime::{Platform, ServiceName};

use crate::gate::HashGate;

/// The service's name: its event source, database schema and internal routes' prefix.
pub const NAME: ServiceName = ServiceName::new("users");
/// Who publishes our events.
pub(crate) const SERVICE: &str = NAME.as_str();

/// Everything the use cases need; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub db: Db,
    pub platform: Platform,
    pub outbox: Outbox,
    pub gate: Arc<HashGate>,
}
