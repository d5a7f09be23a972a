//! The two HTTP servers of a node: the raft endpoint other nodes send RPCs to, and the client
//! API (JSON in and out; every error a JSON body `{"error": ...}` with a fitting status).
//!
//! A key is addressed as `/key/{key}` with the key percent-encoded (any byte may be; `/`, `?`,
//! `#`, `%` and spaces must be), or as `/key?key={key}` (form-encoded), which also reaches the
//! keys `.` and `..` that URL normalization removes from a path. A follower forwards the
//! request target exactly as it arrived, so the leader decodes the same key.
//!
//! With an auth file, every client API request needs a bearer token: `GET` the read role,
//! every other method the write role (see [`crate::auth`]); a follower forwards the caller's
//! token. With TLS, a raft message must come from the node its certificate names, and `/join`
//! from the joining node's own certificate (see [`crate::tls`]).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::Query;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::http::header::AUTHORIZATION;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use futures::StreamExt;
use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::VoteRequest;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use raft_store::kv::SnapshotFile;
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;

use crate::auth::Auth;
use crate::auth::AuthError;
use crate::auth::Role;
use crate::json_errors::json_errors;
use crate::limits::LimitError;
use crate::limits::Limits;
pub use crate::membership::add_member;
pub use crate::membership::remove_member;
use crate::network::SnapshotHeader;
use crate::network::decode;
use crate::network::encode;
use crate::raft_guard;
use crate::raft_guard::PeerContext;
use crate::raft_guard::RaftRpc;
use crate::raft_guard::Refusal;
use crate::tls::ClientTls;
use crate::tls::PeerNode;
use crate::types::NodeInfo;
use crate::types::Raft;
use crate::types::Reader;
use crate::types::TypeConfig;

/// A forwarded request carries this header with the number of hops so far; past
/// [`MAX_HOPS`] it is refused instead of going round while leadership moves.
const HOPS: &str = "x-raft-kv-hops";
const MAX_HOPS: u32 = 3;

/// Everything a request handler needs.
pub struct NodeState {
    /// This node's id.
    pub id: u64,
    /// This node's addresses.
    pub info: NodeInfo,
    /// The raft handle.
    pub raft: Raft,
    /// Reads of the state machine.
    pub reader: Reader,
    /// The backend name.
    pub backend: &'static str,
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    /// The client used to forward requests to the leader.
    pub forward: reqwest::Client,
    /// Request counters for `/metrics`.
    pub counters: Counters,
    /// The size limits every request is checked against.
    pub limits: Limits,
    /// The tokens of the client API; `None`: the API is open.
    pub auth: Option<Auth>,
    /// The client side of TLS (forwarding to the leader); `None`: TLS is off.
    pub tls: Option<ClientTls>,
}

impl NodeState {
    /// The URL scheme of this cluster's HTTP traffic.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// Counters exported by `/metrics`.
#[derive(Default)]
pub struct Counters {
    writes: AtomicU64,
    reads: AtomicU64,
    stale_reads: AtomicU64,
    forwarded: AtomicU64,
}

type Shared = Arc<NodeState>;

/// An API error: a status and a message, sent as `{"error": message}`. Errors raised before
/// anything was proposed to raft also carry `"retry": true`: the request surely had no effect
/// and a client may send it again (to this node or another).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.0 == StatusCode::SERVICE_UNAVAILABLE && self.1.starts_with(NOT_SENT);
        let body = if retry {
            json!({ "error": self.1, "retry": true })
        } else {
            json!({ "error": self.1 })
        };
        (self.0, axum::Json(body)).into_response()
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        let status = if e.is_size() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError(status, e.to_string())
    }
}

/// The start of every message of a request refused before it reached raft.
const NOT_SENT: &str = "not accepted: ";

fn not_sent(msg: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("{NOT_SENT}{msg}"))
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn unavailable(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, msg.into())
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::FORBIDDEN, msg.into())
}

// ---------------------------------------------------------------- raft endpoint

