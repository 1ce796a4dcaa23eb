//! The catalog service's internal API: products and stock.

use serde::{Deserialize, Serialize};

use crate::page::Page;
use crate::{ApiError, Principal, ServiceClient};

/// A product as the catalogue holds it now. Money is integer minor units (cents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The price after the best promotion active now (equals `price_cents` without one).
    /// Orders are priced with this.
    #[serde(default)]
    pub effective_price_cents: i64,
    #[serde(default)]
    pub active_promotion: Option<ActivePromotion>,
    /// Average stars over `rating_count` reviews; `None` without reviews.
    #[serde(default)]
    pub rating_average: Option<f64>,
    #[serde(default)]
    pub rating_count: i64,
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

routes! {
    /// Adds a product (admins only).
    command CreateProduct = "create-product": CreateProductRequest => Product;
    command UpdateProduct = "update-product": UpdateProductRequest => Product;
    /// Deletes a product; answers whether it existed.
    command DeleteProduct = "delete-product": ProductIdRequest => bool;
    /// Adds `delta` (negative to remove) to a product's stock (admins only).
    command AdjustStock = "adjust-stock": AdjustStockRequest => Product;
    /// The product, or `None` when absent or deleted.
    query ProductById = "product": ProductIdRequest => Option<Product>;
    query ProductsById = "products-by-id": ProductsByIdRequest => Vec<Product>;
    query ListProducts = "products": ListProductsRequest => Page<Product>;
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
        self.0.call::<CreateProduct>(p, req).await
    }
    pub async fn update_product(
        &self,
        p: &Principal,
        req: &UpdateProductRequest,
    ) -> Result<Product, ApiError> {
        self.0.call::<UpdateProduct>(p, req).await
    }
    pub async fn delete_product(&self, p: &Principal, id: &str) -> Result<bool, ApiError> {
        let req = ProductIdRequest { id: id.to_owned() };
        self.0.call::<DeleteProduct>(p, &req).await
    }
    pub async fn adjust_stock(
        &self,
        p: &Principal,
        req: &AdjustStockRequest,
    ) -> Result<Product, ApiError> {
        self.0.call::<AdjustStock>(p, req).await
    }
    /// The product, or `None` when absent or deleted.
    pub async fn product(&self, p: &Principal, id: &str) -> Result<Option<Product>, ApiError> {
        let req = ProductIdRequest { id: id.to_owned() };
        self.0.call::<ProductById>(p, &req).await
    }
    pub async fn products_by_id(
        &self,
        p: &Principal,
        req: &ProductsByIdRequest,
    ) -> Result<Vec<Product>, ApiError> {
        self.0.call::<ProductsById>(p, req).await
    }
    pub async fn list(
        &self,
        p: &Principal,
        req: &ListProductsRequest,
    ) -> Result<Page<Product>, ApiError> {
        self.0.call::<ListProducts>(p, req).await
    }
}

/// A time-boxed percentage discount on some products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: String,
    pub title: String,
    pub product_ids: Vec<String>,
    /// 1..=90.
    pub percent_off: i64,
    pub starts_at: i64,
    /// When it ends: as planned, or earlier if an admin ended it.
    pub ends_at: i64,
    pub created_at: i64,
}

/// The promotion a product's price currently reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivePromotion {
    pub id: String,
    pub title: String,
    pub percent_off: i64,
    pub ends_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePromotionRequest {
    pub title: String,
    pub product_ids: Vec<String>,
    pub percent_off: i64,
    pub starts_at: i64,
    pub ends_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPromotionsRequest {
    pub active_only: bool,
}

/// A customer's review of a product they received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    pub product_id: String,
    pub user_id: String,
    /// The author's display name (never their email).
    pub author: String,
    /// 1..=5 stars.
    pub rating: i64,
    pub title: String,
    pub body: String,
    pub verified_purchase: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddReviewRequest {
    pub product_id: String,
    pub rating: i64,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReviewsRequest {
    pub product_id: String,
    pub first: i64,
    /// The id of the last review of the previous page (newest first).
    pub after: Option<String>,
}

routes! {
    /// Starts a promotion (admins only).
    command CreatePromotion = "create-promotion": CreatePromotionRequest => Promotion;
    /// Ends a promotion now; the request's id is the promotion's.
    command EndPromotion = "end-promotion": ProductIdRequest => Promotion;
    query ListPromotions = "promotions": ListPromotionsRequest => Vec<Promotion>;
    /// Adds the caller's review, or replaces their earlier one (buyers of a delivered order only).
    command AddReview = "add-review": AddReviewRequest => Review;
    query ListReviews = "reviews": ListReviewsRequest => Page<Review>;
}

impl CatalogClient {
    pub async fn create_promotion(
        &self,
        p: &Principal,
        req: &CreatePromotionRequest,
    ) -> Result<Promotion, ApiError> {
        self.0.call::<CreatePromotion>(p, req).await
    }
    pub async fn end_promotion(&self, p: &Principal, id: &str) -> Result<Promotion, ApiError> {
        let req = ProductIdRequest { id: id.to_owned() };
        self.0.call::<EndPromotion>(p, &req).await
    }
    pub async fn promotions(
        &self,
        p: &Principal,
        req: &ListPromotionsRequest,
    ) -> Result<Vec<Promotion>, ApiError> {
        self.0.call::<ListPromotions>(p, req).await
    }
    /// Adds the caller's review, or replaces their earlier one (buyers of a delivered order only).
    pub async fn add_review(
        &self,
        p: &Principal,
        req: &AddReviewRequest,
    ) -> Result<Review, ApiError> {
        self.0.call::<AddReview>(p, req).await
    }
    pub async fn reviews(
        &self,
        p: &Principal,
        req: &ListReviewsRequest,
    ) -> Result<Page<Review>, ApiError> {
        self.0.call::<ListReviews>(p, req).await
    }
}
