//! The catalog's internal API: `POST /internal/<op>` for each `CatalogClient` call.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_contracts::catalog::{
    AddReviewRequest, AdjustStockRequest, CreateProductRequest, CreatePromotionRequest,
    ListProductsRequest, ListPromotionsRequest, ListReviewsRequest, Product, ProductIdRequest,
    ProductsByIdRequest, Promotion, Review, UpdateProductRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Caller, Input};
use bazaar_runtime::ServiceResult;

use crate::app::Catalog;

pub fn routes(catalog: Catalog) -> Router {
    Router::new()
        .route("/internal/create-product", post(create_product))
        .route("/internal/update-product", post(update_product))
        .route("/internal/delete-product", post(delete_product))
        .route("/internal/adjust-stock", post(adjust_stock))
        .route("/internal/product", post(product))
        .route("/internal/products-by-id", post(products_by_id))
        .route("/internal/products", post(products))
        .route("/internal/create-promotion", post(create_promotion))
        .route("/internal/end-promotion", post(end_promotion))
        .route("/internal/promotions", post(promotions))
        .route("/internal/add-review", post(add_review))
        .route("/internal/reviews", post(reviews))
        .with_state(catalog)
}

async fn create_product(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<CreateProductRequest>,
) -> ServiceResult<Json<Product>> {
    Ok(Json(c.create(&p, req).await?))
}

async fn update_product(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<UpdateProductRequest>,
) -> ServiceResult<Json<Product>> {
    Ok(Json(c.update(&p, req).await?))
}

async fn delete_product(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<ProductIdRequest>,
) -> ServiceResult<Json<bool>> {
    Ok(Json(c.delete(&p, &req.id).await?))
}

async fn adjust_stock(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<AdjustStockRequest>,
) -> ServiceResult<Json<Product>> {
    Ok(Json(c.adjust_stock(&p, req).await?))
}

/// Products are public: reads need no principal.
async fn product(
    State(c): State<Catalog>,
    Input(req): Input<ProductIdRequest>,
) -> ServiceResult<Json<Option<Product>>> {
    Ok(Json(c.product(&req.id).await?))
}

async fn products_by_id(
    State(c): State<Catalog>,
    Input(req): Input<ProductsByIdRequest>,
) -> ServiceResult<Json<Vec<Product>>> {
    Ok(Json(c.products_by_id(req).await?))
}

async fn products(
    State(c): State<Catalog>,
    Input(req): Input<ListProductsRequest>,
) -> ServiceResult<Json<Page<Product>>> {
    Ok(Json(c.list(req).await?))
}

async fn create_promotion(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<CreatePromotionRequest>,
) -> ServiceResult<Json<Promotion>> {
    Ok(Json(c.create_promotion(&p, req).await?))
}

/// The id is the promotion's (the contract reuses `ProductIdRequest`).
async fn end_promotion(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<ProductIdRequest>,
) -> ServiceResult<Json<Promotion>> {
    Ok(Json(c.end_promotion(&p, &req.id).await?))
}

/// Promotions are public, like the prices they set.
async fn promotions(
    State(c): State<Catalog>,
    Input(req): Input<ListPromotionsRequest>,
) -> ServiceResult<Json<Vec<Promotion>>> {
    Ok(Json(c.promotions(req).await?))
}

async fn add_review(
    State(c): State<Catalog>,
    Caller(p): Caller,
    Input(req): Input<AddReviewRequest>,
) -> ServiceResult<Json<Review>> {
    Ok(Json(c.add_review(&p, req).await?))
}

/// Reviews are public.
async fn reviews(
    State(c): State<Catalog>,
    Input(req): Input<ListReviewsRequest>,
) -> ServiceResult<Json<Page<Review>>> {
    Ok(Json(c.reviews(req).await?))
}
