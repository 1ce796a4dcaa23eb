//! The catalog service's internal API: products and stock.

use serde::{Deserialize, Serialize};

use crate::users::Page;
use crate::{ApiError, Principal, ServiceClient};

/// A product as the catalogue holds it now. Money is integer minor units (cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub stock: i64,
    /// Set once the product is deleted; deleted products are never sold or listed.
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateProductRequest {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// Fields left `None` stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProductRequest {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price_cents: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdjustStockRequest {
    pub id: String,
    pub delta: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductIdRequest {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductsByIdRequest {
    pub ids: Vec<String>,
    /// Include deleted products (orders show what was bought even after deletion).
    #[serde(default)]
    pub include_deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListProductsRequest {
    pub first: i64,
    /// The id of the last product of the previous page.
    pub after: Option<String>,
    pub category: Option<String>,
    /// Case-insensitive text matched against name and description.
    pub search: Option<String>,
}

/// Typed calls to the catalog service.
#[derive(Clone)]
pub struct CatalogClient(pub ServiceClient);

impl CatalogClient {
    pub async fn create_product(
        &self,
        p: &Principal,
        req: &CreateProductRequest,
    ) -> Result<Product, ApiError> {
        self.0.command("create-product", p, req).await
    }
    pub async fn update_product(
        &self,
        p: &Principal,
        req: &UpdateProductRequest,
    ) -> Result<Product, ApiError> {
        self.0.command("update-product", p, req).await
    }
    pub async fn delete_product(&self, p: &Principal, id: &str) -> Result<bool, ApiError> {
        self.0
            .command("delete-product", p, &ProductIdRequest { id: id.to_owned() })
            .await
    }
    pub async fn adjust_stock(
        &self,
        p: &Principal,
        req: &AdjustStockRequest,
    ) -> Result<Product, ApiError> {
        self.0.command("adjust-stock", p, req).await
    }
    /// The product, or `None` when absent or deleted.
    pub async fn product(&self, p: &Principal, id: &str) -> Result<Option<Product>, ApiError> {
        self.0
            .query("product", p, &ProductIdRequest { id: id.to_owned() })
            .await
    }
    pub async fn products_by_id(
        &self,
        p: &Principal,
        req: &ProductsByIdRequest,
    ) -> Result<Vec<Product>, ApiError> {
        self.0.query("products-by-id", p, req).await
    }
    pub async fn list(
        &self,
        p: &Principal,
        req: &ListProductsRequest,
    ) -> Result<Page<Product>, ApiError> {
        self.0.query("products", p, req).await
    }
}
