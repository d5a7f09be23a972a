//! Sizes end to end, on 3-node clusters of real processes: a request at the limit commits on
//! every node, one over it is refused before it is proposed (HTTP 413, gRPC
//! `RESOURCE_EXHAUSTED`, naming the limit) and the cluster goes on; batches larger than a raft
//! message replicate; a follower paused while 50 MB are written catches up.

use std::time::Duration;

use raft_kv::config::DEFAULT_MAX_REQUEST_BYTES;
use raft_kv::grpc::proto;
use raft_kv::grpc::proto::key_value_client::KeyValueClient;
use raft_kv::tools::cluster::Cluster;
use raft_store::Codec as _;
use raft_store::kv::KvRequest;
use serde_json::Value;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");

/// The backend of a test that wants one other than the default: rocksdb in a build that has
/// it (CI's, with every feature), redb otherwise.
const ROCKSDB_OR_REDB: &str = if cfg!(feature = "rocksdb") {
    "rocksdb"
} else {
    "redb"
};
const SECS: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// The encoded size of `request`, as the limit measures it.
fn encoded(request: &KvRequest) -> usize {
    let mut out = Vec::new();
    raft_store::Bincode::encode_into(request, &mut out).expect("encode");
    out.len()
}

/// The value length that makes `request(len)` encode to exactly `size` bytes.
fn value_len_for(size: usize, request: impl Fn(usize) -> KvRequest) -> usize {
    let mut len = size - 64;
    while encoded(&request(len)) < size {
        len += 1;
    }
    assert_eq!(
        encoded(&request(len)),
        size,
        "no value length encodes to {size} bytes"
    );
    len
}

/// `key` read from node `id` (stale: its own state machine).
async fn value_on(cluster: &Cluster, id: u64, key: &str) -> Option<Vec<u8>> {
    cluster
        .client_of(id)
        .get(key, true)
        .await
        .unwrap_or_else(|e| panic!("node {id}: reading {key}: {e}"))
}

/// Every node holds `key` = `value`, once it applied `index`.
async fn everywhere(cluster: &Cluster, index: u64, key: &str, value: &[u8]) {
    cluster
        .wait_applied(index, SECS)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for id in 1..=3 {
        let got = value_on(cluster, id, key).await;
        assert!(got.as_deref() == Some(value), "node {id}: {key} differs");
    }
}

