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
//! let node = raft_kv::Node::start(&config).await?;
//! println!("client API on http://{}", node.info().http);
//! # node.shutdown().await
//! # }
//! ```
//!
//! What is public: [`Node`] and [`config`] to run a node, [`client`] and [`grpc`] to talk to
//! one, [`logging`] for the binary's log lines, and [`tools`] (the bench, certificates, a cluster
//! of processes, the linearizability checker) for the subcommands, the tests and the scripts.
//!
//! [openraft]: https://docs.rs/openraft

#![forbid(unsafe_code)]

mod auth;
pub mod client;
pub mod config;
mod conn_limits;
mod fatal;
pub mod grpc;
mod head_guard;
mod json_errors;
mod limits;
pub mod logging;
mod membership;
mod network;
mod node;
mod raft_guard;
mod serve;
mod server;
mod tls;
pub mod tools;
mod types;

pub use fatal::FatalCause;
pub use fatal::StoreFailure;
pub use node::Node;
pub use types::NodeInfo;

/// What can stop a node or a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing, malformed or contradicts the data directory.
    #[error("configuration: {0}")]
    Config(String),
    /// A setting could not be put to use: what was being set up, and the error of the library
    /// that refused it (a TLS or certificate error, a client that could not be built, ...).
    #[error("configuration: {context}: {source}")]
    Setup {
        /// What was being set up.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file or socket operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The store could not be opened (boxed: a store error is large and rare, and this keeps
    /// every `Result<_, Error>` small).
    #[error("{0}: {1}")]
    Store(String, #[source] Box<raft_store::StoreError>),
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
    /// An [`Error::Setup`]: setting up `context` failed on `source` (a typed error, kept as the
    /// source; a message where the library gives only text).
    pub fn setup(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Setup {
            context: context.into(),
            source: source.into(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_error_keeps_its_text_and_its_typed_source() {
        let e = Error::setup("--tls-ca ca.pem", std::io::Error::other("no CA in it"));
        assert_eq!(e.to_string(), "configuration: --tls-ca ca.pem: no CA in it");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some(), "{source:?}");
    }

    #[test]
    fn a_raft_error_keeps_its_text_and_openraft_s_error() {
        let e = Error::raft(
            "starting raft",
            openraft::error::Fatal::<types::TypeConfig>::Panicked,
        );
        assert_eq!(e.to_string(), "raft: starting raft: panicked");
        let Error::Raft { source, .. } = &e else {
            panic!("{e:?} is not a raft error");
        };
        assert!(matches!(
            **source,
            RaftFailure::Fatal(openraft::error::Fatal::Panicked)
        ));
    }
}
