//! Per-request batch loaders: every `order.user` and `order.items.product` of one response
//! resolves through one internal call per kind, not one per row.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use bazaar_contracts::catalog::{CatalogClient, Product, ProductsByIdRequest};
use bazaar_contracts::users::{User, UsersClient};
use bazaar_contracts::{ApiError, Principal};
use futures::future::BoxFuture;

pub struct ProductLoader {
    pub catalog: CatalogClient,
    pub principal: Principal,
}

impl Loader<String> for ProductLoader {
    type Value = Product;
    type Error = ApiError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Product>, ApiError> {
        let req = ProductsByIdRequest {
            ids: ids.to_vec(),
            include_deleted: false,
        };
        let products = self.catalog.products_by_id(&self.principal, &req).await?;
        Ok(products.into_iter().map(|p| (p.id.clone(), p)).collect())
    }
}

pub struct UserLoader {
    pub users: UsersClient,
    pub principal: Principal,
}

impl Loader<String> for UserLoader {
    type Value = User;
    type Error = ApiError;

    /// The users service leaves out anyone the caller may not see.
    async fn load(&self, ids: &[String]) -> Result<HashMap<String, User>, ApiError> {
        let users = self
            .users
            .users_by_id(&self.principal, ids.to_vec())
            .await?;
        Ok(users.into_iter().map(|u| (u.id.clone(), u)).collect())
    }
}

pub type Products = DataLoader<ProductLoader, HashMapCache>;
pub type Users = DataLoader<UserLoader, HashMapCache>;

/// Loaders for one request, acting as its caller. They cache for the request, so a list
/// resolver can prime them with one batched call for the whole page (see `orders::prime`).
pub fn for_request(
    catalog: &CatalogClient,
    users: &UsersClient,
    principal: &Principal,
) -> (Products, Users) {
    let products = ProductLoader {
        catalog: catalog.clone(),
        principal: principal.clone(),
    };
    let users = UserLoader {
        users: users.clone(),
        principal: principal.clone(),
    };
    (
        DataLoader::with_cache(products, spawn_batch, HashMapCache::default()),
        DataLoader::with_cache(users, spawn_batch, HashMapCache::default()),
    )
}

/// Runs a loader's batch on its own task; while tracing, in the trace of the request that
/// asked for it, so the batch's service call joins that trace instead of starting one.
fn spawn_batch(batch: BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    if bazaar_bus::trace::enabled() {
        tokio::spawn(bazaar_bus::trace::in_current_trace(batch))
    } else {
        tokio::spawn(batch)
    }
}
