//! A single-node `Raft` on the facade is started, written to, shut down, dropped and started
//! again on the same directory, many times in a row, on every compiled backend and both openraft
//! lines, with the log alone (`open`) and with the log and the key-value state machine in one
//! engine (`open_with_kv`).
//!
//! openraft's `Raft::shutdown` returns once its core task is done, and the core drops the log
//! store: a store of the log alone is free at once (its log readers hold the engine weakly). But
//! openraft's state machine task, which owns the state machine, ends a moment after `shutdown`
//! returns, and the key-value state machine of `open_with_kv` holds the engine: the directory
//! stays locked until then, and an open in that moment failed (on redb, in round 1 on 0.9 and
//! round 18 on 0.10). `raft_store::wait_released` is what an application awaits before it opens
//! the same directory again in the same process; each round here checks the store is free once
//! it returns, and reopens it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use raft_store_core::StoreDir;

/// Rounds per backend, line and way of opening.
const ROUNDS: u64 = 100;
/// How long one round may wait for openraft to let go of the store.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole case (every backend) may take before it fails instead of hanging.
const CASE_TIMEOUT: Duration = Duration::from_secs(600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The persistent backends of this build (the in-memory one keeps no directory to reopen).
fn backends() -> Vec<Backend> {
    let backends: Vec<Backend> = Backend::compiled()
        .into_iter()
        .filter(|b| b.name() != "mem")
        .collect();
    assert!(!backends.is_empty(), "no persistent backend is compiled in");
    backends
}

fn set(round: u64) -> KvRequest {
    KvRequest::Set {
        key: "round".into(),
        value: round.to_be_bytes().to_vec(),
    }
}

fn round_of(previous: Option<&[u8]>) -> Option<u64> {
    previous.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

/// Run `case` for every persistent backend on a runtime of its own, bounded in time.
fn for_every_backend<F, Fut>(what: &str, case: F)
where
    F: Fn(Backend, std::path::PathBuf) -> Fut,
    Fut: Future<Output = Result<Stats, BoxError>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for backend in backends() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let started = Instant::now();
        let stats = runtime
            .block_on(async {
                tokio::time::timeout(CASE_TIMEOUT, case(backend, dir.path().join("store"))).await
            })
            .unwrap_or_else(|_| panic!("{what} on {backend}: not done after {CASE_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{what} on {backend}: {e}"));
        eprintln!(
            "{what} on {backend}: {ROUNDS} rounds in {:?}; the store was still held right after \
             the Raft was dropped in {} of them",
            started.elapsed(),
            stats.held_after_drop
        );
    }
}

/// What a case saw.
#[derive(Default)]
struct Stats {
    /// Rounds in which the store was still locked when the application had dropped its handles.
    held_after_drop: u64,
}

/// After `Raft::shutdown` and the drop of every handle the application holds: count whether
/// the store is still held, await its release, and check it is free then. `at_once`: the store
/// must already be free (the log store alone: openraft drops it before `shutdown` returns, and
/// its log readers do not keep the engine open).
async fn released(dir: &Path, stats: &mut Stats, round: u64, at_once: bool) -> Result<(), BoxError> {
    if StoreDir::is_held(dir) {
        if at_once {
            return Err(format!("round {round}: the store was still held after shutdown and drop").into());
        }
        stats.held_after_drop += 1;
    }
    raft_store::wait_released(dir, RELEASE_TIMEOUT).await?;
    if StoreDir::is_held(dir) {
        return Err(format!("round {round}: wait_released returned with the store still held").into());
    }
    Ok(())
}

/// The application's check of every round: the write of the round before is what the state
/// machine holds, so each reopen found the store as the round before left it.
fn check_previous(round: u64, previous: Option<&[u8]>) -> Result<(), BoxError> {
    let want = round.checked_sub(1);
    let found = round_of(previous);
    if found == want {
        Ok(())
    } else {
        Err(format!("round {round}: the state machine held round {found:?}, expected {want:?}").into())
    }
}

/// The two restart loops of one openraft line, written once: `$cfg` is the line's type config,
/// `$facade` the facade module of the line (`raft_store` or `raft_store::openraft09`). Expanded
/// inside each line's module, where `Raft`, `KvStateMachine`, `Alone`, `raft_config` and
/// `write_round` are that line's.
macro_rules! restart_loops {
    ($cfg:ident, $($facade:ident)::+) => {
        /// `open_with_kv`: the log and the state machine share one engine, and the application
        /// holds a reader of the state machine as well.
        pub async fn with_kv(backend: Backend, dir: std::path::PathBuf) -> Result<Stats, BoxError> {
            let config = StoreConfig::new(backend, &dir);
            let mut stats = Stats::default();
            for round in 0..ROUNDS {
                let (log, state_machine) = $($facade)::+::open_with_kv::<$cfg>(&config)
                    .map_err(|e| format!("round {round}: reopening: {e}"))?;
                let reader = state_machine.reader();
                let raft = Raft::new(1, raft_config()?, Alone, log, state_machine).await?;
                let previous = write_round(&raft, round).await?;
                check_previous(round, previous.as_deref())?;
                let read = reader.get("round")?;
                if round_of(read.as_deref()) != Some(round) {
                    return Err(format!("round {round}: the reader read {read:?}").into());
                }
                raft.shutdown().await?;
                drop((raft, reader));
                released(&dir, &mut stats, round, false).await?;
            }
            Ok(stats)
        }

        /// `open`: the log alone in the store; the state machine is in memory and is rebuilt
        /// from the log at every start.
        pub async fn log_only(backend: Backend, dir: std::path::PathBuf) -> Result<Stats, BoxError> {
            let config = StoreConfig::new(backend, &dir);
            let snapshots = tempfile::tempdir()?;
            let mut stats = Stats::default();
            for round in 0..ROUNDS {
                let log: $($facade)::+::Store<$cfg> = $($facade)::+::open(&config)
                    .map_err(|e| format!("round {round}: reopening: {e}"))?;
                let state_machine =
                    KvStateMachine::<$cfg, _>::open(raft_store::MemEngine::new(), snapshots.path())?;
                let raft = Raft::new(1, raft_config()?, Alone, log, state_machine).await?;
                let previous = write_round(&raft, round).await?;
                check_previous(round, previous.as_deref())?;
                raft.shutdown().await?;
                drop(raft);
                released(&dir, &mut stats, round, true).await?;
            }
            Ok(stats)
        }
    };
}

