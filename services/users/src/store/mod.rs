//! The users service's SQL: accounts and refresh-token families.

use bazaar_contracts::users::{Address, User};
use bazaar_contracts::{ApiError, Role};
use bazaar_db::{Db, DbError, Migration, Prune, Tx, now_millis, sqlx};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_users",
        sql: "
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('CUSTOMER', 'ADMIN')),
            phone TEXT,
            address TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            family_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users (id),
            expires_at BIGINT NOT NULL,
            used_at BIGINT,
            revoked_at BIGINT,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
    ",
    },
    Migration {
        version: "0002_refresh_token_expiry",
        sql: "CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);",
    },
];

/// Refresh tokens a day past their expiry can be neither used nor reused: they go.
pub fn retention() -> Vec<Prune> {
    vec![Prune {
        table: "refresh_tokens",
        key: "token_hash",
        expired: "expires_at < $1",
        keep: std::time::Duration::from_secs(86_400),
    }]
}

const USER_COLUMNS: &str = "id, email, name, role, phone, address, created_at, updated_at";

type UserRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn to_user(row: UserRow) -> User {
    let (id, email, name, role, phone, address, created_at, updated_at) = row;
    User {
        id,
        email,
        name,
        role: Role::parse(&role).unwrap_or(Role::Customer),
        phone,
        address: address.and_then(|a| serde_json::from_str(&a).ok()),
        created_at,
        updated_at,
    }
}

fn address_json(address: &Option<Address>) -> Option<String> {
    address.as_ref().and_then(|a| serde_json::to_string(a).ok())
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub role: Role,
}

pub async fn insert_user(tx: &mut Tx, user: &NewUser<'_>) -> Result<User, DbError> {
    let now = now_millis();
    let sql = format!(
        "INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
    );
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user.id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.name)
        .bind(user.role.as_str())
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    Ok(to_user(row))
}

pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(to_user))
}

pub async fn user_by_id_tx(tx: &mut Tx, id: &str) -> Result<Option<User>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(to_user))
}

pub async fn users_by_ids(db: &Db, ids: &[String]) -> Result<Vec<User>, DbError> {
    let mut users = Vec::with_capacity(ids.len());
    // Batches arrive from the gateway's DataLoader, bounded in size; one query per 100 ids.
    for chunk in ids.chunks(100) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id);
        }
        users.extend(query.fetch_all(db.pool()).await?.into_iter().map(to_user));
    }
    Ok(users)
}

/// The user with this (normalised) email and their password hash.
pub async fn credentials_by_email(db: &Db, email: &str) -> Result<Option<(User, String)>, DbError> {
    let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
    // The user's columns, then the password hash.
    type CredentialsRow = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
        i64,
        String,
    );
    let row: Option<CredentialsRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    Ok(
        row.map(|(id, email, name, role, phone, address, c, u, hash)| {
            (to_user((id, email, name, role, phone, address, c, u)), hash)
        }),
    )
}

pub async fn update_profile(
    tx: &mut Tx,
    id: &str,
    name: &str,
    phone: &Option<String>,
    address: &Option<Address>,
) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE users SET name = $2, phone = $3, address = $4, updated_at = $5 WHERE id = $1 RETURNING {USER_COLUMNS}"
    );
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(name)
        .bind(phone.clone())
        .bind(address_json(address))
        .bind(now_millis())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(to_user))
}

pub async fn set_role(tx: &mut Tx, id: &str, role: Role) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING {USER_COLUMNS}"
    );
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(role.as_str())
        .bind(now_millis())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(to_user))
}

pub async fn set_password_hash(tx: &mut Tx, id: &str, hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn count_admins(tx: &mut Tx) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'ADMIN'")
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// A page of users ordered by id (ids are time-ordered, so newest last), after `after`.
pub async fn list_users(
    db: &Db,
    first: i64,
    after: Option<&str>,
) -> Result<(Vec<User>, bool, i64), DbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2");
    let mut rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after.unwrap_or(""))
        .bind(first + 1)
        .fetch_all(db.pool())
        .await?;
    let has_next = rows.len() as i64 > first;
    rows.truncate(first as usize);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await?;
    Ok((rows.into_iter().map(to_user).collect(), has_next, total))
}

pub async fn insert_refresh_token(
    tx: &mut Tx,
    token_hash: &str,
    family_id: &str,
    user_id: &str,
    expires_at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(user_id)
    .bind(expires_at)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The state of a presented refresh token.
pub struct StoredRefreshToken {
    pub family_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
}

pub async fn refresh_token(
    tx: &mut Tx,
    token_hash: &str,
) -> Result<Option<StoredRefreshToken>, DbError> {
    // family, user, expires at, used at, revoked at
    type RefreshRow = (String, String, i64, Option<i64>, Option<i64>);
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(
        |(family_id, user_id, expires_at, used, revoked)| StoredRefreshToken {
            family_id,
            user_id,
            expires_at,
            used: used.is_some(),
            revoked: revoked.is_some(),
        },
    ))
}

/// Marks the token used; false when it was already used (a concurrent refresh won).
pub async fn mark_refresh_token_used(tx: &mut Tx, token_hash: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(token_hash)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke_family(tx: &mut Tx, family_id: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Maps a storage failure on insert: a duplicate email is a CONFLICT the client can act on.
pub fn duplicate_email(e: DbError) -> bazaar_runtime::ServiceError {
    if e.is_unique_violation() {
        ApiError::conflict("an account with this email already exists").into()
    } else {
        e.into()
    }
}
