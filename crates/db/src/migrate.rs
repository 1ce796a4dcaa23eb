//! A small forward-only migrator: each migration runs once, in its own transaction.
//!
//! One SQL text serves both engines; `{{id_seq}}` stands for an auto-incrementing 64-bit key,
//! the one column type the two spell differently. Migrations are never edited once released.

use sqlx::Executor;

use crate::{Db, DbError, Dialect, Result, now_millis};

/// One schema change: a unique, ordered version and its SQL (several statements allowed).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: &'static str,
    pub sql: &'static str,
}

impl Db {
    /// Applies every migration of `set` not applied yet, in order. Safe to run from several
    /// processes at once: PostgreSQL serialises them with an advisory lock, SQLite with its
    /// write lock.
    pub async fn migrate(&self, set: &str, migrations: &[Migration]) -> Result<()> {
        let mut tx = self.begin().await?;
        if self.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7411)")
                .execute(&mut *tx)
                .await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 migration_set TEXT NOT NULL,
                 version TEXT NOT NULL,
                 applied_at BIGINT NOT NULL,
                 PRIMARY KEY (migration_set, version))",
        )
        .await?;
        for m in migrations {
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT applied_at FROM schema_migrations WHERE migration_set = $1 AND version = $2",
            )
            .bind(set)
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_some() {
                continue;
            }
            let sql = m.sql.replace("{{id_seq}}", self.id_seq());
            tx.execute(sqlx::AssertSqlSafe(sql))
                .await
                .map_err(|source| DbError::Migration {
                    version: m.version,
                    source,
                })?;
            sqlx::query(
                "INSERT INTO schema_migrations (migration_set, version, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(set)
            .bind(m.version)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            // Debug: a first start applies dozens, which would bury the line saying where
            // bazaar listens (`bazaar migrate` and BAZAAR_LOG=debug show them).
            tracing::debug!(set, version = m.version, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    }

    fn id_seq(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        }
    }
}
