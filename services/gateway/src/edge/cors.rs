//! Cross-origin access from browsers: only the configured origins may call `/graphql` from
//! their pages. With none configured (the default) no CORS header is ever sent, so a page on
//! another site can neither read an answer nor send the headers (JSON, Authorization) that an
//! operation needs.

use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for the configured origins, or `None` when there are none.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .expose_headers([header::ETAG])
            // Browsers cap this themselves (Chromium at 2 hours); 10 minutes keeps a changed
            // allow-list effective soon.
            .max_age(Duration::from_secs(600)),
    )
}