/// The router of the raft endpoint. Its body limit holds every append-entries message a
/// leader sends (see [`Limits::raft_body_bytes`]); a snapshot streams, unbounded.
pub fn raft_router(state: Shared) -> Router {
    let body_limit = state.limits.raft_body_bytes();
    Router::new()
        .route("/raft/append", post(raft_append))
        .route("/raft/vote", post(raft_vote))
        .route("/raft/pre-vote", post(raft_pre_vote))
        .route(
            "/raft/snapshot",
            post(raft_snapshot).layer(DefaultBodyLimit::disable()),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

fn wire<T: serde::Serialize>(value: &T) -> Response {
    match encode(value) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// Decode a raft request and hand it to `call`, which checks it ([`raft_guard`]) and passes it
/// to raft, answering raft's `Result` encoded, or the refusal as JSON.
async fn raft_rpc<Req, Fut>(body: &[u8], what: &str, call: impl FnOnce(Req) -> Fut) -> Response
where
    Req: serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Result<Response, Refusal>>,
{
    match decode(body) {
        Ok(rpc) => call(rpc).await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("{what} request: {e}"),
        }
        .into_response(),
    }
}

/// This node's current membership and term, what [`raft_guard`] checks a message against.
fn guard_view(
    s: &NodeState,
) -> (
    Arc<openraft::type_config::alias::StoredMembershipOf<TypeConfig>>,
    u64,
) {
    let m = s.raft.metrics().borrow_watched().clone();
    (m.membership_config.clone(), m.current_term)
}

async fn raft_append(State(s): State<Shared>, peer: PeerContext, body: Bytes) -> Response {
    raft_rpc(
        &body,
        "append-entries",
        |rpc: AppendEntriesRequest<TypeConfig>| async move {
            let (membership, term) = guard_view(&s);
            raft_guard::check_append(&rpc, membership.membership(), term, &peer)?;
            Ok(wire(&s.raft.append_entries(rpc).await))
        },
    )
    .await
}

async fn raft_vote(State(s): State<Shared>, peer: PeerContext, body: Bytes) -> Response {
    raft_rpc(&body, "vote", |rpc: VoteRequest<TypeConfig>| async move {
        let (membership, term) = guard_view(&s);
        raft_guard::check_vote(&rpc, RaftRpc::Vote, membership.membership(), term, &peer)?;
        Ok(wire(&s.raft.vote(rpc).await))
    })
    .await
}

async fn raft_pre_vote(State(s): State<Shared>, peer: PeerContext, body: Bytes) -> Response {
    raft_rpc(&body, "pre-vote", |rpc: VoteRequest<TypeConfig>| async move {
        let (membership, term) = guard_view(&s);
        raft_guard::check_vote(&rpc, RaftRpc::PreVote, membership.membership(), term, &peer)?;
        Ok(wire(&s.raft.pre_vote(rpc).await))
    })
    .await
}

/// Receive a streamed snapshot: header length (u32 BE), header, then the file, written to a
/// new file in the snapshot directory chunk by chunk and installed when the body ends.
/// The header is checked ([`raft_guard::check_snapshot`]) before anything after it is written.
async fn raft_snapshot(State(s): State<Shared>, peer: PeerContext, body: Body) -> Response {
    match receive_snapshot(&s, &peer, body).await {
        Ok(response) => response,
        Err(SnapshotError::Refused(refusal)) => refusal.into_response(),
        Err(SnapshotError::Transfer(e)) => Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("snapshot transfer: {e}"),
        }
        .into_response(),
    }
}

/// Why a snapshot was not installed.
enum SnapshotError {
    /// The guard refused its header.
    Refused(Refusal),
    /// The transfer failed.
    Transfer(String),
}

impl From<String> for SnapshotError {
    fn from(e: String) -> Self {
        SnapshotError::Transfer(e)
    }
}

impl From<&str> for SnapshotError {
    fn from(e: &str) -> Self {
        SnapshotError::Transfer(e.to_string())
    }
}

/// The file a snapshot is being received into, removed if the transfer does not end in an
/// install (refused, broken off, or the connection dropped), so refused transfers leave
/// nothing behind in the snapshot directory.
struct Receiving(Option<SnapshotFile>);

impl Drop for Receiving {
    fn drop(&mut self) {
        if let Some(file) = self.0.take() {
            let path = file.path().to_path_buf();
            drop(file);
            if let Err(e) = std::fs::remove_file(&path) {
                eprintln!(
                    "raft-kv: removing the unfinished snapshot {}: {e}",
                    path.display()
                );
            }
        }
    }
}

async fn receive_snapshot(s: &NodeState, peer: &PeerContext, body: Body) -> Result<Response, SnapshotError> {
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let mut header: Option<SnapshotHeader> = None;
    // Created once the header is accepted: a refused sender makes no file.
    let mut receiving = Receiving(None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the body: {e}"))?;
        if let Some(file) = receiving.0.as_mut() {
            file.write_all(&chunk)
                .map_err(|e| format!("writing the file: {e}"))?;
            continue;
        }
        head.extend_from_slice(&chunk);
        if head.len() < 4 {
            continue;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > 1 << 20 {
            return Err(format!("a header of {len} bytes").into());
        }
        if head.len() < 4 + len {
            continue;
        }
        let decoded: SnapshotHeader = decode(&head[4..4 + len]).map_err(|e| format!("header: {e}"))?;
        let (membership, term) = guard_view(s);
        let committed = s.raft.metrics().borrow_watched().local_committed;
        raft_guard::check_snapshot(&decoded, membership.membership(), term, committed.as_ref(), peer)
            .map_err(SnapshotError::Refused)?;
        header = Some(decoded);
        let file = receiving.0.insert(
            s.reader
                .receive_snapshot()
                .map_err(|e| format!("creating the file: {e}"))?,
        );
        file.write_all(&head[4 + len..])
            .map_err(|e| format!("writing the file: {e}"))?;
        head = Vec::new();
    }
    let header = header.ok_or_else(|| "the body ended before the header".to_string())?;
    let file = receiving
        .0
        .as_mut()
        .ok_or_else(|| "the body ended before the header".to_string())?;
    file.sync().map_err(|e| format!("syncing the file: {e}"))?;
    // Handed to openraft from here: the install takes the file over.
    let file = receiving.0.take().ok_or("the snapshot file is gone")?;
    let snapshot = openraft::Snapshot {
        meta: header.meta,
        snapshot: file,
    };
    Ok(wire(
        &s.raft
            .install_full_snapshot(header.vote, snapshot)
            .await
            .map_err(RaftError::<TypeConfig>::Fatal),
    ))
}

// ---------------------------------------------------------------- client API

/// The router of the client API.
pub fn api_router(state: Shared) -> Router {
    Router::new()
        .route(
            "/key",
            post(put_many).get(get_key).put(update_key).delete(delete_key),
        )
        // `/key/` itself, so an empty key is named as such rather than as an unknown route.
        .route("/key/", get(get_key).put(update_key).delete(delete_key))
        .route("/key/{*key}", get(get_key).put(update_key).delete(delete_key))
        .route("/join", post(join))
        .route("/leave", post(leave))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(|method: Method, uri: Uri| async move {
            let path = uri.path();
            let shown = if path.len() > 200 { "(a long path)" } else { path };
            ApiError(StatusCode::NOT_FOUND, format!("no route {method} {shown}"))
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// The role a caller's token proved: a request extension once [`authorize`] let it through
/// (absent when the API has no tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub Role);

/// The role a request needs: reading (`GET`, `HEAD`) or changing anything (every other method).
pub fn needed_role(method: &Method) -> Role {
    if *method == Method::GET || *method == Method::HEAD {
        Role::Read
    } else {
        Role::Write
    }
}

/// An auth failure as an HTTP answer: 401 with a `WWW-Authenticate` challenge, or 403.
fn auth_refusal(e: &AuthError) -> Response {
    match e {
        AuthError::Forbidden { .. } => forbidden(e.to_string()).into_response(),
        AuthError::Missing | AuthError::Unknown => {
            let mut response = ApiError(StatusCode::UNAUTHORIZED, e.to_string()).into_response();
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"raft-kv\""),
            );
            response
        }
    }
}

/// With an auth file, let a request through only with a token of the role it needs.
async fn authorize(State(s): State<Shared>, mut request: Request, next: Next) -> Response {
    let Some(auth) = &s.auth else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(axum::http::HeaderValue::as_bytes);
    match auth.check(header, needed_role(request.method())) {
        Ok(role) => {
            request.extensions_mut().insert(Caller(role));
            next.run(request).await
        }
        Err(e) => auth_refusal(&e),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("{what}: {e}")))
}

/// A request body of the client API, read up to [`Limits::api_body_bytes`]; a larger one is
/// refused with 413 naming the limit.
pub struct ApiBody(pub Bytes);

/// How much of a body over the limit is still read (and dropped) before the refusal: answering
/// while the client still sends makes the kernel reset the connection, and the client may lose
/// the answer. Past this much, the connection is closed regardless.
const DRAIN_BYTES: usize = 64 << 20;

impl FromRequest<Shared> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, ApiError> {
        use http_body_util::BodyExt as _;
        let limit = state.limits.api_body_bytes();
        let mut body = request.into_body();
        let mut kept = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| bad_request(format!("reading the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_BYTES {
                break;
            } else {
                kept = Vec::new();
            }
        }
        if seen > limit {
            return Err(ApiError::from(LimitError::BodyTooLarge {
                body_limit: limit,
                limit: state.limits.max_request_bytes,
            }));
        }
        Ok(ApiBody(Bytes::from(kept)))
    }
}

/// The query of a key's routes.
#[derive(Deserialize)]
struct KeyQuery {
    /// The key, for `/key?key=...`.
    key: Option<String>,
    /// Read this node's state machine without asking the leader.
    #[serde(default)]
    stale: bool,
}

/// The key a request addresses (from the path or the query, see the module docs), checked
/// against the key limit, and the request's `stale` flag.
pub struct KeyTarget {
    /// The key, decoded.
    pub key: String,
    /// Whether a stale read was asked for.
    pub stale: bool,
}

impl FromRequestParts<Shared> for KeyTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let Query(query) = Query::<KeyQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e| bad_request(format!("the query: {}", e.body_text())))?;
        let key = match (parts.uri.path().strip_prefix("/key/"), query.key) {
            (Some(_), Some(_)) => {
                return Err(bad_request("a key in the path and another in the query"));
            }
            (Some(encoded), None) => percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .map_err(|e| bad_request(format!("the key in the path is not UTF-8 once decoded: {e}")))?
                .into_owned(),
            // The query's own decoding replaced bytes that are not UTF-8 by U+FFFD, which
            // would alias such a key to another: decode it again, strictly.
            (None, Some(_)) => query_key(parts.uri.query().unwrap_or(""))?,
            (None, None) => return Err(bad_request("no key: use /key/{key} or /key?key={key}")),
        };
        state.limits.check_key(&key)?;
        Ok(KeyTarget {
            key,
            stale: query.stale,
        })
    }
}

