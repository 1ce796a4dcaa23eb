//! PostgreSQL over TLS for real: `sslmode=require` against the machine's server, and
//! `verify-ca`/`verify-full` against a throwaway cluster serving a certificate signed by a CA
//! this test generates; a wrong CA fails with an error naming the setting.

use bazaar_db::{Db, DbError, DbTarget, sqlx};
use bazaar_testkit::postgres::TlsCluster;

const SHARED: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Whether this connection is encrypted, as the server sees it.
async fn ssl_in_use(db: &Db) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(db.pool())
        .await
        .expect("pg_stat_ssl")
}

/// A schema of this run's own: `Db::connect` creates it, [`drop_schema`] removes it again.
fn schema() -> String {
    format!("tls_check_{}", std::process::id())
}

async fn connect(url: String) -> Result<Db, DbError> {
    Db::connect(&DbTarget::Postgres {
        url,
        schema: schema(),
        pool_size: 2,
    })
    .await
}

async fn drop_schema(db: &Db) {
    let drop = format!("DROP SCHEMA IF EXISTS \"{}\"", schema());
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(db.pool())
        .await
        .expect("drop the test schema");
}

#[tokio::test]
async fn postgres_require_encrypts_and_disable_does_not() {
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect("127.0.0.1:5432"),
    )
    .await;
    if !matches!(reachable, Ok(Ok(_))) {
        let _: Option<()> = bazaar_testkit::skip("PostgreSQL at 127.0.0.1:5432 unreachable");
        return;
    }
    let db = connect(format!("{SHARED}?sslmode=require"))
        .await
        .expect("sslmode=require connects (is ssl on in the shared server?)");
    assert!(ssl_in_use(&db).await, "sslmode=require but not encrypted");
    db.close().await;
    let db = connect(format!("{SHARED}?sslmode=disable")).await.unwrap();
    assert!(!ssl_in_use(&db).await, "sslmode=disable but encrypted");
    drop_schema(&db).await;
    db.close().await;
}

#[tokio::test]
async fn postgres_verify_full_checks_the_ca_and_the_host_name() {
    let dir = tempfile::tempdir().unwrap();
    // The certificate names localhost only, so 127.0.0.1 passes verify-ca but not verify-full.
    let Some((cluster, pki, other)) = TlsCluster::for_localhost(dir.path()) else {
        return;
    };
    let url = |host: &str, mode: &str, ca: &std::path::Path| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
            cluster.port,
            ca.display()
        )
    };

    let db = connect(url("localhost", "verify-full", &pki.ca))
        .await
        .unwrap_or_else(|e| panic!("verify-full with our CA: {e}\n{}", cluster.log()));
    assert!(ssl_in_use(&db).await);
    db.close().await;

    let db = connect(url("127.0.0.1", "verify-ca", &pki.ca))
        .await
        .expect("verify-ca ignores the host name");
    assert!(ssl_in_use(&db).await);
    db.close().await;

    let wrong_host = connect(url("127.0.0.1", "verify-full", &pki.ca)).await;
    let err = wrong_host.expect_err("verify-full accepted a certificate for another host");
    assert!(
        err.to_string().contains("TLS to PostgreSQL failed"),
        "{err}"
    );

    let wrong_ca = connect(url("localhost", "verify-full", &other.ca)).await;
    let err = wrong_ca.expect_err("verify-full accepted a certificate from another CA");
    let message = err.to_string();
    assert!(
        message.contains("BAZAAR_DATABASE_CA_FILE") && message.contains("sslrootcert"),
        "the error does not name the setting: {message}"
    );
}
