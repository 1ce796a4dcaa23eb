//! The platform a service's tests build the real service on: settings in a temp dir, the
//! embedded event log, the in-memory cache, and SQLite or a throwaway PostgreSQL database;
//! and the tracker its loops run on, stopped (and the database dropped) at shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bazaar_bus::{Consumer, EmbeddedTransport};
use bazaar_cache::MemoryCache;
use bazaar_contracts::ServiceClient;
use bazaar_db::Db;
use bazaar_runtime::{ConfigArgs, Platform, Secret, Service, Settings};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::TestDatabase;

/// Where a service under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A throwaway database on the shared PostgreSQL server.
    Postgres,
}

/// PostgreSQL connections per service under test: suites run side by side on one server,
/// which allows 100 connections.
pub const POOL_SIZE: usize = 3;

/// A platform and the loops running on it.
pub struct TestPlatform {
    pub platform: Platform,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
    /// The data dir: SQLite files, the event log, mail files.
    pub dir: tempfile::TempDir,
    database: Option<TestDatabase>,
}

impl TestPlatform {
    /// A fresh platform on `backend`, with `configure` applied to the default settings. `None`
    /// (after a skip naming `service`'s PostgreSQL tests) when PostgreSQL is unreachable.
    pub async fn start(
        backend: Backend,
        service: &str,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<TestPlatform> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::load(&ConfigArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .expect("settings");
        configure(&mut settings);
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                TestDatabase::create_or_skip(
                    &format!("{service} PostgreSQL tests"),
                    &format!("{service}_test"),
                )
                .await?,
            ),
        };
        if let Some(database) = &database {
            settings.database_pool_size = POOL_SIZE;
            settings.database_url = Some(Secret::new(database.url.clone()));
        }
        let transport = EmbeddedTransport::open(&dir.path().join("bus.db"))
            .await
            .expect("event log");
        let secret = settings.jwt_secret.expose().as_bytes().to_vec();
        let platform = Platform {
            tokens: bazaar_auth::TokenKeys::new(&secret, Duration::from_secs(900))
                .expect("token keys"),
            service_token: bazaar_auth::service_token(&secret).into(),
            settings: Arc::new(settings),
            transport: Arc::new(transport),
            cache: Arc::new(MemoryCache::new(1000)),
        };
        Some(TestPlatform {
            platform,
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            dir,
            database,
        })
    }

    /// Starts a built service's relay, consumers and tasks on this platform's tracker, and
    /// hands back its database, internal router and consumers.
    pub fn spawn(&self, service: Service) -> (Db, Router, Vec<Consumer>) {
        let started = service.spawn(&self.tracker, &self.stop, &self.platform.settings.retention);
        let db = started.db.expect("the service under test keeps a database");
        (db, started.internal, started.consumers)
    }

    /// A client of the internal router `router` of service `name`, called in process with
    /// this platform's service credential, as another service would call it.
    pub fn client(&self, name: &'static str, router: Router) -> ServiceClient {
        ServiceClient::local(name, router, &self.platform.service_token)
    }

    /// Stops the loops (waiting up to 10 s for them), closes `db` and drops the PostgreSQL
    /// database.
    pub async fn shutdown(mut self, db: &Db) {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        db.close().await;
        if let Some(database) = self.database.take() {
            database.drop().await.expect("drop test database");
        }
    }
}

/// A test reads and builds on the platform as a service would.
impl std::ops::Deref for TestPlatform {
    type Target = Platform;

    fn deref(&self) -> &Platform {
        &self.platform
    }
}

/// A platform dropped without [`TestPlatform::shutdown`] still stops its loops.
impl Drop for TestPlatform {
    fn drop(&mut self) {
        self.stop.cancel();
        self.tracker.close();
    }
}