#[cfg(feature = "openraft-0-10")]
mod line10 {
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
    use raft_store::kv::KvStateMachine;
    use raft_store::kv::SnapshotFile;

    use super::*;

    openraft::declare_raft_types!(pub Kv10: D = KvRequest, R = KvResponse);

    /// The network of a cluster of one: nobody to call.
    struct Alone;

    fn nobody() -> Unreachable<Kv10> {
        Unreachable::new(&std::io::Error::other("a single-node cluster"))
    }

    impl RaftNetworkV2<Kv10> for Alone {
        type SnapshotData = SnapshotFile;

        async fn append_entries(
            &mut self,
            _rpc: AppendEntriesRequest<Kv10>,
            _option: RPCOption,
        ) -> Result<AppendEntriesResponse<Kv10>, RPCError<Kv10>> {
            Err(RPCError::Unreachable(nobody()))
        }

        async fn vote(
            &mut self,
            _rpc: VoteRequest<Kv10>,
            _option: RPCOption,
        ) -> Result<VoteResponse<Kv10>, RPCError<Kv10>> {
            Err(RPCError::Unreachable(nobody()))
        }

        async fn full_snapshot(
            &mut self,
            _vote: VoteOf<Kv10>,
            _snapshot: SnapshotOf<Kv10, SnapshotFile>,
            _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
            _option: RPCOption,
        ) -> Result<SnapshotResponse<Kv10>, StreamingError<Kv10>> {
            Err(StreamingError::Unreachable(nobody()))
        }
    }

    impl RaftNetworkFactory<Kv10> for Alone {
        type Network = Alone;

        async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
            Alone
        }
    }

    fn raft_config() -> Result<Arc<Config>, BoxError> {
        // Short timeouts: a restarted single node elects itself after one election timeout.
        let config = Config {
            heartbeat_interval: 10,
            election_timeout_min: 20,
            election_timeout_max: 40,
            ..Default::default()
        };
        Ok(Arc::new(config.validate()?))
    }

    /// Start node 1, initializing it in round 0, and write this round's value; returns what the
    /// key held before.
    async fn write_round<SM>(raft: &Raft<Kv10, SM>, round: u64) -> Result<Option<Vec<u8>>, BoxError>
    where
        SM: openraft::storage::RaftStateMachine<Kv10>,
    {
        if round == 0 {
            raft.initialize(BTreeMap::from([(1u64, BasicNode::default())]))
                .await?;
        }
        raft.wait(Some(RELEASE_TIMEOUT))
            .current_leader(1, "the single node leads")
            .await?;
        match raft.client_write(set(round)).await?.data {
            KvResponse::Set { previous } => Ok(previous),
            other => Err(format!("round {round}: a set answered {other:?}").into()),
        }
    }

    restart_loops!(Kv10, raft_store);
}

#[cfg(feature = "openraft-0-9")]
mod line09 {
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
    use raft_store::openraft09::kv::KvStateMachine;
    use raft_store::openraft09::kv::SnapshotFile;
    use raft_store::openraft09::openraft;

    use super::*;

    openraft::declare_raft_types!(pub Kv09: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile);

    /// The network of a cluster of one: nobody to call.
    struct Alone;

    fn nobody() -> NetworkError {
        NetworkError::new(&std::io::Error::other("a single-node cluster"))
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

    fn raft_config() -> Result<Arc<Config>, BoxError> {
        // Short timeouts: a restarted single node elects itself after one election timeout.
        let config = Config {
            heartbeat_interval: 10,
            election_timeout_min: 20,
            election_timeout_max: 40,
            ..Default::default()
        };
        Ok(Arc::new(config.validate()?))
    }

    async fn write_round(raft: &Raft<Kv09>, round: u64) -> Result<Option<Vec<u8>>, BoxError> {
        if round == 0 {
            raft.initialize(BTreeMap::from([(1u64, BasicNode::default())]))
                .await?;
        }
        raft.wait(Some(RELEASE_TIMEOUT))
            .current_leader(1, "the single node leads")
            .await?;
        match raft.client_write(set(round)).await?.data {
            KvResponse::Set { previous } => Ok(previous),
            other => Err(format!("round {round}: a set answered {other:?}").into()),
        }
    }

    restart_loops!(Kv09, raft_store::openraft09);
}

#[cfg(feature = "openraft-0-10")]
#[test]
fn shutdown_then_reopen_openraft_0_10_with_kv() {
    for_every_backend("0.10 open_with_kv", line10::with_kv);
}

#[cfg(feature = "openraft-0-10")]
#[test]
fn shutdown_then_reopen_openraft_0_10_log_only() {
    for_every_backend("0.10 open", line10::log_only);
}

#[cfg(feature = "openraft-0-9")]
#[test]
fn shutdown_then_reopen_openraft_0_9_with_kv() {
    for_every_backend("0.9 open_with_kv", line09::with_kv);
}

#[cfg(feature = "openraft-0-9")]
#[test]
fn shutdown_then_reopen_openraft_0_9_log_only() {
    for_every_backend("0.9 open", line09::log_only);
}
