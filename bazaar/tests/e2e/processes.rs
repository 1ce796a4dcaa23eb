//! Microservices mode: every service in its own `bazaar serve --services <name>` process on
//! loopback against PostgreSQL + NATS JetStream + Redis, or with RabbitMQ for events (the
//! `*_rabbitmq` tests), (users, 2 catalog and 2 orders replicas behind balancers, the gateway),
//! driven over the gateway's GraphQL API while processes, and the broker, are killed with
//! SIGKILL (or stopped) and restarted.
//!
//! Skipped (with a message) when PostgreSQL, the broker or Redis is unreachable, unless
//! `BAZAAR_REQUIRE_BACKENDS=1`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::kafka::KafkaBroker;
use crate::support::processes::*;
use crate::support::shop::*;
use crate::support::{Backend, Environment, LOGIN, TestApp, eventually, str};
use futures::StreamExt;
use futures::future::join_all;
use serde_json::{Value, json};

/// Upper bound of each test, start-up included.
const LIMIT: Duration = Duration::from_secs(120);
/// Deliveries a killed process held come back after the consumers' ack wait (10 s).
const SETTLE: Duration = Duration::from_secs(45);
/// An order's status without fields that need the catalogue (usable while it is down).
const STATUS: &str = "query($id: ID!) { order(id: $id) { id status } }";

async fn gateway_ready(app: &TestApp) -> (u16, String) {
    let r = app.get("/readyz").await;
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Accounts, catalogue, the order saga, payment, shipping and cancellation, each call crossing
/// from the gateway process to the service processes (and the saga through NATS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_flow_across_processes() {
    full_flow_across_processes_on(Backend::Real).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_flow_across_processes_rabbitmq() {
    full_flow_across_processes_on(Backend::Rabbitmq).await
}

async fn full_flow_across_processes_on(backend: Backend) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let cluster = Cluster::start(&env).await;
        let app = &cluster.gateway;

        // Accounts: register, sign in, me (users process).
        let (ann, _, ann_id) = app.register("ann@example.com", "Ann").await;
        let me = app.ok(Some(&ann), "{ me { id email role } }", json!({})).await;
        assert_eq!(me["me"]["id"], ann_id.as_str());
        assert_eq!(me["me"]["email"], "ann@example.com");
        assert_eq!(me["me"]["role"], "CUSTOMER");
        // The notifications process hears of the registration over NATS.
        let welcome = "{ notifications { edges { node { kind } } } }";
        eventually(Duration::from_secs(30), || async {
            let data = app.ok(Some(&ann), welcome, json!({})).await;
            (data["notifications"]["edges"][0]["node"]["kind"] == "WELCOME").then_some(())
        })
        .await;
        assert!(app.ok(None, "{ recommendations { id } }", json!({})).await["recommendations"].is_array());
        let login = app
            .ok(
                None,
                LOGIN,
                json!({"email": "ann@example.com", "password": "correct-horse-1"}),
            )
            .await;
        assert_eq!(login["login"]["user"]["id"], ann_id.as_str());
        app.err(
            None,
            LOGIN,
            json!({"email": "ann@example.com", "password": "wrong-horse-1"}),
            "UNAUTHENTICATED",
        )
        .await;

        // Catalogue: only the admin creates products (catalog processes).
        let admin = app.admin_token().await;
        let input = json!({"name": "Teapot", "description": "Brews", "category": "kitchen", "priceCents": 2500, "stock": 5});
        app.err(
            Some(&ann),
            CREATE_PRODUCT,
            json!({"input": input}),
            "FORBIDDEN",
        )
        .await;
        let teapot = app.product(&admin, "Teapot", "kitchen", 2500, 5).await;
        let mug = app.product(&admin, "Mug", "kitchen", 800, 10).await;

        // The saga: orders prices from the catalogue, the catalogue reserves through NATS.
        let placed = app
            .ok(Some(&ann), PLACE_ORDER, json!({"input": {"items": [{"productId": teapot, "quantity": 2}, {"productId": mug, "quantity": 1}], "shippingAddress": address()}}))
            .await;
        assert_eq!(placed["placeOrder"]["status"], "PENDING");
        assert_eq!(placed["placeOrder"]["totalCents"], 5800);
        let id = str(&placed["placeOrder"]["id"]);
        let order = app.settled(&ann, &id).await;
        assert_eq!(order["status"], "CONFIRMED", "{order}");
        assert_eq!(order["user"]["id"], ann_id.as_str());
        assert_eq!(order["items"][0]["product"]["name"], "Teapot");
        stock_becomes(app, &teapot, 3, Duration::from_secs(10)).await;
        stock_becomes(app, &mug, 9, Duration::from_secs(10)).await;

        // Payment, then the admin ships and delivers.
        let paid = app
            .ok(Some(&ann), PAY, json!({"id": id, "token": "tok_visa"}))
            .await;
        assert_eq!(paid["payOrder"]["status"], "PAID");
        for status in ["SHIPPED", "DELIVERED"] {
            let set = app
                .ok(
                    Some(&admin),
                    SET_STATUS,
                    json!({"id": id, "status": status}),
                )
                .await;
            assert_eq!(set["setOrderStatus"]["status"], status);
        }
        assert_eq!(app.order_status(&ann, &id).await.0, "DELIVERED");

        // Cancelling a confirmed order gives its stock back (through the catalogue's consumer).
        let small = app.order(&ann, &[(&mug, 4)]).await;
        assert_eq!(app.settled(&ann, &small).await["status"], "CONFIRMED");
        stock_becomes(app, &mug, 5, Duration::from_secs(10)).await;
        let cancelled = app.ok(Some(&ann), CANCEL, json!({"id": small})).await;
        assert_eq!(cancelled["cancelOrder"]["status"], "CANCELLED");
        stock_becomes(app, &mug, 9, Duration::from_secs(20)).await;
        assert_eq!(order_count(app, &admin).await, 2);

        // Read-your-writes across processes: an order placed right after a profile update
        // ships to the new address (the orders process asks the users process).
        let spoon = app.product(&admin, "Spoon", "kitchen", 100, 100).await;
        let profile = "mutation($a: AddressInput!) { updateProfile(input: {address: $a}) { id } }";
        for i in 0..20 {
            let city = format!("Town {i}");
            let address = json!({"line1": "1 High St", "city": city, "postalCode": "AB1 2CD", "country": "GB"});
            app.ok(Some(&ann), profile, json!({"a": address})).await;
            let placed = app
                .ok(Some(&ann), PLACE_ORDER, json!({"input": {"items": [{"productId": spoon, "quantity": 1}]}}))
                .await;
            assert_eq!(placed["placeOrder"]["shippingAddress"]["city"], city, "try {i}");
        }
    })
    .await;
    env.cleanup().await;
}

