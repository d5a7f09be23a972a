//! Checks on every message the raft port receives, made before the message reaches openraft:
//! who sent it ([`check_sender`]) and whether its terms and log indexes are in range
//! ([`check_vote`], [`check_append`], [`check_snapshot`]). A refused message is answered with a
//! JSON `{"error": ...}` naming what was wrong: 403 for a sender that is not a member, 400 for a
//! value out of range.
//!
//! **Who may send.** The sender of a vote or pre-vote is the candidate (`vote.leader_id`), of an
//! append-entries or a snapshot the leader (the leader id in its vote). A candidate must be a
//! voter of this node's current membership (the latest one in its log, committed or not), a
//! leader a voter or a learner of it.
//! One exception: a node whose membership is still empty (it started with `--join` and has not
//! received its first entries) accepts append-entries and snapshots from any sender, since it
//! cannot know the leader before the leader's first message tells it, but it grants no vote.
//! Without TLS a sender's id is only what the message claims, so this check keeps out a
//! confused or stale process (a node that was removed, one of another cluster), not a forger;
//! the transport's certificate check (done elsewhere) is what binds the id to the sender.
//!
//! A known limit: a node that missed the membership change that added the current leader (it
//! was down or cut off meanwhile) refuses that leader's messages, and stays behind until an
//! operator removes it and lets it join again.
//!
//! **Terms.** Honest nodes raise their term by one per election, so a term more than
//! [`MAX_TERM_JUMP`] past this node's own is not from an honest node that was merely away (it
//! would take a million elections in its absence); openraft would adopt it and, near
//! `u64::MAX`, overflow adding one to it. Such a term is refused, as is any term or log index at
//! or above [`MAX_VALUE`] (even on a node with an empty membership, whose own term says
//! nothing yet), which leaves openraft's `+ 1` arithmetic room to spare on every build.

use axum::http::Extensions;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::response::Response;
use openraft::Membership;
use openraft::entry::RaftEntry;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::VoteRequest;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use serde_json::json;

use crate::network::SnapshotHeader;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// A membership of raft-kv.
pub type Members = Membership<u64, NodeInfo>;

/// The furthest a received term may be past this node's current term.
pub const MAX_TERM_JUMP: u64 = 1_000_000;

/// Terms and log indexes at or above this are refused whatever this node's own term.
pub const MAX_VALUE: u64 = u64::MAX - MAX_TERM_JUMP;

/// Which raft message is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRpc {
    /// A vote request (sender: the candidate).
    Vote,
    /// A pre-vote request (sender: the would-be candidate).
    PreVote,
    /// Append-entries (sender: the leader).
    Append,
    /// A streamed snapshot (sender: the leader).
    Snapshot,
}

impl RaftRpc {
    fn name(self) -> &'static str {
        match self {
            RaftRpc::Vote => "vote",
            RaftRpc::PreVote => "pre-vote",
            RaftRpc::Append => "append-entries",
            RaftRpc::Snapshot => "snapshot",
        }
    }
}

/// A refused raft message: sent as `{"error": message}` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 for a sender that may not send, 400 for a value out of range.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // A refused raft message is a peer misbehaving or a stranger knocking: worth a line.
        tracing::warn!(target: "raft_kv::raft_guard", status = self.status.as_u16(), reason = %self.message, "raft message refused");
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

fn out_of_range(message: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

/// What the transport knows of the connection a raft message came on: the request's
/// extensions, where a TLS layer puts the verified peer identity.
#[derive(Debug, Clone, Default)]
pub struct PeerContext(pub Extensions);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerContext(parts.extensions.clone()))
    }
}

/// Whether `sender` may send `rpc` to a node whose current membership is `membership` (see the
/// module docs for the rule). The one place that decides who may talk to the raft port.
pub fn check_sender(
    membership: &Members,
    sender: u64,
    rpc: RaftRpc,
    peer: &PeerContext,
) -> Result<(), Refusal> {
    check_certificate(sender, rpc, peer)?;
    let empty = membership.nodes().next().is_none();
    // Only a voter campaigns; a learner (one still catching up after a join, say) that sent
    // votes could depose a working leader as often as it liked.
    let member = match rpc {
        RaftRpc::Vote | RaftRpc::PreVote => membership.voter_ids().any(|v| v == sender),
        RaftRpc::Append | RaftRpc::Snapshot => membership.get_node(&sender).is_some(),
    };
    let allowed = member || (empty && matches!(rpc, RaftRpc::Append | RaftRpc::Snapshot));
    if allowed {
        return Ok(());
    }
    let members: Vec<u64> = membership.nodes().map(|(id, _)| *id).collect();
    Err(Refusal {
        status: StatusCode::FORBIDDEN,
        message: if empty {
            format!(
                "{} from node {sender} refused: this node has no membership yet and grants no vote",
                rpc.name()
            )
        } else {
            format!(
                "{} from node {sender} refused: node {sender} is not a member (members: {members:?})",
                rpc.name()
            )
        },
    })
}

