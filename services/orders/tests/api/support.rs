//! Test harness: the real orders service on the test kit's platform (embedded event log,
//! memory cache, SQLite, or a fresh PostgreSQL database when `BAZAAR_TEST_PG_URL` names the
//! server), a fake catalogue, and a payment provider that counts refunds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use bazaar_bus::{Consumer, Envelope};
use bazaar_contracts::catalog::{CatalogClient, Product, ProductsById, ProductsByIdRequest};
use bazaar_contracts::events::{Event, StockRejected, StockReserved, UserRegistered};
use bazaar_contracts::orders::{
    Order, OrderLineRequest, OrderStatus, OrdersClient, PlaceOrderRequest,
};
use bazaar_contracts::users::{Address, UserById, UsersClient};
use bazaar_contracts::{ApiError, Principal, Role, Route, Routes};
use bazaar_db::{Db, new_id, now_millis, sqlx};
use bazaar_orders::{Charge, PaymentError, PaymentProvider, SimulatedPayments};
use bazaar_runtime::Settings;
use bazaar_testkit::{Backend, TestPlatform, events, eventually, fakes};

pub const TEAPOT: &str = "p-teapot";
pub const CUP: &str = "p-cup";
pub const GONE: &str = "p-gone";
pub const GOLD: &str = "p-gold";

fn product(id: &str, name: &str, price_cents: i64, deleted: bool) -> Product {
    Product {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        category: "kitchen".into(),
        price_cents,
        effective_price_cents: price_cents,
        active_promotion: None,
        rating_average: None,
        rating_count: 0,
        stock: 100,
        deleted_at: deleted.then_some(1),
        created_at: 1,
        updated_at: 1,
    }
}

/// SimulatedPayments, counting refunds.
#[derive(Default)]
pub struct CountingPayments {
    pub refunds: AtomicUsize,
}

#[async_trait]
impl PaymentProvider for CountingPayments {
    async fn charge(
        &self,
        order_id: &str,
        amount_cents: i64,
        token: &str,
    ) -> Result<Charge, PaymentError> {
        SimulatedPayments
            .charge(order_id, amount_cents, token)
            .await
    }
    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        SimulatedPayments.refund(charge_id).await
    }
}