/// The `key` of a form-encoded query, decoded strictly: bytes that are not UTF-8 once
/// decoded are refused, not replaced.
fn query_key(query: &str) -> Result<String, ApiError> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
    };
    let mut found = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(name).as_deref() != Ok("key") {
            continue;
        }
        if found.is_some() {
            return Err(bad_request("the query names `key` twice"));
        }
        let key = decode(value)
            .map_err(|e| bad_request(format!("the key in the query is not UTF-8 once decoded: {e}")))?;
        found = Some(key);
    }
    found.ok_or_else(|| bad_request("no key: use /key/{key} or /key?key={key}"))
}

fn hops(headers: &HeaderMap) -> u32 {
    headers
        .get(HOPS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Send the request on to the leader and hand its answer back.
async fn forward(
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
async fn forward_within(
    s: &NodeState,
    leader: Option<&NodeInfo>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let leader = leader.ok_or_else(|| not_sent("no leader is known yet; retry shortly"))?;
    let hop = hops(headers);
    if hop >= MAX_HOPS {
        return Err(not_sent(format!(
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
            return not_sent(format!("the leader at {} cannot be reached: {e}", leader.http));
        }
        ApiError(
            StatusCode::BAD_GATEWAY,
            format!(
                "forwarding to the leader at {}: {e}; the outcome is unknown",
                leader.http
            ),
        )
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = answer.bytes().await.map_err(|e| {
        ApiError(
            StatusCode::BAD_GATEWAY,
            format!("reading the leader's answer: {e}; the outcome is unknown"),
        )
    })?;
    Ok((status, [("content-type", "application/json")], bytes).into_response())
}

/// What proposing a request to raft led to.
pub enum Proposed {
    /// Committed and applied at this log index, with the state machine's response.
    Applied(u64, KvResponse),
    /// This node is not the leader; the leader's addresses if it is known.
    NotLeader(Option<NodeInfo>),
}

/// Propose `request` to raft on this node.
pub async fn propose(s: &NodeState, request: KvRequest) -> Result<Proposed, ApiError> {
    s.counters.writes.fetch_add(1, Ordering::Relaxed);
    match s.raft.client_write(request).await {
        Ok(r) => Ok(Proposed::Applied(r.log_id.index, r.data)),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Ok(Proposed::NotLeader(f.leader_node))
        }
        Err(e) => Err(unavailable(format!("write failed: {e}"))),
    }
}

/// Make a linearizable read possible on this node: `Ok(None)` once its state machine has
/// applied everything committed when the read arrived (read index, confirmed by a quorum),
/// `Ok(Some(leader))` if this node is not the leader.
pub async fn linearize(s: &NodeState) -> Result<Option<Option<NodeInfo>>, ApiError> {
    s.counters.reads.fetch_add(1, Ordering::Relaxed);
    match s.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
        Ok(_) => Ok(None),
        Err(e) => match e.forward_to_leader() {
            Some(f) => Ok(Some(f.leader_node.clone())),
            None => Err(unavailable(format!("linearizable read failed: {e}"))),
        },
    }
}

/// Read `key` from this node's state machine.
pub fn read_local(s: &NodeState, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
    s.reader
        .get(key)
        .map_err(|e| internal(format!("reading {key:?}: {e}")))
}

/// Write through raft once the request passed the limits; a follower forwards the original
/// request to the leader.
async fn write(
    s: &NodeState,
    request: KvRequest,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Result<(u64, KvResponse), Response>, ApiError> {
    s.limits.check_request(&request)?;
    match propose(s, request).await? {
        Proposed::Applied(index, response) => Ok(Ok((index, response))),
        Proposed::NotLeader(leader) => {
            Ok(Err(forward(s, leader.as_ref(), method, uri, headers, body).await?))
        }
    }
}

async fn put_many(
    State(s): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let pairs: BTreeMap<String, JsonValue> = parse_json(
        &body,
        "POST /key wants a JSON object of string keys and values (strings, or {\"base64\": ...} for bytes)",
    )?;
    if pairs.is_empty() {
        return Err(bad_request("POST /key: the object has no keys"));
    }
    let keys: Vec<String> = pairs.keys().cloned().collect();
    let request = KvRequest::SetMany {
        pairs: pairs.into_iter().map(|(k, v)| (k, v.0)).collect(),
    };
    match write(&s, request, Method::POST, &uri, &headers, body).await? {
        Ok((index, KvResponse::SetMany { previous })) => {
            let previous: BTreeMap<String, Option<JsonValue>> = keys
                .into_iter()
                .zip(previous.into_iter().map(|p| p.map(JsonValue)))
                .collect();
            Ok(axum::Json(json!({ "index": index, "previous": previous })).into_response())
        }
        Ok((_, other)) => Err(internal(format!("unexpected response {other:?}"))),
        Err(forwarded) => Ok(forwarded),
    }
}

/// A value in JSON: a string when the bytes are UTF-8, `{"base64": "..."}` otherwise (and
/// either form accepted in requests), so any bytes round-trip through the JSON API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonValue(pub Vec<u8>);

impl serde::Serialize for JsonValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::SerializeMap;
        if let Ok(text) = std::str::from_utf8(&self.0) {
            serializer.serialize_str(text)
        } else {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(
                "base64",
                &base64::engine::general_purpose::STANDARD.encode(&self.0),
            )?;
            map.end()
        }
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Bytes { base64: String },
        }
        match Form::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("a value must be a string or {\"base64\": string}"))?
        {
            Form::Text(text) => Ok(JsonValue(text.into_bytes())),
            Form::Bytes { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.as_bytes())
                .map(JsonValue)
                .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}"))),
        }
    }
}