/// Over TLS, a message must come from the node it names as its sender: the node its peer's
/// certificate names ([`crate::tls::TlsSession`]; any [`crate::tls::PeerNode`] must match).
/// Without TLS there is no proof to check against (the node then binds only to loopback
/// unless `--insecure`).
fn check_certificate(sender: u64, rpc: RaftRpc, peer: &PeerContext) -> Result<(), Refusal> {
    let session = peer.0.get::<crate::tls::TlsSession>().copied();
    let node = peer
        .0
        .get::<crate::tls::PeerNode>()
        .copied()
        .or(session.and_then(|s| s.0));
    let forbidden = |message: String| Refusal {
        status: StatusCode::FORBIDDEN,
        message,
    };
    match node {
        Some(crate::tls::PeerNode(id)) if id == sender => Ok(()),
        Some(crate::tls::PeerNode(id)) => Err(forbidden(format!(
            "a {} request claiming to be from node {sender}, sent with the certificate of node {id}",
            rpc.name()
        ))),
        None if session.is_some() => Err(forbidden(format!(
            "a {} request from a certificate that names no node",
            rpc.name()
        ))),
        None => Ok(()),
    }
}

/// Whether `term` (what a message of `rpc` names as `what`) is in range for a node at
/// `current` (`None`: the node has no membership yet, so only the absolute bound applies).
pub fn check_term(term: u64, current: Option<u64>, what: &str) -> Result<(), Refusal> {
    if term >= MAX_VALUE {
        return Err(out_of_range(format!(
            "{what}: term {term} is at or above the bound {MAX_VALUE} (u64::MAX - {MAX_TERM_JUMP})"
        )));
    }
    if let Some(current) = current
        && term > current.saturating_add(MAX_TERM_JUMP)
    {
        return Err(out_of_range(format!(
            "{what}: term {term} is more than {MAX_TERM_JUMP} past this node's term {current}"
        )));
    }
    Ok(())
}

/// The leader a log id or a vote names, as openraft orders them: term, then node id.
fn leader_of(term: u64, node_id: u64) -> (u64, u64) {
    (term, node_id)
}

/// A log id is in range and names no leader past `bound`, the leader of the message's vote
/// (openraft asserts that of a snapshot, in every build, and honest nodes never send one past
/// their vote in any message).
fn check_log_id(
    log_id: Option<&LogIdOf<TypeConfig>>,
    bound: &VoteOf<TypeConfig>,
    what: &str,
) -> Result<(), Refusal> {
    let Some(log_id) = log_id else {
        return Ok(());
    };
    if log_id.index >= MAX_VALUE {
        return Err(out_of_range(format!(
            "{what}: log index {} is at or above the bound {MAX_VALUE}",
            log_id.index
        )));
    }
    let of_log = leader_of(log_id.leader_id.term, log_id.leader_id.node_id);
    let of_vote = leader_of(bound.leader_id.term, bound.leader_id.node_id);
    if of_log > of_vote {
        return Err(out_of_range(format!(
            "{what}: log id of leader {}-{} is past the sender's vote for leader {}-{}",
            of_log.0, of_log.1, of_vote.0, of_vote.1
        )));
    }
    Ok(())
}

/// The sender's id and term of a vote, and the checks on both.
fn check_vote_of(
    vote: &VoteOf<TypeConfig>,
    rpc: RaftRpc,
    membership: &Members,
    current_term: u64,
    peer: &PeerContext,
) -> Result<(), Refusal> {
    check_sender(membership, vote.leader_id.node_id, rpc, peer)?;
    let current = membership.nodes().next().map(|_| current_term);
    check_term(vote.leader_id.term, current, rpc.name())
}

/// Refuse a message that claims to come from this node itself (`own`): a member whose raft
/// address is this node's makes the leader send its own messages to itself, and openraft
/// asserts (and its core stops) on a leader that hears from itself.
pub fn check_not_self(sender: u64, own: u64, rpc: RaftRpc) -> Result<(), Refusal> {
    if sender == own {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "a {} message from node {sender}, which is this node: a member's raft address must not be this node's",
                rpc.name()
            ),
        });
    }
    Ok(())
}

/// Check a vote or pre-vote request.
pub fn check_vote(
    rpc: &VoteRequest<TypeConfig>,
    kind: RaftRpc,
    membership: &Members,
    current_term: u64,
    peer: &PeerContext,
) -> Result<(), Refusal> {
    check_vote_of(&rpc.vote, kind, membership, current_term, peer)?;
    check_log_id(rpc.last_log_id.as_ref(), &rpc.vote, "the candidate's last log id")
}

