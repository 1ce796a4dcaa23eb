//! The catalogue slice of the schema: browsing products, admin product management, and the
//! batch loader every slice that shows a product reads it through.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use bazaar_contracts::catalog::{
    self, AdjustStockRequest, CatalogClient, CreateProductRequest, ListProductsRequest,
    ProductsByIdRequest, UpdateProductRequest,
};
use bazaar_contracts::{ApiError, Principal};
use chrono::{DateTime, Utc};

use crate::context::{admin, principal, products};
use crate::error::{GqlResult, OrGql, gql};
use crate::loaders::{self, Batched};
use crate::pagination::{connection, decode_cursor, page_size};
use crate::reviews::{Rating, ReviewConnection, product_reviews};

pub struct Product(pub catalog::Product);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn category(&self) -> &str {
        &self.0.category
    }
    /// Price in cents.
    async fn price_cents(&self) -> i32 {
        self.0.price_cents as i32
    }
    /// Units available to order now.
    async fn stock(&self) -> i32 {
        self.0.stock as i32
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.updated_at)
    }
    /// The price an order placed now pays: `priceCents` less the best running promotion.
    async fn effective_price_cents(&self) -> i32 {
        self.0.effective_price_cents as i32
    }
    /// The promotion `effectivePriceCents` reflects, if any.
    async fn active_promotion(&self) -> Option<ActivePromotion> {
        self.0.active_promotion.clone().map(|p| ActivePromotion {
            id: ID(p.id),
            title: p.title,
            percent_off: p.percent_off as i32,
            ends_at: bazaar_db::from_millis(p.ends_at),
        })
    }
    async fn rating(&self) -> Rating {
        Rating {
            average: self.0.rating_average,
            count: self.0.rating_count as i32,
        }
    }
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<ReviewConnection> {
        product_reviews(ctx, &self.0.id, first.unwrap_or(10), after).await
    }
}

#[derive(SimpleObject)]
pub struct ActivePromotion {
    pub id: ID,
    pub title: String,
    pub percent_off: i32,
    pub ends_at: DateTime<Utc>,
}

connection!(ProductConnection, ProductEdge, Product);

/// Loads products by id for one request's caller; deleted ones are left out.
pub struct ProductLoader {
    catalog: CatalogClient,
    principal: Principal,
}

impl ProductLoader {
    pub fn for_request(catalog: &CatalogClient, principal: &Principal) -> Batched<Self> {
        loaders::for_request(ProductLoader {
            catalog: catalog.clone(),
            principal: principal.clone(),
        })
    }
}

impl Loader<String> for ProductLoader {
    type Value = catalog::Product;
    type Error = ApiError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, catalog::Product>, ApiError> {
        let req = ProductsByIdRequest {
            ids: ids.to_vec(),
            include_deleted: false,
        };
        let products = self.catalog.products_by_id(&self.principal, &req).await?;
        Ok(products.into_iter().map(|p| (p.id.clone(), p)).collect())
    }
}

/// The products with these ids, in their order, batched across the response; ids of deleted
/// products are skipped.
pub async fn products_in_order(ctx: &Context<'_>, ids: &[String]) -> GqlResult<Vec<Product>> {
    let found = loaders::of::<ProductLoader>(ctx)
        .load_many(ids.iter().cloned())
        .await
        .map_err(gql)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned())
        .map(Product)
        .collect())
}

#[derive(InputObject)]
pub struct CreateProductInput {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i32,
    pub stock: i32,
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price_cents: Option<i32>,
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// A product; null when absent or deleted.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Product>> {
        Ok(products(ctx)
            .product(principal(ctx), &id)
            .await
            .gql()?
            .map(Product))
    }

    /// Products in creation order, optionally in one category and/or matching `search`
    /// (case-insensitive, in name and description).
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        category: Option<String>,
        search: Option<String>,
    ) -> GqlResult<ProductConnection> {
        let req = ListProductsRequest {
            first: page_size(first.unwrap_or(20)).gql()?,
            after: decode_cursor(after.as_deref()).gql()?,
            category: category.filter(|c| !c.trim().is_empty()),
            search: search.filter(|s| !s.trim().is_empty()),
        };
        let page = products(ctx).list(principal(ctx), &req).await.gql()?;
        Ok(ProductConnection::from_page(page, |p| &p.id, Product))
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Adds a product (admins only).
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> GqlResult<Product> {
        let p = admin(ctx)?;
        let req = CreateProductRequest {
            name: input.name,
            description: input.description,
            category: input.category,
            price_cents: input.price_cents.into(),
            stock: input.stock.into(),
        };
        let cache = products(ctx);
        let product = cache.catalog().create_product(p, &req).await.gql()?;
        cache.invalidate().await;
        Ok(Product(product))
    }

    /// Changes a product's details or price (admins only). Orders already placed keep theirs.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> GqlResult<Product> {
        let p = admin(ctx)?;
        let req = UpdateProductRequest {
            id: id.0,
            name: input.name,
            description: input.description,
            category: input.category,
            price_cents: input.price_cents.map(Into::into),
        };
        let cache = products(ctx);
        let product = cache.catalog().update_product(p, &req).await.gql()?;
        cache.invalidate().await;
        Ok(Product(product))
    }

    /// Withdraws a product from sale (admins only).
    async fn delete_product(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let p = admin(ctx)?;
        let cache = products(ctx);
        let deleted = cache.catalog().delete_product(p, &id).await.gql()?;
        cache.invalidate().await;
        Ok(deleted)
    }

    /// Adds or removes stock (admins only); stock never goes below zero.
    async fn adjust_stock(&self, ctx: &Context<'_>, id: ID, delta: i32) -> GqlResult<Product> {
        let p = admin(ctx)?;
        let cache = products(ctx);
        let product = cache
            .catalog()
            .adjust_stock(
                p,
                &AdjustStockRequest {
                    id: id.0,
                    delta: delta.into(),
                },
            )
            .await
            .gql()?;
        cache.invalidate().await;
        Ok(Product(product))
    }
}
