//! The catalog's internal API: one handler per route of `bazaar_contracts::catalog`.

use axum::Router;
use bazaar_contracts::catalog::{
    AddReview, AddReviewRequest, AdjustStock, AdjustStockRequest, CreateProduct,
    CreateProductRequest, CreatePromotion, CreatePromotionRequest, DeleteProduct, EndPromotion,
    ListProducts, ListProductsRequest, ListPromotions, ListPromotionsRequest, ListReviews,
    ListReviewsRequest, Product, ProductById, ProductIdRequest, ProductsById, ProductsByIdRequest,
    Promotion, Review, UpdateProduct, UpdateProductRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Principal, Routes};
use bazaar_runtime::ServiceResult;

use crate::app::Catalog;

pub fn routes(catalog: Catalog) -> Router {
    Routes::new()
        .serve::<CreateProduct>(create_product)
        .serve::<UpdateProduct>(update_product)
        .serve::<DeleteProduct>(delete_product)
        .serve::<AdjustStock>(adjust_stock)
        .serve::<ProductById>(product)
        .serve::<ProductsById>(products_by_id)
        .serve::<ListProducts>(products)
        .serve::<CreatePromotion>(create_promotion)
        .serve::<EndPromotion>(end_promotion)
        .serve::<ListPromotions>(promotions)
        .serve::<AddReview>(add_review)
        .serve::<ListReviews>(reviews)
        .with_state(catalog)
}

async fn create_product(
    c: Catalog,
    p: Principal,
    req: CreateProductRequest,
) -> ServiceResult<Product> {
    c.create(&p, req).await
}

async fn update_product(
    c: Catalog,
    p: Principal,
    req: UpdateProductRequest,
) -> ServiceResult<Product> {
    c.update(&p, req).await
}

async fn delete_product(c: Catalog, p: Principal, req: ProductIdRequest) -> ServiceResult<bool> {
    c.delete(&p, &req.id).await
}

async fn adjust_stock(c: Catalog, p: Principal, req: AdjustStockRequest) -> ServiceResult<Product> {
    c.adjust_stock(&p, req).await
}

/// Products are public: reads ignore the principal.
async fn product(
    c: Catalog,
    _: Principal,
    req: ProductIdRequest,
) -> ServiceResult<Option<Product>> {
    c.product(&req.id).await
}

async fn products_by_id(
    c: Catalog,
    _: Principal,
    req: ProductsByIdRequest,
) -> ServiceResult<Vec<Product>> {
    c.products_by_id(req).await
}

async fn products(
    c: Catalog,
    _: Principal,
    req: ListProductsRequest,
) -> ServiceResult<Page<Product>> {
    c.list(req).await
}

async fn create_promotion(
    c: Catalog,
    p: Principal,
    req: CreatePromotionRequest,
) -> ServiceResult<Promotion> {
    c.create_promotion(&p, req).await
}

/// The id is the promotion's (the contract reuses `ProductIdRequest`).
async fn end_promotion(
    c: Catalog,
    p: Principal,
    req: ProductIdRequest,
) -> ServiceResult<Promotion> {
    c.end_promotion(&p, &req.id).await
}

/// Promotions are public, like the prices they set.
async fn promotions(
    c: Catalog,
    _: Principal,
    req: ListPromotionsRequest,
) -> ServiceResult<Vec<Promotion>> {
    c.promotions(req).await
}

async fn add_review(c: Catalog, p: Principal, req: AddReviewRequest) -> ServiceResult<Review> {
    c.add_review(&p, req).await
}

/// Reviews are public.
async fn reviews(c: Catalog, _: Principal, req: ListReviewsRequest) -> ServiceResult<Page<Review>> {
    c.reviews(req).await
}
