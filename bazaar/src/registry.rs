//! Every service bazaar is made of, one entry each, in start-up order: a service comes after
//! the services it calls, so that they are already in process when it is built. `bazaar
//! serve`, `bazaar services`, `bazaar migrate`, `bazaar events` and the per-service settings
//! (`[services.<name>]`, `BAZAAR_<SERVICE>_URL`, `BAZAAR_<SERVICE>_DATABASE_URL`) all derive
//! from [`SERVICES`]; adding a service is adding its line (ARCHITECTURE.md, "Adding a service").

use std::sync::Arc;

use bazaar_contracts::catalog::CatalogClient;
use bazaar_contracts::notifications::NotificationsClient;
use bazaar_contracts::orders::OrdersClient;
use bazaar_contracts::recommendations::RecommendationsClient;
use bazaar_contracts::users::UsersClient;
use bazaar_db::Db;
use bazaar_runtime::{Platform, Service, ServiceName, Settings};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::peers::Peers;

/// One service: its name, its database, and how it is built.
pub struct Entry {
    pub name: ServiceName,
    /// Opens its database and applies its migrations; `None` for a service without one.
    pub open_db: Option<OpenDb>,
    /// Builds it on the platform, with clients of the services it calls taken from the peers.
    pub build: Build,
}

pub type OpenDb = for<'a> fn(&'a Settings) -> BoxFuture<'a, anyhow::Result<Db>>;
pub type Build = for<'a> fn(&'a Platform, &'a Peers) -> BoxFuture<'a, anyhow::Result<Service>>;

/// The services, in start-up order.
pub const SERVICES: &[Entry] = &[
    Entry {
        name: bazaar_users::NAME,
        open_db: Some(|s| bazaar_users::open_db(s).boxed()),
        build: |p, _| bazaar_users::build(p, bazaar_users::Deps {}).boxed(),
    },
    Entry {
        name: bazaar_catalog::NAME,
        open_db: Some(|s| bazaar_catalog::open_db(s).boxed()),
        build: |p, _| bazaar_catalog::build(p, bazaar_catalog::Deps {}).boxed(),
    },
    Entry {
        name: bazaar_orders::NAME,
        open_db: Some(|s| bazaar_orders::open_db(s).boxed()),
        build: |p, peers| {
            let deps = bazaar_orders::Deps {
                catalog: CatalogClient(peers.nested(bazaar_catalog::NAME)),
                users: UsersClient(peers.nested(bazaar_users::NAME)),
                payments: Arc::new(bazaar_orders::SimulatedPayments),
            };
            bazaar_orders::build(p, deps).boxed()
        },
    },
    Entry {
        name: bazaar_notifications::NAME,
        open_db: Some(|s| bazaar_notifications::open_db(s).boxed()),
        build: |p, _| bazaar_notifications::build(p, Default::default()).boxed(),
    },
    Entry {
        name: bazaar_recommendations::NAME,
        open_db: Some(|s| bazaar_recommendations::open_db(s).boxed()),
        build: |p, _| bazaar_recommendations::build(p, bazaar_recommendations::Deps {}).boxed(),
    },
    Entry {
        name: bazaar_gateway::NAME,
        open_db: None,
        build: |p, peers| {
            let clients = bazaar_gateway::Clients {
                users: UsersClient(peers.client(bazaar_users::NAME)),
                catalog: CatalogClient(peers.client(bazaar_catalog::NAME)),
                orders: OrdersClient(peers.client(bazaar_orders::NAME)),
                notifications: NotificationsClient(peers.client(bazaar_notifications::NAME)),
                recommendations: RecommendationsClient(peers.client(bazaar_recommendations::NAME)),
            };
            let dead_letters = peers.dead_letters();
            bazaar_gateway::build(
                p,
                bazaar_gateway::Deps {
                    clients,
                    dead_letters,
                },
            )
            .boxed()
        },
    },
];

/// Every service's name, in start-up order.
pub fn names() -> Vec<ServiceName> {
    SERVICES.iter().map(|e| e.name).collect()
}

/// The entry of the service called `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    SERVICES.iter().find(|e| e.name.as_str() == name)
}

/// Where `name` comes in start-up order.
pub fn position(name: ServiceName) -> usize {
    SERVICES
        .iter()
        .position(|e| e.name == name)
        .unwrap_or(usize::MAX)
}

/// The services that keep a database, with the way to open it.
pub fn with_db() -> impl Iterator<Item = (ServiceName, OpenDb)> {
    SERVICES.iter().filter_map(|e| Some((e.name, e.open_db?)))
}

/// Loads the settings with every registered service's own (`[services.<name>]`).
pub fn settings(args: &bazaar_runtime::ConfigArgs) -> anyhow::Result<Settings> {
    Ok(Settings::load_for(args, &names())?)
}
