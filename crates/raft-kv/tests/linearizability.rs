//! Concurrent clients write and read a few keys of a 3-node cluster while the leader is killed
//! (SIGKILL) and restarted several times; the history of what the clients saw must be
//! linearizable. A request that timed out or lost its connection after sending is recorded
//! with an unknown outcome (it may have taken effect, or not), never as a failure.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use raft_kv::client::ClientError;
use raft_kv::client::KvClient;
use raft_kv::tools::cluster::Cluster;
use raft_kv::tools::lincheck;
use raft_kv::tools::lincheck::Op;
use raft_kv::tools::lincheck::OpKind;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const CLIENTS: usize = 5;
const KEYS: [&str; 3] = ["x", "y", "z"];
const KILLS: usize = 3;

/// A small deterministic generator (no extra dependency): xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn linearizable_under_leader_kills(backend: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = raft_kv::tools::cluster::runtime().expect("runtime");
    runtime.block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), backend, 3, dir.path(), &[]).await.expect("start");
        let addresses = cluster.addresses();
        let start = Instant::now();
        let history = Arc::new(Mutex::new(Vec::<Op>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            // Each client starts at another node, so requests reach followers and get forwarded.
            let mut nodes = addresses.clone();
            let len = nodes.len();
            nodes.rotate_left(client % len);
            let kv = KvClient::new(nodes, Duration::from_secs(2), Duration::from_secs(5));
            let (history, stop) = (history.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1));
                let mut seq = 0u64;
                let now = || start.elapsed().as_micros() as u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = KEYS[(rng.next() % KEYS.len() as u64) as usize];
                    let write = rng.next().is_multiple_of(2);
                    let call = now();
                    let (kind, ret) = if write {
                        seq += 1;
                        let value = format!("c{client}-{seq}");
                        match kv.put(&[(key, &value)]).await {
                            Ok(_) => (Some(OpKind::Write(value)), Some(now())),
                            Err(ClientError::Unknown(_)) => (Some(OpKind::Write(value)), None),
                            // Refused or not accepted anywhere: it had no effect.
                            Err(_) => (None, None),
                        }
                    } else {
                        match kv.get(key, false).await {
                            Ok(value) => (
                                Some(OpKind::Read(value.map(|v| String::from_utf8_lossy(&v).into_owned()))),
                                Some(now()),
                            ),
                            // A read with an unknown outcome tells nothing.
                            Err(_) => (None, None),
                        }
                    };
                    if let Some(kind) = kind {
                        history.lock().expect("history").push(Op {
                            key: key.to_string(),
                            call,
                            ret,
                            kind,
                            client,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(rng.next() % 20)).await;
                }
            }));
        }
        // Kill the leader, let the others serve without it, bring it back; several times.
        for round in 0..KILLS {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let leader = cluster.leader(Duration::from_secs(30)).await.expect("leader");
            cluster.kill(leader).await.expect("kill");
            eprintln!("round {round}: killed leader {leader} at {:?}", start.elapsed());
            // Let the others elect a new leader and serve under it for a while, then bring the
            // old one back (it rejoins as a follower and catches up).
            let new_leader = cluster.leader(Duration::from_secs(30)).await.expect("a new leader");
            eprintln!("round {round}: node {new_leader} leads at {:?}", start.elapsed());
            tokio::time::sleep(Duration::from_secs(1)).await;
            cluster.restart(leader).await.expect("restart");
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            c.await.expect("client task");
        }
        cluster.stop_all().await.expect("stop");
        let history = history.lock().expect("history").clone();
        let completed = history.iter().filter(|o| o.ret.is_some()).count();
        let unknown = history.len() - completed;
        let writes = history.iter().filter(|o| matches!(o.kind, OpKind::Write(_))).count();
        eprintln!(
            "{backend}: {} operations ({writes} writes, {completed} completed, {unknown} unknown) over {:?}, {KILLS} leader kills",
            history.len(),
            start.elapsed()
        );
        assert!(completed >= 100, "only {completed} operations completed: the cluster hardly served");
        lincheck::check(&history, 2_000_000).unwrap_or_else(|e| panic!("not linearizable: {e}"));
    });
}

#[test]
fn linearizable_under_leader_kills_redb() {
    linearizable_under_leader_kills("redb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn linearizable_under_leader_kills_rocksdb() {
    linearizable_under_leader_kills("rocksdb");
}
