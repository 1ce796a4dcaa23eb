//! Which document a request runs: the text it sends, or one it names by hash.
//!
//! - Automatic persisted queries (Apollo's APQ): a client sends
//!   `extensions.persistedQuery.sha256Hash`; on `PERSISTED_QUERY_NOT_FOUND` it sends the text
//!   with the hash once, which registers it. Registrations live in the cache backend (Redis is
//!   shared by every gateway replica), so a long document crosses the network once.
//! - Trusted documents: with a manifest of allowed operations, only those documents run, named
//!   by their hash (`documentId`, or the APQ extension) or sent in full.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult};
use bazaar_cache::Cache;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::incoming::Incoming;
use super::media::RequestError;
use super::normalize::normalize;

/// Resolves the document of each request.
pub struct Persisted {
    cache: Arc<dyn Cache>,
    /// APQ on (registration and lookup by hash).
    automatic: bool,
    ttl: Duration,
    trusted: Option<Arc<Manifest>>,
}

/// The operations a trusted-documents manifest allows.
struct Manifest {
    by_hash: HashMap<String, String>,
    /// Normalised texts, so a client whose build formats a document differently still matches.
    texts: HashSet<String>,
}

impl Persisted {
    pub fn new(
        cache: Arc<dyn Cache>,
        settings: &bazaar_runtime::EdgeSettings,
    ) -> Result<Persisted, String> {
        let trusted = settings
            .trusted_documents
            .as_deref()
            .map(Manifest::load)
            .transpose()?
            .map(Arc::new);
        Ok(Persisted {
            cache,
            automatic: settings.persisted_queries,
            ttl: settings.persisted_query_ttl,
            trusted,
        })
    }

    /// With a manifest: the schema extension that holds every operation to it, including those
    /// that arrive over the subscription WebSocket, which does not pass through `resolve`.
    pub fn trusted_only(&self) -> Option<TrustedOnly> {
        self.trusted.clone().map(TrustedOnly)
    }

    /// The text to run.
    pub async fn resolve(&self, request: &Incoming) -> Result<String, RequestError> {
        let hash = requested_hash(request)?;
        if let Some(manifest) = &self.trusted {
            return manifest.resolve(request.query.as_deref(), hash.as_deref());
        }
        match (request.query.as_deref(), hash) {
            (Some(query), None) => Ok(query.to_owned()),
            (None, None) => Err(RequestError::bad_request(
                "the request has no query (and no persisted query hash)",
            )),
            (_, Some(_)) if !self.automatic => Err(RequestError::new(
                "PersistedQueryNotSupported",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            )),
            (None, Some(hash)) => match self.cache.get(&key(&hash)).await {
                Ok(Some(bytes)) => String::from_utf8(bytes).map_err(|_| not_found()),
                // A cache that is down reads as a miss: the client then sends the text.
                _ => Err(not_found()),
            },
            (Some(query), Some(hash)) => {
                if sha256_hex(query) != hash {
                    return Err(RequestError::bad_request(
                        "provided sha256Hash does not match the query",
                    ));
                }
                if let Err(e) = self
                    .cache
                    .set(&key(&hash), query.as_bytes(), self.ttl)
                    .await
                {
                    tracing::warn!(error = %e, "could not register a persisted query");
                }
                Ok(query.to_owned())
            }
        }
    }
}

impl Manifest {
    /// Reads Apollo's persisted query manifest (`{"format": "apollo-persisted-query-manifest",
    /// "operations": [{"id", "body"}]}`) or GraphQL Codegen's map of hash to document.
    /// Hashes are kept in lower case, as requests' are (`requested_hash`).
    fn load(path: &Path) -> Result<Manifest, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let mut by_hash = HashMap::new();
        match json.get("operations").and_then(Value::as_array) {
            Some(operations) => {
                for op in operations {
                    let (Some(id), Some(body)) = (
                        op.get("id").and_then(Value::as_str),
                        op.get("body").and_then(Value::as_str),
                    ) else {
                        return Err(format!(
                            "{}: every operation needs an id and a body",
                            path.display()
                        ));
                    };
                    by_hash.insert(id.to_ascii_lowercase(), body.to_owned());
                }
            }
            None => {
                let Some(map) = json.as_object() else {
                    return Err(format!(
                        "{}: not a persisted documents manifest",
                        path.display()
                    ));
                };
                for (hash, body) in map {
                    let Some(body) = body.as_str() else {
                        return Err(format!("{}: {hash} is not a document", path.display()));
                    };
                    // Codegen may prefix the algorithm: "sha256:<hex>".
                    let hash = hash.strip_prefix("sha256:").unwrap_or(hash);
                    by_hash.insert(hash.to_ascii_lowercase(), body.to_owned());
                }
            }
        }
        let texts = by_hash.values().map(|b| normalize(b)).collect();
        Ok(Manifest { by_hash, texts })
    }

    fn resolve(&self, query: Option<&str>, hash: Option<&str>) -> Result<String, RequestError> {
        let not_allowed = || {
            RequestError::new(
                "this operation is not a trusted document",
                "PERSISTED_QUERY_NOT_ALLOWED",
            )
        };
        match (query, hash) {
            (_, Some(hash)) => self.by_hash.get(hash).cloned().ok_or_else(not_found),
            (Some(query), None) if self.texts.contains(&normalize(query)) => Ok(query.to_owned()),
            _ => Err(not_allowed()),
        }
    }
}

