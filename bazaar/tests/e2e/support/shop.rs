//! GraphQL operations and helpers for the purchase-flow tests.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};

use super::{TestApp, eventually, str};

pub const CREATE_PRODUCT: &str = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id name priceCents stock category } }";
pub const PRODUCT: &str = "query($id: ID!) { product(id: $id) { id name priceCents stock } }";
pub const PLACE_ORDER: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status totalCents items { productId name quantity unitPriceCents } shippingAddress { line1 city } } }";
pub const ORDER: &str = "query($id: ID!) { order(id: $id) { id status statusReason totalCents userId user { id email } items { productId name quantity unitPriceCents product { id name } } shippingAddress { line1 city } } }";
pub const CANCEL: &str = "mutation($id: ID!) { cancelOrder(id: $id) { id status statusReason } }";
pub const PAY: &str = "mutation($id: ID!, $token: String!) { payOrder(id: $id, paymentToken: $token) { id status statusReason } }";
pub const SET_STATUS: &str = "mutation($id: ID!, $status: OrderStatus!) { setOrderStatus(id: $id, status: $status) { id status } }";
pub const ADJUST: &str =
    "mutation($id: ID!, $delta: Int!) { adjustStock(id: $id, delta: $delta) { id stock } }";

pub fn address() -> Value {
    json!({"line1": "1 Market St", "city": "York", "postalCode": "YO1 7HH", "country": "GB"})
}

impl TestApp {
    /// Creates a product as `admin` and returns its id.
    pub async fn product(
        &self,
        admin: &str,
        name: &str,
        category: &str,
        price: i64,
        stock: i64,
    ) -> String {
        let input = json!({"name": name, "description": format!("A fine {name}"), "category": category, "priceCents": price, "stock": stock});
        str(&self
            .ok(Some(admin), CREATE_PRODUCT, json!({"input": input}))
            .await["createProduct"]["id"])
    }

    pub async fn stock(&self, id: &str) -> i64 {
        self.ok(None, PRODUCT, json!({"id": id})).await["product"]["stock"]
            .as_i64()
            .expect("stock")
    }

    /// Places an order of `(product, quantity)` lines to the test address; returns its id.
    pub async fn order(&self, token: &str, lines: &[(&str, i64)]) -> String {
        let items: Vec<Value> = lines
            .iter()
            .map(|(p, q)| json!({"productId": p, "quantity": q}))
            .collect();
        let data = self
            .ok(
                Some(token),
                PLACE_ORDER,
                json!({"input": {"items": items, "shippingAddress": address()}}),
            )
            .await;
        str(&data["placeOrder"]["id"])
    }

    pub async fn order_status(&self, token: &str, id: &str) -> (String, Value) {
        let order = self.ok(Some(token), ORDER, json!({"id": id})).await["order"].clone();
        (str(&order["status"]), order)
    }

    /// Waits until the order leaves PENDING and returns it.
    pub async fn settled(&self, token: &str, id: &str) -> Value {
        self.settled_within(token, id, Duration::from_secs(20))
            .await
    }

    pub async fn settled_within(&self, token: &str, id: &str, timeout: Duration) -> Value {
        eventually(timeout, || async {
            let (status, order) = self.order_status(token, id).await;
            (status != "PENDING").then_some(order)
        })
        .await
    }
}
