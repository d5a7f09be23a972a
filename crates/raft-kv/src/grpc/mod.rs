//! The gRPC API (`proto/kv.proto`, compiled at build time by a protobuf compiler written in
//! Rust): the same operations and semantics as the HTTP API, a follower forwarding calls to the
//! leader's gRPC address, and a client that fails over between nodes.
//!
//! With an auth file, every call needs the metadata `authorization: Bearer <token>` (the
//! HTTP API's roles: `GetEntries` and `Status` read, every other call writes), or it fails
//! with `UNAUTHENTICATED` (no or an unknown token) or `PERMISSION_DENIED` (a read token on a
//! write). With TLS, the API speaks TLS (ALPN `h2`) and `Join` needs the joining node's
//! certificate, as `/join` does.

mod client;
mod forward;
mod health;
mod incoming;

use std::sync::Arc;
use std::time::Duration;

use axum::http;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tower::util::MapResponseLayer;

pub use self::client::BearerToken;
pub use self::client::ClientChannel;
pub use self::client::GrpcClient;
use self::forward::Onward;
use self::forward::forwarded;
use self::forward::leader_client;
use self::forward::leader_client_within;
use self::forward::onward;
pub(crate) use self::health::health_service;
pub(crate) use self::health::reflection_service;
pub(crate) use self::health::report_health;
pub(crate) use self::incoming::tls_incoming;
use crate::auth::Role;
use crate::conn_limits::ConnLimits;
use crate::limits::LimitError;
use crate::limits::Limits;
use crate::server::Api;
use crate::server::ApiError;
use crate::server::Forward;
use crate::server::HOPS;
use crate::server::NodeState;
use crate::server::Proposed;
use crate::server::hops_of;
use crate::server::route;
use crate::tls::GrpcPeer;
use crate::types::NodeInfo;

/// The generated protobuf messages and gRPC stubs.
#[allow(missing_docs, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("raftkv.v1");
}

use proto::key_value_server::KeyValue;
use proto::key_value_server::KeyValueServer;

/// The metadata key of the bearer token.
const AUTHORIZATION: &str = "authorization";

/// The most calls one gRPC connection carries at once: a connection cannot hold more of the
/// node's memory and tasks than this many calls do.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// How long a client has to answer a keep-alive ping before its connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The tonic server builder of a node's gRPC API. Besides what the listener's tracker enforces
/// (see [`crate::conn_limits`]): a bound on concurrent calls per connection, and HTTP/2 pings
/// every idle timeout (at most 30 s) that close a connection whose client stopped answering,
/// calls in flight included.
pub(crate) fn server_builder(conns: ConnLimits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(conns.idle_timeout.min(Duration::from_secs(30))))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// The gRPC service of a node, ready for a tonic server. It decodes messages up to
/// [`Limits::grpc_message_bytes`] (see [`oversize_layer`] for a larger one); the request inside
/// is then measured as it would be logged.
pub(crate) fn service(state: Arc<NodeState>) -> KeyValueServer<GrpcService> {
    let max = state.limits.grpc_message_bytes();
    KeyValueServer::new(GrpcService { state }).max_decoding_message_size(max)
}

