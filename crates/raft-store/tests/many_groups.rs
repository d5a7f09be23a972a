//! The worked example of docs/groups.md: several openraft `Raft` groups sharing one multi-group
//! store per node, through the facade on redb.
//!
//! Three nodes in one process, each with one store directory (`raft_store::open_groups`) that
//! holds four raft groups; every group has a replica on every node, so each store carries four
//! groups' logs and key-value state machines behind one flusher. A small router carries each
//! group's RPCs to the same group on the target node. Every group is written to, every node is
//! shut down and started again from its directory, and every group reads back on every node.

#![cfg(all(feature = "redb", feature = "openraft-0-10"))]

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use openraft::BasicNode;
use openraft::Config;
use openraft::Raft;
use openraft::error::NetworkError;
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
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::Group;
use raft_store::GroupStore;
use raft_store::LogStore;
use raft_store::StoreConfig;
use raft_store::kv::KvReader;
use raft_store::kv::KvRequest;
use raft_store::kv::KvStateMachine;
use raft_store::kv::SnapshotFile;

/// The type config of every group (in a module of its own: the macro's items have no docs).
mod types {
    use raft_store::kv::KvRequest;
    use raft_store::kv::KvResponse;

    openraft::declare_raft_types!(pub Kv: D = KvRequest, R = KvResponse);
}
use types::Kv;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Sm = KvStateMachine<Kv, Group<AnyEngine>>;
type Node = Raft<Kv, Sm>;

const NODES: [u64; 3] = [1, 2, 3];
/// Group ids as an application would number them: sparse, one at the top of the range.
const GROUPS: [u64; 4] = [7, 1_000, 1_001, u64::MAX];
const KEYS: u64 = 10;
const TIMEOUT: Duration = Duration::from_secs(20);

/// Every running replica, by node and group.
#[derive(Default)]
struct Router {
    rafts: Mutex<HashMap<(u64, u64), Node>>,
}

impl Router {
    fn get(&self, node: u64, group: u64) -> Option<Node> {
        self.rafts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(node, group))
            .cloned()
    }
}

/// One group's network on one node.
struct Net {
    router: Arc<Router>,
    group: u64,
}

/// One group's client to one target node.
struct Client {
    router: Arc<Router>,
    group: u64,
    target: u64,
}

impl Client {
    fn raft(&self) -> Result<Node, Unreachable<Kv>> {
        self.router.get(self.target, self.group).ok_or_else(|| {
            Unreachable::new(&std::io::Error::other(format!(
                "node {} has no replica of group {} running",
                self.target, self.group
            )))
        })
    }
}

impl RaftNetworkV2<Kv> for Client {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Kv>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Kv>, RPCError<Kv>> {
        let raft = self.raft().map_err(RPCError::Unreachable)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Kv>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Kv>, RPCError<Kv>> {
        let raft = self.raft().map_err(RPCError::Unreachable)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<Kv>,
        _snapshot: SnapshotOf<Kv, SnapshotFile>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Kv>, StreamingError<Kv>> {
        // Every replica is up from the start and nothing is purged: no snapshot is sent.
        Err(StreamingError::Unreachable(Unreachable::new(
            &std::io::Error::other("this example sends no snapshots"),
        )))
    }
}

impl RaftNetworkFactory<Kv> for Net {
    type Network = Client;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Client {
        Client {
            router: self.router.clone(),
            group: self.group,
            target,
        }
    }
}

/// One node: its store and a reader of each group's state machine.
struct NodeStores {
    store: GroupStore<AnyEngine>,
    readers: BTreeMap<u64, KvReader<Kv, Group<AnyEngine>>>,
}

fn raft_config() -> Result<Arc<Config>, BoxError> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        ..Default::default()
    };
    Ok(Arc::new(config.validate()?))
}

/// Start node `node` from its directory: open its store, make the groups on the first start,
/// and start a replica of every group on it.
async fn start_node(root: &Path, node: u64, router: &Arc<Router>) -> Result<NodeStores, BoxError> {
    let dir = root.join(format!("node-{node}"));
    let store = raft_store::open_groups(&StoreConfig::new(Backend::Redb, &dir))?;
    store.create_groups(GROUPS)?;
    let mut readers = BTreeMap::new();
    for group in GROUPS {
        let view = store.group(group)?;
        let log: LogStore<Kv, Group<AnyEngine>> = LogStore::open(view.clone())?;
        let sm: Sm = KvStateMachine::open(view, dir.join("snapshots").join(group.to_string()))?;
        readers.insert(group, sm.reader());
        let net = Net {
            router: router.clone(),
            group,
        };
        let raft = Raft::new(node, raft_config()?, net, log, sm).await?;
        router
            .rafts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((node, group), raft);
    }
    Ok(NodeStores { store, readers })
}

