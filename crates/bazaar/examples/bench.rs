//! Load benchmark: starts bazaar in this process on 127.0.0.1:0 and drives it over GraphQL/HTTP.
//!
//! Measures, and prints as plain-text lines:
//! - setup: admin sign-in, 20 products (stock 1 000 000), 50 customer registrations (argon2id
//!   hashing is deliberately slow, so registrations/s is its own figure);
//! - browse: C workers for N s running `products(first: 20)` and `product(id)` (half each);
//! - order: C workers for N s running `placeOrder` (1–3 random distinct lines, quantity 1);
//!   then how long the backlog of sagas takes to drain (≤ 300 s), and the sustained saga rate;
//! - settle: 200 more orders, 8 in flight, timing placeOrder response → order reads CONFIRMED
//!   (polled every 5 ms); then checks that no order is PENDING or REJECTED;
//! - memory: peak (VmHWM) and current (VmRSS) RSS of this process — server AND load generator.
//!
//! `--abuse` runs crafted requests instead (see `abuse`): the time and extra peak RSS to refuse
//! a 22-level fragment explosion, then 200 concurrent registrations plus 200 concurrent
//! sign-ins: peak RSS, and whether every one was answered (success or RATE_LIMITED) within 10 s.
//!
//! Run (release, loopback only, stops by itself):
//!
//!     cargo run --release -p bazaar --example bench -- [--backend embedded|real] [--seconds N] [--concurrency C] [--abuse]
//!
//! `embedded` (default) uses SQLite, the embedded event log and the in-memory cache in a temp
//! dir. `real` uses PostgreSQL at 127.0.0.1:5432 (a fresh `bazaar_bench_<uuid>` database,
//! dropped at the end), NATS JetStream at 127.0.0.1:4222 and Redis at 127.0.0.1:6379 under a
//! random namespace (cleaned up at the end).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bazaar::App;
use bazaar_bus::NatsTransport;
use bazaar_cache::RedisCache;
use bazaar_db::sqlx;
use bazaar_runtime::{ConfigArgs, Secret, ServiceName, Settings};
use rand::Rng;
use serde_json::{Value, json};

#[path = "bench/abuse.rs"]
mod abuse;

/// Orders the server accepted (placeOrder answered with an id).
static PLACED: AtomicU64 = AtomicU64::new(0);

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const NATS: &str = "nats://127.0.0.1:4222";
const REDIS: &str = "redis://127.0.0.1:6379";
const PRODUCTS: i64 = 20;
const CUSTOMERS: u64 = 50;
const SETTLE_SAMPLE: u64 = 200;
const SETTLE_WORKERS: usize = 8;

const LIST: &str = "query { products(first: 20) { edges { node { id name priceCents stock } } } }";
const ONE: &str = "query($id: ID!) { product(id: $id) { id name priceCents stock } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }";
const CREATE: &str =
    "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }";
const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
const PLACE: &str =
    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }";
const STATUS: &str = "query($id: ID!) { order(id: $id) { status statusReason } }";
const STREAMS: &str =
    "{ eventStreams { consumers { name delivered pending ackPending redelivered deadLettered } } }";
const COUNT: &str = "query($s: OrderStatus) { orders(first: 1, status: $s) { totalCount } }";

/// A GraphQL client on a shared connection pool.
#[derive(Clone)]
struct Gql {
    http: reqwest::Client,
    url: String,
}

impl Gql {
    /// Runs an operation; transport failures, non-200 answers and GraphQL errors are `Err`.
    async fn run(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("HTTP {status}: {e}"))?;
        match body.get("errors") {
            Some(errors) => Err(format!(
                "{}: {}",
                errors[0]["extensions"]["code"], errors[0]["message"]
            )),
            None => Ok(body["data"].clone()),
        }
    }
}

/// Latencies of the successful calls of a phase, its failures and its wall-clock time.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    elapsed: Duration,
}

impl Sample {
    fn report(&mut self, name: &str, unit: &str) {
        self.latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let pct = |p: f64| match self.latencies.len() {
            0 => 0.0,
            n => ms(self.latencies[((n - 1) as f64 * p / 100.0).round() as usize]),
        };
        let n = self.latencies.len();
        println!(
            "{name:<9} {unit}={n:<6} rate={:.1}/s  p50={:.1}ms  p90={:.1}ms  p99={:.1}ms  max={:.1}ms  errors={}",
            n as f64 / self.elapsed.as_secs_f64(),
            pct(50.0),
            pct(90.0),
            pct(99.0),
            pct(100.0),
            self.errors.len()
        );
        for e in self.errors.iter().take(3) {
            println!("          !! error: {e}");
        }
    }
}

