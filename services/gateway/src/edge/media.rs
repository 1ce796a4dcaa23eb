//! The two response media types of GraphQL over HTTP and what each says with its status code.
//! `application/graphql-response+json` (when the client accepts it) tells a request error (the
//! document did not parse or validate, no data) by a 4xx status; `application/json`, which
//! older clients expect, answers 200 to every well-formed request. Either way a request error
//! carries no `data` entry, and every error carries `extensions.code`.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bazaar_contracts::ApiError;
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
/// A cached public response may be stored anywhere but must be revalidated (cheaply, with its
/// ETag) before each use: a catalogue change must be visible to the very next read.
const PUBLIC: &str = "public, max-age=0, must-revalidate";
/// Anything that went through a caller's identity, or was not cacheable.
const PRIVATE: &str = "private, no-store";
/// The answer depends on the media type asked for and on who asks.
const VARY: &str = "accept, authorization";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    GraphqlResponse,
}

/// An error that ends a request before execution (no `data`).
#[derive(Debug)]
pub struct RequestError {
    message: String,
    code: String,
    /// A status for both media types (a malformed HTTP request); otherwise it follows the media.
    status: Option<StatusCode>,
}

impl RequestError {
    pub fn new(message: impl Into<String>, code: &str) -> Self {
        RequestError {
            message: message.into(),
            code: code.to_owned(),
            status: None,
        }
    }

    /// Not a well-formed GraphQL-over-HTTP request: 400 whatever the media type.
    pub fn bad_request(message: impl Into<String>) -> Self {
        RequestError {
            status: Some(StatusCode::BAD_REQUEST),
            ..RequestError::new(message, "BAD_REQUEST")
        }
    }

    pub fn from_api(e: ApiError) -> Self {
        RequestError::new(e.message, e.code.as_str())
    }
}

impl Media {
    /// `application/graphql-response+json` when the `Accept` header lists it (with a non-zero
    /// quality), else `application/json`.
    pub fn negotiate(headers: &HeaderMap) -> Media {
        let accepts = list(headers, header::ACCEPT).any(|item| {
            let mut parts = item.split(';');
            let essence = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            essence.eq_ignore_ascii_case("application/graphql-response+json") && !refused
        });
        if accepts {
            Media::GraphqlResponse
        } else {
            Media::Json
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::Json => JSON,
            Media::GraphqlResponse => GRAPHQL_RESPONSE,
        })
    }

    /// The status of a request error in this media type.
    fn request_status(self, code: &str) -> StatusCode {
        match (self, code) {
            (Media::Json, _) => StatusCode::OK,
            (Media::GraphqlResponse, "UNAUTHENTICATED") => StatusCode::UNAUTHORIZED,
            (Media::GraphqlResponse, _) => StatusCode::BAD_REQUEST,
        }
    }

    /// Refuses a request at the HTTP level (wrong method, content type, malformed body).
    pub fn refuse(self, status: StatusCode, message: &str) -> Response {
        self.respond(status, errors_only(message, "BAD_REQUEST"), PRIVATE)
    }

    pub fn request_error(self, e: &RequestError) -> Response {
        let status = e.status.unwrap_or_else(|| self.request_status(&e.code));
        let mut response = self.respond(status, errors_only(&e.message, &e.code), PRIVATE);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// Serializes an executed response with its status. A response with errors but no data
    /// and no error at a field path failed before execution: a request error.
    pub fn encode(self, response: &async_graphql::Response) -> (StatusCode, Vec<u8>) {
        let request_error = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        if request_error {
            let code = response.errors[0]
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .and_then(|code| match code {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let body = serde_json::to_vec(&json!({ "errors": response.errors }));
            return (self.request_status(&code), body.unwrap_or_default());
        }
        let body = serde_json::to_vec(response).unwrap_or_default();
        (StatusCode::OK, body)
    }

    /// A response that must not be stored by any cache.
    pub fn private(self, status: StatusCode, body: Vec<u8>) -> Response {
        self.respond(status, body, PRIVATE)
    }

    /// A public response with its ETag; 304 when the client already holds it.
    pub fn cached(self, request: &HeaderMap, etag: &str, body: Bytes) -> Response {
        let fresh = list(request, header::IF_NONE_MATCH).any(|tag| {
            let tag = tag.trim();
            tag == "*" || weak(tag) == weak(etag)
        });
        let mut response = if fresh {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PUBLIC));
            headers.insert(header::VARY, HeaderValue::from_static(VARY));
            response
        } else {
            self.respond(StatusCode::OK, body, PUBLIC)
        };
        if let Ok(value) = HeaderValue::from_str(etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        response
    }

    fn respond(
        self,
        status: StatusCode,
        body: impl Into<Body>,
        cache_control: &'static str,
    ) -> Response {
        let mut response = Response::new(body.into());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type());
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        headers.insert(header::VARY, HeaderValue::from_static(VARY));
        response
    }
}

/// The items of a comma-separated header, over all its lines.
fn list(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
}

/// Weak comparison (RFC 9110 §8.8.3.2): the `W/` prefix does not matter.
fn weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn errors_only(message: &str, code: &str) -> Vec<u8> {
    let body: Value = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    serde_json::to_vec(&body).unwrap_or_default()
}
