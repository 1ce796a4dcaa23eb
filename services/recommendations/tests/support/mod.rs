//! Test harness: builds the real recommendations service (one or more replicas on one
//! database) on a fresh platform (embedded event log, in-memory cache, and SQLite or a fresh
//! PostgreSQL database), feeds it events as the catalogue and orders would, and calls its
//! internal API like the gateway does.
//!
//! The PostgreSQL variant is skipped with a message when the server cannot be reached,
//! unless `BAZAAR_REQUIRE_BACKENDS=1`, where it fails.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bazaar_bus::{Acker, BusError, Consumer, Delivery, EmbeddedTransport, Envelope};
use bazaar_cache::MemoryCache;
use bazaar_contracts::catalog::Product;
use bazaar_contracts::events::{
    Event, OrderStatusChanged, ProductCreated, ProductDeleted, StockChanged,
};
use bazaar_contracts::orders::{OrderItem, OrderStatus};
use bazaar_contracts::recommendations::RecommendationsClient;
use bazaar_contracts::{ApiError, Principal, Role, ServiceClient};
use bazaar_db::{Db, sqlx};
use bazaar_runtime::schedule::Schedule;
use bazaar_runtime::{ConfigArgs, Platform, Secret, Settings};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running recommendations service and handles on its insides.
pub struct TestRecommendations {
    pub platform: Platform,
    pub db: Db,
    pub client: RecommendationsClient,
    pub consumers: Vec<Consumer>,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
    /// Ids of every event published so far, to wait for.
    published: Mutex<Vec<String>>,
    pg_database: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestRecommendations {
    /// One replica on the default (weekly) digest schedule.
    pub async fn start(backend: Backend) -> Option<TestRecommendations> {
        Self::start_with(backend, 1, None).await
    }

    /// `replicas` copies of the service on one database, with `schedule` for digests when
    /// given. `None` (after saying why) when the backend is unavailable.
    pub async fn start_with(
        backend: Backend,
        replicas: usize,
        schedule: Option<Schedule>,
    ) -> Option<TestRecommendations> {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = ConfigArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let mut settings = Settings::load(&args).expect("settings");
        if let Some(schedule) = schedule {
            settings.recommendation_schedule = schedule;
        }
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_pg_database().await?),
        };
        if let Some(name) = &pg_database {
            // Test suites run side by side on one PostgreSQL server (100 connections).
            settings.database_pool_size = 3;
            settings.database_url = Some(Secret::new(format!(
                "postgres://postgres@127.0.0.1:5432/{name}"
            )));
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
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut running = Vec::new();
        for _ in 0..replicas.max(1) {
            let service = bazaar_recommendations::build(&platform)
                .await
                .expect("build recommendations");
            running.push(service.spawn(&tracker, &stop, &platform.settings.retention));
        }
        let (_, db, internal, consumers) = running.swap_remove(0);
        let client = RecommendationsClient(ServiceClient::local(
            "recommendations",
            internal,
            &platform.service_token,
        ));
        Some(TestRecommendations {
            platform,
            db,
            client,
            consumers,
            stop,
            tracker,
            published: Mutex::new(Vec::new()),
            pg_database,
            _dir: dir,
        })
    }

    /// Stops the service and drops its PostgreSQL database.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        self.db.close().await;
        if let Some(name) = self.pg_database {
            let admin = sqlx::AnyPool::connect(PG_ADMIN_URL)
                .await
                .expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&admin)
            .await
            .expect("drop test database");
            admin.close().await;
        }
    }

    /// Publishes `event` on the bus.
    pub async fn publish(&self, event: &Envelope) {
        self.published
            .lock()
            .expect("published ids")
            .push(event.id.clone());
        self.platform
            .transport
            .publish(event)
            .await
            .expect("publish");
    }

    /// Waits until every event published so far has been applied.
    pub async fn settled(&self) {
        let ids = self.published.lock().expect("published ids").clone();
        for id in ids {
            eventually(&format!("event {id} applied"), || async {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM inbox WHERE consumer = 'recommendations' AND event_id = $1",
                )
                .bind(&id)
                .fetch_one(self.db.pool())
                .await
                .expect("count inbox");
                n == 1
            })
            .await;
        }
    }

    /// The catalogue created product `id` named `name` with `stock` units.
    pub async fn product(&self, id: &str, name: &str, stock: i64) {
        self.publish(&created(id, name, stock)).await;
    }

    pub async fn stock(&self, id: &str, stock: i64) {
        let event = StockChanged {
            product_id: id.into(),
            stock,
            delta: 0,
            reason: "ADJUSTMENT".into(),
        };
        self.publish(&event.envelope("catalog")).await;
    }

    pub async fn delete(&self, id: &str) {
        let event = ProductDeleted {
            product_id: id.into(),
        };
        self.publish(&event.envelope("catalog")).await;
    }

    /// `user` had order `order_id` of `lines` (product id, quantity) confirmed.
    pub async fn bought(&self, user: &str, order_id: &str, lines: &[(&str, i64)]) {
        self.publish(&status(user, order_id, OrderStatus::Confirmed, lines))
            .await;
    }

    /// Recommendations for `principal`, waiting for every published event first.
    pub async fn recommend(&self, principal: &Principal, first: i64) -> Vec<String> {
        self.settled().await;
        self.try_recommend(principal, first)
            .await
            .expect("recommendations")
    }

    pub async fn try_recommend(
        &self,
        principal: &Principal,
        first: i64,
    ) -> Result<Vec<String>, ApiError> {
        self.client.for_caller(principal, first).await
    }

    /// Applies `event` through the consumer directly (no broker), as a delivery would.
    pub async fn deliver(&self, event: &Envelope) {
        self.consumers[0]
            .process(Delivery::new(event.clone(), 1, Box::new(NoopAcker)))
            .await;
    }

    /// One integer read by `sql` with `binds` for `$1`, `$2`, ...; 0 when there is no row.
    pub async fn scalar(&self, sql: &'static str, binds: &[&str]) -> i64 {
        let mut query = sqlx::query_scalar(sql);
        for b in binds {
            query = query.bind(*b);
        }
        query
            .fetch_optional(self.db.pool())
            .await
            .expect("scalar query")
            .unwrap_or(0)
    }
}