/// Check an append-entries request: its sender and term, and that its entries follow
/// `prev_log_id` one index at a time with terms that never go down nor pass the leader's.
pub fn check_append(
    rpc: &AppendEntriesRequest<TypeConfig>,
    membership: &Members,
    current_term: u64,
    peer: &PeerContext,
) -> Result<(), Refusal> {
    check_vote_of(&rpc.vote, RaftRpc::Append, membership, current_term, peer)?;
    check_log_id(rpc.prev_log_id.as_ref(), &rpc.vote, "prev_log_id")?;
    check_log_id(rpc.leader_commit.as_ref(), &rpc.vote, "leader_commit")?;
    let first = rpc.prev_log_id.as_ref().map_or(0, |p| p.index + 1);
    let mut last_term = rpc.prev_log_id.as_ref().map_or(0, |p| p.leader_id.term);
    // `first` is below MAX_VALUE and a message holds far fewer entries than the room above it.
    for (expected, entry) in (first..).zip(&rpc.entries) {
        let log_id = entry.log_id();
        check_log_id(Some(&log_id), &rpc.vote, "an entry")?;
        if log_id.index != expected {
            return Err(out_of_range(format!(
                "an entry at log index {} where index {expected} was due",
                log_id.index
            )));
        }
        if log_id.leader_id.term < last_term {
            return Err(out_of_range(format!(
                "an entry of term {} after one of term {last_term}",
                log_id.leader_id.term
            )));
        }
        last_term = log_id.leader_id.term;
    }
    Ok(())
}

/// Check the header of a streamed snapshot: its sender and term, its last log id, and that it
/// does not contradict this node's committed log (`committed`: this node's locally committed
/// log id as its metrics last showed it). A snapshot past the committed log id but not at a
/// greater index would put two committed entries at one index; openraft asserts against it
/// and stops, so it is refused here instead. The metrics may lag the log, so this is checked
/// against what the node had committed when the header arrived.
pub fn check_snapshot(
    header: &SnapshotHeader,
    membership: &Members,
    current_term: u64,
    committed: Option<&LogIdOf<TypeConfig>>,
    peer: &PeerContext,
) -> Result<(), Refusal> {
    check_vote_of(&header.vote, RaftRpc::Snapshot, membership, current_term, peer)?;
    let last = header.meta.last_log_id.as_ref();
    check_log_id(last, &header.vote, "the snapshot's last log id")?;
    if let (Some(last), Some(committed)) = (last, committed)
        && last > committed
        && last.index <= committed.index
    {
        return Err(out_of_range(format!(
            "the snapshot's last log id {last} contradicts this node's committed log id {committed}"
        )));
    }
    Ok(())
}

/// Whether a term a peer answered with is in range (the absolute bound only: an answer may
/// rightly carry a term past ours, but none that openraft's `+ 1` would overflow).
pub fn answer_term_in_range(vote: &VoteOf<TypeConfig>) -> bool {
    vote.leader_id.term < MAX_VALUE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_is_bounded_relative_and_absolute() {
        assert!(check_term(5, Some(4), "vote").is_ok());
        assert!(check_term(4 + MAX_TERM_JUMP, Some(4), "vote").is_ok());
        let far = check_term(5 + MAX_TERM_JUMP, Some(4), "vote").unwrap_err();
        assert_eq!(far.status, StatusCode::BAD_REQUEST);
        assert!(
            far.message.contains(&(5 + MAX_TERM_JUMP).to_string()),
            "{}",
            far.message
        );
        for term in [u64::MAX, u64::MAX - 1, MAX_VALUE] {
            assert!(check_term(term, None, "vote").is_err(), "{term}");
            assert!(check_term(term, Some(u64::MAX - 2), "vote").is_err(), "{term}");
        }
        assert!(check_term(MAX_VALUE - 1, None, "vote").is_ok());
    }

    #[test]
    fn only_members_send_and_an_empty_node_takes_appends_but_gives_no_vote() {
        let empty = Members::default();
        let peer = PeerContext::default();
        assert!(check_sender(&empty, 7, RaftRpc::Append, &peer).is_ok());
        assert!(check_sender(&empty, 7, RaftRpc::Snapshot, &peer).is_ok());
        assert_eq!(
            check_sender(&empty, 7, RaftRpc::Vote, &peer).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let members = Members::new_with_defaults(vec![std::collections::BTreeSet::from([1, 2])], [3]);
        for id in [1, 2] {
            assert!(check_sender(&members, id, RaftRpc::PreVote, &peer).is_ok());
            assert!(check_sender(&members, id, RaftRpc::Vote, &peer).is_ok());
        }
        for id in [1, 2, 3] {
            assert!(check_sender(&members, id, RaftRpc::Append, &peer).is_ok());
        }
        // Learner 3 may not campaign.
        for rpc in [RaftRpc::Vote, RaftRpc::PreVote] {
            let refused = check_sender(&members, 3, rpc, &peer).unwrap_err();
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
        }
        let refused = check_sender(&members, 9, RaftRpc::Append, &peer).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.message.contains("node 9"), "{}", refused.message);
    }

    #[test]
    fn a_message_from_this_node_itself_is_refused() {
        let refused = check_not_self(3, 3, RaftRpc::Append).expect_err("from itself");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.message.contains("node 3, which is this node"),
            "{}",
            refused.message
        );
        assert!(check_not_self(2, 3, RaftRpc::Append).is_ok());
    }
}
