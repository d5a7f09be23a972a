//! Membership changes on the leader, for `/join` and `/leave` (HTTP and gRPC alike).
//!
//! **Join.** A node is added only if it can serve: the leader first connects to its raft address
//! ([`PROBE_TIMEOUT`]); an address nobody listens on is refused with 409. The node is then added
//! as a learner and waited on until it has answered the leader and its log is within
//! [`MAX_LAG`] entries of the leader's, for at most [`CATCH_UP_TIMEOUT`]; a node that does not
//! get there is removed again and the join refused with 409 naming why. Only then is it made a
//! voter, so a node that never answers never counts towards a quorum. The same id with the
//! same addresses again is an idempotent success (a join retried after its answer was lost);
//! the same id with other addresses is refused with 409.
//!
//! **Leave.** Removing a voter is refused with 409 when the voters left would not hold a
//! majority of reachable nodes (reachable: the leader itself, and each node the leader has
//! heard from within [`REACHABLE_WITHIN`]), since the cluster could then commit nothing; `force`
//! removes it anyway. A learner is always removed: it counts towards no quorum.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::Instant as _;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;

use crate::raft_guard::Members;
use crate::server::ApiError;
use crate::server::NodeState;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// How long the leader waits to connect to a joining node's raft address.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How far (in entries) a learner's log may be behind the leader's when it is made a voter.
pub const MAX_LAG: u64 = 100;

/// How long a joining learner has to answer the leader and catch up to within [`MAX_LAG`].
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a follower waits for the leader's answer to a join or leave it forwarded: a join
/// may take the probe and the whole catch-up wait, and then a membership change, so the
/// usual forward time-out would answer "outcome unknown" for a join the leader still runs.
pub const MEMBERSHIP_CHANGE_TIMEOUT: Duration =
    Duration::from_secs(PROBE_TIMEOUT.as_secs() + CATCH_UP_TIMEOUT.as_secs() + 20);

/// A node the leader has heard from within this long counts as reachable (the heartbeat
/// interval is 200 ms: ten of them missed).
pub const REACHABLE_WITHIN: Duration = Duration::from_secs(2);

fn conflict(msg: impl Into<String>) -> ApiError {
    ApiError::conflict(msg)
}

fn membership_error(e: &RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(_)) => {
            conflict(format!("membership change refused: {e}"))
        }
        _ => ApiError::unknown(format!("membership change failed: {e}")),
    }
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

/// Refuse a new node `id` at an address another member listens on: raft would send that
/// member's messages to it (or, for the leader's own address, to the leader itself, which
/// stops openraft's core).
fn check_addresses_free(membership: &Members, id: u64, node: &NodeInfo) -> Result<(), ApiError> {
    for (other, at) in membership.nodes() {
        let clash = if at.raft == node.raft {
            Some(("raft", &node.raft))
        } else if at.http == node.http {
            Some(("HTTP", &node.http))
        } else if !node.grpc.is_empty() && at.grpc == node.grpc {
            Some(("gRPC", &node.grpc))
        } else {
            None
        };
        if let Some((what, address)) = clash {
            return Err(conflict(format!(
                "node {id} not added: its {what} address {address} is node {other}'s"
            )));
        }
    }
    Ok(())
}

/// Connect to `raft` (a joining node's raft address) within [`PROBE_TIMEOUT`].
async fn probe(id: u64, raft: &str) -> Result<(), ApiError> {
    if raft.is_empty() {
        return Err(ApiError::bad_request(format!("node {id}: an empty raft address")));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(raft)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(conflict(format!(
            "node {id} not added: its raft address {raft} cannot be reached: {e}"
        ))),
        Err(_) => Err(conflict(format!(
            "node {id} not added: its raft address {raft} did not accept a connection within {PROBE_TIMEOUT:?}"
        ))),
    }
}

