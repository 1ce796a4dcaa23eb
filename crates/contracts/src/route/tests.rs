//! A route declared, served and called end to end in process: the path, the body both ways,
//! the principal, errors, and routes served under a name.

use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::dead_letters::{DeadLetterClient, DeadLetterIdRequest, RedriveDeadLetter};
use crate::{ApiError, ErrorCode, Principal, Role, Route, Routes, ServiceClient};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GreetRequest {
    name: String,
}

routes! {
    /// Greets `name` on behalf of the caller.
    command Greet = "greet": GreetRequest => String;
    /// Always refuses.
    query Refuse = "refuse": () => bool;
}

async fn greet(
    greeting: &'static str,
    p: Principal,
    req: GreetRequest,
) -> Result<String, ApiError> {
    let caller = p.user.map(|u| u.id).unwrap_or_default();
    Ok(format!("{greeting} {}, from {caller}", req.name))
}

async fn refuse(_: &'static str, _: Principal, _: ()) -> Result<bool, ApiError> {
    Err(ApiError::not_found("nothing here"))
}

fn client(router: axum::Router) -> ServiceClient {
    ServiceClient::local("test", router, "token")
}

#[tokio::test]
async fn a_route_is_served_at_its_path_and_called_by_its_type() {
    assert_eq!(Greet::PATH, "/internal/greet");
    let router = Routes::new()
        .serve::<Greet>(greet)
        .serve::<Refuse>(refuse)
        .with_state("hello");
    let client = client(router.clone());
    let p = Principal::user("u1", Role::Customer);
    let req = GreetRequest { name: "Ada".into() };
    let answer = client.call::<Greet>(&p, &req).await.unwrap();
    assert_eq!(answer, "hello Ada, from u1");
    let refused = client.call::<Refuse>(&p, &()).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotFound);
    // A body of the wrong shape is refused in the shared error shape, before the handler.
    let wrong = http::Request::post(Greet::PATH)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(r#"{"nom": "Ada"}"#))
        .unwrap();
    let response = router.oneshot(wrong).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn scoped_routes_are_served_under_their_name() {
    async fn redrive(_: (), _: Principal, req: DeadLetterIdRequest) -> Result<bool, ApiError> {
        Ok(req.id == "dl-1")
    }
    let router = Routes::under("test")
        .serve::<RedriveDeadLetter>(redrive)
        .with_state(());
    let dead_letters = DeadLetterClient(client(router.clone()));
    let p = Principal::anonymous();
    assert!(dead_letters.redrive(&p, "dl-1").await.unwrap());
    assert!(!dead_letters.redrive(&p, "dl-2").await.unwrap());
    // Only under the name: the same op at the top level is not routed.
    let top_level = http::Request::post(RedriveDeadLetter::PATH)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(r#"{"id": "dl-1"}"#))
        .unwrap();
    let response = router.oneshot(top_level).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_answer_without_an_error_body_is_unavailable_only_for_gateway_statuses() {
    use axum::http::StatusCode;
    let p = Principal::user("u1", Role::Customer);
    let req = GreetRequest { name: "Ada".into() };
    for (status, code) in [
        (StatusCode::GATEWAY_TIMEOUT, ErrorCode::ServiceUnavailable),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
        ),
        (StatusCode::BAD_GATEWAY, ErrorCode::ServiceUnavailable),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
        ),
    ] {
        // What a timeout layer or a proxy answers: a status and no bazaar error body.
        let router = axum::Router::new().route(
            Greet::PATH,
            axum::routing::post(move || async move { status }),
        );
        let e = client(router).call::<Greet>(&p, &req).await.unwrap_err();
        assert_eq!(e.code, code, "{status}");
    }
}
