//! Whole serialized responses for anonymous catalogue reads (`product`, `products`, and
//! introspection): the answer is the same for every anonymous caller until the catalogue
//! changes, so it is served without running a resolver.
//!
//! The key is the catalogue generation the product cache uses (bumped by every catalogue event
//! and by the gateway's own product mutations), plus a hash of the normalised document, the
//! operation name and the variables in canonical form. A change therefore moves every reader to
//! new keys at once, and an entry computed during a change lands under the old generation where
//! nobody reads it. Entries live in the cache backend, so Redis shares them across replicas.
//! Only a response without errors to a query whose root fields are all public catalogue reads
//! is stored; a signed-in caller never reaches this cache at all.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{OperationType, Selection};
use axum::body::Bytes;
use bazaar_cache::Cache;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::product_cache::ProductCache;

/// Root fields whose answer does not depend on who asks.
const PUBLIC_ROOT_FIELDS: [&str; 5] = ["product", "products", "__typename", "__schema", "__type"];
/// Length of the ETag stored in front of each body.
const ETAG_LEN: usize = 32;

#[derive(Clone)]
pub struct ResponseCache {
    cache: Arc<dyn Cache>,
    /// With Redis: this process's copy of entries already fetched. An entry never changes
    /// under its key (the key carries the generation, read from Redis on every request, and a
    /// generation never repeats, even after Redis lost it: see `Cache::counter`), so a local
    /// copy is as fresh as Redis's and saves moving the whole body over the network.
    local: Option<moka::future::Cache<String, Arc<Hit>>>,
    products: ProductCache,
    ttl: Duration,
}

/// Where one request's response lives (or would live) in the cache.
pub struct Slot(String);

/// A stored response and its entity tag.
pub struct Hit {
    pub etag: String,
    pub body: Bytes,
}

/// The most memory (bytes of bodies) the local copies of Redis entries may take.
const LOCAL_BYTES: u64 = 64 << 20;

impl ResponseCache {
    /// `None` when the TTL is zero (the cache is off).
    pub fn new(cache: Arc<dyn Cache>, products: ProductCache, ttl: Duration) -> Option<Self> {
        if ttl.is_zero() {
            return None;
        }
        // The in-memory backend is already local: a second copy would only double memory.
        let local = (cache.kind() != "memory").then(|| {
            moka::future::Cache::builder()
                .max_capacity(LOCAL_BYTES)
                .weigher(|key: &String, hit: &Arc<Hit>| {
                    u32::try_from(key.len() + hit.body.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build()
        });
        Some(ResponseCache {
            cache,
            local,
            products,
            ttl,
        })
    }

    /// The slot of an anonymous request, or `None` when it cannot be cached (the cache is down,
    /// or the document is plainly not a query).
    pub async fn slot(
        &self,
        normalised: &str,
        operation: Option<&str>,
        variables: Option<&Value>,
    ) -> Option<Slot> {
        if normalised.starts_with("mutation") || normalised.starts_with("subscription") {
            return None;
        }
        let generation = self.products.generation().await?;
        let mut hasher = Sha256::new();
        hasher.update(normalised.as_bytes());
        hasher.update([0]);
        hasher.update(operation.unwrap_or_default().as_bytes());
        hasher.update([0]);
        if let Some(variables) = variables.filter(|v| !v.is_null()) {
            canonical(variables, &mut hasher);
        }
        Some(Slot(format!(
            "catalog:{generation}:response:{}",
            hex::encode(hasher.finalize())
        )))
    }

    pub async fn get(&self, slot: &Slot) -> Option<Arc<Hit>> {
        if let Some(local) = &self.local
            && let Some(hit) = local.get(&slot.0).await
        {
            return Some(hit);
        }
        let mut stored = Bytes::from(self.cache.get(&slot.0).await.ok()??);
        if stored.len() < ETAG_LEN {
            return None;
        }
        let etag = String::from_utf8(stored.split_to(ETAG_LEN).to_vec()).ok()?;
        let hit = Arc::new(Hit {
            etag: format!("W/\"{etag}\""),
            body: stored,
        });
        if let Some(local) = &self.local {
            local.insert(slot.0.clone(), hit.clone()).await;
        }
        Some(hit)
    }

    /// Stores `body` when `document` is a public catalogue read; returns its ETag if stored.
    pub async fn put(
        &self,
        slot: &Slot,
        document: &str,
        operation: Option<&str>,
        body: &[u8],
    ) -> Option<String> {
        if !is_public_read(document, operation) {
            return None;
        }
        let tag = &hex::encode(Sha256::digest(body))[..ETAG_LEN];
        let mut stored = Vec::with_capacity(ETAG_LEN + body.len());
        stored.extend_from_slice(tag.as_bytes());
        stored.extend_from_slice(body);
        if let Err(e) = self.cache.set(&slot.0, &stored, self.ttl).await {
            tracing::debug!(error = %e, "response cache write failed");
            return None;
        }
        Some(format!("W/\"{tag}\""))
    }
}

/// Whether the operation that runs is a query selecting only public catalogue root fields
/// (plain fields: a fragment at the root is not looked into, it is simply not cached).
fn is_public_read(document: &str, operation: Option<&str>) -> bool {
    let Ok(document) = parse_query(document) else {
        return false;
    };
    let chosen = super::incoming::chosen_operation(&document, operation);
    let Some(op) = chosen else { return false };
    op.node.ty == OperationType::Query
        && op.node.directives.is_empty()
        && op
            .node
            .selection_set
            .node
            .items
            .iter()
            .all(|s| match &s.node {
                Selection::Field(f) => {
                    PUBLIC_ROOT_FIELDS.contains(&f.node.name.node.as_str())
                        && f.node.directives.is_empty()
                }
                _ => false,
            })
}

/// Feeds `value` to the hasher with object keys sorted, so `{"a":1,"b":2}` and
/// `{"b":2,"a":1}` give one key.
fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for k in keys {
                hasher.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical(&map[k], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_catalogue_queries_are_cacheable() {
        assert!(is_public_read(
            "{ products(first: 2) { edges { node { id } } } }",
            None
        ));
        assert!(is_public_read(
            "query A { product(id: \"1\") { name } } query B { me { id } }",
            Some("A")
        ));
        assert!(!is_public_read(
            "query A { product(id: \"1\") { name } } query B { me { id } }",
            Some("B")
        ));
        assert!(!is_public_read(
            "{ products { edges { node { id } } } me { id } }",
            None
        ));
        assert!(!is_public_read(
            "{ ...F } fragment F on Query { me { id } }",
            None
        ));
        assert!(!is_public_read(
            "mutation { logout(refreshToken: \"x\") }",
            None
        ));
    }

    #[test]
    fn variables_are_hashed_in_canonical_order() {
        let hash = |v: Value| {
            let mut h = Sha256::new();
            canonical(&v, &mut h);
            hex::encode(h.finalize())
        };
        let a = serde_json::json!({"a": 1, "b": {"x": [1, "two"], "y": null}});
        let b = serde_json::json!({"b": {"y": null, "x": [1, "two"]}, "a": 1});
        assert_eq!(hash(a), hash(b));
    }
}
