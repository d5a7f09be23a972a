//! The two HTTP servers of a node: the raft endpoint other nodes send RPCs to, and the client
//! API (JSON in and out; every error a JSON body `{"error": ...}` with a fitting status).
//!
//! A key is addressed as `/key/{key}` with the key percent-encoded (any byte may be; `/`, `?`,
//! `#`, `%` and spaces must be), or as `/key?key={key}` (form-encoded), which also reaches the
//! keys `.` and `..` that URL normalization removes from a path. A follower forwards the
//! request target exactly as it arrived, so the leader decodes the same key.
//!
//! With an auth file, every client API request needs a bearer token: `GET` the read role,
//! every other method the write role (see [`crate::auth`]); a follower forwards the caller's
//! token. With TLS, a raft message must come from the node its certificate names, and `/join`
//! from the joining node's own certificate (see [`crate::tls`]).

mod api;
mod error;
mod forward;
mod members;
mod ops;
mod raft_endpoint;
mod status;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use std::time::Instant;

use raft_store::StoreStats;

pub use self::api::Caller;
pub use self::api::JsonValue;
pub use self::api::api_router;
pub use self::error::Api;
pub use self::error::ApiError;
pub use self::error::ErrorKind;
pub use self::error::RETRY_METADATA;
pub use self::forward::FORWARD_TIMEOUT;
pub use self::forward::Forward;
pub use self::forward::HOPS;
pub use self::forward::hops_of;
pub use self::forward::route;
pub use self::forward::to_leader;
pub use self::members::JoinRequest;
pub use self::members::check_joiner;
pub use self::ops::Proposed;
pub use self::ops::leader_elsewhere;
pub use self::ops::linearize;
pub use self::ops::propose;
pub use self::ops::read_local;
pub use self::raft_endpoint::raft_router;
pub use self::status::Health;
pub use self::status::node_status;
use crate::FatalCause;
use crate::auth::Auth;
use crate::limits::Limits;
use crate::tls::ClientTls;
use crate::types::NodeInfo;
use crate::types::Raft;
use crate::types::Reader;

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
    /// The tokens of the client API; `None`: the API is open.
    pub auth: Option<Auth>,
    /// The client side of TLS (forwarding to the leader); `None`: TLS is off.
    pub tls: Option<ClientTls>,
    /// The store's counters, for `/metrics` (and its fatal error, if one happened).
    pub stats: Arc<StoreStats>,
    /// Why the node stopped serving for good, once a fatal error happened (see
    /// [`crate::node::watch`]); the node exits shortly after.
    pub fatal: OnceLock<FatalCause>,
    /// When this node last took an append-entries or a snapshot from a current leader: how
    /// [`Health`] tells a follower in contact from one cut off.
    pub leader_seen: Mutex<Option<Instant>>,
}

impl NodeState {
    /// The URL scheme of this cluster's HTTP traffic.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// How long ago this node last took a message from a current leader, if it ever did.
    pub fn leader_contact(&self) -> Option<Duration> {
        self.leader_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|at| at.elapsed())
    }

    /// Note a message from a current leader (an append-entries or snapshot raft accepted).
    pub fn saw_leader(&self) {
        *self
            .leader_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// The fatal error that stopped the node, if one did.
    pub fn fatal(&self) -> Option<&FatalCause> {
        self.fatal.get()
    }

    /// Refuse a request once the node stopped on a fatal error: its store refuses writes and
    /// its state machine may be behind for good, so another node must answer.
    pub fn check_serving(&self) -> Result<(), ApiError> {
        match self.fatal() {
            Some(cause) => Err(ApiError::not_sent(format!(
                "node {} stopped on a fatal store error and is exiting ({cause}); send the request to another node",
                self.id
            ))),
            None => Ok(()),
        }
    }
}

/// Counters exported by `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) stale_reads: AtomicU64,
    pub(crate) forwarded: AtomicU64,
}

type Shared = Arc<NodeState>;
