//! What the HTTP and gRPC APIs both do with a request once it is decoded: propose a write,
//! make a read linearizable, read the state machine, find the leader. Each refuses once the
//! node stopped on a fatal store error.

use std::sync::atomic::Ordering;

use openraft::ReadPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::error::ForwardReason;
use openraft::error::RaftError;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;

use super::ApiError;
use super::NodeState;
use crate::types::NodeInfo;

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
    s.check_serving()?;
    match s.raft.client_write(request).await {
        Ok(r) => Ok(Proposed::Applied(r.log_id.index, r.data)),
        // A leader no quorum acknowledged within its lease refuses writes before appending
        // them; without a leader to name, the caller would hear "no leader is known" from a
        // node whose /status says Leader.
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))
            if f.reason == ForwardReason::LeaseExpired =>
        {
            Err(ApiError::not_sent(format!(
                "node {} is the leader but no quorum has acknowledged it within its lease (the other members are down or cut off from it): nothing was written; retry shortly",
                s.id
            )))
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Ok(Proposed::NotLeader(f.leader_node))
        }
        Err(e) => Err(ApiError::unknown(format!("write failed: {e}"))),
    }
}

/// Make a linearizable read possible on this node: `Ok(None)` once its state machine has
/// applied everything committed when the read arrived (read index, confirmed by a quorum),
/// `Ok(Some(leader))` if this node is not the leader.
pub async fn linearize(s: &NodeState) -> Result<Option<Option<NodeInfo>>, ApiError> {
    s.counters.reads.fetch_add(1, Ordering::Relaxed);
    s.check_serving()?;
    match s.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
        Ok(_) => Ok(None),
        Err(e) => match e.forward_to_leader() {
            Some(f) => Ok(Some(f.leader_node.clone())),
            // A read that failed changed nothing: it may be sent again, here or elsewhere.
            None => Err(ApiError::not_sent(format!("linearizable read failed: {e}"))),
        },
    }
}

/// Read `key` from this node's state machine.
pub fn read_local(s: &NodeState, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
    // A stopped node's state machine may be behind for good: no stale reads of it either.
    s.check_serving()?;
    s.reader
        .get(key)
        .map_err(|e| ApiError::internal(format!("reading {key:?}: {e}")))
}

/// If this node is not the leader: the leader's addresses (or an error if none is known).
pub fn leader_elsewhere(s: &NodeState) -> Result<Option<NodeInfo>, ApiError> {
    s.check_serving()?;
    let metrics = s.raft.metrics().borrow_watched().clone();
    match metrics.current_leader {
        Some(leader) if leader == s.id => Ok(None),
        Some(leader) => Ok(Some(
            metrics
                .membership_config
                .membership()
                .get_node(&leader)
                .cloned()
                .ok_or_else(|| ApiError::not_sent(format!("leader {leader} is not in the membership")))?,
        )),
        None => Err(ApiError::no_leader()),
    }
}
