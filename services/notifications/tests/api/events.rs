//! From events to notifications: welcome, order updates and digests honour preferences, each
//! is stored once however often its event arrives, and each gets exactly one mail.

use bazaar_contracts::events::{
    Event, OrderStatusChanged, RecommendationDigest, UserProfileUpdated,
};
use bazaar_contracts::notifications::UpdatePreferencesRequest;
use bazaar_contracts::orders::{OrderItem, OrderStatus};
use bazaar_db::{new_id, now_millis, sqlx};
use bazaar_testkit::eventually;

use crate::smtp;
use crate::support::{Harness, registered, user_id};

crate::scenarios!(
    welcome_is_stored_once_and_mailed: Smtp,
    order_updates_follow_preferences: Files,
    redelivery_gives_one_notification_and_one_mail: Smtp,
    recommendations_follow_preferences: Files,
    newer_profile_wins_and_mail_waits_for_an_address: Files,
    order_updates_in_one_batch_match_one_at_a_time: Files,
);

pub fn status_changed(user_id: &str, order_id: &str, to: OrderStatus) -> OrderStatusChanged {
    OrderStatusChanged {
        order_id: order_id.into(),
        user_id: user_id.into(),
        from: OrderStatus::Pending,
        to,
        reason: (to == OrderStatus::Rejected).then(|| "not enough stock for Teapot".into()),
        items: vec![OrderItem {
            product_id: "p-teapot".into(),
            name: "Teapot".into(),
            quantity: 2,
            unit_price_cents: 1250,
        }],
        total_cents: 2500,
        changed_at: now_millis(),
    }
}

async fn welcome_is_stored_once_and_mailed(t: &Harness) {
    let ann = t.register("Ann").await;
    let id = user_id(&ann);
    let stored = t.notifications(id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "WELCOME");
    assert_eq!(stored[0].1, "Welcome to bazaar, Ann");

    // The same registration told again by a new event: still one welcome.
    let again = t.publish(&registered(id, "Ann")).await;
    t.consumed(&again.id).await;
    assert_eq!(t.notifications(id).await.len(), 1);

    t.all_mail_sent().await;
    let notification_id: String =
        sqlx::query_scalar("SELECT id FROM notifications WHERE user_id = $1")
            .bind(id)
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    eventually("the welcome mail at the SMTP server", || async {
        !t.smtp().messages().is_empty()
    })
    .await;
    let received = t.smtp().messages();
    assert_eq!(received.len(), 1, "{received:?}");
    let m = &received[0];
    assert_eq!(
        m.header("message-id"),
        format!("<{notification_id}@bazaar>")
    );
    assert_eq!(m.header("to"), "ann@example.com");
    assert_eq!(m.header("subject"), "Welcome to bazaar, Ann");
    assert!(m.header("from").contains("no-reply@bazaar.local"), "{m:?}");
    assert_eq!(m.header("x-rcptto"), "ann@example.com");
    assert!(m.body.contains("Hello Ann"), "{}", m.body);
    assert_eq!(t.mails(id).await, [("SENT".into(), 0, None)]);
}

async fn order_updates_follow_preferences(t: &Harness) {
    let bob = t.register("Bob").await;
    let id = user_id(&bob);
    let order = new_id();
    for to in [OrderStatus::Confirmed, OrderStatus::Rejected] {
        let e = t.publish(&status_changed(id, &order, to)).await;
        t.consumed(&e.id).await;
    }
    let stored = t.notifications(id).await;
    let short = &order[order.len() - 8..];
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored[1].0, "ORDER_UPDATE");
    assert_eq!(stored[1].1, format!("Order {short} is CONFIRMED"));
    assert_eq!(stored[2].1, format!("Order {short} is REJECTED"));
    assert!(
        stored[2].2.contains("Reason: not enough stock for Teapot"),
        "{}",
        stored[2].2
    );
    assert!(stored[2].2.contains("total 25.00"), "{}", stored[2].2);

    // Switched off: nothing new, not even mail.
    let off = UpdatePreferencesRequest {
        order_updates: Some(false),
        ..Default::default()
    };
    t.set_preferences(&bob, off).await;
    let other_order = new_id();
    for to in [
        OrderStatus::Confirmed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
    ] {
        let e = t.publish(&status_changed(id, &other_order, to)).await;
        t.consumed(&e.id).await;
    }
    assert_eq!(t.notifications(id).await.len(), 3);
    assert_eq!(t.mails(id).await.len(), 3);

    // On again: the next update arrives.
    let on = UpdatePreferencesRequest {
        order_updates: Some(true),
        ..Default::default()
    };
    t.set_preferences(&bob, on).await;
    let e = t
        .publish(&status_changed(id, &other_order, OrderStatus::Delivered))
        .await;
    t.consumed(&e.id).await;
    let stored = t.notifications(id).await;
    assert_eq!(stored.len(), 4);
    assert!(stored[3].1.ends_with("is DELIVERED"));
    t.all_mail_sent().await;
}

