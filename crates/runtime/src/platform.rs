//! What services are built from: the shared infrastructure handles, and the parts a built
//! service hands back to whoever runs it (one process or many).

use std::sync::Arc;

use axum::Router;
use bazaar_auth::TokenKeys;
use bazaar_bus::{Consumer, Outbox, OutboxRelay, Transport};
use bazaar_cache::Cache;
use bazaar_contracts::require_service_token;
use bazaar_db::{Db, Migration, Prune};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::retention::Retention;
use crate::{ServiceName, Settings};

/// Infrastructure every service of one process shares.
#[derive(Clone)]
pub struct Platform {
    pub settings: Arc<Settings>,
    pub transport: Arc<dyn Transport>,
    pub cache: Arc<dyn Cache>,
    pub tokens: TokenKeys,
    /// Credential for internal calls between services.
    pub service_token: Arc<str>,
}

impl Platform {
    /// `routes` behind the service-credential check: only bazaar services get through.
    pub fn internal_only(&self, routes: Router) -> Router {
        let token = self.service_token.clone();
        routes.layer(axum::middleware::from_fn(move |req, next| {
            require_service_token(token.clone(), req, next)
        }))
    }

    /// Connects to service `name`'s database and brings its schema up to date: the bus's
    /// tables (outbox, inbox, dead letters) first, then each of `sets` (name, migrations).
    pub async fn open_db(
        settings: &Settings,
        name: ServiceName,
        sets: &[(&str, &[Migration])],
    ) -> anyhow::Result<Db> {
        let db = Db::connect(&settings.db_target(name)).await?;
        db.migrate("bus", bazaar_bus::MIGRATIONS).await?;
        for (set, migrations) in sets {
            db.migrate(set, migrations).await?;
        }
        Ok(db)
    }
}

/// A background job that runs until its token is cancelled.
pub type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A built service: its database, its internal API, and the loops that keep it moving. The
/// gateway keeps no database and serves the public API instead.
pub struct Service {
    pub name: ServiceName,
    /// Its database; `None` for a service that keeps no state (the gateway).
    pub db: Option<Db>,
    /// `/internal/*` routes, already behind the service-credential check.
    pub internal: Router,
    /// The public API, served on the listener of the process that runs this service.
    pub public: Option<Router>,
    /// Publishes what its outbox holds; `None` without a database.
    pub relay: Option<OutboxRelay>,
    pub consumers: Vec<Consumer>,
    pub tasks: Vec<Task>,
    /// Rows of its own the service keeps only for a while (the bus's are added to them).
    pub retention: Vec<Prune>,
}

/// What a started service leaves to whoever runs it.
pub struct Started {
    pub name: ServiceName,
    pub db: Option<Db>,
    pub internal: Router,
    pub public: Option<Router>,
    pub consumers: Vec<Consumer>,
}

impl Service {
    /// A service that keeps `db`: its internal `routes` behind the service credential, its
    /// outbox relayed on the platform's transport, and no consumers, tasks or retention yet
    /// (a service adds its own with struct update syntax).
    pub fn with_db(
        name: ServiceName,
        platform: &Platform,
        db: Db,
        outbox: &Outbox,
        routes: Router,
    ) -> Service {
        Service {
            name,
            db: Some(db),
            internal: platform.internal_only(routes),
            public: None,
            relay: Some(outbox.relay(platform.transport.clone())),
            consumers: Vec::new(),
            tasks: Vec::new(),
            retention: Vec::new(),
        }
    }

    /// Starts the relay, consumers, tasks and the retention purge on `tracker`; they stop when
    /// `stop` fires, the relay last so that it flushes what the consumers wrote.
    pub fn spawn(
        self,
        tracker: &TaskTracker,
        stop: &CancellationToken,
        retention: &Retention,
    ) -> Started {
        let purge = self
            .db
            .clone()
            .map(|db| crate::retention::task(self.name, db, retention, self.retention));
        let relay_stop = CancellationToken::new();
        let consumers_done = TaskTracker::new();
        for consumer in &self.consumers {
            consumers_done.spawn(consumer.clone().run(stop.clone()));
        }
        for task in self.tasks.into_iter().chain(purge) {
            consumers_done.spawn(task(stop.clone()));
        }
        consumers_done.close();
        if let Some(relay) = self.relay {
            tracker.spawn(relay.run(relay_stop.clone()));
        }
        let stop = stop.clone();
        tracker.spawn(async move {
            stop.cancelled().await;
            consumers_done.wait().await;
            relay_stop.cancel();
        });
        Started {
            name: self.name,
            db: self.db,
            internal: self.internal,
            public: self.public,
            consumers: self.consumers,
        }
    }
}
