//! The purchase flow end to end over /graphql, on both backends: an admin stocks the shop, a
//! customer browses, orders, pays; the admin ships and delivers; rejections, cancellations,
//! authorization and idempotency behave as promised.

use crate::support;

use crate::support::shop::*;
use crate::support::{Environment, str};
use serde_json::json;

async fn purchase_flow(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let (ann, _, ann_id) = app.register("ann@example.com", "Ann").await;
    let (bob, _, _) = app.register("bob@example.com", "Bob").await;

    // Admin-only product management, validated.
    let input = json!({"name": "Teapot", "description": "Brews tea", "category": "kitchen", "priceCents": 2500, "stock": 5});
    app.err(
        Some(&ann),
        CREATE_PRODUCT,
        json!({"input": input}),
        "FORBIDDEN",
    )
    .await;
    app.err(
        None,
        CREATE_PRODUCT,
        json!({"input": input}),
        "UNAUTHENTICATED",
    )
    .await;
    let bad =
        json!({"name": " ", "description": "", "category": "kitchen", "priceCents": 1, "stock": 1});
    assert_eq!(
        app.err(
            Some(&admin),
            CREATE_PRODUCT,
            json!({"input": bad}),
            "BAD_USER_INPUT"
        )
        .await["extensions"]["field"],
        "input.name"
    );
    let bad = json!({"name": "X", "description": "", "category": "kitchen", "priceCents": -1, "stock": 1});
    assert_eq!(
        app.err(
            Some(&admin),
            CREATE_PRODUCT,
            json!({"input": bad}),
            "BAD_USER_INPUT"
        )
        .await["extensions"]["field"],
        "input.priceCents"
    );
    let teapot = app.product(&admin, "Teapot", "kitchen", 2500, 5).await;
    let mug = app.product(&admin, "Mug", "kitchen", 800, 10).await;
    let book = app.product(&admin, "Tea Book", "books", 1500, 3).await;

    // Browsing: pages, category, case-insensitive search.
    let list = "query($after: String, $category: String, $search: String) { products(first: 2, after: $after, category: $category, search: $search) { totalCount edges { node { id name } } pageInfo { hasNextPage endCursor } } }";
    let page1 = app.ok(Some(&ann), list, json!({})).await;
    assert_eq!(page1["products"]["totalCount"], 3);
    assert_eq!(page1["products"]["pageInfo"]["hasNextPage"], true);
    let page2 = app
        .ok(
            Some(&ann),
            list,
            json!({"after": page1["products"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(page2["products"]["edges"][0]["node"]["id"], book.as_str());
    assert_eq!(
        app.ok(None, list, json!({"category": "books"})).await["products"]["totalCount"],
        1
    );
    let found = app.ok(None, list, json!({"search": "TEA"})).await;
    assert_eq!(found["products"]["totalCount"], 2, "{found}");

    // Ordering: the server prices the order; it settles CONFIRMED and takes the stock.
    let placed = app
        .ok(Some(&ann), PLACE_ORDER, json!({"input": {"items": [{"productId": teapot, "quantity": 2}, {"productId": mug, "quantity": 1}], "shippingAddress": address()}}))
        .await;
    let order_id = str(&placed["placeOrder"]["id"]);
    assert_eq!(placed["placeOrder"]["totalCents"], 5800);
    assert_eq!(placed["placeOrder"]["items"][0]["unitPriceCents"], 2500);
    let order = app.settled(&ann, &order_id).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["user"]["id"], ann_id.as_str());
    assert_eq!(order["items"][0]["product"]["name"], "Teapot");
    assert_eq!((app.stock(&teapot).await, app.stock(&mug).await), (3, 9));

    // A price change shows at once and leaves the placed order's price alone.
    let update =
        "mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 2700}) { priceCents } }";
    app.ok(None, PRODUCT, json!({"id": teapot})).await; // warm the cache
    app.ok(Some(&admin), update, json!({"id": teapot})).await;
    assert_eq!(
        app.ok(None, PRODUCT, json!({"id": teapot})).await["product"]["priceCents"],
        2700
    );
    assert_eq!(
        app.order_status(&ann, &order_id).await.1["items"][0]["unitPriceCents"],
        2500
    );

    // Nobody else sees or touches the order.
    assert!(app.ok(Some(&bob), ORDER, json!({"id": order_id})).await["order"].is_null());
    assert!(app.ok(None, ORDER, json!({"id": order_id})).await["order"].is_null());
    let e = app.gql(Some(&bob), CANCEL, json!({"id": order_id})).await;
    assert!(
        e["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            || e["errors"][0]["extensions"]["code"] == "FORBIDDEN",
        "{e}"
    );
    let bobs = app
        .ok(Some(&bob), "{ orders { totalCount } }", json!({}))
        .await;
    assert_eq!(bobs["orders"]["totalCount"], 0);

    // Payment: a declined card keeps the order CONFIRMED with the reason; a good one pays.
    let declined = app
        .ok(
            Some(&ann),
            PAY,
            json!({"id": order_id, "token": "tok_chargeDeclined"}),
        )
        .await;
    assert_eq!(declined["payOrder"]["status"], "CONFIRMED");
    assert!(
        declined["payOrder"]["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("declined"),
        "{declined}"
    );
    let e = app
        .err(
            Some(&ann),
            PAY,
            json!({"id": order_id, "token": "tok_bogus"}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "paymentToken");
    assert_eq!(
        app.ok(
            Some(&ann),
            PAY,
            json!({"id": order_id, "token": "tok_visa"})
        )
        .await["payOrder"]["status"],
        "PAID"
    );

    // Shipping is for admins and follows the state machine.
    app.err(
        Some(&ann),
        SET_STATUS,
        json!({"id": order_id, "status": "SHIPPED"}),
        "FORBIDDEN",
    )
    .await;
    let e = app
        .err(
            Some(&admin),
            SET_STATUS,
            json!({"id": order_id, "status": "DELIVERED"}),
            "BAD_USER_INPUT",
        )
        .await;
    assert!(
        e["message"].as_str().unwrap_or_default().contains("PAID"),
        "{e}"
    );
    app.ok(
        Some(&admin),
        SET_STATUS,
        json!({"id": order_id, "status": "SHIPPED"}),
    )
    .await;
    assert_eq!(
        app.ok(
            Some(&admin),
            SET_STATUS,
            json!({"id": order_id, "status": "DELIVERED"})
        )
        .await["setOrderStatus"]["status"],
        "DELIVERED"
    );
    app.err(
        Some(&ann),
        CANCEL,
        json!({"id": order_id}),
        "BAD_USER_INPUT",
    )
    .await;

    // Too much: REJECTED with a reason, stock untouched.
    let big = app.order(&ann, &[(&book, 100)]).await;
    let rejected = app.settled(&ann, &big).await;
    assert_eq!(rejected["status"], "REJECTED");
    assert!(
        rejected["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("stock"),
        "{rejected}"
    );
    assert_eq!(app.stock(&book).await, 3);

    // Cancelling releases the reservation.
    let small = app.order(&ann, &[(&mug, 4)]).await;
    assert_eq!(app.settled(&ann, &small).await["status"], "CONFIRMED");
    assert_eq!(app.stock(&mug).await, 5);
    assert_eq!(
        app.ok(Some(&ann), CANCEL, json!({"id": small})).await["cancelOrder"]["status"],
        "CANCELLED"
    );
    support::eventually(std::time::Duration::from_secs(20), || async {
        (app.stock(&mug).await == 9).then_some(())
    })
    .await;

    // Admins see every order; customers only theirs.
    let all = app
        .ok(
            Some(&admin),
            "{ orders(first: 50) { totalCount edges { node { id user { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(all["orders"]["totalCount"], 3);
    let confirmed = app
        .ok(
            Some(&ann),
            "{ orders(status: CANCELLED) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(confirmed["orders"]["totalCount"], 1);

    // Stock never goes below zero by adjustment either.
    app.err(
        Some(&admin),
        ADJUST,
        json!({"id": book, "delta": -4}),
        "BAD_USER_INPUT",
    )
    .await;
    assert_eq!(
        app.ok(Some(&admin), ADJUST, json!({"id": book, "delta": -3}))
            .await["adjustStock"]["stock"],
        0
    );

    // A deleted product is gone from the shop and cannot be ordered.
    app.ok(
        Some(&admin),
        "mutation($id: ID!) { deleteProduct(id: $id) }",
        json!({"id": book}),
    )
    .await;
    assert!(app.ok(None, PRODUCT, json!({"id": book})).await["product"].is_null());
    let e = app.err(Some(&ann), PLACE_ORDER, json!({"input": {"items": [{"productId": book, "quantity": 1}], "shippingAddress": address()}}), "BAD_USER_INPUT").await;
    assert!(
        e["extensions"]["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("input.items"),
        "{e}"
    );
    app.stop().await;
}
on_both_backends!(purchase_flow);

/// The shipping address defaults to the profile's; without either the order is refused.
/// Idempotency keys return the same order for the same request and refuse a different one.
async fn addresses_and_idempotency(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let (carol, _, _) = app.register("carol@example.com", "Carol").await;
    let lamp = app.product(&admin, "Lamp", "home", 4000, 20).await;
    let line = json!([{"productId": lamp, "quantity": 1}]);

    let e = app
        .err(
            Some(&carol),
            PLACE_ORDER,
            json!({"input": {"items": line}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.shippingAddress");
    let e = app
        .err(
            Some(&carol),
            PLACE_ORDER,
            json!({"input": {"items": []}}),
            "BAD_USER_INPUT",
        )
        .await;
    assert_eq!(e["extensions"]["field"], "input.items");
    app.err(
        None,
        PLACE_ORDER,
        json!({"input": {"items": line}}),
        "UNAUTHENTICATED",
    )
    .await;

    let profile = "mutation($a: AddressInput!) { updateProfile(input: {address: $a}) { id } }";
    app.ok(Some(&carol), profile, json!({"a": {"line1": "9 Elm Rd", "city": "Bath", "postalCode": "BA1 1AA", "country": "GB"}})).await;
    // The address just saved is the one the next order ships to (read-your-writes).
    let placed = app
        .ok(Some(&carol), PLACE_ORDER, json!({"input": {"items": line}}))
        .await;
    assert_eq!(placed["placeOrder"]["shippingAddress"]["city"], "Bath");

    let keyed = json!({"input": {"items": line, "shippingAddress": address(), "idempotencyKey": "order-42"}});
    let first = str(&app.ok(Some(&carol), PLACE_ORDER, keyed.clone()).await["placeOrder"]["id"]);
    let again = str(&app.ok(Some(&carol), PLACE_ORDER, keyed).await["placeOrder"]["id"]);
    assert_eq!(first, again);
    let changed = json!({"input": {"items": [{"productId": lamp, "quantity": 2}], "shippingAddress": address(), "idempotencyKey": "order-42"}});
    app.err(Some(&carol), PLACE_ORDER, changed, "CONFLICT")
        .await;

    // Concurrent retries with one key create one order.
    let racing =
        json!({"input": {"items": line, "shippingAddress": address(), "idempotencyKey": "race"}});
    let attempts = (0..8).map(|_| app.ok(Some(&carol), PLACE_ORDER, racing.clone()));
    let ids: std::collections::HashSet<String> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|d| str(&d["placeOrder"]["id"]))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    app.stop().await;
}
on_both_backends!(addresses_and_idempotency);

/// 200 times: save a new address, then at once place an order without one. Every order ships
/// to the address saved just before it, however far the profile events lag behind.
async fn order_right_after_profile_update(env: &Environment) {
    let app = env.start().await;
    let admin = app.admin_token().await;
    let (dave, _, _) = app.register("dave@example.com", "Dave").await;
    let lamp = app.product(&admin, "Lamp", "home", 4000, 1000).await;
    let line = json!([{"productId": lamp, "quantity": 1}]);
    let profile = "mutation($a: AddressInput!) { updateProfile(input: {address: $a}) { id } }";
    let mut refused = Vec::new();
    for i in 0..200 {
        let city = format!("Town {i}");
        let address =
            json!({"line1": "1 High St", "city": city, "postalCode": "AB1 2CD", "country": "GB"});
        app.ok(Some(&dave), profile, json!({"a": address})).await;
        let body = app
            .gql(Some(&dave), PLACE_ORDER, json!({"input": {"items": line}}))
            .await;
        match body.get("errors") {
            Some(errors) => refused.push(format!("try {i}: {errors}")),
            None => assert_eq!(
                body["data"]["placeOrder"]["shippingAddress"]["city"], city,
                "try {i} shipped to an older address"
            ),
        }
    }
    assert!(
        refused.is_empty(),
        "{} of 200 refused: {refused:?}",
        refused.len()
    );
    app.stop().await;
}
on_both_backends!(order_right_after_profile_update);
