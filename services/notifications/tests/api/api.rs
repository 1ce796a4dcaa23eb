//! The internal API: a user's own notifications (pages, unread filter), marking read, and
//! preferences — with the authorization rules each operation promises.

use bazaar_contracts::notifications::{
    ListNotificationsRequest, NotificationKind, Preferences, UpdatePreferencesRequest,
};
use bazaar_contracts::orders::OrderStatus;
use bazaar_contracts::{ErrorCode, Principal, Role};
use bazaar_db::new_id;

use crate::events::status_changed;
use crate::support::{Harness, user_id};

crate::scenarios!(
    listing_pages_newest_first: Files,
    marking_read_is_for_owners_only: Files,
    preferences_are_private: Files,
);

fn page(first: i64, after: Option<&str>, unread_only: bool) -> ListNotificationsRequest {
    ListNotificationsRequest {
        first,
        after: after.map(str::to_owned),
        unread_only,
    }
}

/// A user with a welcome and `updates` order updates.
async fn user_with_updates(t: &Harness, name: &str, updates: usize) -> Principal {
    let p = t.register(name).await;
    let order = new_id();
    let statuses = [
        OrderStatus::Confirmed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ];
    for to in statuses.into_iter().take(updates) {
        let e = t.publish(&status_changed(user_id(&p), &order, to)).await;
        t.consumed(&e.id).await;
    }
    p
}

async fn listing_pages_newest_first(t: &Harness) {
    let ann = user_with_updates(t, "Ann", 4).await;
    let _bob = user_with_updates(t, "Bob", 1).await;

    let first = t.client.list(&ann, &page(2, None, false)).await.unwrap();
    assert_eq!(first.total_count, 5);
    assert!(first.has_next_page);
    let titles: Vec<&str> = first.items.iter().map(|n| n.title.as_str()).collect();
    assert!(
        titles[0].ends_with("is DELIVERED") && titles[1].ends_with("is SHIPPED"),
        "{titles:?}"
    );
    assert!(
        first
            .items
            .iter()
            .all(|n| n.user_id == user_id(&ann) && !n.read)
    );

    let rest = t
        .client
        .list(&ann, &page(10, Some(&first.items[1].id), false))
        .await
        .unwrap();
    assert!(!rest.has_next_page);
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.items[2].kind, NotificationKind::Welcome);
    assert!(rest.items.windows(2).all(|w| w[0].id > w[1].id));

    t.client.mark_read(&ann, &first.items[0].id).await.unwrap();
    let unread = t.client.list(&ann, &page(10, None, true)).await.unwrap();
    assert_eq!(unread.total_count, 4);
    assert!(unread.items.iter().all(|n| n.id != first.items[0].id));
    let none = t.client.list(&ann, &page(0, None, false)).await.unwrap();
    assert!(none.items.is_empty() && none.has_next_page && none.total_count == 5);

    for bad in [-1, 101] {
        let err = t
            .client
            .list(&ann, &page(bad, None, false))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadUserInput);
        assert_eq!(err.field.as_deref(), Some("first"));
    }
    let err = t
        .client
        .list(&Principal::anonymous(), &page(10, None, false))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
}

async fn marking_read_is_for_owners_only(t: &Harness) {
    let ann = user_with_updates(t, "Ann", 2).await;
    let bob = user_with_updates(t, "Bob", 1).await;
    let anns = t
        .client
        .list(&ann, &page(10, None, false))
        .await
        .unwrap()
        .items;

    let err = t.client.mark_read(&bob, &anns[0].id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = t.client.mark_read(&ann, "no-such-id").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = t
        .client
        .mark_read(&Principal::anonymous(), &anns[0].id)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);

    let read = t.client.mark_read(&ann, &anns[0].id).await.unwrap();
    assert!(read.read);
    assert_eq!(read.id, anns[0].id);
    // Marking again is harmless and still answers with the notification.
    assert!(t.client.mark_read(&ann, &anns[0].id).await.unwrap().read);

    assert_eq!(t.client.mark_all_read(&ann).await.unwrap(), 2);
    assert_eq!(t.client.mark_all_read(&ann).await.unwrap(), 0);
    let bobs = t.client.list(&bob, &page(10, None, true)).await.unwrap();
    assert_eq!(bobs.total_count, 2, "Bob's notifications were touched");
}

async fn preferences_are_private(t: &Harness) {
    let ann = t.register("Ann").await;
    let bob = t.register("Bob").await;
    let ann_id = user_id(&ann).to_owned();

    assert_eq!(
        t.client.preferences(&ann, &ann_id).await.unwrap(),
        Preferences::default()
    );
    let change = UpdatePreferencesRequest {
        promotions: Some(false),
        ..Default::default()
    };
    let updated = t.client.update_preferences(&ann, &change).await.unwrap();
    let expected = Preferences {
        order_updates: true,
        promotions: false,
        recommendations: true,
    };
    assert_eq!(updated, expected);
    let change = UpdatePreferencesRequest {
        recommendations: Some(false),
        ..Default::default()
    };
    let updated = t.client.update_preferences(&ann, &change).await.unwrap();
    assert!(!updated.promotions && !updated.recommendations && updated.order_updates);

    let err = t.client.preferences(&bob, &ann_id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let admin = Principal::user("admin-1", Role::Admin);
    assert_eq!(
        t.client.preferences(&admin, &ann_id).await.unwrap(),
        updated
    );
    let err = t
        .client
        .preferences(&Principal::anonymous(), &ann_id)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    let err = t
        .client
        .update_preferences(&Principal::anonymous(), &change)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    // Bob's are untouched.
    let bob_id = user_id(&bob).to_owned();
    assert_eq!(
        t.client.preferences(&bob, &bob_id).await.unwrap(),
        Preferences::default()
    );
}
