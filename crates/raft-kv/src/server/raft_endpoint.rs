//! The raft endpoint: the RPCs other nodes send (append-entries, votes, snapshots), each checked
//! by [`crate::raft_guard`] before raft sees it.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use openraft::async_runtime::WatchReceiver;
use openraft::error::RaftError;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::VoteRequest;
use raft_store::kv::SnapshotFile;

use super::NodeState;
use super::Shared;
use crate::json_errors::json_errors;
use crate::network::SnapshotHeader;
use crate::network::decode;
use crate::network::encode;
use crate::raft_guard;
use crate::raft_guard::PeerContext;
use crate::raft_guard::RaftRpc;
use crate::raft_guard::Refusal;
use crate::types::TypeConfig;

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
            raft_guard::check_not_self(rpc.vote.leader_id.node_id, s.id, RaftRpc::Append)?;
            let answer = s.raft.append_entries(rpc).await;
            // Any answer but "a higher vote" means the sender is this node's current leader.
            if matches!(&answer, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
                s.saw_leader();
            }
            Ok(wire(&answer))
        },
    )
    .await
}

async fn raft_vote(State(s): State<Shared>, peer: PeerContext, body: Bytes) -> Response {
    raft_rpc(&body, "vote", |rpc: VoteRequest<TypeConfig>| async move {
        let (membership, term) = guard_view(&s);
        raft_guard::check_vote(&rpc, RaftRpc::Vote, membership.membership(), term, &peer)?;
        raft_guard::check_not_self(rpc.vote.leader_id.node_id, s.id, RaftRpc::Vote)?;
        Ok(wire(&s.raft.vote(rpc).await))
    })
    .await
}

async fn raft_pre_vote(State(s): State<Shared>, peer: PeerContext, body: Bytes) -> Response {
    raft_rpc(&body, "pre-vote", |rpc: VoteRequest<TypeConfig>| async move {
        let (membership, term) = guard_view(&s);
        raft_guard::check_vote(&rpc, RaftRpc::PreVote, membership.membership(), term, &peer)?;
        raft_guard::check_not_self(rpc.vote.leader_id.node_id, s.id, RaftRpc::PreVote)?;
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
                tracing::warn!(
                    target: "raft_kv::raft",
                    path = %path.display(),
                    error = %e,
                    "cannot remove an unfinished snapshot"
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
        raft_guard::check_not_self(decoded.vote.leader_id.node_id, s.id, RaftRpc::Snapshot)
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
    let sent_vote = header.vote;
    let installed = s
        .raft
        .install_full_snapshot(header.vote, snapshot)
        .await
        .map_err(RaftError::<TypeConfig>::Fatal);
    if installed.as_ref().is_ok_and(|a| a.vote == sent_vote) {
        s.saw_leader();
    }
    Ok(wire(&installed))
}

// ---------------------------------------------------------------- client API
