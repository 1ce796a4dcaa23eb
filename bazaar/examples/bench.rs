//! Load benchmark: starts bazaar in this process on 127.0.0.1:0 and drives it over GraphQL/HTTP.
//!
//! Measures, and prints as plain-text lines:
//! - setup: admin sign-in, 20 products (stock 1 000 000), 50 customer registrations (argon2id
//!   hashing is deliberately slow, so registrations/s is its own figure);
//! - browse: C workers for N s running `products(first: 20)` and `product(id)` (half each);
//! - list200: C workers for N s listing 200 products anonymously (two pages of 100 in one
//!   request, `id name priceCents stock description`), then `product`: the same fields of one
//!   product by id, over 200 products (180 more are created for these two phases);
//! - order: C workers for N s running `placeOrder` (1–3 random distinct lines, quantity 1; with
//!   `--hot`, every order is for the same one product); then the saga under that load, from
//!   the orders table's own clocks (`created_at` → `confirmed_at`): orders confirmed per second
//!   while the load ran, order → CONFIRMED latency, and what was still PENDING 2 s after it;
//! - settle: once every consumer has caught up, 200 more orders one at a time (a quiet system:
//!   status polled every 5 ms, then 50 ms for the order's mail and other consumers to finish
//!   before the next), order → CONFIRMED from the same clocks; then checks that no order is
//!   PENDING or REJECTED;
//! - memory: peak (VmHWM) and current (VmRSS) RSS of this process — server AND load generator.
//!
//! `--abuse` runs crafted requests instead (see `abuse`): the time and extra peak RSS to refuse
//! a 22-level fragment explosion, then 200 concurrent registrations plus 200 concurrent
//! sign-ins: peak RSS, and whether every one was answered (success or RATE_LIMITED) within 10 s.
//!
//! `--retention SECS` runs a long mixed load instead (see `retention`) with every retention age
//! at SECS, printing the pruned tables' row counts every 30 s: they must stop growing.
//!
//! Run (release, loopback only, stops by itself):
//!
//!     cargo run --release -p bazaar --example bench -- [--backend embedded|real] [--hot] [--seconds N] [--concurrency C] [--nats-url URL | --amqp-url URL] [--phases all|reads] [--abuse] [--retention SECS]
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` (and the other `OTEL_*` variables) set, the server
//! exports its traces as `bazaar serve` would, to measure what tracing costs.
//!
//! `--phases reads` runs only the setup of products and the read phases (browse, list200,
//! product), in about 4 × N seconds. A figure that misses the event pipeline's targets is
//! printed with `ANOMALY`. `--abuse` runs only the crafted-request phase (see `abuse.rs`).
//!
//! `embedded` (default) uses SQLite, the embedded event log and the in-memory cache in a temp
//! dir. `real` uses PostgreSQL at 127.0.0.1:5432 (a fresh `bazaar_bench_<uuid>` database,
//! dropped at the end), NATS JetStream at 127.0.0.1:4222 and Redis at 127.0.0.1:6379 under a
//! random namespace (cleaned up at the end). With `--amqp-url` (e.g.
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) RabbitMQ carries the events instead of NATS; its
//! queues are deleted at the end with `rabbitmqctl` (the exchange stays, empty).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bazaar::App;
use bazaar_bus::NatsTransport;
use bazaar_cache::RedisCache;
use bazaar_db::sqlx;
use bazaar_runtime::{ConfigArgs, Secret, Settings};
use rand::Rng;
use serde_json::{Value, json};

#[path = "bench/abuse.rs"]
mod abuse;
#[path = "bench/retention.rs"]
mod retention;

/// Orders the server accepted (placeOrder answered with an id).
static PLACED: AtomicU64 = AtomicU64::new(0);

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const NATS_DEFAULT: &str = "nats://127.0.0.1:4222";
const REDIS: &str = "redis://127.0.0.1:6379";
const PRODUCTS: i64 = 20;
/// Products in the catalogue for the list200 and product phases.
const CATALOGUE: i64 = 200;
const CUSTOMERS: u64 = 50;
const SETTLE_SAMPLE: u64 = 200;
const SETTLE_WORKERS: usize = 1;
/// Pause after each quiet order confirms, so the next meets idle consumers.
const SETTLE_PAUSE: Duration = Duration::from_millis(50);

const LIST: &str = "query { products(first: 20) { edges { node { id name priceCents stock } } } }";
const ONE: &str = "query($id: ID!) { product(id: $id) { id name priceCents stock } }";
const LIST200: &str = "query($after: String) { first: products(first: 100) { edges { node { id name priceCents stock description } } pageInfo { endCursor } } second: products(first: 100, after: $after) { edges { node { id name priceCents stock description } } } }";
const ONE_FULL: &str =
    "query($id: ID!) { product(id: $id) { id name priceCents stock description } }";
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

impl Gql {
    /// Runs an anonymous read and checks only what is cheap to check (HTTP 200, no `errors`
    /// key), so the load generator spends little of the shared CPU on parsing answers.
    async fn read(&self, query: &str, variables: &Value) -> Result<usize, String> {
        let response = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
        if status != 200 || body.windows(8).any(|w| w == b"\"errors\"") {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        Ok(body.len())
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

/// Places an order of 1–3 distinct random products (one line when there is one product);
/// returns its id.
async fn place(gql: &Gql, token: &str, products: &[String]) -> Result<String, String> {
    let items: Vec<Value> = {
        let mut rng = rand::rng();
        let lines = rng.random_range(1..=3.min(products.len()));
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

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
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
    let reads_only = match arg("--phases", "all").as_str() {
        "all" => false,
        "reads" => true,
        other => anyhow::bail!("--phases must be all or reads, not {other}"),
    };
    let concurrency: usize = arg("--concurrency", "32").parse()?;
    let hot = flag("--hot");
    let nats_url = arg("--nats-url", NATS_DEFAULT);
    let amqp_url = std::env::args()
        .position(|a| a == "--amqp-url")
        .and_then(|i| std::env::args().nth(i + 1));
    let namespace = format!("bench{}", uuid::Uuid::now_v7().simple());
    let database = format!("bazaar_bench_{}", uuid::Uuid::new_v4().simple());
    let data_dir = tempfile::tempdir()?;
    // With OTEL_EXPORTER_OTLP_ENDPOINT set the server exports traces, as `bazaar serve` does
    // (set BAZAAR_LOG=warn too, or the info log joins the load).
    let telemetry = if std::env::var_os("BAZAAR_LOG").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
    {
        Some(bazaar_runtime::telemetry::init_tracing(false, "bazaar")?)
    } else {
        None
    };
    println!(
        "tracing: {}",
        match bazaar_bus::trace::enabled() {
            true => "exporting (OTLP)",
            false => "off",
        }
    );

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
    let retention_secs: Option<u64> = match arg("--retention", "") {
        secs if secs.is_empty() => None,
        secs => Some(secs.parse()?),
    };
    if let Some(secs) = retention_secs {
        let keep = Duration::from_secs(secs);
        settings.retention = bazaar_runtime::retention::Retention {
            schedule: bazaar_runtime::schedule::Schedule::parse("*/10 * * * * *")
                .map_err(anyhow::Error::msg)?,
            idempotency_keys: keep,
            inbox: keep,
            sent_outbox: keep,
            event_log: keep,
            read_notifications: keep,
        };
    }
    if real {
        sqlx::any::install_default_drivers();
        postgres(&format!("CREATE DATABASE {database}")).await?;
        let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        settings.database_url = Some(Secret::new(url));
        match &amqp_url {
            Some(url) => settings.amqp_url = Some(Secret::new(url.clone())),
            None => settings.nats_url = Some(nats_url.clone()),
        }
        settings.redis_url = Some(Secret::new(REDIS));
        settings.jwt_secret = Secret::new(format!("bench-secret-{namespace}-0123456789abcdef"));
    }
    let backend = match (real, amqp_url.is_some()) {
        (true, false) => "real (PostgreSQL+NATS JetStream+Redis)",
        (true, true) => "real (PostgreSQL+RabbitMQ+Redis)",
        (false, _) => "embedded (SQLite+event log+in-memory cache)",
    };
    println!(
        "bazaar bench: backend={backend} seconds={seconds} concurrency={concurrency} hot={hot}"
    );
    println!("              (the server and the load generator share this process and its cores)");
    let outcome = match App::build(settings, &bazaar::registry::names()).await {
        Ok(app) => {
            let (port, stop) = (app.port(), app.stop_token());
            let server = tokio::spawn(app.run_until_stopped());
            let gql = Gql {
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(1024)
                    .build()?,
                url: format!("http://127.0.0.1:{port}/graphql"),
            };
            let orders_db = match real {
                true => {
                    OrdersDb::connect(
                        &format!("postgres://postgres@127.0.0.1:5432/{database}"),
                        "orders.orders",
                    )
                    .await?
                }
                false => {
                    let path = data_dir.path().join("orders.db");
                    OrdersDb::connect(&format!("sqlite://{}?mode=ro", path.display()), "orders")
                        .await?
                }
            };
            let run = Run {
                seconds,
                concurrency,
                hot,
                real,
                reads_only,
            };
            let outcome = match (abuse, retention_secs) {
                (true, _) => abuse::run(&gql).await,
                (false, Some(keep)) => {
                    let storage = match real {
                        true => retention::Storage::Postgres(format!(
                            "postgres://postgres@127.0.0.1:5432/{database}"
                        )),
                        false => retention::Storage::Sqlite(data_dir.path().into()),
                    };
                    retention::run(&gql, storage, seconds, concurrency, keep).await
                }
                (false, None) => bench(&gql, &orders_db, run).await,
            };
            stop.cancel();
            outcome.and(server.await?)
        }
        Err(e) => Err(e),
    };
    if real {
        postgres(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
        let timeout = Duration::from_secs(3);
        match &amqp_url {
            Some(url) => delete_rabbitmq_queues(url, &namespace).await,
            None => {
                if let Ok(nats) =
                    NatsTransport::connect_with_timeout(&nats_url, &namespace, timeout).await
                {
                    let _ = nats.delete_stream().await;
                }
            }
        }
        if let Ok(redis) = RedisCache::connect(REDIS, &namespace).await {
            let _ = redis.flush_namespace().await;
        }
    }
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    outcome
}

/// Deletes this run's queues (`<namespace>.*`) from the vhost of `url`, with `rabbitmqctl`:
/// AMQP cannot list queues.
async fn delete_rabbitmq_queues(url: &str, namespace: &str) {
    let vhost = url
        .rsplit_once('/')
        .map(|(_, v)| v.replace("%2f", "/").replace("%2F", "/"))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/".into());
    let listed = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "-p", &vhost, "name"])
        .output()
        .await;
    let Ok(listed) = listed else {
        eprintln!("rabbitmqctl not available: queues {namespace}.* left in vhost {vhost}");
        return;
    };
    let prefix = format!("{namespace}.");
    for queue in String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|q| q.starts_with(&prefix))
    {
        let _ = bazaar_bus::testing::rabbitmqctl(&["delete_queue", "-p", &vhost, queue]).await;
    }
}

async fn postgres(statement: &str) -> anyhow::Result<()> {
    let pg = sqlx::AnyPool::connect(PG_ADMIN).await?;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&pg)
        .await?;
    pg.close().await;
    Ok(())
}

/// What this run measures.
#[derive(Clone, Copy)]
struct Run {
    seconds: u64,
    concurrency: usize,
    /// Every order for the same product.
    hot: bool,
    /// PostgreSQL + NATS + Redis rather than the embedded backends.
    real: bool,
    /// Only the read phases.
    reads_only: bool,
}

impl Run {
    /// The confirmed-orders-per-second target of the event pipeline for this run.
    fn saga_target(&self) -> f64 {
        match (self.hot, self.real) {
            (true, _) => 800.0,
            (false, true) => 1500.0,
            (false, false) => 1000.0,
        }
    }

    /// The quiet order → CONFIRMED p50 target, in ms.
    fn quiet_p50_target(&self) -> f64 {
        if self.real { 10.0 } else { 5.0 }
    }
}

/// Read access to the orders table, for the saga's own clocks.
struct OrdersDb {
    pool: sqlx::AnyPool,
    table: &'static str,
}

impl OrdersDb {
    async fn connect(url: &str, table: &'static str) -> anyhow::Result<OrdersDb> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect_lazy(url)?;
        Ok(OrdersDb { pool, table })
    }

    /// (created_at, confirmed_at) of the orders created in [from, to) (unix ms).
    async fn clocks(&self, from: i64, to: i64) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
        let query = format!(
            "SELECT created_at, confirmed_at FROM {} WHERE created_at >= $1 AND created_at < $2",
            self.table
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(query))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Order → CONFIRMED latencies (ms) of `clocks`, sorted.
fn confirm_latencies(clocks: &[(i64, Option<i64>)]) -> Vec<i64> {
    let mut ms: Vec<i64> = clocks
        .iter()
        .filter_map(|(created, confirmed)| confirmed.map(|c| c - created))
        .collect();
    ms.sort_unstable();
    ms
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p / 100.0).round() as usize] as f64,
    }
}

fn anomaly(what: String) {
    println!("!!!!!!!!  ANOMALY: {what}");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn bench(gql: &Gql, orders_db: &OrdersDb, run: Run) -> anyhow::Result<()> {
    let (seconds, concurrency) = (run.seconds, run.concurrency);
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
    let mut catalogue = products.clone();
    for n in PRODUCTS..CATALOGUE {
        let input = json!({"name": format!("Catalogue item {n}"),
            "description": format!("Catalogue item number {n}, for the list benchmark"),
            "category": "catalogue", "priceCents": 100 + n, "stock": 1_000});
        let data = gql.run(Some(&admin), CREATE, json!({"input": input})).await;
        let id = &data.map_err(anyhow::Error::msg)?["createProduct"]["id"];
        catalogue.push(id.as_str().unwrap_or_default().to_owned());
    }
    let browse_products: Arc<[String]> = products.clone().into();
    if run.reads_only {
        return reads(
            gql,
            seconds,
            concurrency,
            &browse_products,
            catalogue.into(),
        )
        .await;
    }
    if run.hot {
        products.truncate(1);
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

    reads(
        gql,
        seconds,
        concurrency,
        &browse_products,
        catalogue.into(),
    )
    .await?;

    // 4. Orders under load; the saga measured by the orders table's own clocks.
    let deadline = || Some(Instant::now() + Duration::from_secs(seconds));
    let (g, p, t) = (gql.clone(), products.clone(), tokens.clone());
    let phase_start = now_ms();
    let mut ordered = drive(concurrency, deadline(), u64::MAX, move |i| {
        let (g, p, t) = (g.clone(), p.clone(), t.clone());
        async move {
            let start = Instant::now();
            place(&g, &t[i as usize % t.len()], &p).await?;
            Ok(start.elapsed())
        }
    })
    .await;
    let phase_end = now_ms();
    ordered.report("order", "orders");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending_after_2s = count(gql, &admin, "PENDING").await?;
    let (drained, caught_up) = settle_backlog(gql, &admin).await?;
    let clocks = orders_db.clocks(phase_start, phase_end).await?;
    let phase_secs = (phase_end - phase_start) as f64 / 1e3;
    let accepted_rate = clocks.len() as f64 / phase_secs;
    let confirmed_in_phase = clocks
        .iter()
        .filter(|(_, confirmed)| confirmed.is_some_and(|c| c < phase_end))
        .count();
    let saga_rate = confirmed_in_phase as f64 / phase_secs;
    let loaded = confirm_latencies(&clocks);
    println!(
        "saga      accepted={:.0}/s  confirmed_while_loaded={saga_rate:.0}/s ({:.1} % of accepted)  \
         order->CONFIRMED p50={:.0}ms p99={:.0}ms max={:.0}ms  pending_2s_after={pending_after_2s}  \
         all_settled_after={drained:.1}s  consumers_caught_up_after={caught_up:.1}s",
        accepted_rate,
        100.0 * saga_rate / accepted_rate.max(f64::MIN_POSITIVE),
        percentile(&loaded, 50.0),
        percentile(&loaded, 99.0),
        percentile(&loaded, 100.0),
    );
    if saga_rate < 0.95 * accepted_rate {
        anomaly(format!(
            "the saga confirmed {saga_rate:.0}/s, under 95 % of the {accepted_rate:.0}/s accepted"
        ));
    }
    if pending_after_2s > 0 {
        anomaly(format!(
            "{pending_after_2s} orders still PENDING 2 s after the load stopped"
        ));
    }
    if saga_rate < run.saga_target() {
        anomaly(format!(
            "{saga_rate:.0} confirmed orders/s, target {}",
            run.saga_target()
        ));
    }
    if percentile(&loaded, 99.0) > 250.0 {
        anomaly(format!(
            "order->CONFIRMED p99 {:.0} ms under load, target 250 ms",
            percentile(&loaded, 99.0)
        ));
    }

    // 5. A quiet system: one order at a time, once the mail of the order phase has gone out too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (g, p, t) = (gql.clone(), products.clone(), tokens.clone());
    let quiet_start = now_ms();
    let mut settle = drive(SETTLE_WORKERS, None, SETTLE_SAMPLE, move |i| {
        let (g, p, t) = (g.clone(), p.clone(), t.clone());
        async move {
            let token = &t[i as usize % t.len()];
            let id = place(&g, token, &p).await?;
            let placed = Instant::now();
            loop {
                let order = &g.run(Some(token), STATUS, json!({"id": id})).await?["order"];
                match order["status"].as_str() {
                    Some("CONFIRMED") => {
                        let elapsed = placed.elapsed();
                        tokio::time::sleep(SETTLE_PAUSE).await;
                        return Ok(elapsed);
                    }
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
    let quiet = confirm_latencies(&orders_db.clocks(quiet_start, now_ms() + 1).await?);
    let (p50, p99) = (percentile(&quiet, 50.0), percentile(&quiet, 99.0));
    println!(
        "quiet     order->CONFIRMED (server clocks) p50={p50:.0}ms p90={:.0}ms p99={p99:.0}ms max={:.0}ms",
        percentile(&quiet, 90.0),
        percentile(&quiet, 100.0)
    );
    if p50 > run.quiet_p50_target() || p99 > 25.0 {
        anomaly(format!(
            "quiet order->CONFIRMED p50 {p50:.0} ms / p99 {p99:.0} ms, targets {} / 25 ms",
            run.quiet_p50_target()
        ));
    }

    settle_backlog(gql, &admin).await?;
    let pending = count(gql, &admin, "PENDING").await?;
    let rejected = count(gql, &admin, "REJECTED").await?;
    let confirmed = count(gql, &admin, "CONFIRMED").await?;
    let accepted = PLACED.load(Relaxed) as i64;
    println!(
        "check     accepted={accepted} confirmed={confirmed} pending={pending} rejected={rejected}"
    );
    if pending > 0 || rejected > 0 || confirmed != accepted {
        anomaly("orders PENDING after 30 s, REJECTED, or missing".into());
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

/// Step 3, the read phases: browse (half catalogue pages, half single products), then list200
/// and product over the whole catalogue, all anonymous.
async fn reads(
    gql: &Gql,
    seconds: u64,
    concurrency: usize,
    products: &Arc<[String]>,
    catalogue: Arc<[String]>,
) -> anyhow::Result<()> {
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

    // Both pages in one request; the second page's cursor is taken from a first, checked run.
    let first = gql
        .run(None, LIST200, json!({"after": null}))
        .await
        .map_err(anyhow::Error::msg)?;
    let after = first["first"]["pageInfo"]["endCursor"].clone();
    let checked = gql
        .run(None, LIST200, json!({"after": after}))
        .await
        .map_err(anyhow::Error::msg)?;
    let listed = checked["first"]["edges"].as_array().map_or(0, Vec::len)
        + checked["second"]["edges"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(listed == 200, "list200 lists {listed} products, not 200");
    let variables = Arc::new(json!({"after": after}));
    let g = gql.clone();
    let mut list = drive(concurrency, deadline(), u64::MAX, move |_| {
        let (g, v) = (g.clone(), variables.clone());
        async move {
            let start = Instant::now();
            g.read(LIST200, &v).await?;
            Ok(start.elapsed())
        }
    })
    .await;
    list.report("list200", "requests");

    let g = gql.clone();
    let mut one = drive(concurrency, deadline(), u64::MAX, move |i| {
        let (g, c) = (g.clone(), catalogue.clone());
        async move {
            let start = Instant::now();
            g.read(ONE_FULL, &json!({"id": c[i as usize % c.len()]}))
                .await?;
            Ok(start.elapsed())
        }
    })
    .await;
    one.report("product", "requests");
    memory("reads");
    Ok(())
}

/// Waits until no order is PENDING, then until every consumer has caught up (the side ones,
/// notifications and recommendations, work through the order phase's backlog after the
/// saga), so the next phase starts on a quiet system. Returns the seconds to each (gives up
/// after 300 s).
async fn settle_backlog(gql: &Gql, admin: &str) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    while count(gql, admin, "PENDING").await? > 0 && start.elapsed().as_secs() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let no_pending = start.elapsed().as_secs_f64();
    let lag =
        |c: &Value| c["pending"].as_i64().unwrap_or(0) + c["ackPending"].as_i64().unwrap_or(0);
    while start.elapsed().as_secs() < 300 {
        if consumers(gql, admin).await?.iter().map(lag).sum::<i64>() == 0 {
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