async fn get_key(
    State(s): State<Shared>,
    KeyTarget { key, stale }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if stale {
        s.counters.stale_reads.fetch_add(1, Ordering::Relaxed);
    } else if let Some(leader) = linearize(&s).await? {
        return forward(&s, leader.as_ref(), Method::GET, &uri, &headers, Bytes::new()).await;
    }
    let value = read_local(&s, &key)?;
    match value {
        Some(value) => Ok(axum::Json(json!({ "key": key, "value": JsonValue(value) })).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("key {key:?} not found"))),
    }
}

/// The body of `PUT /key/{k}`.
#[derive(Deserialize)]
struct UpdateBody {
    value: JsonValue,
}

async fn update_key(
    State(s): State<Shared>,
    KeyTarget { key, .. }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let UpdateBody { value } = parse_json(&body, "PUT /key/{k} wants {\"value\": string}")?;
    let request = KvRequest::UpdateIfExists {
        key: key.clone(),
        value: value.0,
    };
    match write(&s, request, Method::PUT, &uri, &headers, body).await? {
        Ok((
            index,
            KvResponse::UpdateIfExists {
                previous: Some(previous),
            },
        )) => Ok(axum::Json(json!({ "index": index, "previous": JsonValue(previous) })).into_response()),
        Ok((_, KvResponse::UpdateIfExists { previous: None })) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("key {key:?} not found; PUT only updates an existing key (POST /key sets one)"),
        )),
        Ok((_, other)) => Err(internal(format!("unexpected response {other:?}"))),
        Err(forwarded) => Ok(forwarded),
    }
}

