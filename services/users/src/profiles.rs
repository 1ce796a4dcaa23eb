//! Profiles and roles: a user edits their own profile (or an admin anyone's), an admin sets
//! roles. Each change and its `UserProfileUpdated` commit in one transaction.

use bazaar_contracts::events::{Event, UserProfileUpdated};
use bazaar_contracts::users::{UpdateProfileRequest, User};
use bazaar_contracts::{ApiError, Principal, Role};
use bazaar_runtime::ServiceResult;

use crate::app::{Accounts, SERVICE};
use crate::domain::{address, phone, required_text};
use crate::store;

impl Accounts {
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
}
