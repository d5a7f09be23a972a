//! The tools beside a node, for the binary's subcommands, tests and scripts: the load test
//! (`raft-kv bench`), throwaway certificates (`raft-kv certs`), a cluster of real `raft-kv`
//! processes, the linearizability checker, and what a test needs to speak to the raft endpoint
//! or to open many connections.

pub mod bench;
pub mod certs;
pub mod cluster;
pub mod lincheck;

pub use crate::conn_limits::FileLimit;
pub use crate::conn_limits::check_file_limit;

/// The raft endpoint's wire format, for tests that send raft messages by hand.
pub mod wire {
    pub use crate::network::SnapshotHeader;
    pub use crate::network::encode;
    pub use crate::types::TypeConfig;
}
