//! raft-kv: a replicated key-value server on [openraft] with its log and state machine in
//! [`raft_store`], on any of its backends. Start three `raft-kv` processes and talk to any of
//! them over HTTP; this library is what the binary, the tests and the load command share.
//!
//! ```no_run
//! # async fn demo() -> Result<(), raft_kv::Error> {
//! use raft_kv::config::NodeArgs;
//!
//! // A single node that bootstraps a new cluster in ./data (flags, RAFT_KV_* variables and a
//! // TOML file resolve to the same settings).
//! let config = NodeArgs { data_dir: Some("data".into()), ..NodeArgs::default() }.resolve()?;
//! let node = raft_kv::node::Node::start(&config).await?;
//! println!("client API on http://{}", node.info().http);
//! # node.shutdown().await
//! # }
//! ```
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
pub mod certs;
pub mod client;
pub mod cluster;
pub mod config;
pub mod conn_limits;
mod fatal;
pub mod grpc;
pub mod head_guard;
pub mod json_errors;
pub mod limits;
pub mod lincheck;
pub mod logging;
pub mod membership;
pub mod network;
pub mod node;
pub mod raft_guard;
pub mod serve;
pub mod server;
pub mod tls;
pub mod types;

pub use fatal::FatalCause;
pub use fatal::StoreFailure;

/// What can stop a node or a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing, malformed or contradicts the data directory.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The store could not be opened.
    #[error("{0}: {1}")]
    Store(String, #[source] raft_store::StoreError),
    /// Raft could not start, bootstrap or stop.
    #[error("raft: {context}: {source}")]
    Raft {
        /// What was being done.
        context: String,
        /// openraft's error (boxed: it is large, and rare).
        #[source]
        source: Box<RaftFailure>,
    },
    /// The bench's cluster of `raft-kv` processes failed to start, elect a leader or stop; the
    /// message is the cluster tool's.
    #[error("raft: {0}")]
    Cluster(String),
}

impl Error {
    /// An [`Error::Raft`]: `source` happened while doing `context`.
    pub fn raft(context: impl Into<String>, source: impl Into<RaftFailure>) -> Self {
        Error::Raft {
            context: context.into(),
            source: Box::new(source.into()),
        }
    }
}

/// openraft's error behind an [`Error::Raft`], typed.
#[derive(Debug, thiserror::Error)]
pub enum RaftFailure {
    /// Raft could not start, or stopped.
    #[error(transparent)]
    Fatal(#[from] openraft::error::Fatal<types::TypeConfig>),
    /// Bootstrapping a new cluster failed.
    #[error(transparent)]
    Initialize(
        #[from]
        openraft::error::RaftError<types::TypeConfig, openraft::error::InitializeError<types::TypeConfig>>,
    ),
    /// Raft's core task could not be joined when shutting down.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}
