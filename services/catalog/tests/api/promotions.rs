//! Promotions through the catalog's internal router: validation, authorization, the price
//! every product read reports (best active promotion wins, upcoming ones wait, ending one
//! restores the price), and listing.

use bazaar_contracts::catalog::{
    ActivePromotion, CreatePromotionRequest, ListProductsRequest, ListPromotionsRequest, Product,
    ProductsByIdRequest, Promotion,
};
use bazaar_contracts::events::{ProductUpdated, PromotionCreated, PromotionEnded};
use bazaar_contracts::{ErrorCode, Principal};
use bazaar_db::now_millis;

use crate::support::{TestCatalog, admin, assert_bad_input, customer};

bazaar_testkit::on_every_backend!(
    start = crate::support::TestCatalog::start;
    promotion_validation_names_the_field,
    promotions_are_admin_only,
    product_reads_apply_the_best_active_promotion,
    promotions_list_active_or_all,
);

const HOUR: i64 = 3_600_000;

fn promotion(
    title: &str,
    ids: &[&str],
    percent_off: i64,
    starts_at: i64,
) -> CreatePromotionRequest {
    CreatePromotionRequest {
        title: title.into(),
        product_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        percent_off,
        starts_at,
        ends_at: now_millis() + 2 * HOUR,
    }
}

async fn all_promotions(t: &TestCatalog, active_only: bool) -> Vec<Promotion> {
    t.client
        .promotions(
            &Principal::anonymous(),
            &ListPromotionsRequest { active_only },
        )
        .await
        .unwrap()
}

async fn read(t: &TestCatalog, id: &str) -> Product {
    t.client
        .product(&Principal::anonymous(), id)
        .await
        .unwrap()
        .expect("product")
}

async fn promotion_validation_names_the_field(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let p = t.create("Teapot", "kitchen", 1).await;
    let gone = t.create("Old teapot", "kitchen", 1).await;
    assert!(c.delete_product(&a, &gone.id).await.unwrap());
    let now = now_millis();
    let base = promotion("Spring sale", &[&p.id], 10, now - 1000);
    let case = |f: &dyn Fn(&mut CreatePromotionRequest)| {
        let mut req = base.clone();
        f(&mut req);
        req
    };
    let hundred_one: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
    let cases: Vec<(CreatePromotionRequest, &str)> = vec![
        (case(&|r| r.title = "  ".into()), "input.title"),
        (case(&|r| r.title = "x".repeat(201)), "input.title"),
        (case(&|r| r.percent_off = 0), "input.percentOff"),
        (case(&|r| r.percent_off = 91), "input.percentOff"),
        (case(&|r| r.product_ids.clear()), "input.productIds"),
        (
            case(&|r| r.product_ids = hundred_one.clone()),
            "input.productIds",
        ),
        (
            case(&|r| r.product_ids.push("ghost".into())),
            "input.productIds",
        ),
        (
            case(&|r| r.product_ids.push(gone.id.clone())),
            "input.productIds",
        ),
        (case(&|r| r.starts_at = r.ends_at), "input.endsAt"),
        (
            case(&|r| {
                r.starts_at = now - 2 * HOUR;
                r.ends_at = now - HOUR;
            }),
            "input.endsAt",
        ),
    ];
    for (req, field) in cases {
        assert_bad_input(c.create_promotion(&a, &req).await, field);
    }
    assert!(
        all_promotions(t, false).await.is_empty(),
        "nothing was created"
    );
    assert_eq!(read(t, &p.id).await.effective_price_cents, 1250);
    let made = c.create_promotion(&a, &base).await.unwrap();
    assert_eq!(
        (made.percent_off, made.product_ids),
        (10, vec![p.id.clone()])
    );
}

