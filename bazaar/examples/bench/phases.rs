//! Setup, the browse and order phases and the quiet settle phase of a run, with the saga's
//! own clocks read from the orders table.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bazaar_db::sqlx;
use serde_json::{Value, json};

use crate::Run;
use crate::client::*;
use crate::reads::reads;
use crate::report::*;

const PRODUCTS: i64 = 20;
/// Products in the catalogue for the list200 and product phases.
const CATALOGUE: i64 = 200;
const CUSTOMERS: u64 = 50;
const SETTLE_SAMPLE: u64 = 200;
const SETTLE_WORKERS: usize = 1;
/// Pause after each quiet order confirms, so the next meets idle consumers.
const SETTLE_PAUSE: Duration = Duration::from_millis(50);

/// Read access to the orders table, for the saga's own clocks.
pub struct OrdersDb {
    pool: sqlx::AnyPool,
    table: &'static str,
}

impl OrdersDb {
    pub async fn connect(url: &str, table: &'static str) -> anyhow::Result<OrdersDb> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect_lazy(url)?;
        Ok(OrdersDb { pool, table })
    }

    /// (created_at, confirmed_at) of the orders created in [from, to) (unix ms).
    pub async fn clocks(&self, from: i64, to: i64) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
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

pub async fn bench(gql: &Gql, orders_db: &OrdersDb, run: Run) -> anyhow::Result<()> {
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

/// Waits until no order is PENDING, then until every consumer has caught up (the side ones,
/// notifications and recommendations, work through the order phase's backlog after the
/// saga), so the next phase starts on a quiet system. Returns the seconds to each (gives up
/// after 300 s).
pub async fn settle_backlog(gql: &Gql, admin: &str) -> anyhow::Result<(f64, f64)> {
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
pub async fn consumers(gql: &Gql, admin: &str) -> anyhow::Result<Vec<Value>> {
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