pub fn customer(id: &str) -> Principal {
    Principal::user(id, Role::Customer)
}

/// A `ProductCreated` envelope for a live product.
pub fn created(id: &str, name: &str, stock: i64) -> Envelope {
    let product = Product {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        category: "kitchen".into(),
        price_cents: 100,
        stock,
        deleted_at: None,
        effective_price_cents: 100,
        active_promotion: None,
        rating_average: None,
        rating_count: 0,
        created_at: 1,
        updated_at: 1,
    };
    ProductCreated {
        product_id: id.into(),
        product,
    }
    .envelope("catalog")
}

/// An `OrderStatusChanged` envelope moving `user`'s order of `lines` to `to`.
pub fn status(user: &str, order_id: &str, to: OrderStatus, lines: &[(&str, i64)]) -> Envelope {
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|(id, quantity)| OrderItem {
            product_id: (*id).into(),
            name: format!("product {id}"),
            quantity: *quantity,
            unit_price_cents: 100,
        })
        .collect();
    OrderStatusChanged {
        order_id: order_id.into(),
        user_id: user.into(),
        from: OrderStatus::Pending,
        to,
        reason: None,
        items,
        total_cents: 0,
        changed_at: 0,
    }
    .envelope("orders")
}

struct NoopAcker;

#[async_trait]
impl Acker for NoopAcker {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn nak(&self, _delay: Duration) -> Result<(), BusError> {
        Ok(())
    }
}

/// Polls `check` until it holds, failing the test after the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a uniquely named database, or says why not and returns `None`.
async fn create_pg_database() -> Option<String> {
    sqlx::any::install_default_drivers();
    let admin =
        match tokio::time::timeout(Duration::from_secs(3), sqlx::AnyPool::connect(PG_ADMIN_URL))
            .await
        {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => return skip(&format!("PostgreSQL at {PG_ADMIN_URL} unreachable: {e}")),
            Err(_) => return skip(&format!("PostgreSQL at {PG_ADMIN_URL} did not answer")),
        };
    let name = format!(
        "recommendations_test_{}",
        bazaar_db::new_id().replace('-', "")
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    Some(name)
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() == Ok("1") {
        panic!("{why} and BAZAAR_REQUIRE_BACKENDS=1");
    }
    eprintln!("SKIPPED: recommendations PostgreSQL tests: {why}");
    None
}

/// Defines each named scenario `async fn name(t: &TestRecommendations)` as a test on SQLite
/// and on PostgreSQL, on a service started by `TestRecommendations::start` or, after
/// `start = f;`, by `async fn f(Backend) -> Option<TestRecommendations>`. The service is shut
/// down (and its database dropped) even when the scenario fails.
#[macro_export]
macro_rules! on_every_backend {
    (start = $start:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $( $crate::on_every_backend!(@test $start, $name, Sqlite); )*
        }
        mod postgres {
            $( $crate::on_every_backend!(@test $start, $name, Postgres); )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!(start = $crate::support::TestRecommendations::start; $($name),*);
    };
    (@test $start:path, $name:ident, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use futures::FutureExt;
            let backend = $crate::support::Backend::$backend;
            let Some(t) = $start(backend).await else { return };
            let outcome = std::panic::AssertUnwindSafe(super::$name(&t)).catch_unwind().await;
            t.shutdown().await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
    };
}