async fn redelivery_gives_one_notification_and_one_mail(t: &Harness) {
    let cid = new_id();
    let welcome = registered(&cid, "Cid");
    let envelope = bazaar_contracts::events::Event::envelope(&welcome, "users");
    // Delivered twice by hand (a lost ack), then once more by the broker.
    t.deliver(&envelope, 1).await;
    t.deliver(&envelope, 2).await;
    t.platform.transport.publish(&envelope).await.unwrap();
    let order = status_changed(&cid, &new_id(), OrderStatus::Confirmed);
    let order_envelope = bazaar_contracts::events::Event::envelope(&order, "orders");
    t.deliver(&order_envelope, 1).await;
    t.deliver(&order_envelope, 1).await;
    t.platform.transport.publish(&order_envelope).await.unwrap();
    t.consumed(&envelope.id).await;
    t.consumed(&order_envelope.id).await;
    // Give the broker's copy time to be (not) applied.
    let marker = t.publish(&registered(&new_id(), "Marker")).await;
    t.consumed(&marker.id).await;

    let stored = t.notifications(&cid).await;
    let kinds: Vec<&str> = stored.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["WELCOME", "ORDER_UPDATE"]);
    assert_eq!(t.mails(&cid).await.len(), 2);
    t.all_mail_sent().await;
    eventually("three mails at the SMTP server", || async {
        t.smtp().messages().len() >= 3
    })
    .await;
    let ids = t.smtp().message_ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids.values().all(|n| *n == 1),
        "a mail arrived twice: {ids:?}"
    );

    // The table itself refuses a second notification with the same key.
    let duplicate = sqlx::query(
        "INSERT INTO notifications (id, user_id, kind, dedup_key, title, body, created_at)
         VALUES ($1, $2, 'WELCOME', 'welcome', 't', 'b', 0)",
    )
    .bind(new_id())
    .bind(&cid)
    .execute(t.db.pool())
    .await;
    let err = duplicate.expect_err("a second welcome must not be stored");
    assert!(
        bazaar_db::DbError::from(err).is_unique_violation(),
        "not a unique violation"
    );
}

async fn recommendations_follow_preferences(t: &Harness) {
    let dee = t.register("Dee").await;
    let id = user_id(&dee);
    let digest = RecommendationDigest {
        digest_id: new_id(),
        user_id: id.into(),
        products: vec![("p1".into(), "Teapot".into()), ("p2".into(), "Cup".into())],
    };
    let e = t.publish(&digest).await;
    t.consumed(&e.id).await;
    let stored = t.notifications(id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].0, "RECOMMENDATION");
    assert!(stored[1].2.contains("- Teapot\n- Cup"), "{}", stored[1].2);

    let off = UpdatePreferencesRequest {
        recommendations: Some(false),
        ..Default::default()
    };
    t.set_preferences(&dee, off).await;
    let e = t
        .publish(&RecommendationDigest {
            digest_id: new_id(),
            ..digest
        })
        .await;
    t.consumed(&e.id).await;
    assert_eq!(t.notifications(id).await.len(), 2);
}

