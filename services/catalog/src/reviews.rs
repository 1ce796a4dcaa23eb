//! Review use cases: customers who received a product rate it (one review each, a second
//! replaces the first); anyone reads them. The product's rating totals move in the same
//! transaction as the review, and a `ProductUpdated` tells caches about the new average.

use bazaar_contracts::catalog::{AddReviewRequest, ListReviewsRequest, Review};
use bazaar_contracts::page::Page;
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::{new_id, now_millis};
use bazaar_runtime::{ServiceError, ServiceResult};

use crate::app::Catalog;
use crate::domain::reviews::{NewReview, ReviewPage};
use crate::products::announce_updated;
use crate::store::products as products_store;
use crate::store::reviews as store;

impl Catalog {
    pub async fn add_review(
        &self,
        principal: &Principal,
        req: AddReviewRequest,
    ) -> ServiceResult<Review> {
        let user = principal.require_user()?;
        let new = NewReview::parse(&req)?;
        let now = now_millis();
        let mut tx = self.outbox.begin().await?;
        // The product row lock comes first: concurrent reviews of one product (even two
        // submissions of the same user's review) then see each other and never miscount.
        if !products_store::lock_live(&mut tx, &new.product_id).await? {
            return Err(ApiError::not_found("product not found").into());
        }
        if !store::has_received(&mut tx, &user.id, &new.product_id).await? {
            return Err(ApiError::forbidden(
                "only customers who received this product can review it",
            )
            .into());
        }
        let id = match store::existing(&mut tx, &user.id, &new.product_id).await? {
            Some((id, old_rating)) => {
                store::replace(&mut tx, &id, &new, now).await?;
                products_store::add_rating(&mut tx, &new.product_id, new.rating - old_rating, 0)
                    .await?;
                id
            }
            None => {
                let id = new_id();
                store::insert(&mut tx, &id, &user.id, &new, now).await?;
                products_store::add_rating(&mut tx, &new.product_id, new.rating, 1).await?;
                id
            }
        };
        announce_updated(&mut tx, std::slice::from_ref(&new.product_id)).await?;
        let review = store::by_id_tx(&mut tx, &id).await?.ok_or_else(|| {
            ServiceError::Internal(format!("review {id} vanished mid-transaction"))
        })?;
        tx.commit().await?;
        Ok(review)
    }

    /// The product's reviews, newest first. Public, like the product itself.
    pub async fn reviews(&self, req: ListReviewsRequest) -> ServiceResult<Page<Review>> {
        let page = ReviewPage::parse(&req)?;
        let (items, has_next_page, total_count) = store::page(&self.db, &page).await?;
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }
}