/// 40 concurrent orders for 10 units, spread over two orders and two catalog replicas:
/// exactly 10 confirm, and each OrderPlaced is applied by exactly one catalog replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_oversell_across_replicas() {
    no_oversell_across_replicas_on(Backend::Real).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_oversell_across_replicas_rabbitmq() {
    no_oversell_across_replicas_on(Backend::Rabbitmq).await
}

async fn no_oversell_across_replicas_on(backend: Backend) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let cluster = Cluster::start(&env).await;
        let app = &cluster.gateway;
        let admin = app.admin_token().await;
        let scarce = app.product(&admin, "Scarce", "limited", 1000, 10).await;
        let plenty = app.product(&admin, "Plenty", "limited", 100, 100).await;
        let mut customers = Vec::new();
        for i in 0..4 {
            customers.push(app.register(&format!("b{i}@example.com"), "B").await.0);
        }
        let served_before = cluster.procs.orders_lb.served();
        let placed = join_all((0..40).map(|i| {
            let token = &customers[i % customers.len()];
            let (scarce, plenty) = (&scarce, &plenty);
            async move {
                let lines: Vec<(&str, i64)> = if i % 2 == 0 {
                    vec![(scarce, 1), (plenty, 1)]
                } else {
                    vec![(scarce, 1)]
                };
                (token, app.order(token, &lines).await)
            }
        }))
        .await;
        let mut orders = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for (token, id) in &placed {
            let left = deadline.saturating_duration_since(Instant::now());
            orders.push(app.settled_within(token, id, left).await);
        }
        assert_settled_outcomes(&orders);
        let confirmed = orders.iter().filter(|o| o["status"] == "CONFIRMED").count();
        assert_eq!(confirmed, 10);
        stock_becomes(app, &scarce, 0, Duration::from_secs(10)).await;
        stock_becomes(
            app,
            &plenty,
            100 - held_units(&orders, &plenty),
            Duration::from_secs(10),
        )
        .await;

        // Both orders replicas took placeOrder calls; the catalog replicas share one durable
        // consumer and applied each event exactly once.
        let served: Vec<usize> = cluster
            .procs
            .orders_lb
            .served()
            .iter()
            .zip(&served_before)
            .map(|(after, before)| after - before)
            .collect();
        assert!(
            served.iter().all(|&n| n > 0),
            "connections per orders replica: {served:?}"
        );
        let mut applied = Vec::new();
        for name in ["catalog-1", "catalog-2"] {
            let n = cluster
                .procs
                .metric(
                    name,
                    "bazaar_events_consumed_total",
                    &["type=\"OrderPlaced\""],
                )
                .await;
            applied.push(n);
        }
        // Exactly once across both. Which replica applies what is up to the broker: a replica
        // takes a whole batch of what is waiting, so one may take this entire burst (that the
        // replicas do share work is checked by the bus conformance suite).
        assert_eq!(
            applied.iter().sum::<f64>(),
            40.0,
            "OrderPlaced applied per replica: {applied:?}"
        );
    })
    .await;
    env.cleanup().await;
}