/// POST `body` to `/key` on `addr`: the status and the JSON answer.
async fn post(http: &reqwest::Client, addr: &str, body: String) -> (u16, Value) {
    let response = http
        .post(format!("http://{addr}/key"))
        .header("content-type", "application/json")
        .body(body)
        .timeout(SECS)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "HTTP {status}: not JSON ({e}): {:.300}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

/// The last log lines of every node, for failure messages.
fn logs(cluster: &Cluster) -> String {
    (1..=3)
        .map(|id| format!("node {id}:\n{}", cluster.log_tail(id)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// At most 300 characters of `value`, for failure messages (answers may hold a 1 MiB value).
fn short(value: &Value) -> String {
    let text = value.to_string();
    text.chars().take(300).collect()
}

/// The write the cluster must still take after a refusal: it commits on every node.
async fn still_serves(cluster: &Cluster, key: &str) {
    let index = cluster
        .client()
        .put(&[(key, "after")])
        .await
        .expect("a later write");
    everywhere(cluster, index, key, b"after").await;
}

#[test]
fn http_write_at_the_limit_commits_and_one_over_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");
        let http = reqwest::Client::new();
        let set = |len: usize| KvRequest::SetMany {
            pairs: vec![("big".to_string(), vec![b'x'; len])],
        };
        let at = value_len_for(DEFAULT_MAX_REQUEST_BYTES, set);
        let value = "x".repeat(at);
        let (status, answer) = post(
            &http,
            &cluster.node(follower).http,
            format!(r#"{{"big": "{value}"}}"#),
        )
        .await;
        assert_eq!(status, 200, "a write at the limit: {}", short(&answer));
        let index = answer["index"].as_u64().expect("an index");
        everywhere(&cluster, index, "big", value.as_bytes()).await;

        // One byte over, through a follower and the leader; and the tester's 2 MiB body.
        let over = format!(r#"{{"big": "{value}x"}}"#);
        let two_mib = format!(r#"{{"huge": "{}"}}"#, "y".repeat(2 << 20));
        for (via, body) in [(follower, &over), (leader, &over), (follower, &two_mib)] {
            let (status, answer) = post(&http, &cluster.node(via).http, body.clone()).await;
            assert_eq!(status, 413, "node {via}: {}", short(&answer));
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("limit of {DEFAULT_MAX_REQUEST_BYTES} bytes")),
                "{message}"
            );
        }
        // A body the API does not even read: still 413 naming the request limit.
        let body = format!(r#"{{"huge": "{}"}}"#, "z".repeat(8 << 20));
        let (status, answer) = post(&http, &cluster.node(follower).http, body).await;
        assert_eq!(status, 413, "{}", short(&answer));
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("1048576"),
            "{}",
            short(&answer)
        );
        assert_eq!(value_on(&cluster, leader, "huge").await, None);
        still_serves(&cluster, "after-http").await;
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn grpc_write_at_the_limit_commits_and_one_over_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), ROCKSDB_OR_REDB, 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");
        let mut client = KeyValueClient::connect(format!("http://{}", cluster.node(follower).grpc))
            .await
            .expect("connect");
        let set = |len: usize| KvRequest::Set {
            key: "big".to_string(),
            value: vec![7; len],
        };
        let at = value_len_for(DEFAULT_MAX_REQUEST_BYTES, set);
        let save = |len: usize| proto::SaveEntriesRequest {
            id: "big".into(),
            secrets: vec![7; len],
        };
        let r = client
            .save_entries(save(at))
            .await
            .expect("a save at the limit")
            .into_inner();
        everywhere(&cluster, r.index, "big", &vec![7; at]).await;
        // One byte over, and the tester's 3 MiB message (over tonic's bound here too).
        for len in [at + 1, 3 << 20] {
            let err = client
                .save_entries(save(len))
                .await
                .expect_err("a save over the limit");
            assert_eq!(err.code(), Code::ResourceExhausted, "{len}: {err}");
            assert!(err.message().contains("limit"), "{len}: {err}");
            if len == at + 1 {
                assert!(err.message().contains("limit of 1048576 bytes"), "{err}");
            }
        }
        still_serves(&cluster, "after-grpc").await;
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn sixteen_concurrent_writes_of_300_kb_commit() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        // A generous bound per request: 4.8 MB through three debug-built processes on a loaded
        // machine takes seconds, and the test is about whether they commit, not how fast.
        let client = raft_kv::client::KvClient::new(cluster.addresses(), LONG, LONG);
        let values: Vec<(String, Vec<u8>)> = (0..16u8)
            .map(|i| (format!("c{i:02}"), vec![b'a' + i; 300_000]))
            .collect();
        let client = &client;
        // Each write is a plain set, so one that a leader change discarded (a debug build on
        // two loaded cores can miss its heartbeats while it encodes 4.8 MB) is sent again, up
        // to three times; what must hold is that every one commits on every node.
        let writes = values.iter().map(|(k, v)| async move {
            let mut tries = 0;
            loop {
                tries += 1;
                match client.put_bytes(&[(k.as_str(), v.as_slice())]).await {
                    Err(e) if tries < 3 => eprintln!("{k}: try {tries} failed, sent again: {e}"),
                    done => return done,
                }
            }
        });
        let indexes = futures::future::join_all(writes).await;
        let mut last = 0;
        for (result, (k, _)) in indexes.into_iter().zip(&values) {
            last = last.max(result.unwrap_or_else(|e| panic!("{k}: {e}\n{}", logs(&cluster))));
        }
        cluster
            .wait_applied(last, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for id in 1..=3 {
            for (k, v) in &values {
                assert!(
                    value_on(&cluster, id, k).await.as_ref() == Some(v),
                    "node {id}: {k}"
                );
            }
        }
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn a_follower_paused_while_50_mb_are_written_catches_up() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let paused = (1..=3).find(|&i| i != leader).expect("a follower");
        cluster.pause(paused).expect("pause");
        // 200 values of 250 KB, each its own pattern, four writers at a time.
        let client = raft_kv::client::KvClient::new(vec![cluster.node(leader).http.clone()], SECS, SECS);
        let value = |i: usize| -> Vec<u8> { (0..250_000).map(|j| b'a' + ((i + j) % 26) as u8).collect() };
        let mut last = 0;
        for round in 0..50 {
            let batch: Vec<(String, Vec<u8>)> = (0..4)
                .map(|w| round * 4 + w)
                .map(|i| (format!("p{i:03}"), value(i)))
                .collect();
            let client = &client;
            let writes = batch
                .iter()
                .map(|(k, v)| async move { client.put_bytes(&[(k.as_str(), v.as_slice())]).await });
            for result in futures::future::join_all(writes).await {
                last = last.max(result.expect("a write while a follower is paused"));
            }
        }
        cluster.resume(paused).expect("resume");
        cluster
            .wait_applied(last, LONG)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(paused)));
        for i in 0..200 {
            let key = format!("p{i:03}");
            let expected = value(i);
            for id in 1..=3 {
                assert!(
                    value_on(&cluster, id, &key).await.as_ref() == Some(&expected),
                    "node {id}: {key} differs"
                );
            }
        }
        cluster.stop_all().await.expect("stop");
    });
}
