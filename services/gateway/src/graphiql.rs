//! GraphiQL, served from files vendored into the binary so it works without internet access.
//! `assets/graphiql/VERSIONS` says where they came from and how to refresh them.
//!
//! The page carries a content security policy that lets only this origin's scripts, styles and
//! connections (HTTP and the subscription WebSocket) run, and forbids framing (clickjacking).
//! Inline styles stay allowed: GraphiQL and CodeMirror set them at run time.

use axum::extract::Path;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Headers every GraphiQL response carries.
const SECURITY: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

pub fn page() -> Response {
    (
        SECURITY,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/graphiql/index.html"),
    )
        .into_response()
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "graphiql.min.css" => (
            include_bytes!("../assets/graphiql/graphiql.min.css"),
            "text/css",
        ),
        "react.min.js" => (
            include_bytes!("../assets/graphiql/react.min.js"),
            "text/javascript",
        ),
        "react-dom.min.js" => (
            include_bytes!("../assets/graphiql/react-dom.min.js"),
            "text/javascript",
        ),
        "graphql-ws.min.js" => (
            include_bytes!("../assets/graphiql/graphql-ws.min.js"),
            "text/javascript",
        ),
        "bazaar.js" => (
            include_bytes!("../assets/graphiql/bazaar.js"),
            "text/javascript",
        ),
        "bazaar.css" => (include_bytes!("../assets/graphiql/bazaar.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        SECURITY,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