/// SIGKILL an orders replica while orders stream in (clients retry with their idempotency
/// key), then restart it: every order exists once, settles, and stock is conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_orders_mid_flight() {
    kill_orders_mid_flight_on(Backend::Real).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_orders_mid_flight_rabbitmq() {
    kill_orders_mid_flight_on(Backend::Rabbitmq).await
}

async fn kill_orders_mid_flight_on(backend: Backend) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let mut cluster = Cluster::start(&env).await;
        let (app, procs) = (&cluster.gateway, &mut cluster.procs);
        let admin = app.admin_token().await;
        let (token, _, _) = app.register("crash@example.com", "Crash").await;
        let product = app.product(&admin, "Fragile", "crash", 700, 30).await;

        let acked = AtomicUsize::new(0);
        let load = futures::stream::iter(0..20)
            .map(|i| {
                let (token, product, acked) = (&token, &product, &acked);
                async move {
                    let key = format!("kill-{i}");
                    let placed = place_acked(app, token, &[(product, 2)], &key, SETTLE).await;
                    acked.fetch_add(1, Ordering::SeqCst);
                    placed
                }
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>();
        let chaos = async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while acked.load(Ordering::SeqCst) < 4 {
                assert!(Instant::now() < deadline, "no orders acknowledged");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            procs.kill9("orders-1");
            let at_kill = acked.load(Ordering::SeqCst);
            procs.restart("orders-1").await;
            at_kill
        };
        let (placed, at_kill) = tokio::join!(load, chaos);
        let retried: u32 = placed.iter().map(|(_, failures)| failures).sum();
        eprintln!(
            "orders-1 killed after {at_kill}/20 acknowledgements; {retried} attempts retried"
        );
        assert!(
            at_kill < 20,
            "the kill happened while orders were still coming in"
        );

        let ids: Vec<String> = placed.into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            20,
            "one order per key"
        );
        let orders = settle_all(app, &token, &ids, SETTLE).await;
        assert_settled_outcomes(&orders);
        // 20 orders of 2 against 30 units: exactly 15 fit, whoever served them.
        let held = held_units(&orders, &product);
        assert_eq!(held, 30, "{orders:#?}");
        stock_becomes(app, &product, 30 - held, Duration::from_secs(10)).await;
        assert_eq!(
            order_count(app, &admin).await,
            20,
            "no order lost or doubled"
        );
    })
    .await;
    env.cleanup().await;
}

/// With every catalog process down, placeOrder fails fast with SERVICE_UNAVAILABLE and the
/// gateway reports not ready; both recover by themselves. Orders whose saga was under way when
/// the catalogue died settle once it is back (their events waited in NATS).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_down_for_a_while() {
    catalog_down_for_a_while_on(Backend::Real).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_down_for_a_while_rabbitmq() {
    catalog_down_for_a_while_on(Backend::Rabbitmq).await
}

