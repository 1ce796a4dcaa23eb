//! Nested fields are batched: listing 50 orders with their buyer and products costs a bounded
//! number of internal calls, not one per row. Counted with `bazaar_internal_calls_total`. And
//! the /metrics those counters come from follows Prometheus conventions (`promtool`).

use crate::support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::Environment;
use crate::support::shop::*;
use serde_json::json;

/// Sum of the internal-call counters for the batched operations, read from /metrics.
async fn batched_calls(app: &support::TestApp) -> f64 {
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("bazaar_internal_calls_total")
                && (l.contains("op=\"products-by-id\"") || l.contains("op=\"users-by-id\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn fifty_orders_cost_a_few_calls(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let a = app.product(&admin, "Pen", "office", 100, 1000).await;
    let b = app.product(&admin, "Ink", "office", 300, 1000).await;
    let mut customers = Vec::new();
    for i in 0..5 {
        customers.push(app.register(&format!("c{i}@example.com"), "C").await.0);
    }
    for i in 0..50 {
        app.order(&customers[i % 5], &[(&a, 1), (&b, 2)]).await;
    }
    let before = batched_calls(&app).await;
    let list =
        "{ orders(first: 50) { edges { node { id user { email } items { product { name } } } } } }";
    let data = app.ok(Some(&admin), list, json!({})).await;
    assert_eq!(data["orders"]["edges"].as_array().map(Vec::len), Some(50));
    assert!(
        data["orders"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["node"]["user"]["email"].is_string())
    );
    let calls = batched_calls(&app).await - before;
    eprintln!(
        "{}",
        app.get("/metrics")
            .await
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("bazaar_internal_calls_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // One users-by-id and one products-by-id call; slack for the other backend's test running
    // in the same process under `cargo test`.
    assert!(
        (2.0..=6.0).contains(&calls),
        "{calls} internal calls for 50 orders"
    );
    app.stop().await;
}
on_both_backends!(fifty_orders_cost_a_few_calls);

/// `promtool` (Debian's `prometheus` package), or `None` with a SKIPPED note; CI
/// (`BAZAAR_REQUIRE_BACKENDS=1`) requires it.
fn promtool() -> Option<String> {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    if Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(bin);
    }
    assert!(
        std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() != Ok("1"),
        "BAZAAR_REQUIRE_BACKENDS=1 but promtool is missing (apt-get install prometheus)"
    );
    eprintln!("SKIPPED: promtool not installed (apt-get install prometheus)");
    None
}

/// After a little of everything (sign-up, a product, an order the saga confirms, a query),
/// `promtool check metrics` has nothing to say about /metrics, and the saga's metrics are there.
async fn metrics_pass_promtool(env: &Environment) {
    let Some(promtool) = promtool() else { return };
    let app = env.start().await;
    let admin = app.admin_token().await;
    let (ann, _, _) = app.register("ann@example.com", "Ann").await;
    let pen = app.product(&admin, "Pen", "office", 100, 10).await;
    let order = app.order(&ann, &[(&pen, 1)]).await;
    assert_eq!(app.settled(&ann, &order).await["status"], "CONFIRMED");
    app.ok(None, PRODUCT, json!({"id": pen})).await;

    // The sampler publishes its gauges every few seconds; wait for the saga's three views.
    let needles = [
        "bazaar_order_confirmation_duration_seconds_bucket{le=\"0.001\"}",
        "bazaar_order_confirmation_duration_seconds_count 1",
        "bazaar_outbox_oldest_age_seconds{service=\"orders\"}",
        "bazaar_consumer_pending{",
        "# HELP bazaar_consumer_pending Consumer lag",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = app.get("/metrics").await.text().await.unwrap_or_default();
        let missing: Vec<_> = needles.iter().filter(|n| !text.contains(*n)).collect();
        if missing.is_empty() {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing {missing:?} in /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("metrics to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {complaints}\n--- /metrics ---\n{text}"
    );
    app.stop().await;
}
on_both_backends!(metrics_pass_promtool);
