//! Settings of the public GraphQL edge (the `[graphql]` table of the config file): who may call
//! it from a browser, whether introspection answers, persisted queries and the response cache.
//! Kept in their own table and module so the gateway's HTTP behaviour is configured in one place.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::sources::env;

/// The `[graphql]` table as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileEdge {
    introspection: Option<bool>,
    cors_allowed_origins: Option<Vec<String>>,
    persisted_queries: Option<bool>,
    persisted_query_ttl_secs: Option<u64>,
    trusted_documents: Option<PathBuf>,
    response_cache_ttl_secs: Option<u64>,
}

/// How the gateway's `/graphql` endpoint behaves at its HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings {
    /// Whether `__schema` / `__type` answer. Off hides the schema from clients (GraphiQL's
    /// explorer and codegen tools then do not work).
    pub introspection: bool,
    /// Origins (`https://shop.example.com`) whose pages may call the API from a browser.
    /// Empty: no cross-origin browser access at all.
    pub cors_allowed_origins: Vec<String>,
    /// Apollo's automatic persisted queries (hash first, register the text on a miss).
    pub persisted_queries: bool,
    /// How long a registered persisted query is kept in the cache.
    pub persisted_query_ttl: Duration,
    /// A manifest of allowed operations (Apollo / GraphQL Codegen format): when set, only
    /// those documents run.
    pub trusted_documents: Option<PathBuf>,
    /// How long a whole anonymous catalogue response stays cached; zero turns the cache off.
    pub response_cache_ttl: Duration,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            introspection: true,
            cors_allowed_origins: Vec::new(),
            persisted_queries: true,
            persisted_query_ttl: Duration::from_secs(86_400),
            trusted_documents: None,
            response_cache_ttl: Duration::from_secs(60),
        }
    }
}

fn env_bool(name: &str, errors: &mut Vec<String>) -> Option<bool> {
    let raw = env(name)?;
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => {
            errors.push(format!("{name}={raw:?} must be true or false"));
            None
        }
    }
}

pub(crate) fn env_secs(name: &str, errors: &mut Vec<String>) -> Option<Duration> {
    let raw = env(name)?;
    match raw.parse() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => {
            errors.push(format!("{name}={raw:?} is not a number of seconds"));
            None
        }
    }
}

/// Merges the environment over the file, recording every problem in `errors`.
pub(crate) fn load(file: &FileEdge, errors: &mut Vec<String>) -> EdgeSettings {
    let defaults = EdgeSettings::default();
    let origins = env("BAZAAR_CORS_ALLOWED_ORIGINS")
        .map(|raw| {
            raw.split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .or_else(|| file.cors_allowed_origins.clone())
        .unwrap_or_default();
    for origin in &origins {
        // An origin is scheme://host[:port] with nothing after it; a wildcard would let every
        // site read the API with its visitors' credentials, so it is not accepted.
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.trim_end_matches('/').contains(['*', '?', '#'])
            && origin.splitn(4, '/').nth(3).is_none();
        if !valid {
            errors.push(format!(
                "CORS origin {origin:?} must be scheme://host[:port] (no path, no wildcard)"
            ));
        }
    }
    let trusted_documents = env("BAZAAR_TRUSTED_DOCUMENTS")
        .map(PathBuf::from)
        .or_else(|| file.trusted_documents.clone());
    if let Some(path) = &trusted_documents
        && !path.is_file()
    {
        errors.push(format!(
            "trusted documents manifest {} does not exist",
            path.display()
        ));
    }
    EdgeSettings {
        introspection: env_bool("BAZAAR_GRAPHQL_INTROSPECTION", errors)
            .or(file.introspection)
            .unwrap_or(defaults.introspection),
        cors_allowed_origins: origins,
        persisted_queries: env_bool("BAZAAR_PERSISTED_QUERIES", errors)
            .or(file.persisted_queries)
            .unwrap_or(defaults.persisted_queries),
        persisted_query_ttl: env_secs("BAZAAR_PERSISTED_QUERY_TTL_SECS", errors)
            .or(file.persisted_query_ttl_secs.map(Duration::from_secs))
            .unwrap_or(defaults.persisted_query_ttl),
        trusted_documents,
        response_cache_ttl: env_secs("BAZAAR_RESPONSE_CACHE_TTL_SECS", errors)
            .or(file.response_cache_ttl_secs.map(Duration::from_secs))
            .unwrap_or(defaults.response_cache_ttl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_bare_origins() {
        let file = FileEdge {
            cors_allowed_origins: Some(vec![
                "https://shop.example.com".into(),
                "http://127.0.0.1:3000".into(),
                "*".into(),
                "https://x.example.com/path".into(),
            ]),
            ..Default::default()
        };
        let mut errors = Vec::new();
        load(&file, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("\"*\""));
        assert!(errors[1].contains("/path"));
    }
}
