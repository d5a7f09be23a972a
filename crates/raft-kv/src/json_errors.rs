//! Every error answer of the HTTP servers is JSON `{"error": ...}`, the framework's own too.
//!
//! The handlers answer their errors as JSON already; axum answers some requests before or
//! instead of a handler: a method a route does not serve (405, empty body), a body over its
//! limit (413, plain text), a query or path that does not parse (400, plain text), a missing
//! content type. This middleware turns each such answer into JSON with the same status and
//! headers, its text (or the status's reason) as the message.

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

/// The longest framework message read back (they are one line).
const MAX_MESSAGE: usize = 4096;
/// How much of a request path a message quotes.
const MAX_QUOTED_PATH: usize = 200;

/// The middleware (for [`axum::middleware::from_fn`]).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = quoted(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("; allowed: {v}"))
            .unwrap_or_default();
        format!("method {method} is not allowed on {path}{allowed}")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    // The framework's refusals are logged as the handlers' are (see `ApiError`).
    tracing::info!(target: "raft_kv::api", status = status.as_u16(), error = %message, "request refused");
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// At most [`MAX_QUOTED_PATH`] bytes of `path` (cut at a character boundary).
fn quoted(path: &str) -> String {
    if path.len() <= MAX_QUOTED_PATH {
        return path.to_string();
    }
    let mut end = MAX_QUOTED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}
