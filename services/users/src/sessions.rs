//! Sessions: sign in (limited per account and per address), rotate refresh tokens within
//! their family, sign out. Registration starts a session through here too.

use std::sync::{Arc, LazyLock};

use bazaar_auth::{hash_password, hash_refresh_token, new_refresh_token};
use bazaar_bus::EventTx;
use bazaar_cache::Cache;
use bazaar_contracts::users::{AuthResult, LoginRequest, User};
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::{new_id, now_millis};
use bazaar_runtime::ServiceResult;

use crate::app::Accounts;
use crate::store;

/// Verified against when the email is unknown, so that an unknown account and a wrong
/// password take the same time and cannot be told apart.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a real password").unwrap_or_default());

impl Accounts {
    fn cache(&self) -> &Arc<dyn Cache> {
        &self.platform.cache
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
    pub(crate) async fn check_login_limits(
        &self,
        principal: &Principal,
        email: &str,
    ) -> ServiceResult<()> {
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
    pub(crate) async fn count_attempt(
        &self,
        key: String,
        limit: u64,
        what: &str,
    ) -> ServiceResult<()> {
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
    pub(crate) async fn start_session(
        &self,
        tx: &mut EventTx,
        user: User,
    ) -> ServiceResult<AuthResult> {
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
}