async fn catalog_down_for_a_while_on(backend: Backend) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let mut cluster = Cluster::start(&env).await;
        let (app, procs) = (&cluster.gateway, &mut cluster.procs);
        let admin = app.admin_token().await;
        let (token, _, _) = app.register("patient@example.com", "Patient").await;
        let widget = app.product(&admin, "Widget", "tools", 300, 20).await;
        let catalogs = ["catalog-1", "catalog-2"];

        // Down: a clear, fast refusal and an honest /readyz.
        for name in catalogs {
            procs.kill9(name);
        }
        let started = Instant::now();
        let e = try_place(app, &token, &[(&widget, 1)], "while-down")
            .await
            .expect_err("placeOrder without the catalogue");
        let took = started.elapsed();
        assert_eq!(e["extensions"]["code"], "SERVICE_UNAVAILABLE", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("catalog"),
            "{e}"
        );
        assert!(
            took < Duration::from_secs(5),
            "placeOrder took {took:?} to fail"
        );
        let (status, body) = gateway_ready(app).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("catalog"), "{body}");

        // Back: /readyz recovers without help, and new orders settle.
        procs.restart_all(&catalogs).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while gateway_ready(app).await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "gateway not ready again within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = app.order(&token, &[(&widget, 1)]).await;
        let mut ids = vec![after.clone()];
        assert_eq!(app.settled(&token, &after).await["status"], "CONFIRMED");

        // Killed mid-saga: placed while the catalogue is up, killed as soon as they are
        // acknowledged, restarted 3 s later.
        let placed: Vec<String> = join_all((0..6).map(|i| {
            let (token, widget) = (&token, &widget);
            async move {
                let key = format!("mid-{i}");
                place_acked(app, token, &[(widget, 1)], &key, SETTLE).await
            }
        }))
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
        for name in catalogs {
            procs.kill9(name);
        }
        let mut pending = 0;
        for id in &placed {
            let status = app.ok(Some(&token), STATUS, json!({"id": id})).await;
            pending += usize::from(status["order"]["status"] == "PENDING");
        }
        assert!(
            pending > 0,
            "every saga finished before the catalogue was killed"
        );
        tokio::time::sleep(Duration::from_secs(3)).await; // the outage
        procs.restart_all(&catalogs).await;
        ids.extend(placed);
        let orders = settle_all(app, &token, &ids, SETTLE).await;
        for o in &orders {
            assert_eq!(o["status"], "CONFIRMED", "{o}");
        }
        stock_becomes(app, &widget, 20 - 7, Duration::from_secs(10)).await;
        assert_eq!(
            order_count(app, &admin).await,
            7,
            "the refused order was not created"
        );
        eprintln!("{pending}/6 orders were PENDING when the catalogue died");
    })
    .await;
    env.cleanup().await;
}

/// The broker dies for 3 s under steady order traffic and comes back on the same store:
/// placeOrder keeps working (outbox), and afterwards every acknowledged order settles once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_restart_under_load() {
    broker_restart_under_load(Backend::Real).await
}

/// The same with RabbitMQ stopped (`rabbitmqctl stop_app`) and started again: nothing lost,
/// nothing doubled. The broker is shared, so nextest runs this test alone
/// (`.config/nextest.toml`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restart_under_load() {
    broker_restart_under_load(Backend::Rabbitmq).await
}

/// The same with a private Kafka broker killed (-9) and started again on its log directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_restart_under_load() {
    broker_restart_under_load(Backend::Kafka).await
}

/// The broker of a test: a private NATS server or Kafka broker, or the machine's RabbitMQ
/// application.
enum Broker {
    Nats(NatsServer),
    Rabbitmq,
    Kafka(KafkaBroker),
}

impl Broker {
    async fn stop(&mut self) {
        match self {
            Broker::Nats(nats) => nats.kill9(),
            Broker::Kafka(kafka) => kafka.kill9(),
            Broker::Rabbitmq => bazaar_bus::testing::rabbitmqctl(&["stop_app"])
                .await
                .expect("rabbitmqctl stop_app"),
        }
    }

    async fn start(&mut self) {
        match self {
            Broker::Nats(nats) => nats.restart().await,
            Broker::Kafka(kafka) => kafka.restart().await,
            Broker::Rabbitmq => bazaar_bus::testing::rabbitmqctl(&["start_app"])
                .await
                .expect("rabbitmqctl start_app"),
        }
    }
}

