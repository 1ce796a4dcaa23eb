//! Reviews through the catalog's internal router, with deliveries and profiles arriving as
//! events on the bus: only customers who received the product may review it, under their
//! display name; a second review replaces the first; the product's rating follows.

use bazaar_contracts::catalog::{AddReviewRequest, ListReviewsRequest, Review};
use bazaar_contracts::events::ProductUpdated;
use bazaar_contracts::orders::OrderStatus;
use bazaar_contracts::{ErrorCode, Principal, Role};
use bazaar_db::sqlx;

use crate::support::{TestCatalog, customer, order_moved, registered, renamed};

bazaar_testkit::on_every_backend!(
    start = crate::support::TestCatalog::start;
    only_customers_who_received_the_product_may_review,
    second_review_replaces_the_first,
    redelivered_delivery_is_harmless,
);

/// What a customer who has not received the product hears.
const REFUSED: (ErrorCode, &str) = (
    ErrorCode::Forbidden,
    "only customers who received this product can review it",
);

fn review(product_id: &str, rating: i64, title: &str) -> AddReviewRequest {
    AddReviewRequest {
        product_id: product_id.into(),
        rating,
        title: title.into(),
        body: "Pours well.\nNo drips.".into(),
    }
}

fn second_customer() -> Principal {
    Principal::user("customer-2", Role::Customer)
}

async fn rating(t: &TestCatalog, product_id: &str) -> (Option<f64>, i64) {
    let p = t
        .client
        .product(&Principal::anonymous(), product_id)
        .await
        .unwrap()
        .expect("product");
    (p.rating_average, p.rating_count)
}

async fn page(t: &TestCatalog, product_id: &str, first: i64, after: Option<&str>) -> Vec<Review> {
    t.client
        .reviews(
            &Principal::anonymous(),
            &ListReviewsRequest {
                product_id: product_id.into(),
                first,
                after: after.map(Into::into),
            },
        )
        .await
        .unwrap()
        .items
}

async fn only_customers_who_received_the_product_may_review(t: &TestCatalog) {
    let c = &t.client;
    let p = t.create("Teapot", "kitchen", 5).await;
    t.publish(&registered("customer-1", "Ada Lovelace", "ada@example.com"))
        .await;

    let err = c
        .add_review(&customer(), &review(&p.id, 5, "Lovely"))
        .await
        .unwrap_err();
    assert_eq!((err.code, err.message.as_str()), REFUSED);

    // Shipped is not received.
    t.publish(&order_moved(
        "o1",
        "customer-1",
        &[&p.id],
        OrderStatus::Shipped,
    ))
    .await;
    t.processed(2).await;
    let err = c
        .add_review(&customer(), &review(&p.id, 5, "Lovely"))
        .await
        .unwrap_err();
    assert_eq!((err.code, err.message.as_str()), REFUSED);

    t.publish(&order_moved(
        "o1",
        "customer-1",
        &[&p.id],
        OrderStatus::Delivered,
    ))
    .await;
    t.processed(3).await;
    let added = c
        .add_review(&customer(), &review(&p.id, 5, " Lovely "))
        .await
        .unwrap();
    assert_eq!(
        (
            added.author.as_str(),
            added.user_id.as_str(),
            added.rating,
            added.title.as_str(),
            added.verified_purchase
        ),
        ("Ada Lovelace", "customer-1", 5, "Lovely", true)
    );
    assert!(
        !format!("{added:?}").contains("ada@example.com"),
        "never the email"
    );
    assert_eq!(page(t, &p.id, 10, None).await, [added]);

    // Someone else's delivery does not count for another customer or another product.
    let cup = t.create("Cup", "kitchen", 5).await;
    let other = c
        .add_review(&second_customer(), &review(&p.id, 1, "Meh"))
        .await;
    assert_eq!(other.unwrap_err().code, ErrorCode::Forbidden);
    let other = c.add_review(&customer(), &review(&cup.id, 1, "Meh")).await;
    assert_eq!(other.unwrap_err().code, ErrorCode::Forbidden);
    let anonymous = c
        .add_review(&Principal::anonymous(), &review(&p.id, 5, "Hi"))
        .await;
    assert_eq!(anonymous.unwrap_err().code, ErrorCode::Unauthenticated);
    let ghost = c.add_review(&customer(), &review("ghost", 5, "Hi")).await;
    assert_eq!(ghost.unwrap_err().code, ErrorCode::NotFound);

    for (req, field) in [
        (review(&p.id, 0, "Bad"), "input.rating"),
        (review(&p.id, 6, "Bad"), "input.rating"),
        (review(&p.id, 3, "  "), "input.title"),
        (review(&p.id, 3, &"x".repeat(201)), "input.title"),
        (
            AddReviewRequest {
                body: "x".repeat(5001),
                ..review(&p.id, 3, "Long")
            },
            "input.body",
        ),
    ] {
        let err = c.add_review(&customer(), &req).await.unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::BadUserInput, Some(field))
        );
        assert!(err.message.contains(field), "{err:?}");
    }
    let bad_page = c
        .reviews(
            &Principal::anonymous(),
            &ListReviewsRequest {
                product_id: p.id.clone(),
                first: 51,
                after: None,
            },
        )
        .await;
    assert_eq!(bad_page.unwrap_err().field.as_deref(), Some("first"));
    assert_eq!(
        rating(t, &p.id).await,
        (Some(5.0), 1),
        "refusals changed nothing"
    );

    // A deleted product takes no new reviews.
    assert!(
        c.delete_product(&crate::support::admin(), &p.id)
            .await
            .unwrap()
    );
    let late = c.add_review(&customer(), &review(&p.id, 4, "Late")).await;
    assert_eq!(late.unwrap_err().code, ErrorCode::NotFound);
}

