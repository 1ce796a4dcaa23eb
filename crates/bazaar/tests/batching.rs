//! Nested fields are batched: listing 50 orders with their buyer and products costs a bounded
//! number of internal calls, not one per row. Counted with `bazaar_internal_calls_total`.

mod support;

use serde_json::json;
use support::Environment;

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
