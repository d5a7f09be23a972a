//! The openraft type configuration of raft-kv and the node record kept in the membership.

use std::fmt;

use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use serde::Deserialize;
use serde::Serialize;

/// Where a member listens: its raft address (node to node traffic) and its HTTP address (the
/// client API, also where followers forward client requests). Stored in the membership, so
/// every node knows every other node's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` of the raft endpoint.
    pub raft: String,
    /// `host:port` of the client API.
    pub http: String,
    /// `host:port` of the gRPC API; empty when the node serves none.
    pub grpc: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} http={} grpc={}", self.raft, self.http, self.grpc)
    }
}

openraft::declare_raft_types!(
    /// The raft types of raft-kv: the state machine's requests and responses, `u64` node ids.
    pub TypeConfig:
        D = KvRequest,
        R = KvResponse,
        NodeId = u64,
        Node = NodeInfo,
);

/// The codec of a node's store. bincode, not the library's default MessagePack: raft-kv's
/// entries are its own `KvRequest`s, which bincode writes compactly and whose size limits are
/// reckoned in bincode bytes, and every data directory an earlier release wrote is bincode. The
/// store compares every entry with its decoding (`EntryCheck::equal`), so no entry is
/// acknowledged that would read back different.
pub type StoreCodec = raft_store::Bincode;
/// The state machine of a node: the durable key-value store on the node's engine.
pub type StateMachine = raft_store::KvStore<TypeConfig, StoreCodec>;
/// A read handle of the state machine.
pub type Reader = raft_store::kv::KvReader<TypeConfig, std::sync::Arc<raft_store::AnyEngine>, StoreCodec>;
/// The raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig, StateMachine>;
