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
        Envelope::new(source, Self::TYPE, Self::VERSION, self.aggregate_id(), payload)
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
