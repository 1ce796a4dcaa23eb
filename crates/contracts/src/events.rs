//! Event payloads: the facts services publish. Each has a name, a version and the aggregate it
//! is about; consumers decode them with [`Envelope::decode`](bazaar_bus::Envelope::decode).
//! Changing a payload incompatibly means a new version, never an edit.

use bazaar_bus::Envelope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::users::Address;

/// A payload type with its wire identity.
pub trait Event: Serialize + DeserializeOwned {
    const TYPE: &'static str;
    const VERSION: u32;
    fn aggregate_id(&self) -> &str;

    /// Wraps the payload for the outbox.
    fn envelope(&self, source: &str) -> Envelope {
        let payload = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        Envelope::new(
            source,
            Self::TYPE,
            Self::VERSION,
            self.aggregate_id(),
            payload,
        )
    }
}

macro_rules! event {
    ($ty:ident, $version:literal, $aggregate:ident) => {
        impl Event for $ty {
            const TYPE: &'static str = stringify!($ty);
            const VERSION: u32 = $version;
            fn aggregate_id(&self) -> &str {
                &self.$aggregate
            }
        }
    };
}

/// A new account exists.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub registered_at: i64,
}
event!(UserRegistered, 1, user_id);

/// A user's contact details or address changed (the full new state, not a diff).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfileUpdated {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub updated_at: i64,
}
event!(UserProfileUpdated, 1, user_id);

/// A product line in an event: which product and how many units.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLine {
    pub product_id: String,
    pub quantity: i64,
}

/// A product was added to the catalogue (the full product).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    pub product_id: String,
    pub product: crate::catalog::Product,
}
event!(ProductCreated, 1, product_id);

/// A product's name, description, category or price changed (the full new product).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    pub product_id: String,
    pub product: crate::catalog::Product,
}
event!(ProductUpdated, 1, product_id);

/// A product was withdrawn; it is no longer listed or sold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    pub product_id: String,
}
event!(ProductDeleted, 1, product_id);

/// A product's stock changed, by an admin adjustment, a reservation or a release.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockChanged {
    pub product_id: String,
    pub stock: i64,
    pub delta: i64,
    /// `ADJUSTMENT`, `RESERVATION` or `RELEASE`.
    pub reason: String,
}
event!(StockChanged, 1, product_id);

/// A customer placed an order; the catalogue now reserves its stock.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<crate::orders::OrderItem>,
    pub total_cents: i64,
    pub placed_at: i64,
}
event!(OrderPlaced, 1, order_id);

/// Every line of the order is reserved (all or nothing).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    pub order_id: String,
    pub items: Vec<StockLine>,
}
event!(StockReserved, 1, order_id);

/// The order could not be reserved; nothing was taken.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockRejected {
    pub order_id: String,
    /// Readable, e.g. "not enough stock for Teapot (requested 3, available 1)".
    pub reason: String,
}
event!(StockRejected, 1, order_id);

/// A cancelled order's reservation went back into stock.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    pub order_id: String,
    pub items: Vec<StockLine>,
}
event!(StockReleased, 1, order_id);

/// An order moved from one status to another. Emitted for every transition after placement
/// (CONFIRMED, REJECTED, PAID, SHIPPED, DELIVERED, CANCELLED), in order per order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusChanged {
    pub order_id: String,
    pub user_id: String,
    pub from: crate::orders::OrderStatus,
    pub to: crate::orders::OrderStatus,
    pub reason: Option<String>,
    pub items: Vec<crate::orders::OrderItem>,
    pub total_cents: i64,
    pub changed_at: i64,
}
event!(OrderStatusChanged, 1, order_id);

/// An admin created a promotion (it may start later).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionCreated {
    pub promotion_id: String,
    pub promotion: crate::catalog::Promotion,
}
event!(PromotionCreated, 1, promotion_id);

/// A promotion was ended early by an admin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionEnded {
    pub promotion_id: String,
    pub ended_at: i64,
}
event!(PromotionEnded, 1, promotion_id);

/// Periodic recommendations for one user, for the notifications service to deliver to those
/// who opted in.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationDigest {
    pub digest_id: String,
    pub user_id: String,
    /// (product id, product name), best first.
    pub products: Vec<(String, String)>,
}
event!(RecommendationDigest, 1, digest_id);

/// Decodes `event` as `T` for a consumer, refusing versions this code was not written for
/// (a refusal dead-letters the event instead of misreading it).
pub fn decode<T: Event>(event: &Envelope) -> Result<T, bazaar_bus::HandlerError> {
    if event.version != T::VERSION {
        return Err(bazaar_bus::HandlerError::Reject(format!(
            "unsupported {} version {}",
            T::TYPE,
            event.version
        )));
    }
    Ok(event.decode()?)
}