async fn second_review_replaces_the_first(t: &TestCatalog) {
    let c = &t.client;
    let p = t.create("Teapot", "kitchen", 5).await;
    t.publish(&registered("customer-1", "Ada", "ada@example.com"))
        .await;
    t.publish(&registered("customer-2", "Grace", "grace@example.com"))
        .await;
    t.publish(&order_moved(
        "o1",
        "customer-1",
        &[&p.id],
        OrderStatus::Delivered,
    ))
    .await;
    t.publish(&order_moved(
        "o2",
        "customer-2",
        &[&p.id],
        OrderStatus::Delivered,
    ))
    .await;
    t.processed(4).await;
    assert_eq!(rating(t, &p.id).await, (None, 0));

    let first = c
        .add_review(&customer(), &review(&p.id, 4, "Good"))
        .await
        .unwrap();
    assert_eq!(rating(t, &p.id).await, (Some(4.0), 1));
    let replaced = c
        .add_review(&customer(), &review(&p.id, 2, "Chipped"))
        .await
        .unwrap();
    assert_eq!(replaced.id, first.id, "the same review");
    assert_eq!(replaced.created_at, first.created_at);
    assert_eq!((replaced.rating, replaced.title.as_str()), (2, "Chipped"));
    assert_eq!(rating(t, &p.id).await, (Some(2.0), 1));

    let grace = c
        .add_review(&second_customer(), &review(&p.id, 5, "Perfect"))
        .await
        .unwrap();
    assert_eq!(rating(t, &p.id).await, (Some(3.5), 2));

    // Newest first, one per page.
    let all = page(t, &p.id, 10, None).await;
    assert_eq!(all, [grace.clone(), replaced.clone()]);
    let listing = c
        .reviews(
            &Principal::anonymous(),
            &ListReviewsRequest {
                product_id: p.id.clone(),
                first: 1,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!((listing.has_next_page, listing.total_count), (true, 2));
    assert_eq!(listing.items, std::slice::from_ref(&grace));
    assert_eq!(
        page(t, &p.id, 1, Some(&grace.id)).await,
        std::slice::from_ref(&replaced)
    );
    assert!(page(t, &p.id, 1, Some(&replaced.id)).await.is_empty());

    // Caches learnt each new rating.
    let ratings: Vec<(Option<f64>, i64)> = t
        .emitted::<ProductUpdated>()
        .await
        .into_iter()
        .map(|e| (e.product.rating_average, e.product.rating_count))
        .collect();
    assert_eq!(ratings, [(Some(4.0), 1), (Some(2.0), 1), (Some(3.5), 2)]);

    // A rename shows on existing reviews; an older profile arriving late does not undo it.
    t.publish(&renamed("customer-1", "Ada L.", 10)).await;
    t.publish(&renamed("customer-1", "Ada (old)", 5)).await;
    t.processed(6).await;
    let authors: Vec<String> = page(t, &p.id, 10, None)
        .await
        .into_iter()
        .map(|r| r.author)
        .collect();
    assert_eq!(authors, ["Grace", "Ada L."]);
}

async fn redelivered_delivery_is_harmless(t: &TestCatalog) {
    let p = t.create("Teapot", "kitchen", 5).await;
    let delivered = order_moved("o1", "customer-1", &[&p.id, &p.id], OrderStatus::Delivered);
    for attempt in 1..=2 {
        t.deliver(&delivered, attempt).await;
    }
    // The same fact in a new event (new id) is harmless too.
    let again = order_moved("o1", "customer-1", &[&p.id], OrderStatus::Delivered);
    t.deliver(&again, 1).await;
    let purchases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM purchases")
        .fetch_one(t.db.pool())
        .await
        .unwrap();
    assert_eq!(purchases, 1);
    assert!(
        bazaar_bus::dead_letters(&t.db, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let added = t
        .client
        .add_review(&customer(), &review(&p.id, 3, "Fine"))
        .await
        .unwrap();
    assert_eq!(
        added.author, "Customer",
        "no profile yet: a neutral name, never an id or email"
    );
    assert_eq!(rating(t, &p.id).await, (Some(3.0), 1));
}
