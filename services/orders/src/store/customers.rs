//! The customer replica: contact details and profile address copied from the users
//! service's events, so placing an order never has to call it.

use bazaar_contracts::users::Address;
use bazaar_db::{DbError, sqlx};

use super::Conn;

/// A customer as the latest applied users event described them.
pub struct Customer<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub address: Option<&'a Address>,
    /// When the users service made this state (registration or profile update time).
    pub updated_at: i64,
}

impl<'a> Customer<'a> {
    /// The profile an event carries (a registration or a profile update), as the users
    /// service had it at `updated_at`.
    pub fn of(
        user_id: &'a str,
        email: &'a str,
        name: &'a str,
        phone: &'a Option<String>,
        address: &'a Option<Address>,
        updated_at: i64,
    ) -> Self {
        Customer {
            user_id,
            email,
            name,
            phone: phone.as_deref(),
            address: address.as_ref(),
            updated_at,
        }
    }
}

/// Stores `customer` unless what is stored is newer. True when it was stored.
pub async fn upsert_customer(conn: &mut Conn, customer: &Customer<'_>) -> Result<bool, DbError> {
    // Serialising a plain struct of strings cannot fail.
    let address = customer.address.and_then(|a| serde_json::to_string(a).ok());
    let done = sqlx::query(
        "INSERT INTO customers (user_id, email, name, phone, address, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, name = excluded.name,
             phone = excluded.phone, address = excluded.address, updated_at = excluded.updated_at
         WHERE customers.updated_at <= excluded.updated_at",
    )
    .bind(customer.user_id)
    .bind(customer.email)
    .bind(customer.name)
    .bind(customer.phone)
    .bind(address)
    .bind(customer.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The address on the customer's profile, if we know the customer and they have one.
pub async fn customer_address(conn: &mut Conn, user_id: &str) -> Result<Option<Address>, DbError> {
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT address FROM customers WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(stored.flatten().and_then(|a| serde_json::from_str(&a).ok()))
}
