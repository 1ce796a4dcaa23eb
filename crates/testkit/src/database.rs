//! A throwaway database on the shared PostgreSQL server (127.0.0.1:5432, or the server whose
//! admin URL `BAZAAR_TEST_PG_URL` gives): a unique name per test, so suites running side by
//! side never see each other's rows, and dropped when the test is done.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// The shared server's maintenance database, which `CREATE DATABASE` runs from.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long an absent server may keep a test waiting before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// The admin URL of the server the tests use: `BAZAAR_TEST_PG_URL`, else [`ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("BAZAAR_TEST_PG_URL").unwrap_or_else(|_| ADMIN_URL.into())
}

/// `prefix` and a fresh UUID: a database (or namespace) name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// A database that exists until [`TestDatabase::drop`].
pub struct TestDatabase {
    pub name: String,
    /// Its URL: the admin URL's server and credentials, this database.
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a database named `{prefix}_<uuid>` on [`admin_url`]'s server. `Err` says why
    /// the server could not be reached, for the caller's skip message.
    pub async fn create(prefix: &str) -> Result<TestDatabase, String> {
        Self::create_named(unique_name(prefix)).await
    }

    /// Creates the database `name` (unique already) on [`admin_url`]'s server.
    pub async fn create_named(name: String) -> Result<TestDatabase, String> {
        let admin_url = admin_url();
        let mut admin = connect(&admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        // Same server and credentials, the new database (no query parameters expected).
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }

    /// [`TestDatabase::create`], or a skip (see [`crate::skip`]) naming `suite`, the tests
    /// that do not run without it.
    pub async fn create_or_skip(suite: &str, prefix: &str) -> Option<TestDatabase> {
        match Self::create(prefix).await {
            Ok(database) => Some(database),
            Err(why) => crate::skip(format!("{suite}: {why}")),
        }
    }

    /// Drops the database, closing the connections still open to it.
    pub async fn drop(self) -> Result<(), String> {
        let mut admin = connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await
            .map_err(|e| format!("drop {}: {e}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }
}

async fn connect(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(format!("PostgreSQL at {url} unreachable: {e}")),
        Err(_) => Err(format!(
            "PostgreSQL at {url} did not answer within {REACH_TIMEOUT:?}"
        )),
    }
}
