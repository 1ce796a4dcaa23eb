//! GraphiQL, served from files vendored into the binary so it works without internet access.
//! `assets/graphiql/VERSIONS` says where they came from and how to refresh them.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../assets/graphiql/index.html"))
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
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