async fn delete_key(
    State(s): State<Shared>,
    KeyTarget { key, .. }: KeyTarget,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = KvRequest::Delete { key };
    match write(&s, request, Method::DELETE, &uri, &headers, Bytes::new()).await? {
        Ok((index, KvResponse::Delete { previous })) => Ok(axum::Json(
            json!({ "index": index, "existed": previous.is_some(), "previous": previous.map(JsonValue) }),
        )
        .into_response()),
        Ok((_, other)) => Err(internal(format!("unexpected response {other:?}"))),
        Err(forwarded) => Ok(forwarded),
    }
}

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
struct LeaveQuery {
    #[serde(default)]
    force: bool,
}

/// If this node is not the leader: the leader's addresses (or an error if none is known).
pub fn leader_elsewhere(s: &NodeState) -> Result<Option<NodeInfo>, ApiError> {
    let metrics = s.raft.metrics().borrow_watched().clone();
    match metrics.current_leader {
        Some(leader) if leader == s.id => Ok(None),
        Some(leader) => Ok(Some(
            metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .cloned()
                .ok_or_else(|| unavailable(format!("leader {leader} is not in the membership")))?,
        )),
        None => Err(not_sent("no leader is known yet; retry shortly")),
    }
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
        Some(PeerNode(p)) => Err(forbidden(format!(
            "a join of node {id} sent with the certificate of node {p}: a node joins with its own certificate"
        ))),
        None => Err(forbidden(format!(
            "a join must come from the joining node: present its certificate (signed by the cluster CA, naming node {id})"
        ))),
    }
}

