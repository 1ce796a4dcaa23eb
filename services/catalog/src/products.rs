//! Product use cases: create, edit, delete, adjust stock, read and list. Each change and the
//! event announcing it commit in one transaction (transactional outbox).

use bazaar_bus::{Envelope, EventTx};
use bazaar_contracts::catalog::{
    AdjustStockRequest, CreateProductRequest, ListProductsRequest, Product, ProductsByIdRequest,
    UpdateProductRequest,
};
use bazaar_contracts::events::{
    Event, ProductCreated, ProductDeleted, ProductUpdated, StockChanged,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::new_id;
use bazaar_runtime::ServiceResult;

use crate::app::{Catalog, SERVICE};
use crate::domain::{ListFilter, MAX_AMOUNT, NewProduct, ProductChanges, stock_delta};
use crate::store::products as store;

/// Why stock moved, as `StockChanged.reason` says it.
pub const ADJUSTMENT: &str = "ADJUSTMENT";
pub const RESERVATION: &str = "RESERVATION";
pub const RELEASE: &str = "RELEASE";

fn not_found() -> ApiError {
    ApiError::not_found("product not found")
}

/// Enqueues `ProductUpdated` for each live product among `ids` as this transaction sees it:
/// a promotion or a review changed what readers, and the caches in front of them, should show.
pub async fn announce_updated(tx: &mut EventTx, ids: &[String]) -> ServiceResult<()> {
    let events: Vec<Envelope> = store::by_ids_tx(tx, ids, false)
        .await?
        .into_iter()
        .map(|product| {
            ProductUpdated {
                product_id: product.id.clone(),
                product,
            }
            .envelope(SERVICE)
        })
        .collect();
    tx.emit_all(&events).await?;
    Ok(())
}

/// `StockChanged` for one product whose stock moved by `delta` to `stock`.
pub fn stock_changed(product_id: &str, stock: i64, delta: i64, reason: &str) -> Envelope {
    StockChanged {
        product_id: product_id.to_owned(),
        stock,
        delta,
        reason: reason.to_owned(),
    }
    .envelope(SERVICE)
}

impl Catalog {
    pub async fn create(
        &self,
        principal: &Principal,
        req: CreateProductRequest,
    ) -> ServiceResult<Product> {
        principal.require_admin()?;
        let new = NewProduct::parse(&req)?;
        let mut tx = self.outbox.begin().await?;
        let product = store::insert(&mut tx, &new_id(), &new).await?;
        let event = ProductCreated {
            product_id: product.id.clone(),
            product: product.clone(),
        };
        tx.emit(&event.envelope(SERVICE)).await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Edits a live product; a deleted one is NOT_FOUND (it can no longer be sold, so there
    /// is nothing to edit).
    pub async fn update(
        &self,
        principal: &Principal,
        req: UpdateProductRequest,
    ) -> ServiceResult<Product> {
        principal.require_admin()?;
        let changes = ProductChanges::parse(&req)?;
        let mut tx = self.outbox.begin().await?;
        let product = store::update(&mut tx, &req.id, &changes)
            .await?
            .ok_or_else(not_found)?;
        let event = ProductUpdated {
            product_id: product.id.clone(),
            product: product.clone(),
        };
        tx.emit(&event.envelope(SERVICE)).await?;
        tx.commit().await?;
        Ok(product)
    }

    /// Withdraws a product (soft delete: orders still show what was bought). False when it
    /// was absent or already deleted, so a repeated delete is harmless.
    pub async fn delete(&self, principal: &Principal, id: &str) -> ServiceResult<bool> {
        principal.require_admin()?;
        let mut tx = self.outbox.begin().await?;
        if !store::soft_delete(&mut tx, id).await? {
            return Ok(false);
        }
        tx.emit(
            &ProductDeleted {
                product_id: id.to_owned(),
            }
            .envelope(SERVICE),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds (or, with a negative delta, removes) stock; the result never leaves 0..=2e9.
    pub async fn adjust_stock(
        &self,
        principal: &Principal,
        req: AdjustStockRequest,
    ) -> ServiceResult<Product> {
        principal.require_admin()?;
        let delta = stock_delta(req.delta)?;
        let mut tx = self.outbox.begin().await?;
        let Some(product) = store::adjust_stock(&mut tx, &req.id, delta).await? else {
            // The conditional update refused: say why, from the state this transaction sees.
            return Err(match store::by_id_tx(&mut tx, &req.id).await? {
                Some(p) if p.deleted_at.is_none() && delta < 0 => ApiError::bad_input(
                    "delta",
                    format!(
                        "delta: cannot remove {} units; current stock is {}",
                        -delta, p.stock
                    ),
                ),
                Some(p) if p.deleted_at.is_none() => ApiError::bad_input(
                    "delta",
                    format!(
                        "delta: stock would exceed {MAX_AMOUNT}; current stock is {}",
                        p.stock
                    ),
                ),
                _ => not_found(),
            }
            .into());
        };
        tx.emit(&stock_changed(
            &product.id,
            product.stock,
            delta,
            ADJUSTMENT,
        ))
        .await?;
        tx.commit().await?;
        Ok(product)
    }

    /// The product, or `None` when absent or deleted.
    pub async fn product(&self, id: &str) -> ServiceResult<Option<Product>> {
        Ok(store::by_id(&self.db, id)
            .await?
            .filter(|p| p.deleted_at.is_none()))
    }

    pub async fn products_by_id(&self, req: ProductsByIdRequest) -> ServiceResult<Vec<Product>> {
        Ok(store::by_ids(&self.db, &req.ids, req.include_deleted).await?)
    }

    pub async fn list(&self, req: ListProductsRequest) -> ServiceResult<Page<Product>> {
        let filter = ListFilter::parse(&req)?;
        let (items, has_next_page, total_count) = store::list(&self.db, &filter).await?;
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }
}