async fn promotions_are_admin_only(t: &TestCatalog) {
    let c = &t.client;
    let p = t.create("Teapot", "kitchen", 1).await;
    let req = promotion("Sale", &[&p.id], 10, now_millis());
    let made = c.create_promotion(&admin(), &req).await.unwrap();
    for (who, code) in [
        (customer(), ErrorCode::Forbidden),
        (Principal::anonymous(), ErrorCode::Unauthenticated),
    ] {
        assert_eq!(c.create_promotion(&who, &req).await.unwrap_err().code, code);
        assert_eq!(
            c.end_promotion(&who, &made.id).await.unwrap_err().code,
            code
        );
        assert_eq!(all_promotions(t, true).await.len(), 1, "listing is public");
    }
    assert_eq!(
        c.end_promotion(&admin(), "nope").await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

async fn product_reads_apply_the_best_active_promotion(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let p1 = t.create("Teapot", "kitchen", 1).await;
    let p2 = t.create("Cup", "kitchen", 1).await;
    let now = now_millis();
    let ten = c
        .create_promotion(&a, &promotion("Ten", &[&p1.id, &p2.id], 10, now - 1000))
        .await
        .unwrap();
    let quarter = c
        .create_promotion(&a, &promotion("Quarter", &[&p1.id], 25, now - 1000))
        .await
        .unwrap();
    // Starts in an hour: announced, but prices do not move yet.
    let later = c
        .create_promotion(&a, &promotion("Later", &[&p1.id, &p2.id], 50, now + HOUR))
        .await
        .unwrap();
    let active = |p: &Promotion| {
        Some(ActivePromotion {
            id: p.id.clone(),
            title: p.title.clone(),
            percent_off: p.percent_off,
            ends_at: p.ends_at,
        })
    };
    let prices = async || {
        let by_id = c
            .products_by_id(
                &a,
                &ProductsByIdRequest {
                    ids: vec![p1.id.clone(), p2.id.clone()],
                    include_deleted: false,
                },
            )
            .await
            .unwrap();
        let list = c
            .list(
                &a,
                &ListProductsRequest {
                    first: 10,
                    after: None,
                    category: None,
                    search: None,
                },
            )
            .await
            .unwrap()
            .items;
        let one = vec![read(t, &p1.id).await, read(t, &p2.id).await];
        let mut by_id = by_id;
        by_id.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(by_id, one, "products-by-id agrees with product");
        assert_eq!(list, one, "products agrees with product");
        one.into_iter()
            .map(|p| (p.effective_price_cents, p.active_promotion))
            .collect::<Vec<_>>()
    };
    // 1250 less 25% (312.5, rounded down to 312) and less 10%.
    assert_eq!(
        prices().await,
        [(938, active(&quarter)), (1125, active(&ten))],
        "the best of two overlapping promotions wins; the upcoming one waits"
    );
    assert_eq!(
        read(t, &p1.id).await.price_cents,
        1250,
        "the list price stays"
    );

    let ended = c.end_promotion(&a, &quarter.id).await.unwrap();
    assert!(ended.ends_at <= now_millis() && ended.ends_at < quarter.ends_at);
    assert_eq!(prices().await, [(1125, active(&ten)), (1125, active(&ten))]);
    c.end_promotion(&a, &ten.id).await.unwrap();
    assert_eq!(
        prices().await,
        [(1250, None), (1250, None)],
        "list price restored"
    );

    // Ending again changes and announces nothing; ending an upcoming one empties its window.
    let stored = all_promotions(t, false).await;
    let stored_ten = stored.iter().find(|p| p.id == ten.id).unwrap();
    assert_eq!(&c.end_promotion(&a, &ten.id).await.unwrap(), stored_ten);
    let cancelled = c.end_promotion(&a, &later.id).await.unwrap();
    assert_eq!(cancelled.starts_at, cancelled.ends_at);

    let created: Vec<String> = t
        .emitted::<PromotionCreated>()
        .await
        .into_iter()
        .map(|e| e.promotion.title)
        .collect();
    assert_eq!(created, ["Ten", "Quarter", "Later"]);
    let ended: Vec<String> = t
        .emitted::<PromotionEnded>()
        .await
        .into_iter()
        .map(|e| e.promotion_id)
        .collect();
    assert_eq!(
        ended,
        [quarter.id.clone(), ten.id.clone(), later.id.clone()]
    );
    // Each change announced the affected products at their price as of the change.
    let updates: Vec<(String, i64)> = t
        .emitted::<ProductUpdated>()
        .await
        .into_iter()
        .map(|e| (e.product_id, e.product.effective_price_cents))
        .collect();
    assert_eq!(
        updates,
        [
            (p1.id.clone(), 1125),
            (p2.id.clone(), 1125),
            (p1.id.clone(), 938),
            (p1.id.clone(), 938),
            (p2.id.clone(), 1125),
            (p1.id.clone(), 1125),
            (p1.id.clone(), 1250),
            (p2.id.clone(), 1250),
            (p1.id.clone(), 1250),
            (p2.id.clone(), 1250),
        ]
    );
}

async fn promotions_list_active_or_all(t: &TestCatalog) {
    let c = &t.client;
    let a = admin();
    let p1 = t.create("Teapot", "kitchen", 1).await;
    let p2 = t.create("Cup", "kitchen", 1).await;
    let now = now_millis();
    let running = c
        .create_promotion(
            &a,
            &promotion("Running", &[&p2.id, &p1.id, &p2.id], 10, now - 1000),
        )
        .await
        .unwrap();
    let mut sorted = vec![p1.id.clone(), p2.id.clone()];
    sorted.sort();
    assert_eq!(running.product_ids, sorted, "deduplicated and sorted");
    let upcoming = c
        .create_promotion(&a, &promotion("Upcoming", &[&p1.id], 20, now + HOUR))
        .await
        .unwrap();
    let over = c
        .create_promotion(&a, &promotion("Over", &[&p2.id], 30, now - 1000))
        .await
        .unwrap();
    let over = c.end_promotion(&a, &over.id).await.unwrap();

    assert_eq!(
        all_promotions(t, true).await,
        std::slice::from_ref(&running)
    );
    assert_eq!(
        all_promotions(t, false).await,
        [over, upcoming, running],
        "newest first"
    );
}
