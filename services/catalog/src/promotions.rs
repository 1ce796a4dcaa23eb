//! Promotion use cases: admins create and end time-boxed discounts; anyone lists them. Product
//! reads apply the best active promotion themselves (see `store::products`), so a promotion
//! changes prices by the clock without any write here.

use bazaar_contracts::catalog::{CreatePromotionRequest, ListPromotionsRequest, Promotion};
use bazaar_contracts::events::{Event, PromotionCreated, PromotionEnded};
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::{new_id, now_millis};
use bazaar_runtime::ServiceResult;

use crate::app::{Catalog, SERVICE};
use crate::domain::promotions::NewPromotion;
use crate::products::announce_updated;
use crate::store::products as products_store;
use crate::store::promotions as store;

/// The contract returns a plain list; the newest this many keep the answer bounded.
const MAX_LISTED: i64 = 200;

impl Catalog {
    /// Creates a promotion over live products and announces it, with a `ProductUpdated` per
    /// product so caches drop the old price.
    ///
    /// Limitation: a promotion that starts (or ends) later changes the price at that moment
    /// with no event. Reads here are always right; a cache in front of them (the gateway's
    /// holds products for up to its TTL) shows the previous price until its entry expires.
    pub async fn create_promotion(
        &self,
        principal: &Principal,
        req: CreatePromotionRequest,
    ) -> ServiceResult<Promotion> {
        principal.require_admin()?;
        let now = now_millis();
        let new = NewPromotion::parse(&req, now)?;
        let mut tx = self.outbox.begin().await?;
        let live = products_store::live_ids(&mut tx, &new.product_ids).await?;
        if let Some(missing) = new.product_ids.iter().find(|id| !live.contains(*id)) {
            return Err(ApiError::bad_input(
                "input.productIds",
                format!("input.productIds: no product {missing}"),
            )
            .into());
        }
        let promotion = store::insert(&mut tx, &new_id(), &new, now).await?;
        let event = PromotionCreated {
            promotion_id: promotion.id.clone(),
            promotion: promotion.clone(),
        };
        tx.emit(&event.envelope(SERVICE)).await?;
        announce_updated(&mut tx, &promotion.product_ids).await?;
        tx.commit().await?;
        Ok(promotion)
    }

    /// Ends a running or upcoming promotion now. Ending one that is already over returns it
    /// unchanged and announces nothing, so a repeated request is harmless.
    pub async fn end_promotion(&self, principal: &Principal, id: &str) -> ServiceResult<Promotion> {
        principal.require_admin()?;
        let now = now_millis();
        let mut tx = self.outbox.begin().await?;
        let Some(promotion) = store::end(&mut tx, id, now).await? else {
            return store::by_id_tx(&mut tx, id)
                .await?
                .ok_or_else(|| ApiError::not_found("promotion not found").into());
        };
        let event = PromotionEnded {
            promotion_id: promotion.id.clone(),
            ended_at: now,
        };
        tx.emit(&event.envelope(SERVICE)).await?;
        announce_updated(&mut tx, &promotion.product_ids).await?;
        tx.commit().await?;
        Ok(promotion)
    }

    /// Newest first: those active now, or all of them (the newest [`MAX_LISTED`]).
    pub async fn promotions(&self, req: ListPromotionsRequest) -> ServiceResult<Vec<Promotion>> {
        let active_at = req.active_only.then(now_millis);
        Ok(store::list(&self.db, active_at, MAX_LISTED).await?)
    }
}
