//! Recommendations over the internal API, fed by events published on the bus: co-purchases
//! ranked by weight, exclusions (bought, withdrawn, out of stock, unknown), best sellers for
//! anonymous callers and newcomers and as the top-up, and exactly-once model updates.

use bazaar_contracts::Principal;
use bazaar_contracts::orders::OrderStatus;

use crate::support::{TestRecommendations, customer, status, stock_changed};

bazaar_testkit::on_every_backend!(
    start = crate::support::TestRecommendations::start;
    co_purchases_rank_first_and_never_what_was_bought,
    unavailable_products_never_appear,
    anonymous_callers_get_best_sellers,
    newcomers_get_best_sellers,
    first_is_bounded,
    redelivered_orders_count_once,
    stock_changes_in_one_batch_leave_each_products_last_level,
);

/// Products A–E (E the best seller, F never replicated) and the history
/// {A,B}, {A,C}, {A,B}, {B,D}, {E×5,F}, and "me" who bought A.
async fn shop(t: &TestRecommendations) {
    for (id, name) in [
        ("A", "Apron"),
        ("B", "Bowl"),
        ("C", "Cup"),
        ("D", "Dish"),
        ("E", "Egg cup"),
    ] {
        t.product(id, name, 10).await;
    }
    t.bought("u1", "o1", &[("A", 1), ("B", 1)]).await;
    t.bought("u2", "o2", &[("A", 1), ("C", 1)]).await;
    t.bought("u3", "o3", &[("B", 1), ("A", 1)]).await;
    t.bought("u4", "o4", &[("B", 1), ("D", 1)]).await;
    t.bought("u5", "o5", &[("E", 5), ("F", 1)]).await;
    t.bought("me", "o6", &[("A", 1)]).await;
}

async fn co_purchases_rank_first_and_never_what_was_bought(t: &TestRecommendations) {
    shop(t).await;
    let me = customer("me");
    assert_eq!(t.recommend(&me, 2).await, ["B", "C"]);
    // Co-purchases first, then best sellers (E outsold D), never A, never unknown F.
    assert_eq!(t.recommend(&me, 50).await, ["B", "C", "E", "D"]);
    // A second order's history pairs count: me now also has B, so D (bought with B) joins
    // the co-purchases and outranks the best seller E.
    t.bought("me", "o7", &[("B", 1)]).await;
    assert_eq!(t.recommend(&me, 50).await, ["C", "D", "E"]);
}

async fn unavailable_products_never_appear(t: &TestRecommendations) {
    shop(t).await;
    let me = customer("me");
    t.stock("B", 0).await;
    assert_eq!(t.recommend(&me, 50).await, ["C", "E", "D"]);
    t.delete("C").await;
    assert_eq!(t.recommend(&me, 50).await, ["E", "D"]);
    t.stock("B", 3).await;
    assert_eq!(t.recommend(&me, 50).await, ["B", "E", "D"]);
    // Stock news about a product the replica never saw does not make it known.
    t.stock("F", 7).await;
    assert_eq!(
        t.recommend(&Principal::anonymous(), 50).await,
        ["E", "A", "B", "D"]
    );
}

async fn anonymous_callers_get_best_sellers(t: &TestRecommendations) {
    shop(t).await;
    let anonymous = Principal::anonymous();
    // Units sold: E 5, A 4, B 3, C 1, D 1 (ties by id).
    assert_eq!(t.recommend(&anonymous, 50).await, ["E", "A", "B", "C", "D"]);
    assert_eq!(t.recommend(&anonymous, 2).await, ["E", "A"]);
}

async fn newcomers_get_best_sellers(t: &TestRecommendations) {
    shop(t).await;
    assert_eq!(t.recommend(&customer("new"), 3).await, ["E", "A", "B"]);
    assert_eq!(
        t.recommend(&customer("new"), 50).await,
        ["E", "A", "B", "C", "D"]
    );
}

async fn first_is_bounded(t: &TestRecommendations) {
    for first in [0, 51, -1] {
        let err = t
            .try_recommend(&customer("me"), first)
            .await
            .expect_err("out of range");
        assert_eq!(err.field.as_deref(), Some("first"), "{err:?}");
    }
    // Nothing sold yet: nothing to recommend, and no error.
    assert_eq!(
        t.recommend(&Principal::anonymous(), 1).await,
        Vec::<String>::new()
    );
    assert_eq!(t.recommend(&customer("me"), 50).await, Vec::<String>::new());
}

async fn redelivered_orders_count_once(t: &TestRecommendations) {
    let confirmed = status(
        "r",
        "o1",
        OrderStatus::Confirmed,
        &[("X", 2), ("Y", 1), ("X", 1)],
    );
    t.deliver(&confirmed).await;
    t.deliver(&confirmed).await;
    let units = "SELECT units FROM purchases WHERE user_id = $1 AND product_id = $2";
    let popularity = "SELECT units FROM popularity WHERE product_id = $1";
    let weight = "SELECT weight FROM co_purchases WHERE product_a = $1 AND product_b = $2";
    assert_eq!(t.scalar(units, &["r", "X"]).await, 3);
    assert_eq!(t.scalar(popularity, &["X"]).await, 3);
    assert_eq!(t.scalar(weight, &["X", "Y"]).await, 1);
    assert_eq!(t.scalar(weight, &["Y", "X"]).await, 1);
    // Later statuses of the same order change nothing, cancellation included.
    for to in [OrderStatus::Paid, OrderStatus::Cancelled] {
        t.deliver(&status("r", "o1", to, &[("X", 3), ("Y", 1)]))
            .await;
    }
    assert_eq!(t.scalar(units, &["r", "X"]).await, 3);
    // A later order pairs with the history: Z with X and with Y, once each.
    let next = status("r", "o2", OrderStatus::Confirmed, &[("Z", 1), ("X", 1)]);
    t.deliver(&next).await;
    t.deliver(&next).await;
    assert_eq!(t.scalar(units, &["r", "X"]).await, 4);
    assert_eq!(t.scalar(weight, &["X", "Z"]).await, 1);
    assert_eq!(t.scalar(weight, &["Z", "Y"]).await, 1);
    // X bought again beside the earlier Y: their pairing is reinforced.
    assert_eq!(t.scalar(weight, &["X", "Y"]).await, 2);
    let pairs = "SELECT COUNT(*) FROM co_purchases";
    assert_eq!(t.scalar(pairs, &[]).await, 6);
}

/// Stock changes delivered in one batch (applied set-based) leave each product at its last
/// level, as one at a time would, and do not make an unknown product known; delivered again,
/// they change nothing.
async fn stock_changes_in_one_batch_leave_each_products_last_level(t: &TestRecommendations) {
    shop(t).await;
    let batch = [
        stock_changed("A", 5),
        stock_changed("B", 0),
        stock_changed("A", 0),
        stock_changed("F", 7),
        stock_changed("A", 3),
    ];
    t.publish_together(&batch).await;
    t.settled().await;
    let stock = |id: &'static str| async move {
        t.scalar("SELECT stock FROM products WHERE product_id = $1", &[id])
            .await
    };
    assert_eq!((stock("A").await, stock("B").await), (3, 0));
    let known_f = "SELECT COUNT(*) FROM products WHERE product_id = $1";
    assert_eq!(t.scalar(known_f, &["F"]).await, 0);
    // B is out of stock now, so "me" (who bought A) is offered C first.
    assert_eq!(t.recommend(&customer("me"), 50).await, ["C", "E", "D"]);
    for event in &batch {
        t.deliver(event).await;
    }
    assert_eq!((stock("A").await, stock("B").await), (3, 0));
}
