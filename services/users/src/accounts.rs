//! Account use cases: register, sign in, rotate refresh tokens, sign out, edit profiles and
//! roles. Each state change and its event commit in one transaction.

use std::sync::{Arc, LazyLock};

use bazaar_auth::{hash_password, hash_refresh_token, new_refresh_token};
use bazaar_bus::EventTx;
use bazaar_cache::Cache;
use bazaar_contracts::events::{Event, UserProfileUpdated, UserRegistered};
use bazaar_contracts::users::{
    AuthResult, LoginRequest, RegisterRequest, UpdateProfileRequest, User,
};
use bazaar_contracts::{ApiError, Principal, Role};
use bazaar_db::{new_id, now_millis};
use bazaar_runtime::ServiceResult;
use bazaar_runtime::config::write_private;

use crate::app::{Accounts, SERVICE};
use crate::domain::{Email, Password, address, phone, required_text};
use crate::store;

/// Verified against when the email is unknown, so that an unknown account and a wrong
/// password take the same time and cannot be told apart.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a real password").unwrap_or_default());

impl Accounts {
    fn cache(&self) -> &Arc<dyn Cache> {
        &self.platform.cache
    }

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

    pub async fn login(
        &self,
        principal: &Principal,
        req: LoginRequest,
    ) -> ServiceResult<AuthResult> {
        let email = req.email.trim().to_lowercase();
        self.check_login_limits(principal, &email).await?;
        let found = store::credentials_by_email(&self.db, &email).await?;
        let (user, phc) = match found {
            Some((user, phc)) => (Some(user), phc),
            None => (None, DUMMY_HASH.clone()),
        };
        let password_ok = self.gate.verify(req.password, phc).await?;
        let user = match user {
            Some(user) if password_ok => user,
            _ => return Err(ApiError::unauthenticated("wrong email or password").into()),
        };
        let mut tx = self.outbox.begin().await?;
        let auth = self.start_session(&mut tx, user).await?;
        tx.commit().await?;
        Ok(auth)
    }

    /// Counts the attempt against the account and the client address; over either limit the
    /// attempt is refused before the password is even checked.
    async fn check_login_limits(&self, principal: &Principal, email: &str) -> ServiceResult<()> {
        let settings = &self.platform.settings;
        let per_account = settings.login_limit_per_account;
        self.count_attempt(
            format!("login:account:{email}"),
            per_account,
            "sign-in attempts",
        )
        .await?;
        if let Some(ip) = &principal.client_ip {
            let per_ip = settings.login_limit_per_ip;
            self.count_attempt(format!("login:ip:{ip}"), per_ip, "sign-in attempts")
                .await?;
        }
        Ok(())
    }

    /// Counts one attempt under `key` in the current window; RATE_LIMITED over `limit`.
    async fn count_attempt(&self, key: String, limit: u64, what: &str) -> ServiceResult<()> {
        let window = self.platform.settings.login_limit_window;
        let count = self
            .cache()
            .incr_window(&key, window)
            .await
            .map_err(ApiError::internal)?;
        if count > limit {
            return Err(ApiError::rate_limited(
                format!("too many {what}; try again in {} seconds", window.as_secs()),
                window.as_secs(),
            )
            .into());
        }
        Ok(())
    }

    /// Issues an access token and the first refresh token of a new family.
    async fn start_session(&self, tx: &mut EventTx, user: User) -> ServiceResult<AuthResult> {
        self.issue(tx, user, &new_id()).await
    }

    async fn issue(
        &self,
        tx: &mut EventTx,
        user: User,
        family_id: &str,
    ) -> ServiceResult<AuthResult> {
        let refresh_token = new_refresh_token();
        let expires_at = now_millis() + self.platform.settings.refresh_token_ttl.as_millis() as i64;
        store::insert_refresh_token(
            tx,
            &hash_refresh_token(&refresh_token),
            family_id,
            &user.id,
            expires_at,
        )
        .await?;
        let tokens = &self.platform.tokens;
        let access_token = tokens
            .issue(&user.id, user.role.as_str())
            .map_err(ApiError::internal)?;
        Ok(AuthResult {
            access_token,
            refresh_token,
            expires_in: tokens.ttl_secs(),
            user,
        })
    }

