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
//!     cargo run --release -p bazaar --example bench -- [--backend embedded|real] [--hot] [--seconds N] [--concurrency C] [--nats-url URL | --amqp-url URL | --kafka-brokers HOST:PORT] [--pg-sslmode MODE] [--phases all|reads] [--abuse] [--retention SECS]
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` (and the other `OTEL_*` variables) set, the server
//! exports its traces as `bazaar serve` would, to measure what tracing costs.
//!
//! `--phases reads` runs only the setup of products and the read phases (browse, list200,
//! product), in about 4 × N seconds. A figure that misses the event pipeline's targets, or
//! list200's (8 000 req/s, p99 10 ms), is printed with `ANOMALY`. `--abuse` runs only the crafted-request phase (see `abuse.rs`).
//!
//! `embedded` (default) uses SQLite, the embedded event log and the in-memory cache in a temp
//! dir. `real` uses PostgreSQL at 127.0.0.1:5432 (a fresh `bazaar_bench_<uuid>` database,
//! dropped at the end), NATS JetStream at 127.0.0.1:4222 and Redis at 127.0.0.1:6379 under a
//! random namespace (cleaned up at the end). With `--amqp-url` (e.g.
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) RabbitMQ carries the events instead of NATS; its
//! queues are deleted at the end with `rabbitmqctl` (the exchange stays, empty).

use std::time::Duration;

use bazaar::App;
use bazaar_bus::NatsTransport;
use bazaar_cache::RedisCache;
use bazaar_db::sqlx;
use bazaar_runtime::{ConfigArgs, Secret, Settings};

mod abuse;
mod client;
mod phases;
mod reads;
mod report;
mod retention;

use client::*;
use phases::{OrdersDb, bench};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const NATS_DEFAULT: &str = "nats://127.0.0.1:4222";
const REDIS: &str = "redis://127.0.0.1:6379";

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
    let kafka_brokers = std::env::args()
        .position(|a| a == "--kafka-brokers")
        .and_then(|i| std::env::args().nth(i + 1));
    if amqp_url.is_some() && kafka_brokers.is_some() {
        anyhow::bail!("--amqp-url and --kafka-brokers: pick one event bus");
    }
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
        // `--pg-sslmode disable` leaves TLS out of a loopback run: the local server has it on,
        // and libpq's default `prefer` spends a share of the 2 cores on encrypting loopback.
        let url = match arg("--pg-sslmode", "").as_str() {
            "" => format!("postgres://postgres@127.0.0.1:5432/{database}"),
            mode => format!("postgres://postgres@127.0.0.1:5432/{database}?sslmode={mode}"),
        };
        settings.database_url = Some(Secret::new(url));
        match (&amqp_url, &kafka_brokers) {
            (Some(url), _) => settings.amqp_url = Some(Secret::new(url.clone())),
            (None, Some(brokers)) => {
                settings.kafka = Some(bazaar_bus::KafkaConfig::new(brokers.clone()))
            }
            (None, None) => settings.nats_url = Some(nats_url.clone()),
        }
        settings.redis_url = Some(Secret::new(REDIS));
        settings.jwt_secret = Secret::new(format!("bench-secret-{namespace}-0123456789abcdef"));
    }
    let backend = match (real, amqp_url.is_some(), kafka_brokers.is_some()) {
        (true, false, false) => "real (PostgreSQL+NATS JetStream+Redis)",
        (true, true, _) => "real (PostgreSQL+RabbitMQ+Redis)",
        (true, false, true) => "real (PostgreSQL+Kafka+Redis)",
        (false, _, _) => "embedded (SQLite+event log+in-memory cache)",
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
        match (&amqp_url, &kafka_brokers) {
            (Some(url), _) => delete_rabbitmq_queues(url, &namespace).await,
            (None, Some(brokers)) => {
                let config = bazaar_bus::KafkaConfig::new(brokers.clone());
                let connect = bazaar_bus::KafkaTransport::connect(config, &namespace);
                if let Ok(Ok(kafka)) = tokio::time::timeout(timeout * 3, connect).await {
                    let _ = kafka.delete_topic().await;
                }
            }
            (None, None) => {
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