async fn join(
    State(s): State<Shared>,
    peer: Option<Extension<PeerNode>>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let request: JoinRequest = parse_json(&body, "POST /join wants {\"id\", \"raft\", \"http\"}")?;
    check_joiner(&s, peer.map(|Extension(p)| p), hops(&headers) > 0, request.id)?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return forward_within(
            &s,
            Some(&leader),
            Method::POST,
            &uri,
            &headers,
            body,
            crate::membership::MEMBERSHIP_CHANGE_TIMEOUT,
        )
        .await;
    }
    let node = NodeInfo {
        raft: request.raft,
        http: request.http,
        grpc: request.grpc,
    };
    let index = add_member(&s, request.id, node).await?;
    Ok(axum::Json(json!({ "index": index, "joined": request.id })).into_response())
}

async fn leave(
    State(s): State<Shared>,
    query: Result<Query<LeaveQuery>, axum::extract::rejection::QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| bad_request(format!("the query: {}", e.body_text())))?;
    let request: LeaveRequest = parse_json(&body, "POST /leave wants {\"id\", \"force\"?}")?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return forward_within(
            &s,
            Some(&leader),
            Method::POST,
            &uri,
            &headers,
            body,
            crate::membership::MEMBERSHIP_CHANGE_TIMEOUT,
        )
        .await;
    }
    let index = remove_member(&s, request.id, request.force || query.force).await?;
    Ok(axum::Json(json!({ "index": index, "left": request.id })).into_response())
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The node's status as JSON (what `GET /status` answers). The data directory is shown only
/// to an authenticated caller (`private`): it tells an attacker where the files are.
pub async fn status_value(s: &NodeState, private: bool) -> Value {
    let m = s.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let members: Vec<Value> = membership
        .nodes()
        .map(|(id, node)| json!({ "id": id, "raft": node.raft, "http": node.http, "grpc": node.grpc, "voter": voters.contains(id) }))
        .collect();
    let dir = s.data_dir.clone();
    let size = tokio::task::spawn_blocking(move || dir_size(&dir))
        .await
        .unwrap_or(0);
    let mut status = json!({
        "id": s.id,
        "state": format!("{:?}", m.state),
        "leader": m.current_leader,
        "term": m.current_term,
        "members": members,
        "last_log_index": m.last_log_index,
        "last_applied": m.last_applied.as_ref().map(|l| l.index),
        "committed": m.local_committed.as_ref().map(|l| l.index),
        "snapshot": m.snapshot.as_ref().map(|l| l.index),
        "backend": s.backend,
        "data_dir_bytes": size,
        "limits": {
            "max_request_bytes": s.limits.max_request_bytes,
            "max_key_bytes": s.limits.max_key_bytes,
            "max_append_bytes": s.limits.max_append_bytes,
        },
    });
    if private {
        status["data_dir"] = json!(s.data_dir.display().to_string());
    }
    status
}

