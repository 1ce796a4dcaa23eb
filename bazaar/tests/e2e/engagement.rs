//! Engagement end to end over /graphql, on both backends: notifications with mail and
//! preferences, promotions priced into orders and announced once, reviews by buyers only,
//! recommendations, and the operators' event-stream view.

use std::time::Duration;

use crate::support::shop::*;
use crate::support::{Environment, TestApp, eventually, str};
use serde_json::{Value, json};

const NOTIFICATIONS: &str = "query($unread: Boolean) { notifications(unreadOnly: $unread, first: 50) { totalCount edges { node { id kind title read } } } }";

async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    let data = app.ok(Some(token), NOTIFICATIONS, json!({})).await;
    data["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn count_kind(app: &TestApp, token: &str, kind: &str) -> usize {
    notifications(app, token)
        .await
        .iter()
        .filter(|n| n["kind"] == kind)
        .count()
}

/// Waits until the user has `n` notifications of `kind`.
async fn wait_for(app: &TestApp, token: &str, kind: &str, n: usize) {
    eventually(Duration::from_secs(20), || async {
        (count_kind(app, token, kind).await >= n).then_some(())
    })
    .await;
}

async fn engagement(env: &Environment) {
    let mut settings = env.settings();
    settings.promotion_schedule =
        bazaar_runtime::schedule::Schedule::parse("* * * * * *").expect("cron");
    let app = env.start_with(settings).await;
    let admin = app.admin_token().await;
    let (ann, _, _) = app.register("ann@example.com", "Ann").await;
    let (bob, _, _) = app.register("bob@example.com", "Bob").await;

    // Welcome: stored once and mailed (as an .eml file on these settings).
    wait_for(&app, &ann, "WELCOME", 1).await;
    assert_eq!(count_kind(&app, &ann, "WELCOME").await, 1);
    let mail_dir = env.data_dir.path().join("mail");
    eventually(Duration::from_secs(20), || async {
        let mails = std::fs::read_dir(&mail_dir).ok()?;
        let found = mails.flatten().any(|f| {
            std::fs::read_to_string(f.path()).is_ok_and(|m| m.contains("ann@example.com"))
        });
        found.then_some(())
    })
    .await;

    // Order updates follow the preference.
    let tea = app.product(&admin, "Tea", "pantry", 1000, 100).await;
    let cup = app.product(&admin, "Cup", "kitchen", 500, 100).await;
    let first = app.order(&ann, &[(&tea, 1)]).await;
    assert_eq!(app.settled(&ann, &first).await["status"], "CONFIRMED");
    wait_for(&app, &ann, "ORDER_UPDATE", 1).await;
    let prefs = "mutation($on: Boolean) { updatePreferences(input: {orderUpdates: $on}) { orderUpdates promotions recommendations } }";
    let off = app.ok(Some(&ann), prefs, json!({"on": false})).await;
    assert_eq!(
        off["updatePreferences"],
        json!({"orderUpdates": false, "promotions": true, "recommendations": true})
    );
    let quiet = app.order(&ann, &[(&tea, 1)]).await;
    app.settled(&ann, &quiet).await;
    // Preferences apply when the notifications service handles an event. Bob's order is
    // confirmed after Ann's, and events are handled in order: once Bob hears of his, Ann's
    // quiet update has been handled with her preference off.
    let witness = app.order(&bob, &[(&tea, 1)]).await;
    app.settled(&bob, &witness).await;
    wait_for(&app, &bob, "ORDER_UPDATE", 1).await;
    app.ok(Some(&ann), prefs, json!({"on": true})).await;
    let loud = app.order(&ann, &[(&tea, 1)]).await;
    app.settled(&ann, &loud).await;
    wait_for(&app, &ann, "ORDER_UPDATE", 2).await;
    // Events reach the notifications service in order: the quiet order's update came first
    // and was dropped, the loud one's is the second.
    let updates: Vec<String> = notifications(&app, &ann)
        .await
        .iter()
        .filter(|n| n["kind"] == "ORDER_UPDATE")
        .map(|n| str(&n["title"]))
        .collect();
    assert!(
        !updates
            .iter()
            .any(|t| t.contains(&quiet[quiet.len() - 8..])),
        "{updates:?}"
    );
    let me = app
        .ok(
            Some(&ann),
            "{ me { preferences { orderUpdates } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["preferences"]["orderUpdates"], true);

    // Reading notifications.
    let some = str(&notifications(&app, &ann).await[0]["id"]);
    let read = "mutation($id: ID!) { markNotificationRead(id: $id) { id read } }";
    assert_eq!(
        app.ok(Some(&ann), read, json!({"id": some})).await["markNotificationRead"]["read"],
        true
    );
    app.err(Some(&bob), read, json!({"id": some}), "NOT_FOUND")
        .await;
    let all = app
        .ok(
            Some(&ann),
            "mutation { markAllNotificationsRead }",
            json!({}),
        )
        .await;
    assert!(all["markAllNotificationsRead"].as_i64().unwrap_or(0) >= 1);
    let unread = app
        .ok(Some(&ann), NOTIFICATIONS, json!({"unread": true}))
        .await;
    assert_eq!(unread["notifications"]["totalCount"], 0);

    // A promotion changes the price at once, is what orders pay, and is announced once.
    let create = "mutation($input: CreatePromotionInput!) { createPromotion(input: $input) { id percentOff products { id } } }";
    let now = chrono::Utc::now();
    let promo = json!({"title": "Cup week", "productIds": [cup], "percentOff": 20,
        "startsAt": (now - chrono::Duration::minutes(1)).to_rfc3339(), "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339()});
    app.err(Some(&ann), create, json!({"input": promo}), "FORBIDDEN")
        .await;
    let created = app.ok(Some(&admin), create, json!({"input": promo})).await;
    assert_eq!(
        created["createPromotion"]["products"][0]["id"],
        cup.as_str()
    );
    let priced = app.ok(None, "query($id: ID!) { product(id: $id) { priceCents effectivePriceCents activePromotion { percentOff } } }", json!({"id": cup})).await;
    assert_eq!(priced["product"]["effectivePriceCents"], 400);
    let discounted = app.ok(Some(&bob), PLACE_ORDER, json!({"input": {"items": [{"productId": cup, "quantity": 2}], "shippingAddress": address()}})).await;
    assert_eq!(discounted["placeOrder"]["items"][0]["unitPriceCents"], 400);
    assert_eq!(discounted["placeOrder"]["totalCents"], 800);
    wait_for(&app, &bob, "PROMOTION", 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // a few more scheduler ticks
    assert_eq!(
        count_kind(&app, &bob, "PROMOTION").await,
        1,
        "announced exactly once"
    );
    let promotions = app
        .ok(None, "{ promotions { title percentOff } }", json!({}))
        .await;
    assert_eq!(promotions["promotions"][0]["title"], "Cup week");

    // Reviews: only after delivery, shown with the display name, rating kept up to date.
    let review = "mutation($input: ReviewInput!) { addReview(input: $input) { author rating verifiedPurchase } }";
    let input = json!({"productId": tea, "rating": 4, "title": "Nice", "body": "Good tea"});
    app.err(Some(&ann), review, json!({"input": input}), "FORBIDDEN")
        .await;
    app.ok(Some(&ann), PAY, json!({"id": first, "token": "tok_visa"}))
        .await;
    app.ok(
        Some(&admin),
        SET_STATUS,
        json!({"id": first, "status": "SHIPPED"}),
    )
    .await;
    app.ok(
        Some(&admin),
        SET_STATUS,
        json!({"id": first, "status": "DELIVERED"}),
    )
    .await;
    let added = eventually(Duration::from_secs(20), || async {
        let body = app.gql(Some(&ann), review, json!({"input": input})).await;
        body.get("errors")
            .is_none()
            .then(|| body["data"]["addReview"].clone())
    })
    .await;
    assert_eq!(
        added,
        json!({"author": "Ann", "rating": 4, "verifiedPurchase": true})
    );
    app.ok(Some(&ann), review, json!({"input": {"productId": tea, "rating": 2, "title": "Meh", "body": "Changed my mind"}})).await;
    let rated = app.ok(None, "query($id: ID!) { product(id: $id) { rating { average count } reviews { totalCount edges { node { author title } } } } }", json!({"id": tea})).await;
    assert_eq!(
        rated["product"]["rating"],
        json!({"average": 2.0, "count": 1})
    );
    assert_eq!(
        rated["product"]["reviews"]["edges"][0]["node"]["title"],
        "Meh"
    );

    // Recommendations: Bob bought cups; Ann bought tea. Carol buys tea and cups together, so
    // Ann is recommended cups, never the tea she bought.
    let (carol, _, _) = app.register("carol@example.com", "Carol").await;
    let both = app.order(&carol, &[(&tea, 1), (&cup, 1)]).await;
    app.settled(&carol, &both).await;
    let recs = "{ recommendations(first: 5) { id } }";
    let ids = eventually(Duration::from_secs(20), || async {
        let data = app.ok(Some(&ann), recs, json!({})).await;
        let ids: Vec<String> = data["recommendations"]
            .as_array()?
            .iter()
            .map(|p| str(&p["id"]))
            .collect();
        ids.contains(&cup).then_some(ids)
    })
    .await;
    assert!(!ids.contains(&tea), "{ids:?}");
    assert!(
        !app.ok(None, recs, json!({})).await["recommendations"]
            .as_array()
            .expect("list")
            .is_empty()
    );

    // Operators see the stream; customers do not.
    let streams = "{ eventStreams { transport messages consumers { name delivered pending deadLettered } } deadLetters { id } }";
    app.err(Some(&ann), streams, json!({}), "FORBIDDEN").await;
    let view = app.ok(Some(&admin), streams, json!({})).await;
    let names: Vec<String> = view["eventStreams"][0]["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .map(|c| str(&c["name"]))
        .collect();
    for consumer in ["catalog", "orders", "notifications", "recommendations"] {
        assert!(
            names.iter().any(|n| n == consumer),
            "{consumer} missing from {names:?}"
        );
    }
    assert!(view["eventStreams"][0]["messages"].as_i64().unwrap_or(0) > 10);
    assert_eq!(view["deadLetters"], json!([]));
    app.stop().await;
}
on_both_backends!(engagement);
