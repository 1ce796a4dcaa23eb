//! The recommendations service's name and state: what every use case and the internal API
//! share.

use bazaar_db::Db;
use bazaar_runtime::ServiceName;

/// The service's name: its event source, durable consumer, database schema and internal
/// routes' prefix.
pub const NAME: ServiceName = ServiceName::new("recommendations");
/// Who publishes our events.
pub(crate) const SERVICE: &str = NAME.as_str();

/// Everything the use cases need; cheap to clone.
#[derive(Clone)]
pub struct Recommendations {
    pub db: Db,
}
