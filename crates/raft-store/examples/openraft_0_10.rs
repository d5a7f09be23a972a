//! openraft 0.10 on raft-store: a single-node `openraft::Raft` whose log and key-value state
//! machine live in one redb store, opened through the facade. It initializes the cluster,
//! writes, shuts down, starts again on the same directory, reads back what it wrote and writes
//! once more.
//!
//! ```text
//! cargo run -p raft-store --example openraft_0_10 [-- DIR]
//! ```
//!
//! `Cargo.toml` of such an application: `openraft = { version = "=0.10.0-alpha.37", features =
//! ["serde"] }` and `raft-store = "0.1"` (features `redb` and `openraft-0-10` are its defaults).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
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
use raft_store::Backend;
use raft_store::KvStore;
use raft_store::StoreConfig;
use raft_store::kv::KvRequest;
use raft_store::kv::KvResponse;
use raft_store::kv::SnapshotFile;

openraft::declare_raft_types!(
    /// The application's type config: the key-value state machine's requests and responses.
    pub Config10: D = KvRequest, R = KvResponse
);

/// A network for a cluster of one: there is never anybody to call.
pub struct Alone;

fn nobody() -> Unreachable<Config10> {
    Unreachable::new(&std::io::Error::other("a single-node cluster has no peers"))
}

impl RaftNetworkV2<Config10> for Alone {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<Config10>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Config10>, RPCError<Config10>> {
        Err(RPCError::Unreachable(nobody()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<Config10>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Config10>, RPCError<Config10>> {
        Err(RPCError::Unreachable(nobody()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<Config10>,
        _snapshot: SnapshotOf<Config10, SnapshotFile>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Config10>, StreamingError<Config10>> {
        Err(StreamingError::Unreachable(nobody()))
    }
}

impl RaftNetworkFactory<Config10> for Alone {
    type Network = Alone;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
        Alone
    }
}

/// Start node 1 on the store in `dir` (created on first use) and wait until it leads.
type Node = Raft<Config10, KvStore<Config10>>;
type Started = (
    Node,
    raft_store::kv::KvReader<Config10, Arc<raft_store::AnyEngine>>,
);

async fn start(dir: &Path, initialize: bool) -> Result<Started, Box<dyn std::error::Error>> {
    let config = StoreConfig::new(Backend::Redb, dir);
    let (log, state_machine) = raft_store::open_with_kv::<Config10>(&config)?;
    let reader = state_machine.reader();
    let raft_config = Arc::new(
        Config {
            election_timeout_min: 150,
            election_timeout_max: 300,
            ..Default::default()
        }
        .validate()?,
    );
    let raft = Raft::new(1, raft_config, Alone, log, state_machine).await?;
    if initialize {
        raft.initialize(BTreeMap::from([(1u64, BasicNode::default())]))
            .await?;
    }
    raft.wait(Some(Duration::from_secs(10)))
        .current_leader(1, "the single node leads")
        .await?;
    Ok((raft, reader))
}

/// How long a restart waits for openraft to let go of the store.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

fn set(key: &str, value: &str) -> KvRequest {
    KvRequest::Set {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

/// Initialize, write `a` and `b`, shut down; start again, read both back, write `c`, read
/// every key back. Returns the keys and values read at the end.
pub async fn run(dir: &Path) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let (raft, reader) = start(dir, true).await?;
    for (key, value) in [("a", "1"), ("b", "2")] {
        let written = raft.client_write(set(key, value)).await?;
        assert_eq!(
            written.data,
            KvResponse::Set { previous: None },
            "first write of {key}"
        );
    }
    raft.shutdown().await?;
    drop((raft, reader));
    // openraft's state machine task owns the state machine (and with it the store) and ends a
    // moment after `shutdown` returns; the directory can be opened again once it has. A new
    // process need not wait.
    raft_store::wait_released(dir, RELEASE_TIMEOUT).await?;

    // A new process would do the same: open the same directory, start without initializing.
    let (raft, reader) = start(dir, false).await?;
    let after_restart = raft.client_write(set("a", "10")).await?;
    assert_eq!(
        after_restart.data,
        KvResponse::Set {
            previous: Some(b"1".to_vec())
        },
        "the write before the restart is what the state machine holds after it"
    );
    raft.client_write(set("c", "3")).await?;
    let mut read = Vec::new();
    reader.scan(&mut |key, value| {
        read.push((key.to_string(), String::from_utf8_lossy(value).into_owned()));
        std::ops::ControlFlow::Continue(())
    })?;
    raft.shutdown().await?;
    drop((raft, reader));
    // openraft's state machine task owns the state machine (and with it the store) and ends a
    // moment after `shutdown` returns; the directory can be opened again once it has. A new
    // process need not wait.
    raft_store::wait_released(dir, RELEASE_TIMEOUT).await?;
    Ok(read)
}

#[allow(dead_code)] // run as an example; the test calls `run`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let read = runtime.block_on(run(&dir))?;
    for (key, value) in read {
        println!("{key} = {value}");
    }
    Ok(())
}
