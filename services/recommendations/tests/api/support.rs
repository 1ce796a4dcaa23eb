//! Test harness: builds the real recommendations service (one or more replicas on one
//! database) on the test kit's platform (embedded event log, in-memory cache, and SQLite or a
//! fresh PostgreSQL database), feeds it events as the catalogue and orders would, and calls
//! its internal API like the gateway does.

use std::sync::Mutex;

use bazaar_bus::{Consumer, Envelope};
use bazaar_contracts::catalog::Product;
use bazaar_contracts::events::{
    Event, OrderStatusChanged, ProductCreated, ProductDeleted, StockChanged,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_contracts::recommendations::RecommendationsClient;
use bazaar_contracts::{ApiError, Principal, Role};
use bazaar_db::{Db, sqlx};
use bazaar_runtime::schedule::Schedule;
use bazaar_testkit::fixtures::order_items;
use bazaar_testkit::{Backend, Harness, TestPlatform, events, fakes};

/// A running recommendations service and handles on its insides.
pub struct TestRecommendations {
    pub platform: TestPlatform,
    pub db: Db,
    pub client: RecommendationsClient,
    pub consumers: Vec<Consumer>,
    /// Ids of every event published so far, to wait for.
    published: Mutex<Vec<String>>,
}

impl Harness for TestRecommendations {
    async fn shutdown(self) {
        self.platform.shutdown(&self.db).await;
    }
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
        let platform = TestPlatform::start(backend, "recommendations", |settings| {
            if let Some(schedule) = schedule {
                settings.recommendation_schedule = schedule;
            }
        })
        .await?;
        let mut running = Vec::new();
        for _ in 0..replicas.max(1) {
            let service = bazaar_recommendations::build(&platform, bazaar_recommendations::Deps {})
                .await
                .expect("build recommendations");
            running.push(platform.spawn(service));
        }
        let (db, internal, consumers) = running.swap_remove(0);
        let client = RecommendationsClient(platform.client("recommendations", internal));
        Some(TestRecommendations {
            platform,
            db,
            client,
            consumers,
            published: Mutex::new(Vec::new()),
        })
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
            events::consumed(&self.db, "recommendations", &id).await;
        }
    }

    /// The catalogue created product `id` named `name` with `stock` units.
    pub async fn product(&self, id: &str, name: &str, stock: i64) {
        self.publish(&created(id, name, stock)).await;
    }

    pub async fn stock(&self, id: &str, stock: i64) {
        self.publish(&stock_changed(id, stock)).await;
    }

    /// Publishes `events` together: the consumer receives them in one batch.
    pub async fn publish_together(&self, events: &[Envelope]) {
        self.published
            .lock()
            .expect("published ids")
            .extend(events.iter().map(|e| e.id.clone()));
        self.platform
            .transport
            .publish_batch(events)
            .await
            .expect("publish");
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
        self.consumers[0].process(fakes::delivery(event, 1)).await;
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

/// The catalogue set product `id`'s stock to `stock`.
pub fn stock_changed(id: &str, stock: i64) -> Envelope {
    let event = StockChanged {
        product_id: id.into(),
        stock,
        delta: 0,
        reason: "ADJUSTMENT".into(),
    };
    event.envelope("catalog")
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
    let items = order_items(lines);
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
