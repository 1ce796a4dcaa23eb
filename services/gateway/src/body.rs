//! Reading a GraphQL request from an HTTP body, and answering every way that can fail with a
//! GraphQL-shaped JSON error carrying `extensions.code`, never a Rust debug string: an
//! oversized body is 413, a batch or a body that is not one JSON request is 400.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Reads the GraphQL request in `request`'s body, or the response refusing it. A body
/// announced larger than `limit` is refused from its Content-Length, before it is read.
pub async fn read(request: Request, limit: usize) -> Result<async_graphql::Request, Response> {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match announced {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(Bytes::from_request(request, &()).await),
    }?;
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return Err(too_large(limit));
        }
        Err(_) => {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
                None,
            ));
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported: send one operation per request",
            None,
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        refusal(
            StatusCode::BAD_REQUEST,
            &format!(
                "the body must be one JSON object {{\"query\", \"variables\", \"operationName\"}}: {e}"
            ),
            None,
        )
    })
}

fn too_large(limit: usize) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is larger than {limit} bytes (max_body_bytes)"),
        Some("max_body_bytes"),
    )
}

/// A GraphQL error response with `extensions.code` BAD_USER_INPUT (and `limit` when a
/// configured limit refused it).
pub fn refusal(status: StatusCode, message: &str, limit: Option<&str>) -> Response {
    error_response(status, "BAD_USER_INPUT", message, limit)
}

/// A GraphQL-shaped error response outside GraphQL execution.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    limit: Option<&str>,
) -> Response {
    let mut extensions = serde_json::json!({"code": code});
    if let Some(limit) = limit {
        extensions["limit"] = limit.into();
    }
    let body = serde_json::json!({"errors": [{"message": message, "extensions": extensions}]});
    (status, axum::Json(body)).into_response()
}