/// The leader of `group`, once there is one.
async fn leader(router: &Router, group: u64) -> Result<Node, BoxError> {
    let any = router.get(1, group).ok_or("no replica on node 1")?;
    let metrics = any
        .wait(Some(TIMEOUT))
        .metrics(
            |m| m.current_leader.is_some(),
            format!("group {group} has a leader"),
        )
        .await?;
    let id = metrics.current_leader.ok_or("no leader")?;
    router
        .get(id, group)
        .ok_or_else(|| format!("leader {id} of group {group} is not running").into())
}

/// Write `request` to `group` through its leader, waiting out an election (a node that has
/// just lost or not yet won one answers "forward to leader"); returns the entry's index.
async fn write(router: &Router, group: u64, request: KvRequest) -> Result<u64, BoxError> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let leader = leader(router, group).await?;
        match leader.client_write(request.clone()).await {
            Ok(written) => return Ok(written.log_id.index),
            Err(e) if e.forward_to_leader().is_some() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(format!("group {group}: {e}").into()),
        }
    }
}

fn value(group: u64, key: u64) -> Vec<u8> {
    format!("group {group} value {key}").into_bytes()
}

/// Shut every replica down and drop the stores, as a node process exiting would.
async fn stop_all(router: &Router, nodes: Vec<NodeStores>) -> Result<(), BoxError> {
    let rafts: Vec<Node> = router
        .rafts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain()
        .map(|(_, raft)| raft)
        .collect();
    for raft in rafts {
        raft.shutdown().await?;
    }
    drop(nodes);
    Ok(())
}

async fn example(root: &Path) -> Result<(), BoxError> {
    let router = Arc::new(Router::default());
    let mut nodes = Vec::new();
    for node in NODES {
        nodes.push(start_node(root, node, &router).await?);
    }
    let members: BTreeMap<u64, BasicNode> = NODES.iter().map(|&n| (n, BasicNode::default())).collect();
    for (i, group) in GROUPS.into_iter().enumerate() {
        // Each group is started by another node, so leaders spread over the nodes.
        let first = NODES[i % NODES.len()];
        router
            .get(first, group)
            .ok_or("no replica to initialize")?
            .initialize(members.clone())
            .await?;
    }
    let mut last_index = BTreeMap::new();
    for group in GROUPS {
        for key in 0..KEYS {
            let request = KvRequest::Set {
                key: format!("k{key}"),
                value: value(group, key),
            };
            last_index.insert(group, write(&router, group, request).await?);
        }
    }
    let syncs = nodes[0].store.stats().snapshot().sync_seconds.count;
    let jobs = nodes[0].store.stats().snapshot().group_jobs.sum;
    assert!(syncs > 0, "node 1's shared flusher synced nothing");
    eprintln!("node 1: {jobs} jobs of 4 groups in {syncs} syncs of its one flusher");
    stop_all(&router, nodes).await?;

    // Start again from the directories: every group of every node comes back.
    let mut nodes = Vec::new();
    for node in NODES {
        nodes.push(start_node(root, node, &router).await?);
    }
    for node in &nodes {
        assert_eq!(node.store.groups(), GROUPS.to_vec(), "the groups after a restart");
    }
    for group in GROUPS {
        let want = last_index[&group];
        for node in NODES {
            router
                .get(node, group)
                .ok_or("not running")?
                .wait(Some(TIMEOUT))
                .applied_index_at_least(Some(want), format!("group {group} applied on node {node}"))
                .await?;
        }
        for (node, stores) in NODES.iter().zip(&nodes) {
            for key in 0..KEYS {
                let got = stores.readers[&group].get(&format!("k{key}"))?;
                assert_eq!(
                    got,
                    Some(value(group, key)),
                    "node {node}, group {group}, key k{key} after a restart"
                );
            }
        }
    }
    stop_all(&router, nodes).await
}

#[test]
fn raft_groups_share_one_store_per_node_and_come_back_after_a_restart() {
    let root = tempfile::tempdir().expect("a temporary directory");
    raft_store_testkit::run(async {
        example(root.path()).await.unwrap_or_else(|e| panic!("{e}"));
    });
}
