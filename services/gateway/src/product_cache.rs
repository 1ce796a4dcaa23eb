//! Product reads through the cache. Every entry's key carries the catalogue generation; any
//! product change bumps it, so a reader never sees an entry written before the change, even
//! one that a slow reader stored after the change (it lands under the old generation).
//!
//! The gateway bumps the generation itself after its own product mutations (a client never
//! reads a stale price after a successful update) and on every catalogue event (stock moved by
//! orders, changes made through another gateway).

use std::sync::Arc;
use std::time::Duration;

use bazaar_cache::{Cache, get_json, set_json};
use bazaar_contracts::catalog::{CatalogClient, ListProductsRequest, Product};
use bazaar_contracts::page::Page;
use bazaar_contracts::{ApiError, Principal};

const GENERATION: &str = "catalog:generation";
const TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ProductCache {
    cache: Arc<dyn Cache>,
    catalog: CatalogClient,
}

impl ProductCache {
    pub fn new(cache: Arc<dyn Cache>, catalog: CatalogClient) -> Self {
        ProductCache { cache, catalog }
    }

    pub fn catalog(&self) -> &CatalogClient {
        &self.catalog
    }

    /// Makes every cached product read stale.
    pub async fn invalidate(&self) {
        if let Err(e) = self.cache.bump(GENERATION).await {
            // Without the bump, entries could outlive the change by up to their TTL.
            tracing::error!(error = %e, "could not invalidate the product cache");
        }
    }

    /// The current generation, or `None` when the cache is down (then we read through).
    pub(crate) async fn generation(&self) -> Option<u64> {
        self.cache.counter(GENERATION).await.ok()
    }

    pub async fn product(&self, p: &Principal, id: &str) -> Result<Option<Product>, ApiError> {
        let Some(generation) = self.generation().await else {
            return self.catalog.product(p, id).await;
        };
        let key = format!("catalog:{generation}:product:{id}");
        if let Ok(Some(hit)) = get_json::<Option<Product>>(self.cache.as_ref(), &key).await {
            return Ok(hit);
        }
        let product = self.catalog.product(p, id).await?;
        let _ = set_json(self.cache.as_ref(), &key, &product, TTL).await;
        Ok(product)
    }

    pub async fn list(
        &self,
        p: &Principal,
        req: &ListProductsRequest,
    ) -> Result<Page<Product>, ApiError> {
        let Some(generation) = self.generation().await else {
            return self.catalog.list(p, req).await;
        };
        let shape = serde_json::to_string(&req).map_err(ApiError::internal)?;
        let key = format!("catalog:{generation}:list:{shape}");
        if let Ok(Some(hit)) = get_json::<Page<Product>>(self.cache.as_ref(), &key).await {
            return Ok(hit);
        }
        let page = self.catalog.list(p, req).await?;
        let _ = set_json(self.cache.as_ref(), &key, &page, TTL).await;
        Ok(page)
    }
}
