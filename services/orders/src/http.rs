//! The orders service's internal API, called by the gateway: one handler per route of
//! `bazaar_contracts::orders`.

use axum::Router;
use bazaar_contracts::orders::{
    CancelOrder, ListOrders, ListOrdersRequest, ListPendingRefunds, Order, OrderById,
    OrderIdRequest, PayOrder, PayOrderRequest, PendingRefund, PlaceOrder, PlaceOrderRequest,
    SetOrderStatus, SetOrderStatusRequest,
};
use bazaar_contracts::page::Page;
use bazaar_contracts::{Principal, Routes};
use bazaar_runtime::ServiceResult;

use crate::app::Orders;

pub fn routes(orders: Orders) -> Router {
    Routes::new()
        .serve::<PlaceOrder>(place_order)
        .serve::<CancelOrder>(cancel_order)
        .serve::<PayOrder>(pay_order)
        .serve::<SetOrderStatus>(set_order_status)
        .serve::<OrderById>(order)
        .serve::<ListOrders>(orders_list)
        .serve::<ListPendingRefunds>(pending_refunds)
        .with_state(orders)
}

async fn place_order(o: Orders, p: Principal, req: PlaceOrderRequest) -> ServiceResult<Order> {
    o.place_order(&p, req).await
}

async fn cancel_order(o: Orders, p: Principal, req: OrderIdRequest) -> ServiceResult<Order> {
    o.cancel_order(&p, &req.id).await
}

async fn pay_order(o: Orders, p: Principal, req: PayOrderRequest) -> ServiceResult<Order> {
    o.pay_order(&p, &req).await
}

async fn set_order_status(
    o: Orders,
    p: Principal,
    req: SetOrderStatusRequest,
) -> ServiceResult<Order> {
    o.set_order_status(&p, &req).await
}

/// The order if the caller owns it or is an admin; `null` otherwise, so probing ids reveals nothing.
async fn order(o: Orders, p: Principal, req: OrderIdRequest) -> ServiceResult<Option<Order>> {
    o.order(&p, &req.id).await
}

async fn orders_list(
    o: Orders,
    p: Principal,
    req: ListOrdersRequest,
) -> ServiceResult<Page<Order>> {
    o.list(&p, &req).await
}

async fn pending_refunds(o: Orders, p: Principal, _: ()) -> ServiceResult<Vec<PendingRefund>> {
    o.pending_refunds(&p).await
}