async fn newer_profile_wins_and_mail_waits_for_an_address(t: &Harness) {
    // An order update for a user whose registration has not arrived: stored, mail held back.
    let eve = new_id();
    let e = t
        .publish(&status_changed(&eve, &new_id(), OrderStatus::Confirmed))
        .await;
    t.consumed(&e.id).await;
    eventually("a failed attempt for want of an address", || async {
        t.mails(&eve)
            .await
            .first()
            .is_some_and(|(_, attempts, _)| *attempts >= 1)
    })
    .await;
    let (status, _, error) = t.mails(&eve).await.remove(0);
    assert_eq!(status, "PENDING");
    assert!(error.unwrap_or_default().contains("no email address"));

    let mut reg = registered(&eve, "Eve");
    reg.registered_at = 2_000;
    let e = t.publish(&reg).await;
    t.consumed(&e.id).await;
    t.all_mail_sent().await;

    // An older profile does not overwrite the newer one; a newer one does.
    let profile = |email: &str, updated_at| UserProfileUpdated {
        user_id: eve.clone(),
        email: email.into(),
        name: "Eve".into(),
        phone: None,
        address: None,
        updated_at,
    };
    let e = t.publish(&profile("old@example.com", 1_000)).await;
    t.consumed(&e.id).await;
    let email = || async {
        sqlx::query_scalar::<_, String>("SELECT email FROM users WHERE user_id = $1")
            .bind(&eve)
            .fetch_one(t.db.pool())
            .await
            .unwrap()
    };
    assert_eq!(email().await, "eve@example.com");
    let e = t.publish(&profile("eve@new.example.com", 3_000)).await;
    t.consumed(&e.id).await;
    assert_eq!(email().await, "eve@new.example.com");

    let e = t
        .publish(&status_changed(&eve, &new_id(), OrderStatus::Confirmed))
        .await;
    t.consumed(&e.id).await;
    t.all_mail_sent().await;
    let last: String = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(&eve)
    .fetch_one(t.db.pool())
    .await
    .unwrap();
    let eml = std::fs::read_to_string(
        t.platform
            .dir
            .path()
            .join("mail")
            .join(format!("{last}.eml")),
    )
    .expect("the .eml file");
    assert_eq!(smtp::parse(&eml).header("to"), "eve@new.example.com");
}

/// Status changes delivered in one batch (applied set-based) store the same notifications and
/// mail as the same changes delivered one at a time: opt-outs honoured, a change told twice
/// notified once, a user not yet known still notified (their mail waits for an address), and a
/// redelivered batch changes nothing.
async fn order_updates_in_one_batch_match_one_at_a_time(t: &Harness) {
    let (ann, dee) = (t.register("Ann").await, t.register("Dee").await);
    let bob = t.register("Bob").await;
    let off = UpdatePreferencesRequest {
        order_updates: Some(false),
        ..Default::default()
    };
    t.set_preferences(&bob, off).await;
    let (cid, eve) = (new_id(), new_id()); // never registered
    let changes = |customer: &str, stranger: &str| {
        let (first, second) = (new_id(), new_id());
        vec![
            status_changed(customer, &first, OrderStatus::Confirmed),
            status_changed(user_id(&bob), &second, OrderStatus::Confirmed),
            status_changed(stranger, &second, OrderStatus::Rejected),
            status_changed(customer, &first, OrderStatus::Confirmed),
            status_changed(customer, &first, OrderStatus::Paid),
        ]
    };
    let batch: Vec<_> = changes(user_id(&ann), &cid)
        .iter()
        .map(|e| e.envelope("orders"))
        .collect();
    t.publish_together(&batch).await;
    for e in &batch {
        t.consumed(&e.id).await;
    }
    for e in changes(user_id(&dee), &eve) {
        let e = t.publish(&e).await;
        t.consumed(&e.id).await;
    }

    // The order updates' statuses, in the order they were stored.
    let updates = |stored: Vec<(String, String, String)>| -> Vec<String> {
        stored
            .into_iter()
            .filter(|(kind, _, _)| kind == "ORDER_UPDATE")
            .map(|(_, title, _)| title.rsplit(' ').next().unwrap_or_default().to_owned())
            .collect()
    };
    let ann_got = updates(t.notifications(user_id(&ann)).await);
    assert_eq!(ann_got, ["CONFIRMED", "PAID"]);
    assert_eq!(ann_got, updates(t.notifications(user_id(&dee)).await));
    assert_eq!(
        t.notifications(user_id(&bob)).await.len(),
        1,
        "only the welcome"
    );
    for stranger in [&cid, &eve] {
        let got = t.notifications(stranger).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.ends_with("is REJECTED"), "{got:?}");
        let mails = t.mails(stranger).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].0, "PENDING", "no address to send it to yet");
    }
    assert_eq!(t.mails(user_id(&ann)).await.len(), 3);

    // The whole batch delivered again: nothing new.
    for e in &batch {
        t.deliver(e, 2).await;
    }
    assert_eq!(t.notifications(user_id(&ann)).await.len(), 3);
    assert_eq!(t.notifications(&cid).await.len(), 1);
}