pub struct Harness {
    pub platform: TestPlatform,
    pub client: OrdersClient,
    pub db: Db,
    pub consumers: Vec<Consumer>,
    pub products: Arc<Mutex<Vec<Product>>>,
    pub payments: Arc<CountingPayments>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with_settings(|_| {}).await
    }

    /// A harness whose unpaid-order timeout is `timeout`.
    pub async fn with_timeout(timeout: Duration) -> Harness {
        Self::with_settings(move |settings| settings.unpaid_order_timeout = timeout).await
    }

    /// A harness on settings changed by `tune`.
    pub async fn with_settings(tune: impl FnOnce(&mut Settings)) -> Harness {
        // These tests run on SQLite unless `BAZAAR_TEST_PG_URL` asks for PostgreSQL.
        let backend = match std::env::var("BAZAAR_TEST_PG_URL") {
            Ok(_) => Backend::Postgres,
            Err(_) => Backend::Sqlite,
        };
        let platform = TestPlatform::start(backend, "orders", |settings| {
            settings.unpaid_order_timeout = Duration::from_secs(1800);
            tune(settings);
        })
        .await
        .expect("the PostgreSQL server BAZAAR_TEST_PG_URL names");
        let products = Arc::new(Mutex::new(vec![
            product(TEAPOT, "Teapot", 2500, false),
            product(CUP, "Cup", 800, false),
            product(GONE, "Withdrawn", 100, true),
            product(GOLD, "Gold bar", 1_000_000_000, false),
        ]));
        let catalog = CatalogClient(platform.client("catalog", fake_catalog(products.clone())));
        // A users service that knows nobody: the replica these tests fill stands in for it.
        let users = UsersClient(platform.client(
            "users",
            fakes::answering(UserById::PATH, serde_json::Value::Null),
        ));
        let payments = Arc::new(CountingPayments::default());
        let service = bazaar_orders::build(
            &platform,
            bazaar_orders::Deps {
                catalog,
                users,
                payments: payments.clone(),
            },
        )
        .await
        .unwrap();
        let (db, router, consumers) = platform.spawn(service);
        let client = OrdersClient(platform.client("orders", router));
        Harness {
            platform,
            client,
            db,
            consumers,
            products,
            payments,
        }
    }

    pub fn set_price(&self, id: &str, price_cents: i64) {
        for p in self
            .products
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|p| p.id == id)
        {
            p.price_cents = price_cents;
            p.effective_price_cents = price_cents;
        }
    }

    /// Publishes `event` on the bus; returns its event id.
    pub async fn publish(&self, event: &impl Event) -> String {
        let envelope = event.envelope("test");
        self.platform.transport.publish(&envelope).await.unwrap();
        envelope.id
    }

    /// Waits until the orders consumer has applied event `event_id`.
    pub async fn consumed(&self, event_id: &str) {
        events::consumed(&self.db, "orders", event_id).await;
    }

    /// Applies `event` through the orders consumer directly (no broker), as a delivery would.
    pub async fn deliver(&self, event: &Envelope) {
        self.consumers[0].process(fakes::delivery(event, 1)).await;
    }

    /// Applies `events` through the orders consumer directly, as one fetched batch.
    pub async fn deliver_batch(&self, events: &[Envelope]) {
        let deliveries = events.iter().map(|e| fakes::delivery(e, 1)).collect();
        self.consumers[0].process_batch(deliveries).await;
    }

    /// A signed-in customer known to the replica, with `address` on their profile.
    pub async fn customer(&self, address: Option<Address>) -> Principal {
        let id = new_id();
        self.publish(&UserRegistered {
            user_id: id.clone(),
            email: format!("{id}@example.com"),
            name: "Ann".into(),
            role: "CUSTOMER".into(),
            phone: None,
            address,
            registered_at: now_millis(),
        })
        .await;
        eventually("customer replicated", || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE user_id = $1")
                .bind(&id)
                .fetch_one(self.db.pool())
                .await
                .unwrap();
            n == 1
        })
        .await;
        Principal::user(id, Role::Customer)
    }

    pub async fn place(
        &self,
        p: &Principal,
        items: &[(&str, i64)],
        address: Option<Address>,
        key: Option<&str>,
    ) -> Result<Order, ApiError> {
        let req = PlaceOrderRequest {
            items: items
                .iter()
                .map(|(id, q)| OrderLineRequest {
                    product_id: (*id).into(),
                    quantity: *q,
                })
                .collect(),
            shipping_address: address,
            idempotency_key: key.map(str::to_owned),
        };
        self.client.place_order(p, &req).await
    }

    pub async fn order(&self, id: &str) -> Order {
        self.client.order(&admin(), id).await.unwrap().unwrap()
    }

    pub async fn wait_status(&self, id: &str, status: OrderStatus) -> Order {
        eventually(&format!("order {id} {status:?}"), || async {
            self.order(id).await.status == status
        })
        .await;
        self.order(id).await
    }

    pub async fn reserve(&self, order_id: &str) -> String {
        self.publish(&StockReserved {
            order_id: order_id.into(),
            items: Vec::new(),
        })
        .await
    }

    pub async fn reject(&self, order_id: &str, reason: &str) -> String {
        self.publish(&StockRejected {
            order_id: order_id.into(),
            reason: reason.into(),
        })
        .await
    }

    /// A placed order whose stock the (fake) catalogue reserved.
    pub async fn confirmed_order(&self, p: &Principal) -> Order {
        let order = self
            .place(p, &[(TEAPOT, 1)], Some(address("1 Main St")), None)
            .await
            .unwrap();
        self.reserve(&order.id).await;
        self.wait_status(&order.id, OrderStatus::Confirmed).await
    }

    /// How many `OrderStatusChanged` events about `order_id` went into the outbox.
    pub async fn status_events(&self, order_id: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE event_type = 'OrderStatusChanged' AND body LIKE $1",
        )
        .bind(format!("%{order_id}%"))
        .fetch_one(self.db.pool())
        .await
        .unwrap()
    }
}

pub fn admin() -> Principal {
    Principal::user("admin-1", Role::Admin)
}

pub fn address(line1: &str) -> Address {
    Address {
        line1: line1.into(),
        line2: None,
        city: "Springfield".into(),
        postal_code: "12345".into(),
        country: "US".into(),
    }
}

/// The catalogue's `ProductsById` over the shared product list, like the real catalogue.
fn fake_catalog(products: Arc<Mutex<Vec<Product>>>) -> Router {
    let handler = |products: Arc<Mutex<Vec<Product>>>, _: Principal, req: ProductsByIdRequest| async move {
        let all = products.lock().unwrap().clone();
        let found: Vec<Product> = all
            .into_iter()
            .filter(|p| req.ids.contains(&p.id) && (req.include_deleted || p.deleted_at.is_none()))
            .collect();
        Ok::<_, ApiError>(found)
    };
    Routes::new()
        .serve::<ProductsById>(handler)
        .with_state(products)
}