async fn broker_restart_under_load(backend: Backend) {
    let Some(env) = Environment::new(backend).await else {
        return;
    };
    bounded(LIMIT, async {
        let (mut broker, cluster) = match backend {
            Backend::Rabbitmq => (Broker::Rabbitmq, Cluster::start(&env).await),
            Backend::Kafka => {
                let Some(kafka) = KafkaBroker::start().await else {
                    return;
                };
                let cluster =
                    Cluster::start_on(&env, "BAZAAR_KAFKA_BROKERS", &kafka.address()).await;
                (Broker::Kafka(kafka), cluster)
            }
            _ => {
                let nats = NatsServer::start().await;
                let cluster = Cluster::start_on(&env, "BAZAAR_NATS_URL", &nats.url()).await;
                (Broker::Nats(nats), cluster)
            }
        };
        let app = &cluster.gateway;
        let admin = app.admin_token().await;
        let (token, _, _) = app.register("steady@example.com", "Steady").await;
        // `rabbitmqctl stop_app` takes a second or more while orders keep coming: 15 units
        // would be sold before the outage began, and nothing left to move after it.
        let units: i64 = if backend == Backend::Rabbitmq {
            300
        } else {
            15
        };
        let scarce = app.product(&admin, "Scarce", "load", 900, units).await;
        let plenty = app.product(&admin, "Plenty", "load", 100, 1000).await;
        // Ordered only after the outage, so its stock moves after its cached read however far
        // the load got before the broker stopped (under load, `stop_app` can take long enough
        // to sell out the scarce product, and then nothing else moves).
        let steady = app.product(&admin, "Steady", "load", 100, 1000).await;

        let acked: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let count = || acked.lock().expect("lock").len();
        let stop = AtomicBool::new(false);
        let load = join_all((0..2).map(|worker| {
            let (token, scarce, plenty, acked, stop) = (&token, &scarce, &plenty, &acked, &stop);
            async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("w{worker}-{n}");
                    let lines = [(scarce.as_str(), 1), (plenty.as_str(), 1)];
                    let (id, _) = place_acked(app, token, &lines, &key, SETTLE).await;
                    acked.lock().expect("lock").push(id);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await; // pacing
                }
            }
        }));
        let wait_for = |n: usize| async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while count() < n {
                assert!(
                    Instant::now() < deadline,
                    "order traffic stalled at {}",
                    count()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let chaos = async {
            wait_for(5).await;
            broker.stop().await;
            let at_kill = count();
            tokio::time::sleep(Duration::from_secs(3)).await; // the outage
            let during = count() - at_kill;
            // Cached while no invalidation can arrive: later reads are right only if the
            // gateway's invalidation consumer recovers with the broker.
            let cached = app.stock(&steady).await;
            broker.start().await;
            wait_for(count() + 5).await;
            stop.store(true, Ordering::SeqCst);
            (during, cached)
        };
        let (_, (during, cached)) = tokio::join!(load, chaos);
        let ids = acked.into_inner().expect("lock");
        eprintln!(
            "{} orders placed, {during} of them while the broker was down",
            ids.len()
        );
        assert!(during > 0, "placeOrder must not need the broker");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());

        let orders = settle_all(app, &token, &ids, SETTLE).await;
        assert_settled_outcomes(&orders);
        let held = held_units(&orders, &scarce);
        assert_eq!(
            held,
            units.min(ids.len() as i64),
            "every unit of a scarce product is sold once"
        );
        assert_eq!(
            held_units(&orders, &plenty),
            held,
            "all or nothing per order"
        );
        stock_becomes(app, &scarce, units - held, Duration::from_secs(20)).await;
        stock_becomes(app, &plenty, 1000 - held, Duration::from_secs(20)).await;

        // The gateway cached `steady` while no invalidation could arrive; an order of it
        // now shows only if its invalidation consumer came back with the broker.
        assert_eq!(cached, 1000);
        let after = app.order(&token, &[(&steady, 1)]).await;
        assert_eq!(app.settled(&token, &after).await["status"], "CONFIRMED");
        stock_becomes(app, &steady, 999, Duration::from_secs(20)).await;
        assert_eq!(
            order_count(app, &admin).await,
            ids.len() as i64 + 1,
            "no order lost or doubled"
        );
        drop(cluster);
    })
    .await;
    env.cleanup().await;
}