async fn status(State(s): State<Shared>, caller: Option<Extension<Caller>>) -> Response {
    axum::Json(status_value(&s, caller.is_some()).await).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    let st = status_value(&s, false).await;
    let m = s.raft.metrics().borrow_watched().clone();
    let node = s.id;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{node}\"}} {value}\n"
        );
    };
    gauge("raft_kv_term", "Current raft term.", m.current_term);
    gauge(
        "raft_kv_is_leader",
        "1 if this node is the leader.",
        u64::from(m.current_leader == Some(node)),
    );
    gauge(
        "raft_kv_last_log_index",
        "Index of the last log entry.",
        m.last_log_index.unwrap_or(0),
    );
    gauge(
        "raft_kv_last_applied_index",
        "Index of the last applied entry.",
        m.last_applied.as_ref().map_or(0, |l| l.index),
    );
    gauge(
        "raft_kv_committed_index",
        "Index of the last committed entry.",
        m.local_committed.as_ref().map_or(0, |l| l.index),
    );
    gauge(
        "raft_kv_snapshot_index",
        "Last log index in the current snapshot.",
        m.snapshot.as_ref().map_or(0, |l| l.index),
    );
    gauge(
        "raft_kv_members",
        "Number of nodes in the membership.",
        st["members"].as_array().map_or(0, |a| a.len() as u64),
    );
    gauge(
        "raft_kv_data_dir_bytes",
        "Bytes in the data directory.",
        st["data_dir_bytes"].as_u64().unwrap_or(0),
    );
    let c = &s.counters;
    out.push_str("# HELP raft_kv_requests_total Client requests received, by kind.\n# TYPE raft_kv_requests_total counter\n");
    for (kind, counter) in [
        ("write", &c.writes),
        ("read", &c.reads),
        ("stale_read", &c.stale_reads),
        ("forwarded", &c.forwarded),
    ] {
        let _ = writeln!(
            out,
            "raft_kv_requests_total{{node=\"{node}\",kind=\"{kind}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// How long a forwarded request may take.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