/// Wait until learner `id` has answered the leader and is within [`MAX_LAG`] entries of the
/// leader's last log index; `Err` says how far it got.
async fn wait_caught_up(s: &NodeState, id: u64) -> Result<(), String> {
    let mut rx = s.raft.metrics();
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let m = rx.borrow_watched().clone();
        if m.current_leader != Some(s.id) {
            return Err("this node is no longer the leader".into());
        }
        let matched = m.replication.as_ref().and_then(|r| r.get(&id).copied()).flatten();
        let last = m.last_log_index.unwrap_or(0);
        match &matched {
            Some(log_id) if last.saturating_sub(log_id.index) <= MAX_LAG => return Ok(()),
            _ => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(match matched {
                Some(log_id) => format!(
                    "it reached log index {} of the leader's {last} (more than {MAX_LAG} behind) within {CATCH_UP_TIMEOUT:?}",
                    log_id.index
                ),
                None => format!("it did not answer the leader within {CATCH_UP_TIMEOUT:?}"),
            });
        }
        // Woken by any metrics change, or after a short while regardless.
        let _ = tokio::time::timeout(Duration::from_millis(200).min(deadline - now), rx.changed()).await;
    }
}

/// Add node `id` (this node must be the leader) as the module docs describe: probe, learner,
/// caught up, voter. Returns the log index of the last membership change.
pub async fn add_member(s: &NodeState, id: u64, node: NodeInfo) -> Result<u64, ApiError> {
    let m = s.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    match membership.get_node(&id) {
        Some(existing) if *existing != node => {
            return Err(conflict(format!(
                "node {id} is already a member at {existing}, not {node}; remove it first to change its addresses"
            )));
        }
        Some(_) if membership.voter_ids().any(|v| v == id) => {
            return Ok(m.membership_config.log_id().as_ref().map_or(0, |l| l.index));
        }
        // A learner already (an earlier join that did not finish): wait for it again below.
        Some(_) => {}
        None => {
            check_addresses_free(membership, id, &node)?;
            probe(id, &node.raft).await?;
            retry_in_progress(|| s.raft.add_learner(id, node.clone(), false)).await?;
            // Two joins of one id with other addresses may both have seen no node above;
            // openraft keeps the first one's addresses, so the second must not report success.
            let now = s.raft.metrics().borrow_watched().membership_config.clone();
            if let Some(stored) = now.membership().get_node(&id)
                && *stored != node
            {
                return Err(conflict(format!(
                    "node {id} joined meanwhile at {stored}, not {node}; remove it first to change its addresses"
                )));
            }
        }
    }
    if let Err(why) = wait_caught_up(s, id).await {
        let removed = retry_in_progress(|| {
            s.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
        })
        .await;
        let undone = match removed {
            Ok(_) => "removed again".to_string(),
            Err(e) => format!("removing it again failed: {}", e.message),
        };
        return Err(conflict(format!("node {id} not made a voter: {why}; {undone}")));
    }
    retry_in_progress(|| {
        s.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
    })
    .await
}

/// Remove node `id` from the membership (this node must be the leader), refusing as the module
/// docs describe unless `force`.
pub async fn remove_member(s: &NodeState, id: u64, force: bool) -> Result<u64, ApiError> {
    let m = s.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    if membership.get_node(&id).is_none() {
        return Err(ApiError::not_found(format!("node {id} is not a member")));
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let change = if voters.contains(&id) {
        let left: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != id).collect();
        if left.is_empty() {
            return Err(conflict(format!("node {id} is the last voter")));
        }
        let reachable: BTreeSet<u64> = left
            .iter()
            .copied()
            .filter(|v| {
                *v == s.id
                    || m.heartbeat
                        .as_ref()
                        .and_then(|h| h.get(v).copied().flatten())
                        .is_some_and(|at| at.elapsed() <= REACHABLE_WITHIN)
            })
            .collect();
        if !force && reachable.len() * 2 <= left.len() {
            return Err(conflict(format!(
                "removing node {id} would leave voters {left:?} of which only {reachable:?} are reachable (heard from within {REACHABLE_WITHIN:?}), not a majority; use force=true to remove it anyway"
            )));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    retry_in_progress(|| s.raft.change_membership(change.clone(), false)).await
}
