//! Reading a GraphQL request from an HTTP body, and answering every way that can fail with a
//! GraphQL-shaped JSON error carrying `extensions.code`, never a Rust debug string: an
//! oversized body is 413 (BAD_USER_INPUT naming `max_body_bytes`), a batch 400 (BAD_REQUEST).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Reads `request`'s body, or the response refusing it: a body announced larger than `limit`
/// is refused from its Content-Length, before it is read; a batch is refused too.
pub async fn read_bytes(request: Request, limit: usize) -> Result<Bytes, Response> {
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
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "batched requests are not supported: send one operation per request",
            None,
        ));
    }
    Ok(bytes)
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
