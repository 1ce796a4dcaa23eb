//! The read phases: browse, list200 and product, all anonymous.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::*;
use crate::report::{anomaly, memory};

/// Issue 10's targets for listing 200 products, on both backends: ten times the Node gateway
/// it replaces (784 req/s), with p99 within 10 ms.
const LIST200_RATE: f64 = 8_000.0;
const LIST200_P99_MS: f64 = 10.0;

/// Browse, list200 and product over the whole catalogue, all anonymous.
pub async fn reads(
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
    let figures = list.report("list200", "requests");
    if figures.rate < LIST200_RATE || figures.p99_ms > LIST200_P99_MS {
        anomaly(format!(
            "list200 {:.0} req/s, p99 {:.1} ms; targets {LIST200_RATE} req/s, {LIST200_P99_MS} ms",
            figures.rate, figures.p99_ms
        ));
    }

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
