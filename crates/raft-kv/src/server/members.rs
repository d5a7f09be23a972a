//! The membership routes: `POST /join` and `POST /leave`, answered by the leader (a follower
//! forwards them); the changes themselves are [`crate::membership`]'s.

use axum::Extension;
use axum::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::response::Response;
use openraft::async_runtime::WatchReceiver;
use serde::Deserialize;
use serde_json::json;

use super::Api;
use super::ApiError;
use super::NodeState;
use super::Shared;
use super::api::ApiBody;
use super::api::parse_json;
use super::forward::forward_within;
use super::forward::hops;
use super::forward::to_leader;
use super::ops::leader_elsewhere;
use crate::membership::add_member;
use crate::membership::remove_member;
use crate::tls::PeerNode;
use crate::types::NodeInfo;

/// The body of `POST /join`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct JoinRequest {
    /// The new node's id.
    pub id: u64,
    /// Its raft address.
    pub raft: String,
    /// Its client API address.
    pub http: String,
    /// Its gRPC address (empty or absent: none).
    #[serde(default)]
    pub grpc: String,
}

/// The body of `POST /leave`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct LeaveRequest {
    /// The id of the node to remove.
    pub id: u64,
    /// Remove it even if the voters left would not hold a reachable majority (also as
    /// `?force=true`); see [`crate::membership`].
    #[serde(default)]
    pub force: bool,
}

/// The query of `POST /leave`.
#[derive(Deserialize)]
pub(super) struct LeaveQuery {
    #[serde(default)]
    pub(super) force: bool,
}

/// With TLS, a join must prove that it comes from the joining node: the caller's certificate
/// names it. A join forwarded by a follower arrives with the follower's certificate: it is
/// taken from a current member only, which checked the joining node's certificate itself.
pub fn check_joiner(s: &NodeState, peer: Option<PeerNode>, forwarded: bool, id: u64) -> Result<(), ApiError> {
    if s.tls.is_none() {
        return Ok(());
    }
    let is_member = |node: u64| {
        s.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .get_node(&node)
            .is_some()
    };
    match peer {
        Some(PeerNode(p)) if p == id => Ok(()),
        Some(PeerNode(p)) if forwarded && is_member(p) => Ok(()),
        Some(PeerNode(p)) => Err(ApiError::forbidden(format!(
            "a join of node {id} sent with the certificate of node {p}: a node joins with its own certificate"
        ))),
        None => Err(ApiError::forbidden(format!(
            "a join must come from the joining node: present its certificate (signed by the cluster CA, naming node {id})"
        ))),
    }
}

pub(super) async fn join(
    State(s): State<Shared>,
    peer: Option<Extension<PeerNode>>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let request: JoinRequest = parse_json(&body, "POST /join wants {\"id\", \"raft\", \"http\"}")?;
    check_joiner(&s, peer.map(|Extension(p)| p), hops(&headers) > 0, request.id)?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return on_to_leader(&s, &leader, &uri, &headers, body).await;
    }
    let node = NodeInfo {
        raft: request.raft,
        http: request.http,
        grpc: request.grpc,
    };
    let index = add_member(&s, request.id, node).await?;
    Ok(axum::Json(json!({ "index": index, "joined": request.id })).into_response())
}

pub(super) async fn leave(
    State(s): State<Shared>,
    query: Result<Query<LeaveQuery>, axum::extract::rejection::QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("the query: {}", e.body_text())))?;
    let request: LeaveRequest = parse_json(&body, "POST /leave wants {\"id\", \"force\"?}")?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return on_to_leader(&s, &leader, &uri, &headers, body).await;
    }
    let index = remove_member(&s, request.id, request.force || query.force).await?;
    Ok(axum::Json(json!({ "index": index, "left": request.id })).into_response())
}

/// Forward a membership change to the leader, waiting as long as a change may take there.
async fn on_to_leader(
    s: &NodeState,
    leader: &NodeInfo,
    uri: &Uri,
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let to = to_leader(Api::Http, Some(leader), hops(headers))?;
    forward_within(
        s,
        &to,
        Method::POST,
        uri,
        headers,
        body,
        crate::membership::MEMBERSHIP_CHANGE_TIMEOUT,
    )
    .await
}
