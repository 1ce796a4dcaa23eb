//! The orders service's internal API (`POST /internal/<op>`), called by the gateway.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bazaar_contracts::orders::{
    ListOrdersRequest, Order, OrderIdRequest, PayOrderRequest, PendingRefund, PlaceOrderRequest,
    SetOrderStatusRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Caller, Input};
use bazaar_runtime::ServiceResult;

use crate::app::Orders;

pub fn routes(orders: Orders) -> Router {
    Router::new()
        .route("/internal/place-order", post(place_order))
        .route("/internal/cancel-order", post(cancel_order))
        .route("/internal/pay-order", post(pay_order))
        .route("/internal/set-order-status", post(set_order_status))
        .route("/internal/order", post(order))
        .route("/internal/orders", post(orders_list))
        .route("/internal/pending-refunds", post(pending_refunds))
        .with_state(orders)
}

async fn place_order(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<PlaceOrderRequest>,
) -> ServiceResult<Json<Order>> {
    Ok(Json(o.place_order(&p, req).await?))
}

async fn cancel_order(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<OrderIdRequest>,
) -> ServiceResult<Json<Order>> {
    Ok(Json(o.cancel_order(&p, &req.id).await?))
}

async fn pay_order(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<PayOrderRequest>,
) -> ServiceResult<Json<Order>> {
    Ok(Json(o.pay_order(&p, &req).await?))
}

async fn set_order_status(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<SetOrderStatusRequest>,
) -> ServiceResult<Json<Order>> {
    Ok(Json(o.set_order_status(&p, &req).await?))
}

/// The order if the caller owns it or is an admin; `null` otherwise, so probing ids reveals nothing.
async fn order(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<OrderIdRequest>,
) -> ServiceResult<Json<Option<Order>>> {
    Ok(Json(o.order(&p, &req.id).await?))
}

async fn orders_list(
    State(o): State<Orders>,
    Caller(p): Caller,
    Input(req): Input<ListOrdersRequest>,
) -> ServiceResult<Json<Page<Order>>> {
    Ok(Json(o.list(&p, &req).await?))
}

async fn pending_refunds(
    State(o): State<Orders>,
    Caller(p): Caller,
) -> ServiceResult<Json<Vec<PendingRefund>>> {
    Ok(Json(o.pending_refunds(&p).await?))
}