/// Runs `f(i)` for i = 0, 1, ... on `concurrency` workers until `max` calls were started or the
/// deadline passed. `f` returns the latency to record.
async fn drive<F, Fut>(concurrency: usize, deadline: Option<Instant>, max: u64, f: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, String>> + Send + 'static,
{
    let (f, next, start) = (Arc::new(f), Arc::new(AtomicU64::new(0)), Instant::now());
    let workers = (0..concurrency).map(|_| {
        let (f, next) = (f.clone(), next.clone());
        tokio::spawn(async move {
            let mut sample = Sample::default();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= max || deadline.is_some_and(|d| Instant::now() >= d) {
                    return sample;
                }
                match f(i).await {
                    Ok(latency) => sample.latencies.push(latency),
                    Err(e) => sample.errors.push(e),
                }
            }
        })
    });
    let mut all = Sample::default();
    for worker in futures::future::join_all(workers).await {
        let worker = worker.expect("worker");
        all.latencies.extend(worker.latencies);
        all.errors.extend(worker.errors);
    }
    all.elapsed = start.elapsed();
    all
}

/// Places an order of 1–3 distinct random products; returns its id.
async fn place(gql: &Gql, token: &str, products: &[String]) -> Result<String, String> {
    let items: Vec<Value> = {
        let mut rng = rand::rng();
        let lines = rng.random_range(1..=3);
        rand::seq::index::sample(&mut rng, products.len(), lines)
            .into_iter()
            .map(|p| json!({"productId": products[p], "quantity": 1}))
            .collect()
    };
    let address =
        json!({"line1": "1 Market St", "city": "York", "postalCode": "YO1 7HH", "country": "GB"});
    let data = gql
        .run(
            Some(token),
            PLACE,
            json!({"input": {"items": items, "shippingAddress": address}}),
        )
        .await?;
    let id = data["placeOrder"]["id"]
        .as_str()
        .ok_or("placeOrder returned no id")?;
    PLACED.fetch_add(1, Relaxed);
    Ok(id.to_owned())
}

