//! SQLite group commit: concurrent writers that share one `COMMIT` keep exactly what each of
//! them committed, lose exactly what each rolled back or abandoned, and see their writes
//! as soon as `commit` returns.

use std::sync::Arc;
use std::time::Duration;

use bazaar_db::{Db, DbTarget, sqlx};

const WRITERS: i64 = 200;

/// What writer `i` does with its transaction.
fn fate(i: i64) -> &'static str {
    match i % 10 {
        3 => "rollback",
        7 => "abandon",
        9 => "conflict",
        _ => "commit",
    }
}

async fn open(dir: &tempfile::TempDir) -> Db {
    let db = Db::connect(&DbTarget::SqliteFile(dir.path().join("g.db")))
        .await
        .expect("sqlite");
    sqlx::query("CREATE TABLE rows (id BIGINT PRIMARY KEY, writer BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .expect("create");
    // Row 0 is there from the start, so each "conflict" writer collides with it.
    sqlx::query("INSERT INTO rows (id, writer) VALUES (0, -1)")
        .execute(db.pool())
        .await
        .expect("seed");
    db
}

/// One writer: two rows (the second one `conflict` writers put on row 0, which fails), then
/// its fate. Returns whether its rows must be there.
async fn write(db: &Db, i: i64) -> bool {
    let mut tx = db.begin().await.expect("begin");
    let insert = "INSERT INTO rows (id, writer) VALUES ($1, $2)";
    sqlx::query(insert)
        .bind(i * 2 + 1)
        .bind(i)
        .execute(&mut *tx)
        .await
        .expect("first row");
    tokio::task::yield_now().await;
    let second = if fate(i) == "conflict" { 0 } else { i * 2 + 2 };
    let inserted = sqlx::query(insert)
        .bind(second)
        .bind(i)
        .execute(&mut *tx)
        .await;
    match fate(i) {
        "commit" => {
            inserted.expect("second row");
            tx.commit().await.expect("commit");
            // Read-your-writes on another connection, the moment commit returns.
            let mine: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows WHERE writer = $1")
                .bind(i)
                .fetch_one(db.pool())
                .await
                .expect("read back");
            assert_eq!(mine, 2, "writer {i} committed but does not see its rows");
            true
        }
        "conflict" => {
            assert!(inserted.is_err(), "row 0 exists: the insert must fail");
            tx.rollback()
                .await
                .expect("rollback after a failed statement");
            false
        }
        "rollback" => {
            tx.rollback().await.expect("rollback");
            false
        }
        _ => false, // abandoned: dropped unfinished, as an early `?` return would
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_exactly_what_they_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(open(&dir).await);
    let writers = (0..WRITERS).map(|i| {
        let db = db.clone();
        tokio::spawn(async move { (i, write(&db, i).await) })
    });
    let mut expected = Vec::new();
    for writer in wait_all(writers).await {
        let (i, kept) = writer.expect("writer panicked");
        if kept {
            expected.extend([i * 2 + 1, i * 2 + 2]);
        }
    }
    // Abandoned members finish on a task of their own: give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    expected.insert(0, 0);
    expected.sort_unstable();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM rows ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("rows");
    assert_eq!(ids, expected);
    // The file takes a new writer afterwards, and reopens with the same rows.
    write(&db, WRITERS).await;
    db.close().await;
    let again = Db::connect(&DbTarget::SqliteFile(dir.path().join("g.db")))
        .await
        .expect("reopen");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows")
        .fetch_one(again.pool())
        .await
        .expect("count");
    assert_eq!(count as usize, expected.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_and_durable_writers_on_one_file_share_its_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let durable = Arc::new(open(&dir).await);
    let relaxed = Arc::new(
        Db::connect_sqlite_relaxed(&dir.path().join("g.db"))
            .await
            .expect("relaxed"),
    );
    let writers = (1..=100).map(|i| {
        let db = if i % 2 == 0 {
            durable.clone()
        } else {
            relaxed.clone()
        };
        tokio::spawn(async move {
            let mut tx = db.begin().await.expect("begin");
            sqlx::query("INSERT INTO rows (id, writer) VALUES ($1, $1)")
                .bind(i)
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        })
    });
    for writer in wait_all(writers).await {
        writer.expect("writer panicked");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows")
        .fetch_one(durable.pool())
        .await
        .expect("count");
    assert_eq!(count, 101);
}

async fn wait_all<T>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await);
    }
    results
}
