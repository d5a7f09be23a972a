//! Forwarding a gRPC call from a follower to the leader's gRPC API, with the hop count and the
//! caller's token. Whether a call goes on, and where, is decided by
//! [`crate::server::route`], as for the HTTP API.

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
use crate::server::Forward;
use crate::server::HOPS;
use crate::server::NodeState;
use crate::server::RETRY_METADATA;

/// What a call carries on when it is forwarded: the hops so far and the caller's token.
pub(super) struct Onward {
    pub(super) hop: u32,
    pub(super) token: Option<AsciiMetadataValue>,
    /// The role the caller's token proved, if the node has tokens.
    pub(super) role: Option<Role>,
}

/// A client of the leader's gRPC API (at `to`) for one forwarded call.
pub(super) async fn leader_client(
    state: &NodeState,
    to: &Forward,
) -> Result<KeyValueClient<Channel>, ApiError> {
    leader_client_within(state, to, FORWARD_TIMEOUT).await
}

/// [`leader_client`], its calls waiting at most `timeout` for the leader's answer.
pub(super) async fn leader_client_within(
    state: &NodeState,
    to: &Forward,
    timeout: Duration,
) -> Result<KeyValueClient<Channel>, ApiError> {
    let endpoint = Endpoint::from_shared(format!("http://{}", to.addr))
        .map_err(|e| ApiError::internal(format!("leader address {}: {e}", to.addr)))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout);
    let channel = match &state.tls {
        Some(tls) => tls.grpc_channel(endpoint).await,
        None => endpoint.connect().await,
    }
    .map_err(|e| ApiError::leader_unreachable(&to.addr, e))?;
    // The leader bounded what it stores; its answer (a value) is taken whatever its size.
    Ok(KeyValueClient::new(channel).max_decoding_message_size(usize::MAX))
}

/// A forwarded call's request, carrying the hop count `to` says and the caller's token (the
/// leader checks it again).
pub(super) fn onward<T>(message: T, to: &Forward, call: &Onward) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = to.hop.to_string().parse() {
        request.metadata_mut().insert(HOPS, value);
    }
    if let Some(token) = &call.token {
        request.metadata_mut().insert(AUTHORIZATION, token.clone());
    }
    request
}

/// A forwarded call that failed in transport after it was sent has an unknown outcome (as a
/// forwarded HTTP request's, [`ApiError::forward_failed`]); the leader's own refusals carry
/// [`RETRY_METADATA`] and pass as they are.
pub(super) fn forwarded<T>(to: &Forward, result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
    result.map_err(|s| {
        if s.code() == Code::Unavailable && s.metadata().get(RETRY_METADATA).is_none() {
            ApiError::forward_failed(&to.addr, s.message()).into_status()
        } else {
            s
        }
    })
}