/// The answer to a message over tonic's decode bound, made `RESOURCE_EXHAUSTED` naming the
/// request limit: tonic answers `OUT_OF_RANGE` with its own bound, which a client cannot tell
/// from a range error of the API and which names a number no setting has.
pub(crate) fn oversize_layer(
    limits: Limits,
) -> MapResponseLayer<impl Fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> + Clone>
{
    let refusal = ApiError::from(LimitError::BodyTooLarge {
        body_limit: limits.grpc_message_bytes(),
        limit: limits.max_request_bytes,
    });
    MapResponseLayer::new(move |mut response: http::Response<tonic::body::Body>| {
        let oversize = response.extensions().get::<Status>().is_some_and(|s| {
            s.code() == Code::OutOfRange && s.message().contains("message length too large")
        });
        if oversize {
            let status = refusal.clone().into_status();
            let headers = response.headers_mut();
            headers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
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
pub(crate) struct GrpcService {
    state: Arc<NodeState>,
}

impl GrpcService {
    fn check_id(&self, id: &str) -> Result<(), Status> {
        Ok(self.state.limits.check_key(id).map_err(ApiError::from)?)
    }

    /// With an auth file, let a call through only with a token of the role `need`: the
    /// token's role, and what a forward of the call carries on.
    fn authorize<T>(&self, request: &Request<T>, need: Role) -> Result<Onward, Status> {
        let onward = Onward {
            hop: hops_of(request.metadata().get(HOPS).and_then(|v| v.to_str().ok())),
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
            Err(e) => Err(ApiError::from(e).into()),
        }
    }
}

/// Propose `request` once it passed the limits (on this node, before any forward).
async fn write(
    state: &NodeState,
    request: KvRequest,
) -> Result<Result<(u64, KvResponse), Option<NodeInfo>>, Status> {
    state.limits.check_request(&request).map_err(ApiError::from)?;
    match crate::server::propose(state, request).await? {
        Proposed::Applied(index, response) => Ok(Ok((index, response))),
        Proposed::NotLeader(leader) => Ok(Err(leader)),
    }
}

/// Forward a call this node does not answer to the leader, or refuse it (as
/// [`crate::server::to_leader`] decides for both APIs).
fn to_leader(leader: Option<&NodeInfo>, call: &Onward) -> Result<Forward, Status> {
    Ok(crate::server::to_leader(Api::Grpc, leader, call.hop)?)
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
            Ok((_, other)) => Err(ApiError::unexpected(other).into()),
            Err(leader) => {
                let to = to_leader(leader.as_ref(), &call)?;
                let mut client = leader_client(&self.state, &to).await?;
                forwarded(&to, client.save_entries(onward(m, &to, &call)).await)
            }
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
            && let Some(to) = route(
                Api::Grpc,
                crate::server::linearize(&self.state)
                    .await?
                    .as_ref()
                    .map(Option::as_ref),
                call.hop,
            )?
        {
            let mut client = leader_client(&self.state, &to).await?;
            return forwarded(&to, client.get_entries(onward(m, &to, &call)).await);
        }
        match crate::server::read_local(&self.state, &m.id)? {
            Some(data) => Ok(Response::new(proto::GetEntriesResponse { id: m.id, data })),
            None => Err(ApiError::key_not_found(&m.id).into()),
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
            Ok((_, other)) => Err(ApiError::unexpected(other).into()),
            Err(leader) => {
                let to = to_leader(leader.as_ref(), &call)?;
                let mut client = leader_client(&self.state, &to).await?;
                forwarded(&to, client.delete_entries(onward(m, &to, &call)).await)
            }
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
            Ok((_, KvResponse::UpdateIfExists { previous: None })) => {
                Err(ApiError::update_of_missing_key(&m.id, Api::Grpc).into())
            }
            Ok((_, other)) => Err(ApiError::unexpected(other).into()),
            Err(leader) => {
                let to = to_leader(leader.as_ref(), &call)?;
                let mut client = leader_client(&self.state, &to).await?;
                forwarded(&to, client.update_entries(onward(m, &to, &call)).await)
            }
        }
    }

    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let call = self.authorize(&request, Role::Read)?;
        let st = crate::server::node_status(&self.state, call.role.is_some());
        Ok(Response::new(proto::StatusResponse {
            id: st.id,
            leader: st.leader.unwrap_or(0),
            term: st.term,
            members: st
                .members
                .into_iter()
                .map(|m| proto::Member {
                    id: m.id,
                    raft: m.raft,
                    http: m.http,
                    grpc: m.grpc,
                    voter: m.voter,
                })
                .collect(),
            last_log_index: st.last_log_index.unwrap_or(0),
            last_applied: st.last_applied.unwrap_or(0),
            backend: st.backend.to_string(),
            data_dir: st.data_dir.unwrap_or_default(),
            fatal: st.fatal.unwrap_or_default(),
            committed: st.committed.unwrap_or(0),
        }))
    }

    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        let call = self.authorize(&request, Role::Write)?;
        let peer = request.extensions().get::<GrpcPeer>().and_then(|p| p.0);
        let m = request.into_inner();
        crate::server::check_joiner(&self.state, peer, call.hop > 0, m.id)?;
        if let Some(leader) = crate::server::leader_elsewhere(&self.state)? {
            let to = to_leader(Some(&leader), &call)?;
            let mut client =
                leader_client_within(&self.state, &to, crate::membership::MEMBERSHIP_CHANGE_TIMEOUT).await?;
            return forwarded(&to, client.join(onward(m, &to, &call)).await);
        }
        let node = NodeInfo {
            raft: m.raft,
            http: m.http,
            grpc: m.grpc,
        };
        let index = crate::membership::add_member(&self.state, m.id, node).await?;
        Ok(Response::new(proto::MembershipResponse { index }))
    }

    async fn leave(
        &self,
        request: Request<proto::LeaveRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        let call = self.authorize(&request, Role::Write)?;
        let m = request.into_inner();
        if let Some(leader) = crate::server::leader_elsewhere(&self.state)? {
            let to = to_leader(Some(&leader), &call)?;
            let mut client =
                leader_client_within(&self.state, &to, crate::membership::MEMBERSHIP_CHANGE_TIMEOUT).await?;
            return forwarded(&to, client.leave(onward(m, &to, &call)).await);
        }
        let index = crate::membership::remove_member(&self.state, m.id, m.force).await?;
        Ok(Response::new(proto::MembershipResponse { index }))
    }
}