async fn count(gql: &Gql, admin: &str, status: &str) -> anyhow::Result<i64> {
    let data = gql.run(Some(admin), COUNT, json!({"s": status})).await;
    Ok(data.map_err(anyhow::Error::msg)?["orders"]["totalCount"]
        .as_i64()
        .unwrap_or(-1))
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name);
    at.and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or(default.into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let real = match arg("--backend", "embedded").as_str() {
        "embedded" => false,
        "real" => true,
        other => anyhow::bail!("--backend must be embedded or real, not {other}"),
    };
    let seconds: u64 = arg("--seconds", "10").parse()?;
    let concurrency: usize = arg("--concurrency", "32").parse()?;
    let namespace = format!("bench{}", uuid::Uuid::now_v7().simple());
    let database = format!("bazaar_bench_{}", uuid::Uuid::new_v4().simple());
    let data_dir = tempfile::tempdir()?;
    if std::env::var_os("BAZAAR_LOG").is_some() {
        bazaar_runtime::telemetry::init_logging(false); // e.g. BAZAAR_LOG=warn
    }

    // 1. Start bazaar in-process.
    let mut settings = Settings::load(&ConfigArgs {
        data_dir: Some(data_dir.path().into()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    })?;
    settings.namespace = namespace.clone();
    settings.admin_email = Some("admin@bench.local".into());
    settings.admin_password = Some(Secret::new("admin-password-1"));
    settings.login_limit_per_ip = 1_000_000;
    settings.login_limit_per_account = 1_000_000;
    // Every request comes from 127.0.0.1 here: the per-address sign-up limit would refuse
    // all but the first few, and the abuse phase is about the hashing gate behind it.
    settings.register_limit_per_ip = 1_000_000;
    settings.max_open_orders_per_customer = 1_000_000;
    let abuse = std::env::args().any(|a| a == "--abuse");
    if real {
        sqlx::any::install_default_drivers();
        postgres(&format!("CREATE DATABASE {database}")).await?;
        let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        settings.database_url = Some(Secret::new(url));
        settings.nats_url = Some(NATS.into());
        settings.redis_url = Some(Secret::new(REDIS));
        settings.jwt_secret = Secret::new(format!("bench-secret-{namespace}-0123456789abcdef"));
    }
    let backend = match real {
        true => "real (PostgreSQL+NATS JetStream+Redis)",
        false => "embedded (SQLite+event log+in-memory cache)",
    };
    println!("bazaar bench: backend={backend} seconds={seconds} concurrency={concurrency}");
    println!("              (the server and the load generator share this process and its cores)");
    let outcome = match App::build(settings, &ServiceName::ALL).await {
        Ok(app) => {
            let (port, stop) = (app.port(), app.stop_token());
            let server = tokio::spawn(app.run_until_stopped());
            let gql = Gql {
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(1024)
                    .build()?,
                url: format!("http://127.0.0.1:{port}/graphql"),
            };
            let outcome = match abuse {
                true => abuse::run(&gql).await,
                false => bench(&gql, seconds, concurrency).await,
            };
            stop.cancel();
            outcome.and(server.await?)
        }
        Err(e) => Err(e),
    };
    if real {
        postgres(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
        let timeout = Duration::from_secs(3);
        if let Ok(nats) = NatsTransport::connect_with_timeout(NATS, &namespace, timeout).await {
            let _ = nats.delete_stream().await;
        }
        if let Ok(redis) = RedisCache::connect(REDIS, &namespace).await {
            let _ = redis.flush_namespace().await;
        }
    }
    outcome
}

async fn postgres(statement: &str) -> anyhow::Result<()> {
    let pg = sqlx::AnyPool::connect(PG_ADMIN).await?;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&pg)
        .await?;
    pg.close().await;
    Ok(())
}

async fn bench(gql: &Gql, seconds: u64, concurrency: usize) -> anyhow::Result<()> {
    // 2. Setup: admin, products, customers.
    let login = json!({"email": "admin@bench.local", "password": "admin-password-1"});
    let data = gql
        .run(None, LOGIN, login)
        .await
        .map_err(anyhow::Error::msg)?;
    let admin = data["login"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut products = Vec::new();
    for n in 0..PRODUCTS {
        let input = json!({"name": format!("Bench item {n}"), "description": "A benchmark item",
            "category": "bench", "priceCents": 100 + n, "stock": 1_000_000});
        let data = gql.run(Some(&admin), CREATE, json!({"input": input})).await;
        let id = &data.map_err(anyhow::Error::msg)?["createProduct"]["id"];
        products.push(id.as_str().unwrap_or_default().to_owned());
    }
    let products: Arc<[String]> = products.into();
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (g, t) = (gql.clone(), tokens.clone());
    let workers = concurrency.min(CUSTOMERS as usize);
    let mut registered = drive(workers, None, CUSTOMERS, move |i| {
        let (g, t) = (g.clone(), t.clone());
        async move {
            let start = Instant::now();
            let input = json!({"email": format!("c{i}@bench.local"),
                "password": "correct-horse-1", "name": format!("Customer {i}")});
            let data = g.run(None, REGISTER, json!({"input": input})).await?;
            let token = data["register"]["accessToken"].as_str().ok_or("no token")?;
            t.lock().unwrap().push(token.to_owned());
            Ok(start.elapsed())
        }
    })
    .await;
    registered.report("register", "users");
    let tokens: Arc<[String]> = std::mem::take(&mut *tokens.lock().unwrap()).into();
    anyhow::ensure!(!tokens.is_empty(), "no customer could register");
    memory("setup");

    // 3. Browse: half catalogue pages, half single products.
    let deadline = || Some(Instant::now() + Duration::from_secs(seconds));
    let (g, p) = (gql.clone(), products.clone());
    let mut browse = drive(concurrency, deadline(), u64::MAX, move |i| {
        let (g, p) = (g.clone(), p.clone());
        async move {
            let start = Instant::now();
            let id = &p[i as usize / 2 % p.len()];
            let _ = match i % 2 {
                0 => g.run(None, LIST, json!({})).await?,
                _ => g.run(None, ONE, json!({"id": id})).await?,
            };
            Ok(start.elapsed())
        }
    })
    .await;
    browse.report("browse", "requests");

    // 4. Orders under load, then the backlog of sagas, then a settle-latency sample.
    let (g, p, t) = (gql.clone(), products.clone(), tokens.clone());
    let mut ordered = drive(concurrency, deadline(), u64::MAX, move |i| {
        let (g, p, t) = (g.clone(), p.clone(), t.clone());
        async move {
            let start = Instant::now();
            place(&g, &t[i as usize % t.len()], &p).await?;
            Ok(start.elapsed())
        }
    })
    .await;
    ordered.report("order", "orders");
    let backlog = count(gql, &admin, "PENDING").await?; // orders not yet settled
    let (drained, caught_up) = settle_backlog(gql, &admin).await?;
    let saga_rate = ordered.latencies.len() as f64 / (ordered.elapsed.as_secs_f64() + drained);
    println!(
        "backlog   pending_at_end={backlog}  all_settled_after={drained:.1}s  consumers_caught_up_after={caught_up:.1}s  sustained_saga_rate={saga_rate:.1} orders/s"
    );
    if drained > 30.0 {
        println!(
            "!!!!!!!!  ANOMALY: orders still PENDING 30 s after the order phase ended  !!!!!!!!"
        );
    }

    let (g, p, t) = (gql.clone(), products.clone(), tokens.clone());
    let mut settle = drive(SETTLE_WORKERS, None, SETTLE_SAMPLE, move |i| {
        let (g, p, t) = (g.clone(), p.clone(), t.clone());
        async move {
            let token = &t[i as usize % t.len()];
            let id = place(&g, token, &p).await?;
            let placed = Instant::now();
            loop {
                let order = &g.run(Some(token), STATUS, json!({"id": id})).await?["order"];
                match order["status"].as_str() {
                    Some("CONFIRMED") => return Ok(placed.elapsed()),
                    Some("PENDING") if placed.elapsed().as_secs() < 30 => {}
                    other => {
                        let (after, why) = (placed.elapsed(), &order["statusReason"]);
                        return Err(format!("order {id} is {other:?} after {after:?}: {why}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await;
    settle.report("settle", "orders");

    settle_backlog(gql, &admin).await?;
    let pending = count(gql, &admin, "PENDING").await?;
    let rejected = count(gql, &admin, "REJECTED").await?;
    let confirmed = count(gql, &admin, "CONFIRMED").await?;
    let accepted = PLACED.load(Relaxed) as i64;
    println!(
        "check     accepted={accepted} confirmed={confirmed} pending={pending} rejected={rejected}"
    );
    if pending > 0 || rejected > 0 || confirmed != accepted {
        println!("!!!!!!!!  ANOMALY: orders PENDING after 30 s, REJECTED, or missing  !!!!!!!!");
    }

    for c in consumers(gql, &admin).await? {
        let (name, lag) = (c["name"].as_str().unwrap_or("?"), &c["pending"]);
        let (delivered, redelivered, dead) =
            (&c["delivered"], &c["redelivered"], &c["deadLettered"]);
        println!(
            "events    consumer={name:<16} delivered={delivered:<6} lag={lag:<6} redelivered={redelivered} dead_lettered={dead}"
        );
    }
    memory("end");
    Ok(())
}

/// Waits until no order is PENDING, then until the consumers on the order path (catalog,
/// orders) have caught up, so the next phase starts on a quiet system. Returns the seconds to
/// each (gives up after 300 s).
async fn settle_backlog(gql: &Gql, admin: &str) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    while count(gql, admin, "PENDING").await? > 0 && start.elapsed().as_secs() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let no_pending = start.elapsed().as_secs_f64();
    while start.elapsed().as_secs() < 300 {
        let on_order_path = |c: &&Value| c["name"] == "orders" || c["name"] == "catalog";
        let lag =
            |c: &Value| c["pending"].as_i64().unwrap_or(0) + c["ackPending"].as_i64().unwrap_or(0);
        if consumers(gql, admin)
            .await?
            .iter()
            .filter(on_order_path)
            .map(lag)
            .sum::<i64>()
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((no_pending, start.elapsed().as_secs_f64()))
}

/// Every durable consumer of the event stream(s), as reported by `eventStreams`.
async fn consumers(gql: &Gql, admin: &str) -> anyhow::Result<Vec<Value>> {
    let data = gql
        .run(Some(admin), STREAMS, json!({}))
        .await
        .map_err(anyhow::Error::msg)?;
    let streams = data["eventStreams"].as_array().cloned().unwrap_or_default();
    Ok(streams
        .iter()
        .flat_map(|s| s["consumers"].as_array().cloned().unwrap_or_default())
        .collect())
}

/// Prints this process's peak (VmHWM) and current (VmRSS) resident memory.
fn memory(when: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        let line = status.lines().find(|l| l.starts_with(k)).unwrap_or(k);
        line[k.len()..].trim().to_owned()
    };
    let (peak, now) = (field("VmHWM:"), field("VmRSS:"));
    println!(
        "memory    {when:<6} peak_rss={peak}  rss={now}  (server and load generator in one process)"
    );
}
