//! Retention deletes exactly the expired rows, across many chunks and by composite keys, on
//! SQLite and on PostgreSQL (when reachable at 127.0.0.1:5432; skipped, and said so, if not,
//! unless BAZAAR_REQUIRE_BACKENDS=1).

use std::time::Duration;

use bazaar_db::{Db, DbTarget, Prune, now_millis, prune, sqlx};

async fn expired_rows_go_and_fresh_rows_stay(db: &Db) {
    sqlx::query(
        "CREATE TABLE seen (consumer TEXT NOT NULL, event_id TEXT NOT NULL,
         seen_at BIGINT NOT NULL, PRIMARY KEY (consumer, event_id))",
    )
    .execute(db.pool())
    .await
    .expect("create table");
    let now = now_millis();
    let old = now - 3_600_000;
    // 2 500 old rows (three chunks) over two consumers, and 10 fresh ones.
    let mut tx = db.begin().await.expect("begin");
    for (i, seen_at) in (0..2_510).map(|i| (i, if i < 2_500 { old } else { now })) {
        sqlx::query("INSERT INTO seen (consumer, event_id, seen_at) VALUES ($1, $2, $3)")
            .bind(if i % 2 == 0 { "a" } else { "b" })
            .bind(format!("e{i}"))
            .bind(seen_at)
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let rule = Prune {
        table: "seen",
        key: "consumer, event_id",
        expired: "seen_at < $1",
        keep: Duration::from_secs(60),
    };
    let deleted = prune(db, std::slice::from_ref(&rule)).await.expect("prune");
    assert_eq!(deleted, vec![("seen", 2_500)]);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seen")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(left, 10);
    assert_eq!(prune(db, &[rule]).await.expect("again"), vec![("seen", 0)]);
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(&DbTarget::SqliteFile(dir.path().join("p.db")))
        .await
        .expect("sqlite");
    expired_rows_go_and_fresh_rows_stay(&db).await;
}

#[tokio::test]
async fn postgres() {
    let url = "postgres://postgres@127.0.0.1:5432/postgres";
    let schema = format!("prune_{}", uuid::Uuid::now_v7().simple());
    let target = DbTarget::Postgres {
        url: url.into(),
        schema: schema.clone(),
        pool_size: 2,
    };
    let db = match Db::connect(&target).await {
        Ok(db) => db,
        Err(e) if std::env::var("BAZAAR_REQUIRE_BACKENDS").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: PostgreSQL unreachable ({e})");
            return;
        }
        Err(e) => panic!("PostgreSQL required: {e}"),
    };
    expired_rows_go_and_fresh_rows_stay(&db).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(db.pool())
    .await
    .expect("drop schema");
}