    /// Rotates a refresh token. Presenting one that was already used means it leaked (or a
    /// client replayed it): the whole family is revoked, signing out every holder.
    pub async fn refresh(&self, token: &str) -> ServiceResult<AuthResult> {
        let invalid = || ApiError::unauthenticated("invalid or expired refresh token");
        let token_hash = hash_refresh_token(token);
        let mut tx = self.outbox.begin().await?;
        let Some(stored) = store::refresh_token(&mut tx, &token_hash).await? else {
            return Err(invalid().into());
        };
        if stored.revoked || stored.expires_at <= now_millis() {
            return Err(invalid().into());
        }
        if stored.used || !store::mark_refresh_token_used(&mut tx, &token_hash).await? {
            store::revoke_family(&mut tx, &stored.family_id).await?;
            tx.commit().await?;
            tracing::warn!(user_id = %stored.user_id, "refresh token reused; session family revoked");
            return Err(ApiError::unauthenticated(
                "refresh token already used; please sign in again",
            )
            .into());
        }
        let Some(user) = store::user_by_id_tx(&mut tx, &stored.user_id).await? else {
            return Err(invalid().into());
        };
        let auth = self.issue(&mut tx, user, &stored.family_id).await?;
        tx.commit().await?;
        Ok(auth)
    }

    /// Ends the session the refresh token belongs to. False when the token is unknown.
    pub async fn logout(&self, token: &str) -> ServiceResult<bool> {
        let mut tx = self.outbox.begin().await?;
        let Some(stored) = store::refresh_token(&mut tx, &hash_refresh_token(token)).await? else {
            return Ok(false);
        };
        store::revoke_family(&mut tx, &stored.family_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn update_profile(
        &self,
        principal: &Principal,
        req: UpdateProfileRequest,
    ) -> ServiceResult<User> {
        let caller = principal.require_user()?;
        let name = req
            .name
            .as_deref()
            .map(|n| required_text(n, "input.name", 100))
            .transpose()?;
        let new_phone = match req.phone.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(p) => Some(Some(phone(p, "input.phone")?)),
        };
        let new_address = req
            .address
            .as_ref()
            .map(|a| address(a, "input.address"))
            .transpose()?;
        let mut tx = self.outbox.begin().await?;
        let Some(current) = store::user_by_id_tx(&mut tx, &caller.id).await? else {
            return Err(ApiError::not_found("user not found").into());
        };
        let name = name.unwrap_or(current.name);
        let phone = new_phone.unwrap_or(current.phone);
        let address = new_address.or(current.address);
        let user = store::update_profile(&mut tx, &caller.id, &name, &phone, &address)
            .await?
            .ok_or_else(|| ApiError::not_found("user not found"))?;
        let event = UserProfileUpdated {
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            phone: user.phone.clone(),
            address: user.address.clone(),
            updated_at: user.updated_at,
        };
        tx.emit(&event.envelope(SERVICE)).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn set_role(
        &self,
        principal: &Principal,
        id: &str,
        role: Role,
    ) -> ServiceResult<User> {
        principal.require_admin()?;
        let mut tx = self.outbox.begin().await?;
        let Some(current) = store::user_by_id_tx(&mut tx, id).await? else {
            return Err(ApiError::not_found("user not found").into());
        };
        if current.role == Role::Admin
            && role != Role::Admin
            && store::count_admins(&mut tx).await? <= 1
        {
            return Err(ApiError::conflict("cannot remove the last admin").into());
        }
        let user = store::set_role(&mut tx, id, role)
            .await?
            .ok_or_else(|| ApiError::not_found("user not found"))?;
        tx.commit().await?;
        Ok(user)
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
