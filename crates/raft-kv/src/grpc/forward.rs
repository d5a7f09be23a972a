//! Forwarding a gRPC call from a follower to the leader's gRPC API, with the hop count and the
//! caller's token.

use std::time::Duration;

use tonic::Code;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use super::AUTHORIZATION;
use super::proto::key_value_client::KeyValueClient;
use crate::auth::Role;
use crate::server::ApiError;
use crate::server::FORWARD_TIMEOUT;
use crate::server::HOPS;
use crate::server::MAX_HOPS;
use crate::server::NodeState;
use crate::server::RETRY_METADATA;
use crate::types::NodeInfo;

/// What a call carries on when it is forwarded: the hops so far and the caller's token.
pub(super) struct Onward {
    pub(super) hop: u32,
    pub(super) token: Option<AsciiMetadataValue>,
    /// The role the caller's token proved, if the node has tokens.
    pub(super) role: Option<Role>,
}

/// A client of the leader's gRPC API for one forwarded call, and the hop count to send.
pub(super) async fn leader_client(
    state: &NodeState,
    leader: Option<&NodeInfo>,
    hop: u32,
) -> Result<KeyValueClient<Channel>, Status> {
    leader_client_within(state, leader, hop, FORWARD_TIMEOUT).await
}

/// [`leader_client`], its calls waiting at most `timeout` for the leader's answer.
pub(super) async fn leader_client_within(
    state: &NodeState,
    leader: Option<&NodeInfo>,
    hop: u32,
    timeout: Duration,
) -> Result<KeyValueClient<Channel>, Status> {
    let leader = leader.ok_or_else(|| ApiError::not_sent("no leader is known yet; retry shortly"))?;
    if hop >= MAX_HOPS {
        return Err(ApiError::not_sent(format!(
            "not forwarded again after {hop} hops: leadership is moving; retry shortly"
        ))
        .into());
    }
    if leader.grpc.is_empty() {
        return Err(ApiError::not_sent(format!(
            "the leader ({}) serves no gRPC; use its HTTP API",
            leader.http
        ))
        .into());
    }
    let endpoint = Endpoint::from_shared(format!("http://{}", leader.grpc))
        .map_err(|e| Status::internal(format!("leader address {}: {e}", leader.grpc)))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout);
    let channel = match &state.tls {
        Some(tls) => tls.grpc_channel(endpoint).await,
        None => endpoint.connect().await,
    }
    .map_err(|e| ApiError::not_sent(format!("the leader at {} cannot be reached: {e}", leader.grpc)))?;
    // The leader bounded what it stores; its answer (a value) is taken whatever its size.
    Ok(KeyValueClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// A forwarded call's request, carrying the hop count and the caller's token (the leader
/// checks it again).
pub(super) fn onward<T>(message: T, call: &Onward) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = (call.hop + 1).to_string().parse() {
        request.metadata_mut().insert(HOPS, value);
    }
    if let Some(token) = &call.token {
        request.metadata_mut().insert(AUTHORIZATION, token.clone());
    }
    request
}

/// A forwarded call that failed in transport after it was sent has an unknown outcome; the
/// leader's own refusals carry [`RETRY_METADATA`] and pass as they are.
pub(super) fn forwarded<T>(result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
    result.map_err(|s| {
        if s.code() == Code::Unavailable && s.metadata().get(RETRY_METADATA).is_none() {
            Status::unknown(format!(
                "forwarding to the leader: {}; the outcome is unknown",
                s.message()
            ))
        } else {
            s
        }
    })
}
