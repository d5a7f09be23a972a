//! The two HTTP servers of a node: the raft endpoint other nodes send RPCs to, and the client
//! API (JSON in and out; every error a JSON body `{"error": ...}` with a fitting status).
//!
//! A key is addressed as `/key/{key}` with the key percent-encoded (any byte may be; `/`, `?`,
//! `#`, `%` and spaces must be), or as `/key?key={key}` (form-encoded), which also reaches the
//! keys `.` and `..` that URL normalization removes from a path. A follower forwards the
//! request target exactly as it arrived, so the leader decodes the same key.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use futures::StreamExt;
use openraft::ChangeMembers;
use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::VoteRequest;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;

use crate::json_errors::json_errors;
use crate::limits::LimitError;
use crate::limits::Limits;
use crate::network::SnapshotHeader;
use crate::network::decode;
use crate::network::encode;
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

/// Decode a raft request, hand it to raft, encode raft's `Result` as the answer.
async fn raft_rpc<Req, Resp, Fut>(body: &[u8], what: &str, call: impl FnOnce(Req) -> Fut) -> Response
where
    Req: serde::de::DeserializeOwned,
    Resp: serde::Serialize,
    Fut: std::future::Future<Output = Resp>,
{
    match decode(body) {
        Ok(rpc) => wire(&call(rpc).await),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{what} request: {e}")).into_response(),
    }
}

async fn raft_append(State(s): State<Shared>, body: Bytes) -> Response {
    raft_rpc(
        &body,
        "append-entries",
        |rpc: AppendEntriesRequest<TypeConfig>| s.raft.append_entries(rpc),
    )
    .await
}

async fn raft_vote(State(s): State<Shared>, body: Bytes) -> Response {
    raft_rpc(&body, "vote", |rpc: VoteRequest<TypeConfig>| s.raft.vote(rpc)).await
}

async fn raft_pre_vote(State(s): State<Shared>, body: Bytes) -> Response {
    raft_rpc(&body, "pre-vote", |rpc: VoteRequest<TypeConfig>| {
        s.raft.pre_vote(rpc)
    })
    .await
}

/// Receive a streamed snapshot: header length (u32 BE), header, then the file, written to a
/// new file in the snapshot directory chunk by chunk and installed when the body ends.
async fn raft_snapshot(State(s): State<Shared>, body: Body) -> Response {
    match receive_snapshot(&s, body).await {
        Ok(response) => response,
        Err(e) => (StatusCode::BAD_REQUEST, format!("snapshot transfer: {e}")).into_response(),
    }
}

async fn receive_snapshot(s: &NodeState, body: Body) -> Result<Response, String> {
    let mut stream = body.into_data_stream();
    let mut head = Vec::new();
    let mut header: Option<SnapshotHeader> = None;
    let mut file = s
        .reader
        .receive_snapshot()
        .map_err(|e| format!("creating the file: {e}"))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the body: {e}"))?;
        if header.is_some() {
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
            return Err(format!("a header of {len} bytes"));
        }
        if head.len() < 4 + len {
            continue;
        }
        header = Some(decode(&head[4..4 + len]).map_err(|e| format!("header: {e}"))?);
        file.write_all(&head[4 + len..])
            .map_err(|e| format!("writing the file: {e}"))?;
        head = Vec::new();
    }
    let header = header.ok_or("the body ended before the header")?;
    file.sync().map_err(|e| format!("syncing the file: {e}"))?;
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
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
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
            (None, Some(key)) => key,
            (None, None) => return Err(bad_request("no key: use /key/{key} or /key?key={key}")),
        };
        state.limits.check_key(&key)?;
        Ok(KeyTarget {
            key,
            stale: query.stale,
        })
    }
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
    let url = format!("http://{}{target}", leader.http);
    let answer = s
        .forward
        .request(method, &url)
        .header(HOPS, (hop + 1).to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
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

fn membership_error(e: &RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(_)) => {
            ApiError(StatusCode::CONFLICT, format!("membership change refused: {e}"))
        }
        _ => unavailable(format!("membership change failed: {e}")),
    }
}

async fn join(
    State(s): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let request: JoinRequest = parse_json(&body, "POST /join wants {\"id\", \"raft\", \"http\"}")?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return forward(&s, Some(&leader), Method::POST, &uri, &headers, body).await;
    }
    let node = NodeInfo {
        raft: request.raft,
        http: request.http,
        grpc: request.grpc,
    };
    let index = add_member(&s, request.id, node).await?;
    Ok(axum::Json(json!({ "index": index, "joined": request.id })).into_response())
}

/// Add node `id` (this node must be the leader): as a learner first, waiting until it has
/// caught up, then as a voter, so a node that joins empty never counts towards a quorum it
/// cannot serve yet. Returns the log index of the last membership change.
pub async fn add_member(s: &NodeState, id: u64, node: NodeInfo) -> Result<u64, ApiError> {
    retry_in_progress(|| s.raft.add_learner(id, node.clone(), true)).await?;
    retry_in_progress(|| {
        s.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
    })
    .await
}

/// Run a membership change, again while another change is still being committed (a join
/// right after another, a leave right after a join): openraft takes one change at a time.
/// Gives up after about ten seconds.
async fn retry_in_progress<F, Fut>(mut change: F) -> Result<u64, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = Result<
                openraft::raft::ClientWriteResponse<TypeConfig>,
                RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
            >,
        >,
{
    let mut attempt = 0;
    loop {
        match change().await {
            Ok(r) => return Ok(r.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                openraft::error::ChangeMembershipError::InProgress(_),
            ))) if attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(membership_error(&e)),
        }
    }
}

async fn leave(
    State(s): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let request: LeaveRequest = parse_json(&body, "POST /leave wants {\"id\"}")?;
    if let Some(leader) = leader_elsewhere(&s)? {
        return forward(&s, Some(&leader), Method::POST, &uri, &headers, body).await;
    }
    let index = remove_member(&s, request.id).await?;
    Ok(axum::Json(json!({ "index": index, "left": request.id })).into_response())
}

/// Remove node `id` from the membership (this node must be the leader).
pub async fn remove_member(s: &NodeState, id: u64) -> Result<u64, ApiError> {
    let metrics = s.raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    if membership.get_node(&id).is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("node {id} is not a member"),
        ));
    }
    let change = if membership.voter_ids().any(|v| v == id) {
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    retry_in_progress(|| s.raft.change_membership(change.clone(), false)).await
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

/// The node's status as JSON (what `GET /status` answers).
pub async fn status_value(s: &NodeState) -> Value {
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
    json!({
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
        "data_dir": s.data_dir.display().to_string(),
        "data_dir_bytes": size,
        "limits": {
            "max_request_bytes": s.limits.max_request_bytes,
            "max_key_bytes": s.limits.max_key_bytes,
            "max_append_bytes": s.limits.max_append_bytes,
        },
    })
}

async fn status(State(s): State<Shared>) -> Response {
    axum::Json(status_value(&s).await).into_response()
}

async fn metrics(State(s): State<Shared>) -> Response {
    let st = status_value(&s).await;
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
