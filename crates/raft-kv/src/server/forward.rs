//! Forwarding a client request from a follower to the leader. Whether a request is answered
//! here, goes on to the leader or is refused is [`route`]'s decision, the same for the HTTP and
//! the gRPC API; an HTTP request then goes on with its target, body and token exactly as they
//! arrived, and a hop count that stops it going round while leadership moves.

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

use super::Api;
use super::ApiError;
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

/// The hops a request made so far, from the value of its [`HOPS`] header or metadata (absent
/// or unreadable: none).
pub fn hops_of(value: Option<&str>) -> u32 {
    value.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The hops an HTTP request made so far.
pub fn hops(headers: &HeaderMap) -> u32 {
    hops_of(headers.get(HOPS).and_then(|v| v.to_str().ok()))
}

/// Where a follower sends a request on: the leader's address on the API the request came in
/// on, and the hop count the forwarded request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The leader's address (`host:port`) on the request's API.
    pub addr: String,
    /// The hops of the forwarded request, this one included.
    pub hop: u32,
}

/// The forwarding decision of both APIs: `leader` is `None` when this node answers the request
/// itself (`Ok(None)`), `Some` when the leader must, with the leader's addresses if known. A
/// request goes on to the leader unless no leader is known, it went round too often already
/// (`hop`, the hops so far, reached [`MAX_HOPS`]) or the leader does not serve `api`; each of
/// those refusals is [`ErrorKind::NotSent`](super::ErrorKind::NotSent), as nothing was proposed.
// `leader` has the shape of `linearize`'s answer, which every read passes on as it is.
#[allow(clippy::option_option)]
pub fn route(api: Api, leader: Option<Option<&NodeInfo>>, hop: u32) -> Result<Option<Forward>, ApiError> {
    leader.map(|leader| to_leader(api, leader, hop)).transpose()
}

/// [`route`] for a request this node does not answer: on to the leader, or refused.
pub fn to_leader(api: Api, leader: Option<&NodeInfo>, hop: u32) -> Result<Forward, ApiError> {
    let leader = leader.ok_or_else(ApiError::no_leader)?;
    if hop >= MAX_HOPS {
        return Err(ApiError::too_many_hops(hop));
    }
    let addr = match api {
        Api::Http => &leader.http,
        // A node started without `--grpc` has no gRPC address in the membership.
        Api::Grpc if leader.grpc.is_empty() => return Err(ApiError::leader_without_grpc(&leader.http)),
        Api::Grpc => &leader.grpc,
    };
    Ok(Forward {
        addr: addr.clone(),
        hop: hop + 1,
    })
}

/// Send the request on to the leader (where `to` says) and hand its answer back.
pub async fn forward(
    s: &NodeState,
    to: &Forward,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    forward_within(s, to, method, uri, headers, body, FORWARD_TIMEOUT).await
}

/// [`forward`], waiting at most `timeout` for the leader's answer.
pub async fn forward_within(
    s: &NodeState,
    to: &Forward,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, ApiError> {
    s.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    // The target exactly as it arrived: rebuilt from a decoded key it would address another.
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}://{}{target}", s.scheme(), to.addr);
    let mut request = s
        .forward
        .request(method, &url)
        .timeout(timeout)
        .header(HOPS, to.hop.to_string())
        .header("content-type", "application/json");
    // The leader checks the caller's token again (every node has the same auth file).
    if let Some(token) = headers.get(AUTHORIZATION) {
        request = request.header(AUTHORIZATION, token.clone());
    }
    let answer = request.body(body).send().await.map_err(|e| {
        if e.is_connect() {
            // Nothing reached the leader: the request surely had no effect.
            return ApiError::leader_unreachable(&to.addr, e);
        }
        ApiError::forward_failed(&to.addr, e)
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = answer.bytes().await.map_err(ApiError::forward_answer_lost)?;
    Ok((status, [("content-type", "application/json")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ErrorKind;

    fn leader(grpc: &str) -> NodeInfo {
        NodeInfo {
            raft: "127.0.0.1:1".into(),
            http: "127.0.0.1:2".into(),
            grpc: grpc.into(),
        }
    }

    #[test]
    fn a_request_this_node_answers_is_served_here() {
        for api in [Api::Http, Api::Grpc] {
            assert_eq!(route(api, None, 0), Ok(None));
            // The hop count is the leader's business, not a refusal of a node that answers.
            assert_eq!(route(api, None, MAX_HOPS), Ok(None));
        }
    }

    #[test]
    fn a_request_goes_on_to_the_leader_on_its_own_api_with_one_more_hop() {
        let l = leader("127.0.0.1:3");
        let http = route(Api::Http, Some(Some(&l)), 0).expect("forwarded");
        assert_eq!(
            http,
            Some(Forward {
                addr: l.http.clone(),
                hop: 1
            })
        );
        let grpc = route(Api::Grpc, Some(Some(&l)), MAX_HOPS - 1).expect("forwarded");
        assert_eq!(
            grpc,
            Some(Forward {
                addr: l.grpc.clone(),
                hop: MAX_HOPS
            })
        );
    }

    #[test]
    fn a_request_is_refused_without_a_leader_after_too_many_hops_or_without_grpc() {
        let l = leader("127.0.0.1:3");
        for api in [Api::Http, Api::Grpc] {
            assert_eq!(route(api, Some(None), 0), Err(ApiError::no_leader()));
            assert_eq!(
                route(api, Some(Some(&l)), MAX_HOPS),
                Err(ApiError::too_many_hops(MAX_HOPS))
            );
        }
        let without = leader("");
        assert_eq!(
            to_leader(Api::Grpc, Some(&without), 0),
            Err(ApiError::leader_without_grpc(&without.http))
        );
        // HTTP goes on: every node serves it.
        assert!(to_leader(Api::Http, Some(&without), 0).is_ok());
        for refused in [
            route(Api::Http, Some(None), 0),
            route(Api::Grpc, Some(Some(&without)), 0),
        ] {
            assert_eq!(refused.map_err(|e| e.kind), Err(ErrorKind::NotSent));
        }
    }

    #[test]
    fn hops_are_read_leniently() {
        assert_eq!(hops_of(None), 0);
        assert_eq!(hops_of(Some("2")), 2);
        assert_eq!(hops_of(Some("many")), 0);
    }
}
