//! The orders service's name and state: what every use case and the internal API share.

use std::sync::Arc;

use bazaar_bus::Outbox;
use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::users::UsersClient;
use bazaar_db::Db;
use bazaar_runtime::ServiceName;

use crate::backlog::Backlog;
use crate::payments::PaymentProvider;

/// The service's name: its event source, durable consumer, database schema and internal
/// routes' prefix.
pub const NAME: ServiceName = ServiceName::new("orders");
/// Who publishes our events.
pub(crate) const SERVICE: &str = NAME.as_str();

/// Everything the use cases need; cheap to clone.
#[derive(Clone)]
pub struct Orders {
    pub db: Db,
    pub outbox: Outbox,
    pub catalog: CatalogClient,
    /// The source of truth for shipping addresses (see `placing::profile_address`).
    pub users: UsersClient,
    pub payments: Arc<dyn PaymentProvider>,
    /// Orders a customer may hold PENDING or CONFIRMED (unpaid, holding stock) at once.
    pub max_open_orders: u64,
    /// The saga's backpressure: placeOrder waits while too many orders are PENDING.
    pub backlog: Arc<Backlog>,
}
