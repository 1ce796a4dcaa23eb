//! The promotion announcer with two replicas running it: one PROMOTION notification (and one
//! mail) per opted-in user and running promotion, none for those who opted out, none for
//! promotions not running.

use std::time::Duration;

use bazaar_contracts::catalog::Promotion;
use bazaar_contracts::events::{Event, PromotionCreated, PromotionEnded};
use bazaar_contracts::notifications::UpdatePreferencesRequest;
use bazaar_db::{new_id, now_millis, sqlx};
use bazaar_testkit::eventually;

use crate::support::{Harness, user_id};

crate::scenarios!(promotions_are_announced_once_per_opted_in_user: Smtp);

fn promotion(title: &str, starts_at: i64, ends_at: i64) -> PromotionCreated {
    let id = new_id();
    PromotionCreated {
        promotion_id: id.clone(),
        promotion: Promotion {
            id,
            title: title.into(),
            product_ids: vec!["p1".into(), "p2".into()],
            percent_off: 20,
            starts_at,
            ends_at,
            created_at: now_millis(),
        },
    }
}

async fn promotion_titles(t: &Harness, user: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT title FROM notifications WHERE user_id = $1 AND kind = 'PROMOTION' ORDER BY id",
    )
    .bind(user)
    .fetch_all(t.db.pool())
    .await
    .unwrap()
}

async fn promotions_are_announced_once_per_opted_in_user(t: &Harness) {
    t.start_replica().await;
    let ann = t.register("Ann").await;
    let bob = t.register("Bob").await;
    let cid = t.register("Cid").await;
    let off = UpdatePreferencesRequest {
        promotions: Some(false),
        ..Default::default()
    };
    t.set_preferences(&bob, off).await;
    let on = UpdatePreferencesRequest {
        promotions: Some(true),
        order_updates: Some(false),
        ..Default::default()
    };
    t.set_preferences(&cid, on).await;

    let now = now_millis();
    let hour = 3_600_000;
    let running = promotion("Spring sale", now - hour, now + hour);
    let later = promotion("Summer sale", now + hour, now + 2 * hour);
    let ended = promotion("Flash sale", now - hour, now + hour);
    for e in [&running, &later] {
        let env = t.publish(e).await;
        t.consumed(&env.id).await;
    }
    // Created and ended at once: a tick between the two would rightly announce it.
    let flash = [
        ended.envelope("test"),
        PromotionEnded {
            promotion_id: ended.promotion_id.clone(),
            ended_at: now - 1,
        }
        .envelope("test"),
    ];
    t.publish_together(&flash).await;
    t.consumed(&flash[1].id).await;

    for u in [&ann, &cid] {
        eventually("the running promotion announced", || async {
            !promotion_titles(t, user_id(u)).await.is_empty()
        })
        .await;
    }
    // More ticks, on both replicas: nothing new.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for u in [&ann, &cid] {
        assert_eq!(
            promotion_titles(t, user_id(u)).await,
            ["Spring sale: 20% off"]
        );
    }
    assert!(promotion_titles(t, user_id(&bob)).await.is_empty());

    // Someone who joins while it runs hears about it at a later tick, once.
    let dee = t.register("Dee").await;
    eventually("the newcomer told", || async {
        !promotion_titles(t, user_id(&dee)).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(promotion_titles(t, user_id(&dee)).await.len(), 1);

    // Running the job by hand, twice at once, changes nothing either.
    let (a, b) = tokio::join!(
        bazaar_notifications::announce(&t.db, now_millis()),
        bazaar_notifications::announce(&t.db, now_millis()),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));

    // Each mail (4 welcomes + 3 promotions) reached the server once, from two mailers.
    t.all_mail_sent().await;
    eventually("seven mails at the SMTP server", || async {
        t.smtp().messages().len() >= 7
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = t.smtp().message_ids();
    assert_eq!(ids.len(), 7, "{ids:?}");
    assert!(
        ids.values().all(|n| *n == 1),
        "a mail arrived twice: {ids:?}"
    );
    let promo = t
        .smtp()
        .messages()
        .into_iter()
        .find(|m| m.header("subject") == "Spring sale: 20% off")
        .expect("a promotion mail");
    assert!(promo.body.contains("20% off 2 products"), "{}", promo.body);

    let ticks: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT tick_at, COUNT(*) FROM schedule_ticks WHERE job = 'announce-promotions'
         GROUP BY tick_at HAVING COUNT(*) > 1",
    )
    .fetch_all(t.db.pool())
    .await
    .unwrap();
    assert!(ticks.is_empty(), "a tick was claimed twice: {ticks:?}");
}
