//! Test harness: builds the real catalog service on the test kit's platform (embedded event
//! log, in-memory cache, and SQLite or a fresh PostgreSQL database), spawns it, and talks to
//! it through its internal router like another service would.

use bazaar_bus::{Consumer, Envelope};
use bazaar_contracts::catalog::{
    CatalogClient, CreateProductRequest, Product, ProductsByIdRequest,
};
use bazaar_contracts::events::{
    Event, OrderPlaced, OrderStatusChanged, UserProfileUpdated, UserRegistered,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_contracts::{ApiError, ErrorCode, Principal, Role};
use bazaar_db::{Db, sqlx};
use bazaar_testkit::fixtures::order_items;
use bazaar_testkit::{Backend, Harness, TestPlatform, events, eventually, fakes, wait};

pub fn admin() -> Principal {
    Principal::user("admin-1", Role::Admin)
}

pub fn customer() -> Principal {
    Principal::user("customer-1", Role::Customer)
}

/// A running catalog service and handles on its insides.
pub struct TestCatalog {
    pub platform: TestPlatform,
    pub db: Db,
    pub client: CatalogClient,
    pub consumers: Vec<Consumer>,
}

impl Harness for TestCatalog {
    async fn shutdown(self) {
        self.platform.shutdown(&self.db).await;
    }
}

impl TestCatalog {
    /// A fresh service, or `None` (after saying why) when the backend is unavailable.
    pub async fn start(backend: Backend) -> Option<TestCatalog> {
        let platform = TestPlatform::start(backend, "catalog", |_| {}).await?;
        let service = bazaar_catalog::build(&platform, bazaar_catalog::Deps {})
            .await
            .expect("build catalog");
        let (db, internal, consumers) = platform.spawn(service);
        let client = CatalogClient(platform.client("catalog", internal));
        Some(TestCatalog {
            platform,
            db,
            client,
            consumers,
        })
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
        let what = format!("order {order_id} to be decided");
        wait::poll(wait::DEADLINE, &what, || self.reservation(order_id)).await
    }

    /// Waits until the catalog's consumer has applied `n` saga events in total.
    pub async fn processed(&self, n: i64) {
        eventually(&format!("{n} events applied"), || async {
            events::applied_count(&self.db, "catalog").await >= n
        })
        .await;
    }

    /// Payloads of every `E` in the catalog's outbox, oldest first.
    pub async fn emitted<E: Event>(&self) -> Vec<E> {
        events::emitted(&self.db, E::TYPE)
            .await
            .iter()
            .map(|e| e.decode().expect("payload"))
            .collect()
    }

    pub async fn publish(&self, event: &Envelope) {
        self.platform
            .transport
            .publish(event)
            .await
            .expect("publish");
    }

    /// Starts `n` more workers on the catalog's durable consumer.
    pub fn more_workers(&self, n: usize) {
        for _ in 0..n {
            let worker = self.consumers[0].clone().run(self.platform.stop.clone());
            self.platform.tracker.spawn(worker);
        }
    }

    /// Hands `event` to the consumer directly as its `attempt`-th delivery: the test, not a
    /// broker, decides whether it comes again.
    pub async fn deliver(&self, event: &Envelope, attempt: u32) {
        self.consumers[0]
            .process(fakes::delivery(event, attempt))
            .await;
    }

    /// Hands `events` to the consumer directly as one fetched batch, first deliveries.
    pub async fn deliver_batch(&self, events: &[Envelope]) {
        let deliveries = events.iter().map(|e| fakes::delivery(e, 1)).collect();
        self.consumers[0].process_batch(deliveries).await;
    }
}

/// Asserts a BAD_USER_INPUT error that names `field`, in its field and its message.
#[track_caller]
pub fn assert_bad_input(result: Result<impl std::fmt::Debug, ApiError>, field: &str) {
    let err = result.expect_err("expected BAD_USER_INPUT");
    assert_eq!(err.code, ErrorCode::BadUserInput, "{err:?}");
    assert_eq!(err.field.as_deref(), Some(field), "{err:?}");
    assert!(
        err.message.contains(field),
        "message names the field: {err:?}"
    );
}

/// An `OrderPlaced` envelope for `lines` of (product id, quantity), as the orders service
/// would emit it.
pub fn placed(order_id: &str, lines: &[(&str, i64)]) -> Envelope {
    let items = order_items(lines);
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
    let lines: Vec<(&str, i64)> = product_ids.iter().map(|id| (*id, 1)).collect();
    let items = order_items(&lines);
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
