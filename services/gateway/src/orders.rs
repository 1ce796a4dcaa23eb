//! The orders slice of the schema: placing, paying, tracking, cancelling and shipping orders.

use async_graphql::{Context, ID, InputObject, Object};
use bazaar_contracts::orders::{
    self, ListOrdersRequest, OrderLineRequest, OrderStatus, PayOrderRequest, PlaceOrderRequest,
    SetOrderStatusRequest,
};
use bazaar_contracts::users::Address;
use chrono::{DateTime, Utc};

use crate::accounts::{User, UserLoader};
use crate::catalog::{Product, ProductLoader};
use crate::context::{admin, clients, principal, signed_in};
use crate::error::{GqlResult, OrGql, gql};
use crate::loaders;
use crate::pagination::{connection, decode_cursor, page_size};

pub struct Order(pub orders::Order);

pub struct PendingRefund(orders::PendingRefund);

#[Object]
impl PendingRefund {
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.clone())
    }
    async fn amount_cents(&self) -> i32 {
        self.0.amount_cents as i32
    }
    /// Attempts made so far, each refused or unanswered by the provider.
    async fn attempts(&self) -> i32 {
        self.0.attempts as i32
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.next_attempt_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.clone())
    }
    /// The buyer (batched across the response).
    async fn user(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        Ok(loaders::of::<UserLoader>(ctx)
            .load_one(self.0.user_id.clone())
            .await
            .map_err(gql)?
            .map(User))
    }
    async fn status(&self) -> OrderStatus {
        self.0.status
    }
    /// Why the order is in its status (a rejection, a declined card, a cancellation).
    async fn status_reason(&self) -> Option<&str> {
        self.0.status_reason.as_deref()
    }
    async fn items(&self) -> Vec<OrderItem> {
        self.0.items.iter().cloned().map(OrderItem).collect()
    }
    /// Sum of quantity × unit price, computed by the server when the order was placed.
    async fn total_cents(&self) -> i32 {
        self.0.total_cents as i32
    }
    async fn shipping_address(&self) -> Option<&Address> {
        self.0.shipping_address.as_ref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        bazaar_db::from_millis(self.0.updated_at)
    }
}

/// A line as it was bought: name and price are the ones at the time of the order.
pub struct OrderItem(orders::OrderItem);

#[Object]
impl OrderItem {
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.clone())
    }
    /// The product as it is now; null once deleted.
    async fn product(&self, ctx: &Context<'_>) -> GqlResult<Option<Product>> {
        Ok(loaders::of::<ProductLoader>(ctx)
            .load_one(self.0.product_id.clone())
            .await
            .map_err(gql)?
            .map(Product))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity as i32
    }
    async fn unit_price_cents(&self) -> i32 {
        self.0.unit_price_cents as i32
    }
}

connection!(OrderConnection, OrderEdge, Order);

#[derive(InputObject)]
pub struct OrderItemInput {
    pub product_id: ID,
    pub quantity: i32,
}

#[derive(InputObject)]
pub struct PlaceOrderInput {
    pub items: Vec<OrderItemInput>,
    /// Defaults to the address on the buyer's profile.
    pub shipping_address: Option<Address>,
    /// Retrying with the same key returns the same order instead of a second one.
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
    /// An order; null unless it is the caller's own (admins see every order).
    async fn order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Order>> {
        let p = principal(ctx);
        if p.user.is_none() {
            return Ok(None);
        }
        Ok(clients(ctx).orders.order(p, &id).await.gql()?.map(Order))
    }

    /// Refunds owed that the payment provider has not confirmed yet, oldest first (admins
    /// only). Each is retried with backoff until it succeeds.
    async fn pending_refunds(&self, ctx: &Context<'_>) -> GqlResult<Vec<PendingRefund>> {
        let p = admin(ctx)?;
        let pending = clients(ctx).orders.pending_refunds(p).await.gql()?;
        Ok(pending.into_iter().map(PendingRefund).collect())
    }

    /// The caller's orders, newest first (admins: all orders), optionally in one status.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> GqlResult<OrderConnection> {
        let p = signed_in(ctx)?;
        let req = ListOrdersRequest {
            first: page_size(first.unwrap_or(20)).gql()?,
            after: decode_cursor(after.as_deref()).gql()?,
            status,
        };
        let page = clients(ctx).orders.list(p, &req).await.gql()?;
        prime(
            ctx,
            ctx.look_ahead().field("edges").field("node"),
            &page.items,
        )
        .await?;
        Ok(OrderConnection::from_page(page, |o| &o.id, Order))
    }
}

/// Loads the buyers and products a page of orders will ask for, one batched call each, so
/// the nested resolvers find them in the request's loader cache. Whether the fields are
/// requested at all is read from the query.
async fn prime(
    ctx: &Context<'_>,
    node: async_graphql::Lookahead<'_>,
    orders: &[orders::Order],
) -> GqlResult<()> {
    if node.field("user").exists() {
        let ids: std::collections::HashSet<String> =
            orders.iter().map(|o| o.user_id.clone()).collect();
        let users = loaders::of::<UserLoader>(ctx);
        users.load_many(ids).await.map_err(gql)?;
    }
    if node.field("items").field("product").exists() {
        let ids: std::collections::HashSet<String> = orders
            .iter()
            .flat_map(|o| o.items.iter().map(|i| i.product_id.clone()))
            .collect();
        let products = loaders::of::<ProductLoader>(ctx);
        products.load_many(ids).await.map_err(gql)?;
    }
    Ok(())
}

#[derive(Default)]
pub struct OrdersMutation;

#[Object]
impl OrdersMutation {
    /// Places an order for the signed-in user. Prices come from the catalogue; the order starts
    /// PENDING and becomes CONFIRMED or REJECTED once stock is reserved.
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> GqlResult<Order> {
        let p = signed_in(ctx)?;
        let req = PlaceOrderRequest {
            items: input
                .items
                .into_iter()
                .map(|i| OrderLineRequest {
                    product_id: i.product_id.0,
                    quantity: i.quantity.into(),
                })
                .collect(),
            shipping_address: input.shipping_address,
            idempotency_key: input.idempotency_key,
        };
        Ok(Order(clients(ctx).orders.place_order(p, &req).await.gql()?))
    }

    /// Cancels an order before it ships (its owner or an admin); reserved stock is released.
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Order> {
        let p = signed_in(ctx)?;
        Ok(Order(clients(ctx).orders.cancel_order(p, &id).await.gql()?))
    }

    /// Pays a CONFIRMED order (its owner). A declined card leaves it CONFIRMED with the reason.
    async fn pay_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        payment_token: String,
    ) -> GqlResult<Order> {
        let p = signed_in(ctx)?;
        Ok(Order(
            clients(ctx)
                .orders
                .pay_order(
                    p,
                    &PayOrderRequest {
                        id: id.0,
                        payment_token,
                    },
                )
                .await
                .gql()?,
        ))
    }

    /// Moves a paid order to SHIPPED, or a shipped one to DELIVERED (admins only).
    async fn set_order_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: OrderStatus,
    ) -> GqlResult<Order> {
        let p = admin(ctx)?;
        let req = SetOrderStatusRequest { id: id.0, status };
        Ok(Order(
            clients(ctx).orders.set_order_status(p, &req).await.gql()?,
        ))
    }
}
