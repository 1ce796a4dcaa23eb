//! placeOrder: validation, pricing from the catalogue, addresses, idempotency keys.

use bazaar_contracts::ErrorCode;
use bazaar_contracts::orders::{ListOrdersRequest, OrderStatus};
use bazaar_contracts::users::Address;

use crate::support::{CUP, GOLD, GONE, Harness, TEAPOT, address};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let field = |r: Result<_, bazaar_contracts::ApiError>| {
        let e = r.unwrap_err();
        assert_eq!(e.code, ErrorCode::BadUserInput, "{e:?}");
        e.field.unwrap()
    };
    let a = Some(address("1 Main St"));
    assert_eq!(
        field(h.place(&ann, &[], a.clone(), None).await),
        "input.items"
    );
    let many: Vec<(&str, i64)> = vec![(TEAPOT, 1); 101];
    assert_eq!(
        field(h.place(&ann, &many, a.clone(), None).await),
        "input.items"
    );
    assert_eq!(
        field(
            h.place(&ann, &[(TEAPOT, 1), (CUP, 0)], a.clone(), None)
                .await
        ),
        "input.items[1].quantity"
    );
    assert_eq!(
        field(h.place(&ann, &[(TEAPOT, 10_001)], a.clone(), None).await),
        "input.items[0].quantity"
    );
    assert_eq!(
        field(h.place(&ann, &[("", 1)], a.clone(), None).await),
        "input.items[0].productId"
    );
    assert_eq!(
        field(
            h.place(&ann, &[(TEAPOT, 1), ("nope", 1)], a.clone(), None)
                .await
        ),
        "input.items[1].productId"
    );
    let deleted = h
        .place(&ann, &[(GONE, 1)], a.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(deleted.field.as_deref(), Some("input.items[0].productId"));
    assert!(
        deleted.message.contains("product p-gone does not exist"),
        "{}",
        deleted.message
    );
    // 3 × 1e9 cents does not fit a GraphQL Int.
    assert_eq!(
        field(h.place(&ann, &[(GOLD, 3)], a.clone(), None).await),
        "input.items"
    );
    let blank = Address {
        city: " ".into(),
        ..address("1 Main St")
    };
    assert_eq!(
        field(h.place(&ann, &[(TEAPOT, 1)], Some(blank), None).await),
        "input.shippingAddress.city"
    );
    assert_eq!(
        field(h.place(&ann, &[(TEAPOT, 1)], a.clone(), Some("")).await),
        "input.idempotencyKey"
    );
    let long_key = "k".repeat(256);
    assert_eq!(
        field(
            h.place(&ann, &[(TEAPOT, 1)], a.clone(), Some(&long_key))
                .await
        ),
        "input.idempotencyKey"
    );
    let anonymous = h
        .place(
            &bazaar_contracts::Principal::anonymous(),
            &[(TEAPOT, 1)],
            a,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(anonymous.code, ErrorCode::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_come_from_the_catalogue_and_are_kept() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let order = h
        .place(
            &ann,
            &[(CUP, 2), (TEAPOT, 1), (CUP, 1)],
            Some(address("1 Main St")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        order.user_id,
        ann.user.as_ref().unwrap().id,
        "the buyer is the caller"
    );
    assert_eq!(order.status, OrderStatus::Pending);
    let lines: Vec<(&str, &str, i64, i64)> = order
        .items
        .iter()
        .map(|i| {
            (
                i.product_id.as_str(),
                i.name.as_str(),
                i.quantity,
                i.unit_price_cents,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![(CUP, "Cup", 3, 800), (TEAPOT, "Teapot", 1, 2500)],
        "duplicates merged"
    );
    assert_eq!(order.total_cents, 3 * 800 + 2500);

    h.set_price(TEAPOT, 9999);
    let later = h.order(&order.id).await;
    assert_eq!(
        later.items, order.items,
        "the order keeps the prices it was placed at"
    );
    assert_eq!(later.total_cents, order.total_cents);
    let newer = h
        .place(&ann, &[(TEAPOT, 1)], Some(address("1 Main St")), None)
        .await
        .unwrap();
    assert_eq!(newer.total_cents, 9999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_falls_back_to_the_profile() {
    let h = Harness::start().await;
    let with_profile = h.customer(Some(address("7 Profile Rd"))).await;
    let order = h
        .place(&with_profile, &[(TEAPOT, 1)], None, None)
        .await
        .unwrap();
    assert_eq!(order.shipping_address, Some(address("7 Profile Rd")));
    let explicit = h
        .place(
            &with_profile,
            &[(TEAPOT, 1)],
            Some(address(" 9 Given Ave ")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        explicit.shipping_address,
        Some(address("9 Given Ave")),
        "explicit address wins, trimmed"
    );

    let without = h.customer(None).await;
    let err = h
        .place(&without, &[(TEAPOT, 1)], None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadUserInput);
    assert_eq!(err.field.as_deref(), Some("input.shippingAddress"));
    assert!(
        err.message
            .contains("no shipping address given and none on your profile")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_or_conflict() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let a = Some(address("1 Main St"));
    let first = h
        .place(&ann, &[(TEAPOT, 1), (CUP, 2)], a.clone(), Some("key-1"))
        .await
        .unwrap();
    // The same request, lines in another order: the same order back.
    let again = h
        .place(&ann, &[(CUP, 2), (TEAPOT, 1)], a.clone(), Some("key-1"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let different = h
        .place(&ann, &[(TEAPOT, 2)], a.clone(), Some("key-1"))
        .await
        .unwrap_err();
    assert_eq!(different.code, ErrorCode::Conflict);
    assert!(
        different
            .message
            .contains("idempotency key already used with a different request")
    );
    // Keys belong to one customer: another may use the same one.
    let bob = h.customer(None).await;
    let bobs = h
        .place(&bob, &[(TEAPOT, 1), (CUP, 2)], a, Some("key-1"))
        .await
        .unwrap();
    assert_ne!(bobs.id, first.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_make_one_order() {
    let h = Harness::start().await;
    let ann = h.customer(None).await;
    let calls = (0..10).map(|_| {
        let (client, ann) = (h.client.clone(), ann.clone());
        tokio::spawn(async move {
            let req = bazaar_contracts::orders::PlaceOrderRequest {
                items: vec![bazaar_contracts::orders::OrderLineRequest {
                    product_id: TEAPOT.into(),
                    quantity: 1,
                }],
                shipping_address: Some(address("1 Main St")),
                idempotency_key: Some("same-key".into()),
            };
            client.place_order(&ann, &req).await
        })
    });
    let mut ids = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        ids.push(call.await.unwrap().unwrap().id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "every caller got the same order");
    let page = h
        .client
        .list(
            &ann,
            &ListOrdersRequest {
                first: 100,
                after: None,
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total_count, 1, "exactly one order was created");
    let placed: i64 = bazaar_db::sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE event_type = 'OrderPlaced'",
    )
    .fetch_one(h.db.pool())
    .await
    .unwrap();
    assert_eq!(placed, 1, "and one OrderPlaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_scoped_filtered_and_paged() {
    let h = Harness::start().await;
    let (ann, bob) = (h.customer(None).await, h.customer(None).await);
    let a = Some(address("1 Main St"));
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(
            h.place(&ann, &[(TEAPOT, 1)], a.clone(), None)
                .await
                .unwrap()
                .id,
        );
    }
    h.place(&bob, &[(CUP, 1)], a, None).await.unwrap();
    h.client.cancel_order(&ann, &mine[0]).await.unwrap();

    let list = |p, first, after: Option<String>, status| {
        let client = h.client.clone();
        async move {
            client
                .list(
                    p,
                    &ListOrdersRequest {
                        first,
                        after,
                        status,
                    },
                )
                .await
        }
    };
    let page1 = list(&ann, 2, None, None).await.unwrap();
    assert_eq!(page1.total_count, 3);
    assert!(page1.has_next_page);
    let ids: Vec<&str> = page1.items.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![mine[2].as_str(), mine[1].as_str()],
        "newest first"
    );
    let page2 = list(&ann, 2, Some(mine[1].clone()), None).await.unwrap();
    assert_eq!(page2.items.len(), 1);
    assert!(!page2.has_next_page);
    assert_eq!(page2.items[0].id, mine[0]);
    let cancelled = list(&ann, 10, None, Some(OrderStatus::Cancelled))
        .await
        .unwrap();
    assert_eq!((cancelled.total_count, cancelled.items.len()), (1, 1));
    let admin = crate::support::admin();
    assert_eq!(
        list(&admin, 10, None, None).await.unwrap().total_count,
        4,
        "admins see all"
    );
    assert_eq!(
        list(&ann, 101, None, None)
            .await
            .unwrap_err()
            .field
            .as_deref(),
        Some("first")
    );
    // Another customer's order is invisible, not forbidden.
    assert_eq!(h.client.order(&bob, &mine[1]).await.unwrap(), None);
}