/// Service ports answer only callers with the service credential; the gateway's port has no
/// internal API at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_api_needs_the_service_credential() {
    let Some(env) = Environment::new(Backend::Real).await else {
        return;
    };
    bounded(LIMIT, async {
        let cluster = Cluster::start(&env).await;
        let procs = &cluster.procs;
        let http = reqwest::Client::new();
        let call = |base: String, op: &'static str, token: Option<String>, body: Value| {
            let http = http.clone();
            async move {
                let mut request = http.post(format!("{base}/internal/{op}")).json(&body);
                if let Some(token) = token {
                    request = request.header("x-bazaar-service-token", token);
                }
                let response = request.send().await.expect("internal call");
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
        };
        let good = procs.service_token();
        // Another deployment's credential: well-formed, but derived from a different secret.
        let wrong = bazaar_auth::service_token(b"another deployment's secret, 32+ bytes");
        assert_ne!(wrong, good);
        let by_id = json!({"ids": []});
        for (base, op, body) in [
            (procs.url("users"), "users", json!({})),
            (procs.url("catalog-1"), "products-by-id", by_id.clone()),
            (procs.url("orders-2"), "orders", json!({})),
        ] {
            for token in [None, Some(wrong.clone()), Some(String::new())] {
                let (status, text) = call(base.clone(), op, token.clone(), body.clone()).await;
                assert_eq!(status, 401, "{op} with {token:?}: {text}");
                let error: Value = serde_json::from_str(&text).expect("an error body");
                assert_eq!(error["code"], "UNAUTHENTICATED", "{text}");
                assert!(
                    !error["message"].as_str().unwrap_or_default().is_empty(),
                    "{text}"
                );
            }
        }
        // The real credential gets through (so the 401s above were about the credential).
        let (status, text) = call(
            procs.url("catalog-2"),
            "products-by-id",
            Some(good.clone()),
            by_id.clone(),
        )
        .await;
        assert_eq!((status, text.as_str()), (200, "[]"));
        // The public listener does not route internal operations, credential or not.
        for token in [None, Some(good.clone())] {
            let (status, text) =
                call(procs.url("gateway"), "products-by-id", token, by_id.clone()).await;
            assert_eq!(status, 404, "{text}");
        }
    })
    .await;
    env.cleanup().await;
}

/// A hung catalogue (SIGSTOP: connections open, no answers) costs callers one bounded wait,
/// not a retry loop of them: reads fail with SERVICE_UNAVAILABLE before the gateway's own
/// 30 s request timeout, and placeOrder names the catalogue, not the orders service.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_hung_fails_within_budget() {
    let Some(env) = Environment::new(Backend::Real).await else {
        return;
    };
    bounded(LIMIT, async {
        let mut cluster = Cluster::start(&env).await;
        let (app, procs) = (&cluster.gateway, &mut cluster.procs);
        let admin = app.admin_token().await;
        let (token, _, _) = app.register("hung@example.com", "Hung").await;
        let widget = app.product(&admin, "Widget", "tools", 300, 20).await;
        let catalogs = ["catalog-1", "catalog-2"];
        for name in catalogs {
            procs.signal(name, "STOP");
        }
        let place = async {
            let started = Instant::now();
            let e = try_place(app, &token, &[(&widget, 1)], "hung").await;
            (
                started.elapsed(),
                e.expect_err("placeOrder with a hung catalogue"),
            )
        };
        let read = async {
            let started = Instant::now();
            let r = app
                .http
                .post(format!("{}/graphql", app.base))
                .json(&json!({"query": PRODUCT, "variables": {"id": widget}}))
                .send()
                .await
                .expect("product request");
            let status = r.status().as_u16();
            (
                started.elapsed(),
                status,
                r.text().await.unwrap_or_default(),
            )
        };
        let ((place_took, e), (read_took, status, body)) = tokio::join!(place, read);
        procs.signal("catalog-1", "CONT");
        procs.signal("catalog-2", "CONT");

        assert_eq!(e["extensions"]["code"], "SERVICE_UNAVAILABLE", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("catalog"),
            "the error names the hung service: {e}"
        );
        assert!(
            place_took < Duration::from_secs(9),
            "placeOrder took {place_took:?}"
        );
        assert_eq!(
            status, 200,
            "a GraphQL answer, not the HTTP timeout: {body}"
        );
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "{body}"
        );
        assert!(
            read_took < Duration::from_secs(15),
            "product read took {read_took:?}"
        );

        // Resumed, everything works again and nothing was half-done meanwhile.
        let id = app.order(&token, &[(&widget, 2)]).await;
        assert_eq!(app.settled(&token, &id).await["status"], "CONFIRMED");
        stock_becomes(app, &widget, 18, Duration::from_secs(10)).await;
        assert_eq!(order_count(app, &admin).await, 1);
    })
    .await;
    env.cleanup().await;
}
