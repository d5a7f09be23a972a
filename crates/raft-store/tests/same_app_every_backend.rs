//! The same application code on every compiled backend, chosen by a string: a real
//! single-node openraft `Raft` over `Store<C>` writes, applies, shuts down, and a reopened
//! store holds the log and the vote.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::Config;
use openraft::Raft;
use openraft::RaftLogReader;
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
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::VoteOf;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_testkit::MemStateMachine;
use raft_store_testkit::TestConfig;

/// A network for a cluster of one: there is never anybody to call.
struct Alone;

fn unreachable() -> RPCError<TestConfig> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("single-node cluster")))
}

impl RaftNetworkV2<TestConfig> for Alone {
    type SnapshotData = std::io::Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TestConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TestConfig>, RPCError<TestConfig>> {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TestConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TestConfig>, RPCError<TestConfig>> {
        Err(unreachable())
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<TestConfig>,
        _snapshot: SnapshotOf<TestConfig, Self::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TestConfig>, StreamingError<TestConfig>> {
        Err(StreamingError::Unreachable(Unreachable::new(
            &std::io::Error::other("single-node cluster"),
        )))
    }
}

impl RaftNetworkFactory<TestConfig> for Alone {
    type Network = Alone;

    async fn new_client(&mut self, _target: u64, _node: &openraft::BasicNode) -> Self::Network {
        Alone
    }
}

/// The application: the same code whatever the backend.
async fn run_app(name: &str, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let backend: Backend = name.parse()?;
    let config = StoreConfig::new(backend, dir);
    let store: raft_store::Store<TestConfig> = raft_store::open(&config)?;
    let raft_config = Arc::new(
        Config {
            election_timeout_min: 150,
            election_timeout_max: 300,
            ..Default::default()
        }
        .validate()?,
    );
    let raft = Raft::new(1, raft_config, Alone, store, MemStateMachine::default()).await?;
    raft.initialize(BTreeMap::from([(1u64, openraft::BasicNode::default())]))
        .await?;
    raft.wait(Some(Duration::from_secs(10)))
        .current_leader(1, "the single node leads")
        .await?;
    for i in 0..20 {
        raft.client_write(format!("{name}-{i}")).await?;
    }
    let metrics = raft
        .wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(21), "all applied")
        .await?;
    assert_eq!(metrics.current_leader, Some(1), "{name}: the single node leads");
    raft.shutdown().await?;
    drop(raft);

    let mut store: raft_store::Store<TestConfig> = raft_store::open(&config)?;
    let state = store.get_log_state().await?;
    assert_eq!(
        state.last_log_id.map(|l| l.index),
        Some(21),
        "{name}: log after reopen"
    );
    let entries = store.get_log_reader().await.try_get_log_entries(0..100).await?;
    let payloads: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.payload {
            openraft::EntryPayload::Normal(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        payloads,
        (0..20).map(|i| format!("{name}-{i}")).collect::<Vec<_>>(),
        "{name}: payloads"
    );
    let vote = store
        .get_log_reader()
        .await
        .read_vote()
        .await?
        .expect("a vote after an election");
    assert!(vote.is_committed(), "{name}: the saved vote is committed");
    Ok(())
}

#[test]
fn the_same_app_runs_on_every_compiled_backend() {
    let names: Vec<&str> = Backend::compiled()
        .iter()
        .map(|b| b.name())
        .filter(|n| *n != "mem")
        .collect();
    assert!(!names.is_empty(), "no persistent backend is compiled in");
    for name in names {
        let dir = tempfile::tempdir().unwrap();
        raft_store_testkit::run(async {
            run_app(name, dir.path())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        });
    }
}

#[test]
fn a_backend_that_is_not_compiled_in_names_its_feature() {
    for name in raft_store::ALL_BACKENDS {
        match name.parse::<Backend>() {
            Ok(b) => assert_eq!(b.name(), name),
            Err(e) => assert_eq!(
                e.to_string(),
                format!(
                    "backend `{name}` is not compiled in: enable the cargo feature `{name}` of raft-store"
                )
            ),
        }
    }
    let err = "postgres".parse::<Backend>().unwrap_err();
    assert!(err.to_string().contains("unknown backend `postgres`"), "{err}");
    assert!("REDB ".parse::<Backend>().is_ok() || cfg!(not(feature = "redb")));
}
