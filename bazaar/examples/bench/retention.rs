//! The `--retention SECS` mode of the benchmark: a long mixed run with every retention age set
//! to SECS and a purge every 10 s. Customers place orders with idempotency keys and read their
//! notifications; every 30 s the run prints the row counts of the pruned tables (inbox and sent
//! outbox summed over the services, idempotency keys, read notifications and, embedded, the
//! event log) and RSS. Storage is flat when the counts stop growing once SECS have passed: the
//! last sample must not exceed the one at half time by more than half, else `ANOMALY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_db::sqlx;
use serde_json::json;

use crate::client::{CREATE, Gql, LOGIN, PLACE, REGISTER, drive};
use crate::report::anomaly;

const CUSTOMERS: usize = 20;
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
const SERVICES: [&str; 5] = [
    "users",
    "catalog",
    "orders",
    "notifications",
    "recommendations",
];
const READ: &str = "mutation { markAllNotificationsRead }";

/// Where the pruned tables are: the embedded SQLite files, or the services' PostgreSQL schemas.
pub enum Storage {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// One figure: a label and the statement counting its rows in one pool.
struct Figure {
    label: &'static str,
    pool: sqlx::AnyPool,
    count: String,
}

/// The database URL holding `service`'s tables, and how a statement there names `table`.
fn locate(storage: &Storage, service: &str, table: &str) -> (String, String) {
    match storage {
        Storage::Sqlite(dir) => (
            format!(
                "sqlite://{}?mode=ro",
                dir.join(format!("{service}.db")).display()
            ),
            table.to_owned(),
        ),
        Storage::Postgres(url) => (url.clone(), format!("{service}.{table}")),
    }
}

async fn figures(storage: &Storage) -> anyhow::Result<Vec<Figure>> {
    sqlx::any::install_default_drivers();
    // (label, service, table, condition); a label's rows are summed over its services.
    let mut wanted = Vec::new();
    for service in SERVICES {
        wanted.push(("inbox", service, "inbox", ""));
        wanted.push((
            "sent_outbox",
            service,
            "outbox",
            "WHERE published_at IS NOT NULL",
        ));
    }
    wanted.push(("idempotency_keys", "orders", "idempotency_keys", ""));
    wanted.push((
        "read_notifications",
        "notifications",
        "notifications",
        "WHERE read_at IS NOT NULL",
    ));
    if let Storage::Sqlite(_) = storage {
        wanted.push(("event_log", "bus", "bus_messages", ""));
    }
    wanted
        .into_iter()
        .map(|(label, service, table, condition)| {
            let (url, table) = locate(storage, service, table);
            Ok(Figure {
                label,
                pool: sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy(&url)?,
                count: format!("SELECT COUNT(*) FROM {table} {condition}"),
            })
        })
        .collect()
}

/// Row counts per label (summed over the figures of one label).
async fn sample(figures: &[Figure]) -> Vec<(&'static str, i64)> {
    let mut counts: Vec<(&'static str, i64)> = Vec::new();
    for figure in figures {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(figure.count.as_str()))
            .fetch_one(&figure.pool)
            .await
            .unwrap_or(-1);
        match counts.iter_mut().find(|(label, _)| *label == figure.label) {
            Some((_, total)) => *total += n,
            None => counts.push((figure.label, n)),
        }
    }
    counts
}

pub async fn run(
    gql: &Gql,
    storage: Storage,
    seconds: u64,
    concurrency: usize,
    keep: u64,
) -> anyhow::Result<()> {
    println!("retention every age={keep}s, purge every 10 s, run={seconds}s");
    let login = json!({"email": "admin@bench.local", "password": "admin-password-1"});
    let admin = gql
        .run(None, LOGIN, login)
        .await
        .map_err(anyhow::Error::msg)?["login"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut products = Vec::new();
    for n in 0..20 {
        let input = json!({"name": format!("Retained {n}"), "description": "retention run",
            "category": "bench", "priceCents": 100 + n, "stock": 1_000_000_000});
        let data = gql.run(Some(&admin), CREATE, json!({"input": input})).await;
        products.push(
            data.map_err(anyhow::Error::msg)?["createProduct"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let mut tokens = Vec::new();
    for i in 0..CUSTOMERS {
        let input = json!({"email": format!("r{i}@bench.local"), "password": "correct-horse-1",
            "name": format!("Reader {i}")});
        let data = gql.run(None, REGISTER, json!({"input": input})).await;
        tokens.push(
            data.map_err(anyhow::Error::msg)?["register"]["accessToken"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let figures = figures(&storage).await?;
    let (products, tokens): (Arc<[String]>, Arc<[String]>) = (products.into(), tokens.into());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let g = gql.clone();
    let load = tokio::spawn(drive(concurrency, Some(deadline), u64::MAX, move |i| {
        let (g, products, tokens) = (g.clone(), products.clone(), tokens.clone());
        async move {
            let started = Instant::now();
            let token = &tokens[i as usize % tokens.len()];
            let product = &products[i as usize % products.len()];
            let input = json!({"items": [{"productId": product, "quantity": 1}],
                "idempotencyKey": format!("retention-{i}"),
                "shippingAddress": {"line1": "1 Market St", "city": "York",
                    "postalCode": "YO1 7HH", "country": "GB"}});
            g.run(Some(token), PLACE, json!({"input": input})).await?;
            if i % 10 == 0 {
                g.run(Some(token), READ, json!({})).await?;
            }
            Ok(started.elapsed())
        }
    }));

    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(SAMPLE_EVERY.min(deadline - Instant::now())).await;
        let counts = sample(&figures).await;
        let line: Vec<String> = counts.iter().map(|(l, n)| format!("{l}={n}")).collect();
        println!(
            "retention t={:>4}s {}  rss={:.1}MB",
            started.elapsed().as_secs(),
            line.join(" "),
            crate::abuse::kib("VmRSS:") as f64 / 1024.0
        );
        samples.push(counts);
    }
    let mut placed = load.await?;
    placed.report("order", "orders");
    let (Some(middle), Some(last)) = (samples.get(samples.len() / 2), samples.last()) else {
        return Ok(());
    };
    if started.elapsed().as_secs() < 2 * keep + 2 * SAMPLE_EVERY.as_secs() {
        println!("retention run shorter than twice the retention age: no verdict on growth");
        return Ok(());
    }
    for ((label, half), (_, end)) in middle.iter().zip(last) {
        if *end > half + half / 2 + 100 {
            anomaly(format!(
                "retention: {label} grew from {half} rows at half time to {end} at the end"
            ));
        }
    }
    println!("retention verdict: counts at half time {middle:?}, at the end {last:?}");
    Ok(())
}