/// Refuses, in the schema itself, any document the manifest does not list.
#[derive(Clone)]
pub struct TrustedOnly(Arc<Manifest>);

impl ExtensionFactory for TrustedOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for TrustedOnly {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if !self.0.texts.contains(&normalize(&request.query)) {
            let mut error = ServerError::new("this operation is not a trusted document", None);
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", "PERSISTED_QUERY_NOT_ALLOWED");
            error.extensions = Some(extensions);
            return Err(error);
        }
        next.run(ctx, request).await
    }
}

fn not_found() -> RequestError {
    // Apollo clients look for this exact message and code before re-sending with the text.
    RequestError::new("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
}

/// The hash a request names: GraphQL over HTTP's `documentId` (`sha256:<hex>` or bare hex), or
/// Apollo's `extensions.persistedQuery` (version 1).
fn requested_hash(request: &Incoming) -> Result<Option<String>, RequestError> {
    if let Some(id) = &request.document_id {
        return Ok(Some(
            id.strip_prefix("sha256:")
                .unwrap_or(id)
                .to_ascii_lowercase(),
        ));
    }
    let Some(pq) = request
        .extensions
        .as_ref()
        .and_then(|e| e.get("persistedQuery"))
    else {
        return Ok(None);
    };
    if pq.get("version").and_then(Value::as_i64) != Some(1) {
        return Err(RequestError::bad_request(
            "unsupported persistedQuery version (1 is supported)",
        ));
    }
    match pq.get("sha256Hash").and_then(Value::as_str) {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(h.to_ascii_lowercase()))
        }
        _ => Err(RequestError::bad_request(
            "persistedQuery.sha256Hash must be 64 hex digits",
        )),
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn key(hash: &str) -> String {
    format!("apq:{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `manifest` from a file, as the gateway does at start-up.
    fn load(name: &str, manifest: &Value) -> Result<Manifest, String> {
        let path = std::env::temp_dir().join(format!(
            "bazaar-manifest-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, manifest.to_string()).expect("write the manifest");
        let loaded = Manifest::load(&path);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn codegen_client_preset_manifests_load() {
        let typename = "query Typename { __typename }";
        let products = "query Products {\n  products { edges { cursor } }\n}";
        // GraphQL Codegen's client preset (`persistedDocuments: true`) writes
        // `persisted-documents.json`: hash to document, the hash bare or `sha256:`-prefixed.
        let mut map = serde_json::Map::new();
        map.insert(sha256_hex(typename), typename.into());
        let prefixed = format!("sha256:{}", sha256_hex(products).to_ascii_uppercase());
        map.insert(prefixed, products.into());
        let manifest = load("codegen", &Value::Object(map)).expect("loads");

        let by_hash = |text: &str| manifest.resolve(None, Some(&sha256_hex(text)));
        assert_eq!(by_hash(typename).expect("listed"), typename);
        assert_eq!(by_hash(products).expect("listed"), products);
        let relaid = "query Products { products { edges { cursor } } }";
        assert_eq!(
            manifest.resolve(Some(relaid), None).expect("listed"),
            relaid
        );
        let refused = manifest.resolve(Some("{ me { id } }"), None).unwrap_err();
        assert!(
            format!("{refused:?}").contains("PERSISTED_QUERY_NOT_ALLOWED"),
            "{refused:?}"
        );
        let unknown = by_hash("{ me { id } }").unwrap_err();
        assert!(
            format!("{unknown:?}").contains("PERSISTED_QUERY_NOT_FOUND"),
            "{unknown:?}"
        );
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let not_a_document = serde_json::json!({"abc": 1});
        let error = load("not-a-document", &not_a_document)
            .err()
            .expect("refused");
        assert!(error.contains("abc is not a document"), "{error}");
        let no_body = serde_json::json!({"operations": [{"id": "abc"}]});
        let error = load("no-body", &no_body).err().expect("refused");
        assert!(error.contains("needs an id and a body"), "{error}");
        let error = load("a-list", &serde_json::json!([]))
            .err()
            .expect("refused");
        assert!(
            error.contains("not a persisted documents manifest"),
            "{error}"
        );
    }
}
