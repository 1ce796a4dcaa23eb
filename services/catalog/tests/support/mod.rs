//! Test harness: builds the real catalog service on a fresh platform (embedded event log,
//! in-memory cache, and SQLite or a fresh PostgreSQL database), spawns it, and talks to it
//! through its internal router like another service would.
//!
//! The PostgreSQL variant is skipped with a message when the server cannot be reached,
//! unless `BAZAAR_REQUIRE_BACKENDS=1`, where it fails.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_bus::{Consumer, EmbeddedTransport, Envelope};
use bazaar_cache::MemoryCache;
use bazaar_contracts::catalog::{
    CatalogClient, CreateProductRequest, Product, ProductsByIdRequest,
};
use bazaar_contracts::events::{
    Event, OrderPlaced, OrderStatusChanged, UserProfileUpdated, UserRegistered,
};
use bazaar_contracts::orders::{OrderItem, OrderStatus};
use bazaar_contracts::{Principal, Role, ServiceClient};
use bazaar_db::{Db, sqlx};
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

pub fn admin() -> Principal {
    Principal::user("admin-1", Role::Admin)
}

pub fn customer() -> Principal {
    Principal::user("customer-1", Role::Customer)
}

/// A running catalog service and handles on its insides.
pub struct TestCatalog {
    pub platform: Platform,
    pub db: Db,
    pub client: CatalogClient,
    pub consumers: Vec<Consumer>,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
    pg_database: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestCatalog {
    /// A fresh service, or `None` (after saying why) when the backend is unavailable.
    pub async fn start(backend: Backend) -> Option<TestCatalog> {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = ConfigArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let mut settings = Settings::load(&args).expect("settings");
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
        let service = bazaar_catalog::build(&platform)
            .await
            .expect("build catalog");
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (_, db, internal, consumers) =
            service.spawn(&tracker, &stop, &platform.settings.retention);
        let client = CatalogClient(ServiceClient::local(
            "catalog",
            internal,
            &platform.service_token,
        ));
        Some(TestCatalog {
            platform,
            db,
            client,
            consumers,
            stop,
            tracker,
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

    pub async fn create(&self, name: &str, category: &str, stock: i64) -> Product {
        let req = CreateProductRequest {
            name: name.into(),
            description: format!("{name}, described"),
            category: category.into(),
            price_cents: 1250,
            stock,
        };
        self.client
            .create_product(&admin(), &req)
            .await
            .expect("create product")
    }

    /// The product's stock, deleted or not.
    pub async fn stock(&self, id: &str) -> i64 {
        let req = ProductsByIdRequest {
            ids: vec![id.into()],
            include_deleted: true,
        };
        let products = self
            .client
            .products_by_id(&admin(), &req)
            .await
            .expect("products by id");
        products.first().expect("product exists").stock
    }

    /// The reservation's status and reason, if the catalog has decided on the order.
    pub async fn reservation(&self, order_id: &str) -> Option<(String, Option<String>)> {
        sqlx::query_as("SELECT status, reason FROM reservations WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await
            .expect("read reservation")
    }

    /// Waits until the order has a reservation row and returns its status and reason.
    pub async fn settled(&self, order_id: &str) -> (String, Option<String>) {
        let started = Instant::now();
        loop {
            if let Some(found) = self.reservation(order_id).await {
                return found;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "order {order_id} was never decided"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the catalog's consumer has applied `n` saga events in total.
    pub async fn processed(&self, n: i64) {
        eventually(&format!("{n} events applied"), || async {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE consumer = 'catalog'")
                    .fetch_one(self.db.pool())
                    .await
                    .expect("count inbox");
            count >= n
        })
        .await;
    }

    /// Payloads of every `E` in the catalog's outbox, oldest first.
    pub async fn emitted<E: Event>(&self) -> Vec<E> {
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body FROM outbox WHERE event_type = $1 ORDER BY seq")
                .bind(E::TYPE)
                .fetch_all(self.db.pool())
                .await
                .expect("read outbox");
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str::<Envelope>(b)
                    .expect("envelope")
                    .decode()
                    .expect("payload")
            })
            .collect()
    }

    pub async fn publish(&self, event: &Envelope) {
        self.platform
            .transport
            .publish(event)
            .await
            .expect("publish");
    }
}

/// An `OrderPlaced` envelope for `lines` of (product id, quantity), as the orders service
/// would emit it.
pub fn placed(order_id: &str, lines: &[(&str, i64)]) -> Envelope {
    let items: Vec<OrderItem> = lines
        .iter()
        .map(|(id, quantity)| OrderItem {
            product_id: (*id).into(),
            name: format!("product {id}"),
            quantity: *quantity,
            unit_price_cents: 100,
        })
        .collect();
    let total_cents = items.iter().map(|i| i.quantity * i.unit_price_cents).sum();
    OrderPlaced {
        order_id: order_id.into(),
        user_id: "customer-1".into(),
        items,
        total_cents,
        placed_at: 0,
    }
    .envelope("orders")
}

/// An `OrderStatusChanged` envelope moving the order from `from` to `to`.
pub fn status_changed(order_id: &str, from: OrderStatus, to: OrderStatus) -> Envelope {
    OrderStatusChanged {
        order_id: order_id.into(),
        user_id: "customer-1".into(),
        from,
        to,
        reason: None,
        items: Vec::new(),
        total_cents: 0,
        changed_at: 0,
    }
    .envelope("orders")
}

/// An `OrderStatusChanged` envelope moving `user_id`'s order of one unit of each product to
/// `to`, as the orders service emits it (with the order's lines).
pub fn order_moved(
    order_id: &str,
    user_id: &str,
    product_ids: &[&str],
    to: OrderStatus,
) -> Envelope {
    let items: Vec<OrderItem> = product_ids
        .iter()
        .map(|id| OrderItem {
            product_id: (*id).into(),
            name: format!("product {id}"),
            quantity: 1,
            unit_price_cents: 100,
        })
        .collect();
    OrderStatusChanged {
        order_id: order_id.into(),
        user_id: user_id.into(),
        from: OrderStatus::Paid,
        to,
        reason: None,
        total_cents: 100 * items.len() as i64,
        items,
        changed_at: 1,
    }
    .envelope("orders")
}

/// A `UserRegistered` envelope for a customer with this display name and email.
pub fn registered(user_id: &str, name: &str, email: &str) -> Envelope {
    UserRegistered {
        user_id: user_id.into(),
        email: email.into(),
        name: name.into(),
        role: "CUSTOMER".into(),
        phone: None,
        address: None,
        registered_at: 1,
    }
    .envelope("users")
}

/// A `UserProfileUpdated` envelope renaming the user, as of `updated_at`.
pub fn renamed(user_id: &str, name: &str, updated_at: i64) -> Envelope {
    UserProfileUpdated {
        user_id: user_id.into(),
        email: format!("{user_id}@example.com"),
        name: name.into(),
        phone: None,
        address: None,
        updated_at,
    }
    .envelope("users")
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
    let name = format!("catalog_test_{}", bazaar_db::new_id().replace('-', ""));
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
    eprintln!("SKIPPED: catalog PostgreSQL tests: {why}");
    None
}

/// Defines each named scenario `async fn name(t: &TestCatalog)` as a test on SQLite and on
/// PostgreSQL. The service is shut down (and its database dropped) even when one fails.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( $crate::on_every_backend!(@test $name, Sqlite); )*
        }
        mod postgres {
            $( $crate::on_every_backend!(@test $name, Postgres); )*
        }
    };
    (@test $name:ident, $backend:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use futures::FutureExt;
            let backend = $crate::support::Backend::$backend;
            let Some(t) = $crate::support::TestCatalog::start(backend).await else { return };
            let outcome = std::panic::AssertUnwindSafe(super::$name(&t)).catch_unwind().await;
            t.shutdown().await;
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
    };
}
