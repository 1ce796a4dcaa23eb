//! Registration: sign-ups (limited per client address) and the admin account that exists
//! after start-up. Each new account and its `UserRegistered` commit in one transaction.

use bazaar_contracts::events::{Event, UserRegistered};
use bazaar_contracts::users::{AuthResult, RegisterRequest, User};
use bazaar_contracts::{Principal, Role};
use bazaar_db::new_id;
use bazaar_runtime::ServiceResult;
use bazaar_runtime::config::write_private;

use crate::app::{Accounts, SERVICE};
use crate::domain::{Email, Password, required_text};
use crate::store;

impl Accounts {
    pub async fn register(
        &self,
        principal: &Principal,
        req: RegisterRequest,
    ) -> ServiceResult<AuthResult> {
        let email = Email::parse(&req.email, "input.email")?;
        let password = Password::parse(&req.password, "input.password")?;
        let name = required_text(&req.name, "input.name", 100)?;
        if let Some(ip) = &principal.client_ip {
            let limit = self.platform.settings.register_limit_per_ip;
            self.count_attempt(format!("register:ip:{ip}"), limit, "sign-ups")
                .await?;
        }
        let password_hash = self.gate.hash(password.expose().to_owned()).await?;
        let id = new_id();
        let mut tx = self.outbox.begin().await?;
        let user = store::insert_user(
            &mut tx,
            &store::NewUser {
                id: &id,
                email: email.as_str(),
                password_hash: &password_hash,
                name: &name,
                role: Role::Customer,
            },
        )
        .await
        .map_err(store::duplicate_email)?;
        tx.emit(&registered_event(&user).envelope(SERVICE)).await?;
        let auth = self.start_session(&mut tx, user).await?;
        tx.commit().await?;
        Ok(auth)
    }

    /// Makes sure an admin with these credentials exists (idempotent): creates the account,
    /// or promotes it and resets its password to the configured one.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> ServiceResult<User> {
        let email = Email::parse(email, "BAZAAR_ADMIN_EMAIL")?;
        let existing = store::credentials_by_email(&self.db, email.as_str()).await?;
        let mut tx = self.outbox.begin().await?;
        let user = match existing {
            Some((user, phc)) => {
                if !self.gate.verify(password.to_owned(), phc).await? {
                    let phc = self.gate.hash(password.to_owned()).await?;
                    store::set_password_hash(&mut tx, &user.id, &phc).await?;
                }
                store::set_role(&mut tx, &user.id, Role::Admin)
                    .await?
                    .unwrap_or(user)
            }
            None => {
                let id = new_id();
                let password_hash = self.gate.hash(password.to_owned()).await?;
                let new = store::NewUser {
                    id: &id,
                    email: email.as_str(),
                    password_hash: &password_hash,
                    name: "Administrator",
                    role: Role::Admin,
                };
                let user = store::insert_user(&mut tx, &new).await?;
                tx.emit(&registered_event(&user).envelope(SERVICE)).await?;
                user
            }
        };
        tx.commit().await?;
        Ok(user)
    }

    /// True when at least one admin exists.
    pub async fn has_admin(&self) -> ServiceResult<bool> {
        let mut tx = self.outbox.begin().await?;
        let n = store::count_admins(&mut tx).await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}

fn registered_event(user: &User) -> UserRegistered {
    UserRegistered {
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role.as_str().to_owned(),
        phone: user.phone.clone(),
        address: user.address.clone(),
        registered_at: user.created_at,
    }
}

/// The configured admin always exists after start-up. A fresh embedded start without one
/// gets an admin with a random password, printed once and kept in the data directory.
pub(crate) async fn bootstrap_admin(accounts: &Accounts) -> anyhow::Result<()> {
    let settings = &accounts.platform.settings;
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        let admin = accounts
            .ensure_admin(email, password.expose())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(admin_id = %admin.id, "admin account ready");
        return Ok(());
    }
    if accounts
        .has_admin()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        return Ok(());
    }
    if !settings.is_embedded() {
        tracing::warn!(
            "no admin account exists; set BAZAAR_ADMIN_EMAIL and BAZAAR_ADMIN_PASSWORD to create one"
        );
        return Ok(());
    }
    let email = "admin@bazaar.local";
    let password = bazaar_auth::new_refresh_token();
    accounts
        .ensure_admin(email, &password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = settings.data_dir.join("admin-credentials.txt");
    write_private(&path, &format!("email: {email}\npassword: {password}\n"))?;
    // Printed once, on the terminal of whoever started bazaar; never logged.
    println!(
        "\nCreated the first admin account:\n  email:    {email}\n  password: {password}\n(also saved to {})\n",
        path.display()
    );
    Ok(())
}
