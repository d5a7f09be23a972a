//! Forwarding a client request from a follower to the leader: the request target, body and
//! token exactly as they arrived, with a hop count that stops a request going round while
//! leadership moves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::http::header::AUTHORIZATION;
use axum::response::IntoResponse;
use axum::response::Response;

use super::ApiError;
use super::ErrorKind;
use super::NodeState;
use crate::types::NodeInfo;

/// A forwarded request carries this header (a forwarded gRPC call this metadata key) with the
/// number of hops so far; past
/// [`MAX_HOPS`] it is refused instead of going round while leadership moves.
pub const HOPS: &str = "x-raft-kv-hops";
/// The most hops a forwarded request makes.
pub const MAX_HOPS: u32 = 3;
/// How long a forwarded request may take.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// The hops a request made so far.
pub fn hops(headers: &HeaderMap) -> u32 {
    headers
        .get(HOPS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Send the request on to the leader and hand its answer back.
pub async fn forward(
    s: &NodeState,
    leader: Option<&NodeInfo>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward_within(s, leader, method, uri, headers, body, FORWARD_TIMEOUT).await
}

/// [`forward`], waiting at most `timeout` for the leader's answer.
pub async fn forward_within(
    s: &NodeState,
    leader: Option<&NodeInfo>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let leader = leader.ok_or_else(|| ApiError::not_sent("no leader is known yet; retry shortly"))?;
    let hop = hops(headers);
    if hop >= MAX_HOPS {
        return Err(ApiError::not_sent(format!(
            "not forwarded again after {hop} hops: leadership is moving; retry shortly"
        )));
    }
    s.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    // The target exactly as it arrived: rebuilt from a decoded key it would address another.
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}://{}{target}", s.scheme(), leader.http);
    let mut request = s
        .forward
        .request(method, &url)
        .timeout(timeout)
        .header(HOPS, (hop + 1).to_string())
        .header("content-type", "application/json");
    // The leader checks the caller's token again (every node has the same auth file).
    if let Some(token) = headers.get(AUTHORIZATION) {
        request = request.header(AUTHORIZATION, token.clone());
    }
    let answer = request.body(body).send().await.map_err(|e| {
        if e.is_connect() {
            // Nothing reached the leader: the request surely had no effect.
            return ApiError::not_sent(format!("the leader at {} cannot be reached: {e}", leader.http));
        }
        ApiError::new(
            ErrorKind::ForwardFailed,
            format!(
                "forwarding to the leader at {}: {e}; the outcome is unknown",
                leader.http
            ),
        )
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = answer.bytes().await.map_err(|e| {
        ApiError::new(
            ErrorKind::ForwardFailed,
            format!("reading the leader's answer: {e}; the outcome is unknown"),
        )
    })?;
    Ok((status, [("content-type", "application/json")], bytes).into_response())
}
