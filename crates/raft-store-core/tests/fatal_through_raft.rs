//! A store's error that stops an `openraft::Raft` comes back to the application typed, through
//! the stats it kept: openraft itself hands back only the message (`Fatal::StorageError` holds
//! an `AnyError`).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::Config;
use openraft::Raft;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RaftNetworkFactory;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::VoteOf;
use raft_store_core::EngineError;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::StoreError;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvResponse;
use raft_store_core::kv::KvStateMachine;
use raft_store_core::kv::SnapshotFile;
use raft_store_testkit::Fault;
use raft_store_testkit::FaultEngine;

openraft::declare_raft_types!(
    /// The key-value state machine's requests and responses.
    pub Kv: D = KvRequest, R = KvResponse
);

/// A cluster of one has nobody to call.
struct Alone;

fn nobody() -> Unreachable<Kv> {
    Unreachable::new(&io::Error::other("a single-node cluster has no peers"))
}

impl RaftNetworkV2<Kv> for Alone {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<Kv>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Kv>, RPCError<Kv>> {
        Err(RPCError::Unreachable(nobody()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<Kv>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Kv>, RPCError<Kv>> {
        Err(RPCError::Unreachable(nobody()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<Kv>,
        _snapshot: SnapshotOf<Kv, SnapshotFile>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Kv>, StreamingError<Kv>> {
        Err(StreamingError::Unreachable(nobody()))
    }
}

impl RaftNetworkFactory<Kv> for Alone {
    type Network = Alone;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
        Alone
    }
}

fn set(key: &str) -> KvRequest {
    KvRequest::Set {
        key: key.into(),
        value: b"v".to_vec(),
    }
}

/// The test, written once for both lines: the names it uses (`LogStore`, `KvStateMachine`,
/// `Raft`, `Config`, `BasicNode`, `Alone`, `set`) are each line's, from where it is expanded.
macro_rules! full_disk_stops_raft {
    ($kv:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_full_disk_that_stops_raft_is_found_typed_in_the_stats()
        -> Result<(), Box<dyn std::error::Error>> {
            let snapshots = tempfile::tempdir()?;
            let engine = Arc::new(FaultEngine::new(MemEngine::new()));
            let faults = engine.faults().clone();
            let log: LogStore<$kv, _> = LogStore::open(engine.clone())?;
            // What the application keeps before handing the store to openraft.
            let stats = log.stats();
            let sm: KvStateMachine<$kv, _> =
                KvStateMachine::open_with_stats(engine, snapshots.path(), stats.clone())?;
            let config = Arc::new(
                Config {
                    election_timeout_min: 150,
                    election_timeout_max: 300,
                    ..Default::default()
                }
                .validate()?,
            );
            let raft = Raft::new(1, config, Alone, log, sm).await?;
            raft.initialize(BTreeMap::from([(1u64, BasicNode::default())]))
                .await?;
            raft.wait(Some(Duration::from_secs(10)))
                .current_leader(1, "the single node leads")
                .await?;
            raft.client_write(set("before")).await?;
            assert!(stats.fatal_error().is_none(), "{:?}", stats.fatal());

            // The next engine write is the log append of the next entry.
            faults.fail_nth_write(1, Fault::NoSpace);
            let refused = tokio::time::timeout(Duration::from_secs(30), raft.client_write(set("after")))
                .await
                .map_err(|_| "a write on a full disk neither failed nor succeeded within 30 s")?;
            let raft_error = refused.expect_err("a write on a full disk succeeded");
            // openraft's error carries the message ...
            assert!(raft_error.to_string().contains("ENOSPC"), "{raft_error}");
            // ... the stats the error itself, typed, with the engine's error as its source.
            let Some(StoreError::WriteFailed { kind, source, .. }) = stats.fatal_error() else {
                panic!("the stats' fatal error is {:?}", stats.fatal_error());
            };
            assert_eq!(*kind, io::ErrorKind::StorageFull);
            assert!(matches!(**source, EngineError::Io { .. }), "{source}");
            assert!(
                stats
                    .fatal()
                    .is_some_and(|m| m.contains("durable log write failed")),
                "{:?}",
                stats.fatal()
            );
            raft.shutdown().await?;
            Ok(())
        }
    };
}

full_disk_stops_raft!(Kv);

/// The same on openraft 0.9: its `Raft` stops on the full disk, and the stats hold the error.
mod on_0_9 {
    use std::collections::BTreeMap;
    use std::io;
    use std::sync::Arc;
    use std::time::Duration;

    use openraft::BasicNode;
    use openraft::Config;
    use openraft::Raft;
    use openraft::error::InstallSnapshotError;
    use openraft::error::NetworkError;
    use openraft::error::RPCError;
    use openraft::error::RaftError;
    use openraft::network::RPCOption;
    use openraft::network::RaftNetwork;
    use openraft::network::RaftNetworkFactory;
    use openraft::raft::AppendEntriesRequest;
    use openraft::raft::AppendEntriesResponse;
    use openraft::raft::InstallSnapshotRequest;
    use openraft::raft::InstallSnapshotResponse;
    use openraft::raft::VoteRequest;
    use openraft::raft::VoteResponse;
    use openraft_09 as openraft;
    use raft_store_core::EngineError;
    use raft_store_core::MemEngine;
    use raft_store_core::StoreError;
    use raft_store_core::kv::KvRequest;
    use raft_store_core::kv::KvResponse;
    use raft_store_core::kv::SnapshotFile;
    use raft_store_core::openraft09::LogStore;
    use raft_store_core::openraft09::kv::KvStateMachine;
    use raft_store_testkit::Fault;
    use raft_store_testkit::FaultEngine;

    openraft::declare_raft_types!(
        /// The key-value state machine's types on openraft 0.9.
        pub Kv09: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
    );

    /// A cluster of one has nobody to call.
    struct Alone;

    fn nobody() -> NetworkError {
        NetworkError::new(&io::Error::other("a single-node cluster has no peers"))
    }

    impl RaftNetwork<Kv09> for Alone {
        async fn append_entries(
            &mut self,
            _rpc: AppendEntriesRequest<Kv09>,
            _option: RPCOption,
        ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            Err(RPCError::Network(nobody()))
        }

        async fn install_snapshot(
            &mut self,
            _rpc: InstallSnapshotRequest<Kv09>,
            _option: RPCOption,
        ) -> Result<
            InstallSnapshotResponse<u64>,
            RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
        > {
            Err(RPCError::Network(nobody()))
        }

        async fn vote(
            &mut self,
            _rpc: VoteRequest<u64>,
            _option: RPCOption,
        ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            Err(RPCError::Network(nobody()))
        }
    }

    impl RaftNetworkFactory<Kv09> for Alone {
        type Network = Alone;

        async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
            Alone
        }
    }

    fn set(key: &str) -> KvRequest {
        KvRequest::Set {
            key: key.into(),
            value: b"v".to_vec(),
        }
    }

    full_disk_stops_raft!(Kv09);
}
