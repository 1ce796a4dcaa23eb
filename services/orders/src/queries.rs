//! The orders service's read side: who may see which order, and listings. Placing and moving
//! orders live in `placing` and `lifecycle`.

use bazaar_contracts::orders::{ListOrdersRequest, Order};
use bazaar_contracts::page::Page;
use bazaar_contracts::{ApiError, Principal};
use bazaar_runtime::ServiceResult;

use crate::app::Orders;
use crate::store::{self, OrderFilter, StoredOrder};

/// The message for an order the caller may not see; the same whether or not it exists, so
/// order ids cannot be probed.
pub fn not_found() -> ApiError {
    ApiError::not_found("order not found")
}

impl Orders {
    /// The order as stored now, outside any transaction.
    pub async fn read(&self, id: &str) -> ServiceResult<Option<StoredOrder>> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::order_by_id(&mut conn, id).await?)
    }

    /// The order when the caller owns it or is an admin; `None` otherwise.
    pub async fn order(&self, principal: &Principal, id: &str) -> ServiceResult<Option<Order>> {
        let Some(stored) = self.read(id).await? else {
            return Ok(None);
        };
        Ok(principal
            .may_see_user(&stored.order.user_id)
            .then_some(stored.order))
    }

    /// The caller's orders newest first (an admin's listing covers everyone's).
    pub async fn list(
        &self,
        principal: &Principal,
        req: &ListOrdersRequest,
    ) -> ServiceResult<Page<Order>> {
        let caller = principal.require_user()?;
        if !(0..=100).contains(&req.first) {
            return Err(ApiError::bad_input("first", "first: must be between 0 and 100").into());
        }
        let filter = OrderFilter {
            user_id: if principal.is_admin() {
                None
            } else {
                Some(caller.id.as_str())
            },
            status: req.status,
        };
        let mut conn = self.db.pool().acquire().await?;
        let (items, has_next_page, total_count) =
            store::list_orders(&mut conn, &filter, req.first, req.after.as_deref()).await?;
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }
}
