//! The gRPC API (`proto/kv.proto`, compiled at build time by a protobuf compiler written in
//! Rust): the same operations and semantics as the HTTP API, a follower forwarding calls to the
//! leader's gRPC address, and a client that fails over between nodes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use axum::http;
use tower::util::MapResponseLayer;

use crate::limits::LimitError;
use crate::limits::Limits;
use crate::server::ApiError;
use crate::server::NodeState;
use crate::server::Proposed;
use crate::types::NodeInfo;

/// The generated protobuf messages and gRPC stubs.
#[allow(missing_docs, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("raftkv.v1");
}

use proto::key_value_client::KeyValueClient;
use proto::key_value_server::KeyValue;
use proto::key_value_server::KeyValueServer;

/// The metadata key counting forwards, as the HTTP header does.
const HOPS: &str = "x-raft-kv-hops";
const MAX_HOPS: u32 = 3;
/// How long a forwarded call may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// The gRPC service of a node, ready for a tonic server. It decodes messages up to
/// [`Limits::grpc_message_bytes`] (see [`oversize_layer`] for a larger one); the request inside
/// is then measured as it would be logged.
pub fn service(state: Arc<NodeState>) -> KeyValueServer<GrpcService> {
    let max = state.limits.grpc_message_bytes();
    KeyValueServer::new(GrpcService { state }).max_decoding_message_size(max)
}

/// The answer to a message over tonic's decode bound, made `RESOURCE_EXHAUSTED` naming the
/// request limit: tonic answers `OUT_OF_RANGE` with its own bound, which a client cannot tell
/// from a range error of the API and which names a number no setting has.
pub fn oversize_layer(
    limits: Limits,
) -> MapResponseLayer<impl Fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> + Clone>
{
    let message = LimitError::BodyTooLarge {
        body_limit: limits.grpc_message_bytes(),
        limit: limits.max_request_bytes,
    }
    .to_string();
    MapResponseLayer::new(move |mut response: http::Response<tonic::body::Body>| {
        let oversize = response.extensions().get::<Status>().is_some_and(|s| {
            s.code() == Code::OutOfRange && s.message().contains("message length too large")
        });
        if oversize {
            let status = Status::resource_exhausted(message.clone());
            let headers = response.headers_mut();
            headers.insert(
                "grpc-status",
                http::HeaderValue::from(Code::ResourceExhausted as i32),
            );
            // The message is ASCII without `%`, which grpc-message carries as it is.
            if let Ok(value) = http::HeaderValue::from_str(status.message()) {
                headers.insert("grpc-message", value);
            }
            response.extensions_mut().insert(status);
        }
        response
    })
}

/// Serves the gRPC API on one node.
pub struct GrpcService {
    state: Arc<NodeState>,
}

/// An HTTP-style API error as a gRPC status: the same cases, the fitting code.
fn status(e: ApiError) -> Status {
    let code = match e.0.as_u16() {
        400 => Code::InvalidArgument,
        404 => Code::NotFound,
        413 => Code::ResourceExhausted,
        409 => Code::FailedPrecondition,
        503 if e.1.starts_with("not accepted: ") => Code::Unavailable,
        // A failed forward, or a write raft may have taken: the outcome is unknown.
        502 | 503 => Code::Unknown,
        _ => Code::Internal,
    };
    Status::new(code, e.1)
}

/// A refused request as a status: `RESOURCE_EXHAUSTED` for its size, `INVALID_ARGUMENT` for
/// its content (an empty or overlong key).
fn limit_status(e: &LimitError) -> Status {
    if e.is_size() {
        Status::resource_exhausted(e.to_string())
    } else {
        Status::invalid_argument(format!("id: {e}"))
    }
}

impl GrpcService {
    fn check_id(&self, id: &str) -> Result<(), Status> {
        self.state.limits.check_key(id).map_err(|e| limit_status(&e))
    }
}

