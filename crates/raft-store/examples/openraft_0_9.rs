//! openraft 0.9 on raft-store: a single-node `openraft::Raft` whose log and key-value state
//! machine live in one redb store, opened through the facade. It initializes the cluster,
//! writes, shuts down, starts again on the same directory, reads back what it wrote and writes
//! once more.
//!
//! ```text
//! cargo run -p raft-store --example openraft_0_9 --features openraft-0-9 [-- DIR]
//! ```
//!
//! `Cargo.toml` of such an application: `openraft = { version = "0.9", features = ["serde"] }`
//! and `raft-store = { version = "0.1", default-features = false, features = ["redb",
//! "openraft-0-9"] }`.

use std::collections::BTreeMap;
use std::path::Path;
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
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store::openraft09::kv::KvRequest;
use raft_store::openraft09::kv::KvResponse;
use raft_store::openraft09::kv::SnapshotFile;

openraft::declare_raft_types!(
    /// The application's type config: the key-value state machine's requests and responses,
    /// and its snapshot files as 0.9's snapshot data.
    pub Config09: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
);

/// A network for a cluster of one: there is never anybody to call.
pub struct Alone;

fn nobody() -> NetworkError {
    NetworkError::new(&std::io::Error::other("a single-node cluster has no peers"))
}

impl RaftNetwork<Config09> for Alone {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<Config09>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(RPCError::Network(nobody()))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<Config09>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>>
    {
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

impl RaftNetworkFactory<Config09> for Alone {
    type Network = Alone;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Alone {
        Alone
    }
}

/// Start node 1 on the store in `dir` (created on first use) and wait until it leads.
type Reader = raft_store::openraft09::kv::KvReader<Config09, Arc<raft_store::AnyEngine>>;

type Started = (Raft<Config09>, Reader);

async fn start(dir: &Path, initialize: bool) -> Result<Started, Box<dyn std::error::Error>> {
    let config = StoreConfig::new(Backend::Redb, dir);
    let (log, state_machine) = raft_store::openraft09::open_with_kv::<Config09>(&config)?;
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
