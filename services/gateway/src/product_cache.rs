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
use serde::Serialize;
use serde::de::DeserializeOwned;

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
        let fetch = self.catalog.product(p, id);
        self.read_through(&format!("product:{id}"), fetch).await
    }

    pub async fn list(
        &self,
        p: &Principal,
        req: &ListProductsRequest,
    ) -> Result<Page<Product>, ApiError> {
        let shape = serde_json::to_string(&req).map_err(ApiError::internal)?;
        let fetch = self.catalog.list(p, req);
        self.read_through(&format!("list:{shape}"), fetch).await
    }

    /// The entry `key` of the current generation, or what `fetch` answers (then kept for the
    /// next reader); straight from `fetch` when the cache is down.
    async fn read_through<T>(
        &self,
        key: &str,
        fetch: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError>
    where
        T: Serialize + DeserializeOwned,
    {
        let Some(generation) = self.generation().await else {
            return fetch.await;
        };
        let key = format!("catalog:{generation}:{key}");
        if let Ok(Some(hit)) = get_json::<T>(self.cache.as_ref(), &key).await {
            return Ok(hit);
        }
        let value = fetch.await?;
        let _ = set_json(self.cache.as_ref(), &key, &value, TTL).await;
        Ok(value)
    }
}