fn hops<T>(request: &Request<T>) -> u32 {
    request
        .metadata()
        .get(HOPS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A client of the leader's gRPC API for one forwarded call, and the hop count to send.
async fn leader_client(leader: Option<&NodeInfo>, hop: u32) -> Result<KeyValueClient<Channel>, Status> {
    let leader =
        leader.ok_or_else(|| Status::unavailable("not accepted: no leader is known yet; retry shortly"))?;
    if hop >= MAX_HOPS {
        return Err(Status::unavailable(format!(
            "not accepted: not forwarded again after {hop} hops: leadership is moving; retry shortly"
        )));
    }
    if leader.grpc.is_empty() {
        return Err(Status::unavailable(format!(
            "not accepted: the leader ({}) serves no gRPC; use its HTTP API",
            leader.http
        )));
    }
    let endpoint = Endpoint::from_shared(format!("http://{}", leader.grpc))
        .map_err(|e| Status::internal(format!("leader address {}: {e}", leader.grpc)))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(FORWARD_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| {
        Status::unavailable(format!(
            "not accepted: the leader at {} cannot be reached: {e}",
            leader.grpc
        ))
    })?;
    // The leader bounded what it stores; its answer (a value) is taken whatever its size.
    Ok(KeyValueClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// A forwarded call's request, carrying the hop count.
fn onward<T>(message: T, hop: u32) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = (hop + 1).to_string().parse() {
        request.metadata_mut().insert(HOPS, value);
    }
    request
}

/// A forwarded call that failed in transport after it was sent has an unknown outcome.
fn forwarded<T>(result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
    result.map_err(|s| {
        if matches!(s.code(), Code::Unavailable) && !s.message().starts_with("not accepted: ") {
            Status::unknown(format!(
                "forwarding to the leader: {}; the outcome is unknown",
                s.message()
            ))
        } else {
            s
        }
    })
}

/// Propose `request` once it passed the limits (on this node, before any forward).
async fn write(
    state: &NodeState,
    request: KvRequest,
) -> Result<Result<(u64, KvResponse), Option<NodeInfo>>, Status> {
    state
        .limits
        .check_request(&request)
        .map_err(|e| limit_status(&e))?;
    match crate::server::propose(state, request).await.map_err(status)? {
        Proposed::Applied(index, response) => Ok(Ok((index, response))),
        Proposed::NotLeader(leader) => Ok(Err(leader)),
    }
}

fn unexpected(response: &KvResponse) -> Status {
    Status::internal(format!("unexpected response {response:?}"))
}

#[tonic::async_trait]
impl KeyValue for GrpcService {
    async fn save_entries(
        &self,
        request: Request<proto::SaveEntriesRequest>,
    ) -> Result<Response<proto::SaveEntriesResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        self.check_id(&m.id)?;
        let kv = KvRequest::Set {
            key: m.id.clone(),
            value: m.secrets.clone(),
        };
        match write(&self.state, kv).await? {
            Ok((index, KvResponse::Set { previous })) => Ok(Response::new(proto::SaveEntriesResponse {
                index,
                existed: previous.is_some(),
            })),
            Ok((_, other)) => Err(unexpected(&other)),
            Err(leader) => forwarded(
                leader_client(leader.as_ref(), hop)
                    .await?
                    .save_entries(onward(m, hop))
                    .await,
            ),
        }
    }

    async fn get_entries(
        &self,
        request: Request<proto::GetEntriesRequest>,
    ) -> Result<Response<proto::GetEntriesResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        self.check_id(&m.id)?;
        if !m.stale
            && let Some(leader) = crate::server::linearize(&self.state).await.map_err(status)?
        {
            return forwarded(
                leader_client(leader.as_ref(), hop)
                    .await?
                    .get_entries(onward(m, hop))
                    .await,
            );
        }
        match crate::server::read_local(&self.state, &m.id).map_err(status)? {
            Some(data) => Ok(Response::new(proto::GetEntriesResponse { id: m.id, data })),
            None => Err(Status::not_found(format!("key {:?} not found", m.id))),
        }
    }

    async fn delete_entries(
        &self,
        request: Request<proto::DeleteEntriesRequest>,
    ) -> Result<Response<proto::DeleteEntriesResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        self.check_id(&m.id)?;
        match write(&self.state, KvRequest::Delete { key: m.id.clone() }).await? {
            Ok((index, KvResponse::Delete { previous })) => Ok(Response::new(proto::DeleteEntriesResponse {
                index,
                existed: previous.is_some(),
            })),
            Ok((_, other)) => Err(unexpected(&other)),
            Err(leader) => forwarded(
                leader_client(leader.as_ref(), hop)
                    .await?
                    .delete_entries(onward(m, hop))
                    .await,
            ),
        }
    }

    async fn update_entries(
        &self,
        request: Request<proto::UpdateEntriesRequest>,
    ) -> Result<Response<proto::UpdateEntriesResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        self.check_id(&m.id)?;
        let kv = KvRequest::UpdateIfExists {
            key: m.id.clone(),
            value: m.secrets.clone(),
        };
        match write(&self.state, kv).await? {
            Ok((index, KvResponse::UpdateIfExists { previous: Some(_) })) => {
                Ok(Response::new(proto::UpdateEntriesResponse { index }))
            }
            Ok((_, KvResponse::UpdateIfExists { previous: None })) => Err(Status::not_found(format!(
                "key {:?} not found; UpdateEntries only updates an existing key (SaveEntries sets one)",
                m.id
            ))),
            Ok((_, other)) => Err(unexpected(&other)),
            Err(leader) => forwarded(
                leader_client(leader.as_ref(), hop)
                    .await?
                    .update_entries(onward(m, hop))
                    .await,
            ),
        }
    }

    async fn status(
        &self,
        _request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let v = crate::server::status_value(&self.state).await;
        let u = |key: &str| v[key].as_u64().unwrap_or(0);
        let text = |key: &str| v[key].as_str().unwrap_or_default().to_string();
        let members = v["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|m| proto::Member {
                        id: m["id"].as_u64().unwrap_or(0),
                        raft: m["raft"].as_str().unwrap_or_default().to_string(),
                        http: m["http"].as_str().unwrap_or_default().to_string(),
                        grpc: m["grpc"].as_str().unwrap_or_default().to_string(),
                        voter: m["voter"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(proto::StatusResponse {
            id: u("id"),
            leader: u("leader"),
            term: u("term"),
            members,
            last_log_index: u("last_log_index"),
            last_applied: u("last_applied"),
            backend: text("backend"),
            data_dir: text("data_dir"),
            data_dir_bytes: u("data_dir_bytes"),
        }))
    }

    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        if let Some(leader) = crate::server::leader_elsewhere(&self.state).map_err(status)? {
            return forwarded(
                leader_client(Some(&leader), hop)
                    .await?
                    .join(onward(m, hop))
                    .await,
            );
        }
        let node = NodeInfo {
            raft: m.raft,
            http: m.http,
            grpc: m.grpc,
        };
        let index = crate::server::add_member(&self.state, m.id, node)
            .await
            .map_err(status)?;
        Ok(Response::new(proto::MembershipResponse { index }))
    }

    async fn leave(
        &self,
        request: Request<proto::LeaveRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        let hop = hops(&request);
        let m = request.into_inner();
        if let Some(leader) = crate::server::leader_elsewhere(&self.state).map_err(status)? {
            return forwarded(
                leader_client(Some(&leader), hop)
                    .await?
                    .leave(onward(m, hop))
                    .await,
            );
        }
        let index = crate::server::remove_member(&self.state, m.id)
            .await
            .map_err(status)?;
        Ok(Response::new(proto::MembershipResponse { index }))
    }
}

