//! The recommendation digest: two replicas on one database with a per-second schedule send
//! exactly one digest per buyer per tick, with product names, skipping buyers with nothing
//! left to recommend.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bazaar_contracts::events::RecommendationDigest;
use bazaar_db::sqlx;
use bazaar_runtime::schedule::Schedule;
use bazaar_testkit::{Backend, events, eventually};

use crate::support::TestRecommendations;

bazaar_testkit::on_every_backend!(start = crate::digest::two_replicas_every_second; one_digest_per_user_per_tick);

async fn two_replicas_every_second(backend: Backend) -> Option<TestRecommendations> {
    let every_second = Schedule::parse("* * * * * *").expect("cron");
    TestRecommendations::start_with(backend, 2, Some(every_second)).await
}

/// Every `RecommendationDigest` in the outbox.
async fn digests(t: &TestRecommendations) -> Vec<RecommendationDigest> {
    events::emitted(&t.db, "RecommendationDigest")
        .await
        .iter()
        .map(|envelope| {
            assert_eq!(envelope.source, "recommendations");
            envelope.decode().expect("payload")
        })
        .collect()
}

fn named(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect()
}

async fn one_digest_per_user_per_tick(t: &TestRecommendations) {
    for (id, name) in [("A", "Apron"), ("B", "Bowl"), ("C", "Cup")] {
        t.product(id, name, 10).await;
    }
    t.bought("u1", "o1", &[("A", 1), ("B", 1)]).await;
    t.bought("u2", "o2", &[("A", 1), ("C", 1)]).await;
    // u3 bought everything there is: nothing to recommend, so no digest.
    t.bought("u3", "o3", &[("A", 1), ("B", 1), ("C", 1)]).await;
    t.settled().await;
    let want_u1 = named(&[("C", "Cup")]);
    let want_u2 = named(&[("B", "Bowl")]);
    eventually("a tick with the whole history", || async {
        let all = digests(t).await;
        all.iter()
            .any(|d| d.user_id == "u1" && d.products == want_u1)
            && all
                .iter()
                .any(|d| d.user_id == "u2" && d.products == want_u2)
    })
    .await;
    // A few more ticks, each raced for by both replicas.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let all = digests(t).await;
    let mut by_tick: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for d in &all {
        assert!(
            ids.insert(d.digest_id.clone()),
            "digest {} sent twice",
            d.digest_id
        );
        let (tick, user) = d.digest_id.split_once('-').expect("tick-user digest id");
        assert_eq!(user, d.user_id);
        assert_ne!(d.user_id, "u3", "a digest with nothing to recommend");
        by_tick
            .entry(tick.parse().expect("tick millis"))
            .or_default()
            .push(d.user_id.clone());
    }
    for (tick, users) in &by_tick {
        let distinct: BTreeSet<_> = users.iter().collect();
        assert_eq!(distinct.len(), users.len(), "tick {tick}: {users:?}");
    }
    let full_ticks = by_tick.values().filter(|users| users.len() == 2).count();
    assert!(full_ticks >= 2, "digests by tick: {by_tick:?}");
    // Every digest is recorded against its tick, and every tick was claimed once.
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM digests_sent")
        .fetch_one(t.db.pool())
        .await
        .expect("count digests_sent");
    assert_eq!(recorded, all.len() as i64);
    let claims: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM schedule_ticks WHERE job = 'recommendation-digest'",
    )
    .fetch_one(t.db.pool())
    .await
    .expect("count ticks");
    assert!(claims as usize >= by_tick.len());
}
