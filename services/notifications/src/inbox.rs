//! The notifications service's use cases for its internal API: a user's own notifications,
//! marking them read, and preferences (one's own, or anyone's for an admin).

use bazaar_contracts::notifications::{
    ListNotificationsRequest, Notification, Preferences, UpdatePreferencesRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::now_millis;
use bazaar_runtime::ServiceResult;

use crate::app::Notifications;
use crate::store;

/// The same answer whether the notification is someone else's or does not exist, so ids
/// cannot be probed.
fn not_found() -> ApiError {
    ApiError::not_found("notification not found")
}

impl Notifications {
    /// The caller's notifications, newest first.
    pub async fn list(
        &self,
        principal: &Principal,
        req: &ListNotificationsRequest,
    ) -> ServiceResult<Page<Notification>> {
        let caller = principal.require_user()?;
        if !(0..=100).contains(&req.first) {
            return Err(ApiError::bad_input("first", "first: must be between 0 and 100").into());
        }
        let mut conn = self.db.pool().acquire().await?;
        let (items, has_next_page, total_count) = store::list_notifications(
            &mut conn,
            &caller.id,
            req.unread_only,
            req.first,
            req.after.as_deref(),
        )
        .await?;
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }

    /// Marks one of the caller's notifications read; NOT_FOUND for anyone else's.
    pub async fn mark_read(&self, principal: &Principal, id: &str) -> ServiceResult<Notification> {
        let caller = principal.require_user()?;
        let mut tx = self.db.begin().await?;
        let marked = store::mark_read(&mut tx, &caller.id, id, now_millis()).await?;
        tx.commit().await?;
        Ok(marked.ok_or_else(not_found)?)
    }

    /// Marks all the caller's notifications read; returns how many changed.
    pub async fn mark_all_read(&self, principal: &Principal) -> ServiceResult<i64> {
        let caller = principal.require_user()?;
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::mark_all_read(&mut conn, &caller.id, now_millis()).await?)
    }

    /// `user_id`'s preferences, for that user or an admin.
    pub async fn preferences(
        &self,
        principal: &Principal,
        user_id: &str,
    ) -> ServiceResult<Preferences> {
        principal.require_user()?;
        if !principal.may_see_user(user_id) {
            return Err(ApiError::forbidden("you may only see your own preferences").into());
        }
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::preferences(&mut conn, user_id).await?)
    }

    /// Changes the caller's preferences; the ones left `None` stay as they are.
    pub async fn update_preferences(
        &self,
        principal: &Principal,
        req: &UpdatePreferencesRequest,
    ) -> ServiceResult<Preferences> {
        let caller = principal.require_user()?;
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::update_preferences(&mut conn, &caller.id, req, now_millis()).await?)
    }
}
