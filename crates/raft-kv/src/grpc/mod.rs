//! The gRPC API (`proto/kv.proto`, compiled at build time by a protobuf compiler written in
//! Rust): the same operations and semantics as the HTTP API, a follower forwarding calls to the
//! leader's gRPC address, and a client that fails over between nodes.
//!
//! With an auth file, every call needs the metadata `authorization: Bearer <token>` (the
//! HTTP API's roles: `GetEntries` and `Status` read, every other call writes), or it fails
//! with `UNAUTHENTICATED` (no or an unknown token) or `PERMISSION_DENIED` (a read token on a
//! write). With TLS, the API speaks TLS (ALPN `h2`) and `Join` needs the joining node's
//! certificate, as `/join` does.

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
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use axum::http;
use tower::util::MapResponseLayer;

use crate::auth::AuthError;
use crate::auth::Role;
use crate::conn_limits::ConnLimits;
use crate::limits::LimitError;
use crate::limits::Limits;
use crate::server::ApiError;
use crate::server::NodeState;
use crate::server::Proposed;
use crate::tls::ClientTls;
use crate::tls::GrpcPeer;
use crate::tls::GrpcTlsStream;
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
/// The metadata key of the bearer token.
const AUTHORIZATION: &str = "authorization";
const MAX_HOPS: u32 = 3;
/// How long a forwarded call may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// The most calls one gRPC connection carries at once: a connection cannot hold more of the
/// node's memory and tasks than this many calls do.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// How long a client has to answer a keep-alive ping before its connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The tonic server builder of a node's gRPC API. Besides what the listener's tracker enforces
/// (see [`crate::conn_limits`]): a bound on concurrent calls per connection, and HTTP/2 pings
/// every idle timeout (at most 30 s) that close a connection whose client stopped answering,
/// calls in flight included.
pub fn server_builder(conns: ConnLimits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(conns.idle_timeout.min(Duration::from_secs(30))))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

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
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
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

    /// With an auth file, let a call through only with a token of the role `need`: the
    /// token's role, and what a forward of the call carries on.
    fn authorize<T>(&self, request: &Request<T>, need: Role) -> Result<Onward, Status> {
        let onward = Onward {
            hop: request
                .metadata()
                .get(HOPS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            token: request.metadata().get(AUTHORIZATION).cloned(),
            role: None,
        };
        let Some(auth) = &self.state.auth else {
            return Ok(onward);
        };
        let header = onward.token.as_ref().map(AsciiMetadataValue::as_encoded_bytes);
        match auth.check(header, need) {
            Ok(role) => Ok(Onward {
                role: Some(role),
                ..onward
            }),
            Err(e @ AuthError::Forbidden { .. }) => Err(Status::permission_denied(e.to_string())),
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// What a call carries on when it is forwarded: the hops so far and the caller's token.
struct Onward {
    hop: u32,
    token: Option<AsciiMetadataValue>,
    /// The role the caller's token proved, if the node has tokens.
    role: Option<Role>,
}

/// Accept TLS connections on `listener` for the gRPC server: each handshake runs on its own,
/// bounded by [`crate::tls::HANDSHAKE_TIMEOUT`]; a failed one is logged and dropped.
pub fn tls_incoming(
    listener: tokio::net::TcpListener,
    tracker: std::sync::Arc<crate::conn_limits::Tracker>,
    acceptor: tokio_rustls::TlsAcceptor,
) -> impl futures::Stream<Item = Result<GrpcTlsStream, std::io::Error>> {
    use futures::StreamExt as _;
    type Handshake = Pin<Box<dyn Future<Output = Option<GrpcTlsStream>> + Send>>;
    let pending = futures::stream::FuturesUnordered::<Handshake>::new();
    futures::stream::unfold(
        (listener, tracker, acceptor, pending),
        |(listener, tracker, acceptor, mut pending)| async move {
            loop {
                tokio::select! {
                    // The tracker admits the connection (and backs off on accept errors).
                    (tcp, conn) = tracker.accept(&listener) => {
                        let acceptor = acceptor.clone();
                        pending.push(Box::pin(async move {
                            let handshake = crate::tls::accept(&acceptor, tcp, "gRPC", &conn);
                            tokio::select! {
                                done = handshake => done.map(|(tls, _)| GrpcTlsStream::new(tls, conn)),
                                () = conn.closed() => None,
                            }
                        }));
                    }
                    Some(done) = pending.next(), if !pending.is_empty() => {
                        if let Some(stream) = done {
                            return Some((Ok(stream), (listener, tracker, acceptor, pending)));
                        }
                    }
                }
            }
        },
    )
}

/// A client of the leader's gRPC API for one forwarded call, and the hop count to send.
async fn leader_client(
    state: &NodeState,
    leader: Option<&NodeInfo>,
    hop: u32,
) -> Result<KeyValueClient<Channel>, Status> {
    leader_client_within(state, leader, hop, FORWARD_TIMEOUT).await
}

/// [`leader_client`], its calls waiting at most `timeout` for the leader's answer.
async fn leader_client_within(
    state: &NodeState,
    leader: Option<&NodeInfo>,
    hop: u32,
    timeout: Duration,
) -> Result<KeyValueClient<Channel>, Status> {
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
        .timeout(timeout);
    let channel = match &state.tls {
        Some(tls) => tls.grpc_channel(endpoint).await,
        None => endpoint.connect().await,
    }
    .map_err(|e| {
        Status::unavailable(format!(
            "not accepted: the leader at {} cannot be reached: {e}",
            leader.grpc
        ))
    })?;
    // The leader bounded what it stores; its answer (a value) is taken whatever its size.
    Ok(KeyValueClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// A forwarded call's request, carrying the hop count and the caller's token (the leader
/// checks it again).
fn onward<T>(message: T, call: &Onward) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = (call.hop + 1).to_string().parse() {
        request.metadata_mut().insert(HOPS, value);
    }
    if let Some(token) = &call.token {
        request.metadata_mut().insert(AUTHORIZATION, token.clone());
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
        let call = self.authorize(&request, Role::Write)?;
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
                leader_client(&self.state, leader.as_ref(), call.hop)
                    .await?
                    .save_entries(onward(m, &call))
                    .await,
            ),
        }
    }

    async fn get_entries(
        &self,
        request: Request<proto::GetEntriesRequest>,
    ) -> Result<Response<proto::GetEntriesResponse>, Status> {
        let call = self.authorize(&request, Role::Read)?;
        let m = request.into_inner();
        self.check_id(&m.id)?;
        if !m.stale
            && let Some(leader) = crate::server::linearize(&self.state).await.map_err(status)?
        {
            return forwarded(
                leader_client(&self.state, leader.as_ref(), call.hop)
                    .await?
                    .get_entries(onward(m, &call))
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
        let call = self.authorize(&request, Role::Write)?;
        let m = request.into_inner();
        self.check_id(&m.id)?;
        match write(&self.state, KvRequest::Delete { key: m.id.clone() }).await? {
            Ok((index, KvResponse::Delete { previous })) => Ok(Response::new(proto::DeleteEntriesResponse {
                index,
                existed: previous.is_some(),
            })),
            Ok((_, other)) => Err(unexpected(&other)),
            Err(leader) => forwarded(
                leader_client(&self.state, leader.as_ref(), call.hop)
                    .await?
                    .delete_entries(onward(m, &call))
                    .await,
            ),
        }
    }

    async fn update_entries(
        &self,
        request: Request<proto::UpdateEntriesRequest>,
    ) -> Result<Response<proto::UpdateEntriesResponse>, Status> {
        let call = self.authorize(&request, Role::Write)?;
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
                leader_client(&self.state, leader.as_ref(), call.hop)
                    .await?
                    .update_entries(onward(m, &call))
                    .await,
            ),
        }
    }

    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let call = self.authorize(&request, Role::Read)?;
        let v = crate::server::status_value(&self.state, call.role.is_some()).await;
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
        let call = self.authorize(&request, Role::Write)?;
        let peer = request.extensions().get::<GrpcPeer>().and_then(|p| p.0);
        let m = request.into_inner();
        crate::server::check_joiner(&self.state, peer, call.hop > 0, m.id).map_err(status)?;
        if let Some(leader) = crate::server::leader_elsewhere(&self.state).map_err(status)? {
            return forwarded(
                leader_client_within(
                    &self.state,
                    Some(&leader),
                    call.hop,
                    crate::membership::MEMBERSHIP_CHANGE_TIMEOUT,
                )
                .await?
                .join(onward(m, &call))
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
        let call = self.authorize(&request, Role::Write)?;
        let m = request.into_inner();
        if let Some(leader) = crate::server::leader_elsewhere(&self.state).map_err(status)? {
            return forwarded(
                leader_client_within(
                    &self.state,
                    Some(&leader),
                    call.hop,
                    crate::membership::MEMBERSHIP_CHANGE_TIMEOUT,
                )
                .await?
                .leave(onward(m, &call))
                .await,
            );
        }
        let index = crate::server::remove_member(&self.state, m.id, m.force)
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
    token: BearerToken,
    tls: Option<ClientTls>,
}

/// Adds `authorization: Bearer <token>` to every call, if there is a token.
#[derive(Clone, Default)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, token.clone());
        }
        Ok(request)
    }
}

/// The channel of a [`GrpcClient`] call: its token added to every request.
pub type ClientChannel = InterceptedService<Channel, BearerToken>;

impl GrpcClient {
    /// A client of the gRPC addresses `nodes`.
    pub fn new(nodes: Vec<String>, timeout: Duration, deadline: Duration) -> Self {
        Self {
            nodes,
            next: AtomicUsize::new(0),
            timeout,
            deadline,
            token: BearerToken::default(),
            tls: None,
        }
    }

    /// Send `token` as a bearer token with every call.
    pub fn with_token(mut self, token: &str) -> Result<Self, Status> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::invalid_argument("the token is not printable ASCII"))?;
        self.token = BearerToken(Some(value));
        Ok(self)
    }

    /// Speak TLS with `tls` to every node.
    #[must_use]
    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Run `call` against the nodes in turn until one accepts it.
    pub async fn call<T, F>(&self, mut call: F) -> Result<T, Status>
    where
        F: for<'a> FnMut(&'a mut KeyValueClient<ClientChannel>) -> CallFuture<'a, T>,
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
            let connected = match &self.tls {
                Some(tls) => tls.grpc_channel(endpoint).await,
                None => endpoint.connect().await,
            };
            match connected {
                Ok(channel) => {
                    // Values come back whatever their size: the server bounded what it stored.
                    let mut client = KeyValueClient::with_interceptor(channel, self.token.clone())
                        .max_decoding_message_size(usize::MAX);
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