type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send + 'a>>;

/// A gRPC client of several nodes that fails over between them: a node that cannot be reached
/// or answers UNAVAILABLE (nothing happened) is followed by the next one until the deadline;
/// any other answer, UNKNOWN included, is returned as it is.
pub struct GrpcClient {
    nodes: Vec<String>,
    next: AtomicUsize,
    timeout: Duration,
    deadline: Duration,
}

impl GrpcClient {
    /// A client of the gRPC addresses `nodes`.
    pub fn new(nodes: Vec<String>, timeout: Duration, deadline: Duration) -> Self {
        Self {
            nodes,
            next: AtomicUsize::new(0),
            timeout,
            deadline,
        }
    }

    /// Run `call` against the nodes in turn until one accepts it.
    pub async fn call<T, F>(&self, mut call: F) -> Result<T, Status>
    where
        F: for<'a> FnMut(&'a mut KeyValueClient<Channel>) -> CallFuture<'a, T>,
    {
        let start = Instant::now();
        let mut attempt = 0usize;
        let mut last = Status::unavailable("no nodes given");
        loop {
            let at = self.next.load(Ordering::Relaxed) % self.nodes.len().max(1);
            let Some(node) = self.nodes.get(at) else {
                return Err(last);
            };
            let endpoint = Endpoint::from_shared(format!("http://{node}"))
                .map_err(|e| Status::invalid_argument(format!("node address {node}: {e}")))?
                .connect_timeout(Duration::from_secs(1))
                .timeout(self.timeout);
            match endpoint.connect().await {
                Ok(channel) => {
                    // Values come back whatever their size: the server bounded what it stored.
                    let mut client = KeyValueClient::new(channel).max_decoding_message_size(usize::MAX);
                    match call(&mut client).await {
                        Ok(response) => return Ok(response.into_inner()),
                        Err(s) if s.code() == Code::Unavailable => {
                            last = Status::unavailable(format!("{node}: {}", s.message()));
                        }
                        Err(s) => return Err(s),
                    }
                }
                Err(e) => last = Status::unavailable(format!("{node}: {e}")),
            }
            attempt += 1;
            self.next.store(at + 1, Ordering::Relaxed);
            if start.elapsed() >= self.deadline {
                return Err(last);
            }
            if attempt.is_multiple_of(self.nodes.len()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
