//! The orders service's internal API: placing, paying, cancelling and shipping orders.

use serde::{Deserialize, Serialize};

use crate::page::Page;
use crate::users::Address;
use crate::{ApiError, Principal, ServiceClient};

#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Rejected,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One line of an order, priced when the order was placed and never changed after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub status_reason: Option<String>,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub shipping_address: Option<Address>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineRequest {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub items: Vec<OrderLineRequest>,
    pub shipping_address: Option<Address>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderIdRequest {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayOrderRequest {
    pub id: String,
    pub payment_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetOrderStatusRequest {
    pub id: String,
    pub status: OrderStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListOrdersRequest {
    pub first: i64,
    /// The id of the last order of the previous page.
    pub after: Option<String>,
    pub status: Option<OrderStatus>,
}

/// A refund owed to a customer that the payment provider has not confirmed yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRefund {
    pub order_id: String,
    pub charge_id: String,
    pub amount_cents: i64,
    /// Attempts made so far (each failed).
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

routes! {
    /// Prices and places an order: every line's stock is reserved, or none.
    command PlaceOrder = "place-order": PlaceOrderRequest => Order;
    command CancelOrder = "cancel-order": OrderIdRequest => Order;
    command PayOrder = "pay-order": PayOrderRequest => Order;
    /// Moves an order along (admins only).
    command SetOrderStatus = "set-order-status": SetOrderStatusRequest => Order;
    /// The order when the caller owns it or is an admin; `None` otherwise.
    query OrderById = "order": OrderIdRequest => Option<Order>;
    /// The caller's orders, newest first (every order for an admin).
    query ListOrders = "orders": ListOrdersRequest => Page<Order>;
    /// Refunds not yet confirmed by the provider (admins only). The request is `null`.
    query ListPendingRefunds = "pending-refunds": () => Vec<PendingRefund>;
}

/// Typed calls to the orders service.
#[derive(Clone)]
pub struct OrdersClient(pub ServiceClient);

impl OrdersClient {
    pub async fn place_order(
        &self,
        p: &Principal,
        req: &PlaceOrderRequest,
    ) -> Result<Order, ApiError> {
        self.0.call::<PlaceOrder>(p, req).await
    }
    pub async fn cancel_order(&self, p: &Principal, id: &str) -> Result<Order, ApiError> {
        let req = OrderIdRequest { id: id.to_owned() };
        self.0.call::<CancelOrder>(p, &req).await
    }
    pub async fn pay_order(&self, p: &Principal, req: &PayOrderRequest) -> Result<Order, ApiError> {
        self.0.call::<PayOrder>(p, req).await
    }
    pub async fn set_order_status(
        &self,
        p: &Principal,
        req: &SetOrderStatusRequest,
    ) -> Result<Order, ApiError> {
        self.0.call::<SetOrderStatus>(p, req).await
    }
    /// The order when the caller owns it or is an admin; `None` otherwise.
    pub async fn order(&self, p: &Principal, id: &str) -> Result<Option<Order>, ApiError> {
        let req = OrderIdRequest { id: id.to_owned() };
        self.0.call::<OrderById>(p, &req).await
    }
    /// The caller's orders, newest first (every order for an admin).
    pub async fn list(
        &self,
        p: &Principal,
        req: &ListOrdersRequest,
    ) -> Result<Page<Order>, ApiError> {
        self.0.call::<ListOrders>(p, req).await
    }
    /// Refunds not yet confirmed by the provider (admins only).
    pub async fn pending_refunds(&self, p: &Principal) -> Result<Vec<PendingRefund>, ApiError> {
        self.0.call::<ListPendingRefunds>(p, &()).await
    }
}
