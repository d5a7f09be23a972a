//! Real `raft-kv` processes on loopback ports: replication, forwarding, leader failure,
//! restart, join and leave, the API's errors, on every backend.

use std::time::Duration;

use raft_kv::client::KvClient;
use raft_kv::tools::cluster::Cluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");

/// The backend of a test that wants one other than the default: lmdb in a build that has
/// it (CI's, with every feature), redb otherwise.
const LMDB_OR_REDB: &str = if cfg!(feature = "lmdb") { "lmdb" } else { "redb" };
const SECS: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// Every key of `expected` read from node `id`, stale (its own state machine).
async fn assert_node_has(cluster: &Cluster, id: u64, expected: &[(String, String)]) {
    let client = cluster.client_of(id);
    for (k, v) in expected {
        let got = client
            .get_text(k, true)
            .await
            .unwrap_or_else(|e| panic!("node {id}: reading {k}: {e}"));
        assert_eq!(got.as_deref(), Some(v.as_str()), "node {id}: key {k}");
    }
}

/// The whole life of a cluster on `backend`.
fn life_of_a_cluster(backend: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), backend, 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");
        let mut expected = Vec::new();
        // Writes through the leader and through a follower (forwarded); reads from every node.
        for (i, via) in [leader, follower, leader, follower].into_iter().enumerate() {
            let (k, v) = (format!("key-{i}"), format!("value-{i}-via-{via}"));
            cluster.client_of(via).put(&[(&k, &v)]).await.expect("put");
            expected.push((k, v));
        }
        let index = cluster
            .client_of(follower)
            .put(&[("multi-a", "1"), ("multi-b", "2")])
            .await
            .expect("put two keys in one entry");
        expected.push(("multi-a".into(), "1".into()));
        expected.push(("multi-b".into(), "2".into()));
        for id in 1..=3 {
            let linearizable = cluster
                .client_of(id)
                .get_text("key-3", false)
                .await
                .expect("linearizable read");
            assert_eq!(
                linearizable,
                expected[3].1.clone().into(),
                "linearizable read on node {id}"
            );
        }
        cluster
            .wait_applied(index, SECS)
            .await
            .expect("applied everywhere");
        for id in 1..=3 {
            assert_node_has(&cluster, id, &expected).await;
        }
        assert!(
            cluster
                .client_of(follower)
                .update("key-0", "updated")
                .await
                .expect("update")
        );
        expected[0].1 = "updated".into();
        assert!(
            !cluster
                .client_of(leader)
                .update("absent", "x")
                .await
                .expect("update absent")
        );
        assert!(cluster.client_of(follower).delete("key-1").await.expect("delete"));
        expected.remove(1);
        assert_eq!(
            cluster
                .client()
                .get_text("key-1", false)
                .await
                .expect("read deleted"),
            None
        );

        // SIGKILL the leader: the others elect a new one, which serves writes.
        cluster.kill(leader).await.expect("kill");
        let new_leader = cluster.leader(SECS).await.expect("new leader");
        assert_ne!(new_leader, leader);
        // Every survivor logs the change of leader it saw.
        for id in (1..=3).filter(|&i| i != leader) {
            let line = format!("leader={new_leader} ");
            let deadline = std::time::Instant::now() + SECS;
            while !cluster
                .log_text(id)
                .lines()
                .any(|l| l.contains("leader changed") && l.contains(&line))
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "node {id} logged no change to leader {new_leader}:\n{}",
                    cluster.log_tail(id)
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        let client = cluster.client();
        let index = client
            .put(&[("after-kill", "yes")])
            .await
            .expect("write after the kill");
        expected.push(("after-kill".into(), "yes".into()));
        // The killed node restarts from its data directory alone and catches up.
        cluster.restart(leader).await.expect("restart");
        cluster
            .wait_applied(index, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(leader)));
        assert_node_has(&cluster, leader, &expected).await;

        full_stop_and_restart(&mut cluster, backend, &mut expected).await;
        cluster.stop_all().await.expect("stop");
    });
}

/// A full stop and restart keeps everything.
async fn full_stop_and_restart(cluster: &mut Cluster, backend: &str, expected: &mut Vec<(String, String)>) {
    cluster.stop_all().await.expect("stop all");
    for id in 1..=3 {
        cluster.restart(id).await.expect("restart after stop");
    }
    cluster.leader(SECS).await.expect("leader after a full restart");
    let index = cluster
        .client()
        .put(&[("after-restart", "yes")])
        .await
        .expect("write after restart");
    expected.push(("after-restart".into(), "yes".into()));
    cluster
        .wait_applied(index, SECS)
        .await
        .expect("applied after restart");
    for id in 1..=3 {
        assert_node_has(cluster, id, expected).await;
    }
    let status = cluster.status(1).await.expect("status");
    assert_eq!(status["backend"], backend);
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3), "{status}");
    assert!(status["fatal"].is_null(), "{status}");
    // The store's own figures, counted as it wrote: every node synced, applied and wrote bytes.
    for id in 1..=3 {
        let url = format!("http://{}/metrics", cluster.node(id).http);
        let text = reqwest::get(&url)
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics");
        for name in [
            "raft_kv_store_sync_seconds_count",
            "raft_kv_store_group_jobs_count",
            "raft_kv_store_bytes_written_total",
            "raft_kv_store_entries_appended_total",
            "raft_kv_store_entries_applied_total",
        ] {
            let value = metric(&text, name);
            // A restarted node counts from its restart, which wrote at least one entry.
            assert!(value > 0.0, "node {id}: {name} = {value} after writes:\n{text}");
        }
        assert!(
            text.contains("raft_kv_store_sync_seconds_bucket{node=") && text.contains("le=\"+Inf\"}"),
            "node {id}: no sync latency buckets:\n{text}"
        );
        assert!(
            metric(&text, "raft_kv_fatal") < 0.5,
            "node {id} is fatal:\n{text}"
        );
    }
}

/// The sum of the samples of metric `name` (every label set) in a Prometheus exposition.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn life_of_a_cluster_redb() {
    life_of_a_cluster("redb");
}

#[cfg(feature = "lmdb")]
#[test]
fn life_of_a_cluster_lmdb() {
    life_of_a_cluster("lmdb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn life_of_a_cluster_rocksdb() {
    life_of_a_cluster("rocksdb");
}

#[cfg(feature = "sled")]
#[test]
fn life_of_a_cluster_sled() {
    life_of_a_cluster("sled");
}

/// A node joins a cluster whose log was purged behind a snapshot (so it is sent the snapshot,
/// streamed in chunks), serves the data, then leaves.
#[test]
fn join_through_a_snapshot_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &["--snapshot-after", "50"])
            .await
            .expect("start");
        let client = cluster.client();
        let big = "x".repeat(20_000);
        let mut expected = Vec::new();
        let mut index = 0;
        // 300 entries of 20 KB: several snapshots and purges, a snapshot of ~6 MB (six chunks).
        for i in 0..300 {
            let k = format!("k{i:03}");
            index = client.put(&[(&k, &format!("{i}{big}"))]).await.expect("put");
            expected.push((k, format!("{i}{big}")));
        }
        cluster.wait_applied(index, SECS).await.unwrap();
        let snapshot = cluster.status(1).await.unwrap()["snapshot"].as_u64().unwrap_or(0);
        assert!(snapshot > 200, "no recent snapshot on node 1: {snapshot}");
        let first = cluster.node(1).http.clone();
        cluster.add(4, Some(&first)).await.expect("start node 4");
        cluster
            .wait_for_voters(4, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(4)));
        cluster.wait_applied(index, SECS).await.unwrap();
        assert_node_has(&cluster, 4, &expected).await;
        let status4 = cluster.status(4).await.unwrap();
        assert!(
            status4["snapshot"].as_u64().unwrap_or(0) > 0,
            "node 4 holds no snapshot: {status4}"
        );
        // Node 4 leaves (asked through another node); the membership is back to three.
        cluster.client_of(2).leave(4).await.expect("leave");
        let status = cluster.status(cluster.leader(SECS).await.unwrap()).await.unwrap();
        let members: Vec<u64> = status["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["id"].as_u64())
            .collect();
        assert_eq!(members, vec![1, 2, 3], "{status}");
        cluster.stop(4).await.expect("stop node 4");
        client
            .put(&[("after-leave", "yes")])
            .await
            .expect("write after leave");
        cluster.stop_all().await.expect("stop");
    });
}

/// A node whose port was taken between being found free and being bound (by another test's
/// node; here by a listener this test holds) exits; the cluster starts it again on other
/// ports, from an empty data directory, and it joins.
#[test]
fn a_node_whose_port_is_taken_is_started_again_on_other_ports() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let taken = held.local_addr().expect("its address").to_string();
        cluster.give_next([taken.clone()]);
        let first = cluster.node(1).http.clone();
        cluster.add(2, Some(&first)).await.expect("node 2 on other ports");
        assert_ne!(cluster.node(2).http, taken, "node 2 serves on the taken port");
        let log = std::fs::read_to_string(dir.path().join("node-2.log")).expect("node 2's log");
        assert!(
            log.contains("Address already in use"),
            "node 2's first start did not meet the taken port: {log}"
        );
        cluster
            .wait_for_voters(2, SECS)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail(2)));
        cluster
            .client_of(2)
            .put(&[("after-retry", "yes")])
            .await
            .expect("a write through node 2");
        drop(held);
        cluster.stop_all().await.expect("stop");
    });
}

/// Errors are JSON with an "error" key and a fitting status; metrics are Prometheus text.
#[test]
fn api_errors_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let base = format!("http://{}", cluster.node(1).http);
        let http = reqwest::Client::new();
        let check = |status: u16, body: &Value, what: &str| {
            assert!(body["error"].is_string(), "{what}: no error key in {body}");
            status
        };
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (http.get(format!("{base}/key/missing")), 404, "missing key"),
            (
                http.put(format!("{base}/key/missing")).body(r#"{"value":"v"}"#),
                404,
                "update of a missing key",
            ),
            (http.post(format!("{base}/key")).body("not json"), 400, "bad JSON"),
            (
                http.post(format!("{base}/key")).body(r#"{"k": 1}"#),
                400,
                "a value that is not a string",
            ),
            (http.post(format!("{base}/key")).body("{}"), 400, "no keys"),
            (
                http.put(format!("{base}/key/k")).body(r#"{"val":"v"}"#),
                400,
                "update without value",
            ),
            (http.get(format!("{base}/nothing")), 404, "unknown route"),
            (
                http.post(format!("{base}/leave")).body(r#"{"id": 9}"#),
                404,
                "leave of a non-member",
            ),
        ];
        for (request, status, what) in cases {
            let response = request.send().await.expect(what);
            let got = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(check(got, &body, what), status, "{what}: {body}");
        }
        let client = KvClient::new(vec![cluster.node(1).http.clone()], Duration::from_secs(5), SECS);
        // Values are bytes: a value that is no UTF-8 travels as {"base64": ...} both ways.
        let response = http
            .post(format!("{base}/key"))
            .body(r#"{"bin": {"base64": "/wDD"}}"#)
            .send()
            .await
            .expect("post bytes");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = http
            .get(format!("{base}/key/bin"))
            .send()
            .await
            .expect("get bytes")
            .json()
            .await
            .expect("json");
        assert_eq!(body["value"]["base64"], "/wDD", "{body}");
        let bad = http
            .post(format!("{base}/key"))
            .body(r#"{"bin": {"base64": "not base64!"}}"#)
            .send()
            .await
            .expect("post bad base64");
        assert_eq!(bad.status().as_u16(), 400);
        // Three writes reached raft: the update of a missing key, the bytes, and this one.
        client.put(&[("k", "v")]).await.unwrap();
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for metric in [
            "raft_kv_term{node=\"1\"}",
            "raft_kv_is_leader{node=\"1\"} 1",
            "raft_kv_requests_total{node=\"1\",kind=\"write\"} 3",
        ] {
            assert!(text.contains(metric), "{metric} missing from\n{text}");
        }
        cluster.stop_all().await.expect("stop");
    });
}

/// Start the binary with `args` and `env`, return its address line and the process.
async fn spawn_node(args: &[&str], env: &[(&str, String)]) -> (String, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn raft-kv");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(SECS, tokio::io::BufReader::new(stdout).lines().next_line())
        .await
        .expect("address line in time")
        .expect("read stdout")
        .expect("an address line");
    (line, child)
}

/// The same settings come from `RAFT_KV_*` variables and from a TOML file; a flag wins over
/// both, and a restart needs only the data directory.
#[test]
fn settings_from_environment_file_and_data_dir() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let data = dir.path().join("env-node");
        let env = [
            ("RAFT_KV_ID", "5".to_string()),
            ("RAFT_KV_HTTP", "127.0.0.1:0".to_string()),
            ("RAFT_KV_RAFT", "127.0.0.1:0".to_string()),
            ("RAFT_KV_BACKEND", LMDB_OR_REDB.to_string()),
            ("RAFT_KV_DATA_DIR", data.display().to_string()),
        ];
        let (line, mut child) = spawn_node(&[], &env).await;
        assert!(
            line.contains("node 5 ") && line.contains(&format!("backend={LMDB_OR_REDB}")),
            "{line}"
        );
        child.kill().await.expect("kill");

        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            format!(
                "id = 6\nhttp = \"127.0.0.1:0\"\nraft = \"127.0.0.1:0\"\nbackend = \"sled\"\ndata_dir = {:?}\n",
                dir.path().join("file-node")
            ),
        )
        .expect("write config");
        let file_arg = file.display().to_string();
        // A flag overrides the file's backend; a variable stands for its flag, so RAFT_KV_ID
        // overrides the file's id too.
        let (line, mut child) = spawn_node(
            &["--config", &file_arg, "--backend", "redb"],
            &[("RAFT_KV_ID", "7".to_string())],
        )
        .await;
        assert!(line.contains("node 7 ") && line.contains("backend=redb"), "{line}");
        let http = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .expect("http address")
            .to_string();
        let client = KvClient::new(vec![http.clone()], Duration::from_secs(5), SECS);
        client.put(&[("from", "file")]).await.expect("put");
        child.kill().await.expect("kill");

        // Restart with the data directory alone: same id, backend and address, same data.
        let data_arg = dir.path().join("file-node").display().to_string();
        let (line, mut child) = spawn_node(&["--data-dir", &data_arg], &[]).await;
        assert!(line.contains("node 7 ") && line.contains(&format!("http={http} ")), "{line}");
        assert_eq!(client.get_text("from", false).await.expect("get").as_deref(), Some("file"));
        child.kill().await.expect("kill");
    });
}

/// A backend option set in the config file's `[store]` table reaches the engine: RocksDB writes
/// every option it runs with into its `OPTIONS-*` file, and the configured memtable size is
/// there.
#[cfg(feature = "rocksdb")]
#[test]
fn a_store_option_in_the_config_file_reaches_the_engine() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let data = dir.path().join("node");
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            format!(
                "id = 3\nhttp = \"127.0.0.1:0\"\nraft = \"127.0.0.1:0\"\nbackend = \"rocksdb\"\n\
                 data_dir = {:?}\n\n[store.rocksdb]\nwrite_buffer_size = 12345678\n",
                data.display().to_string()
            ),
        )
        .expect("write config");
        let file_arg = file.display().to_string();
        let (line, mut child) = spawn_node(&["--config", &file_arg], &[]).await;
        assert!(line.contains("backend=rocksdb"), "{line}");
        let store = data.join("store").join(raft_store::rocksdb::ROCKS_DIR);
        let options = std::fs::read_dir(&store)
            .expect("the store directory")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
            .map(|e| std::fs::read_to_string(e.path()).expect("read OPTIONS"))
            .expect("RocksDB wrote its OPTIONS file");
        child.kill().await.expect("kill");
        assert!(
            options.contains("write_buffer_size=12345678"),
            "the configured write_buffer_size is not what RocksDB runs with"
        );
    });
}

/// A misspelt store option in the config file stops the node at start, naming the option.
#[test]
fn a_misspelt_store_option_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        format!(
            "backend = \"redb\"\ndata_dir = {:?}\n\n[store.redb]\ncache_sise = 1\n",
            dir.path().join("node").display().to_string()
        ),
    )
    .expect("write config");
    let out = runtime().block_on(async {
        let child = tokio::process::Command::new(BIN)
            .args(["--config", &file.display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn raft-kv");
        // Bounded: a node that accepted the file would serve until killed (on drop).
        tokio::time::timeout(SECS, child.wait_with_output())
            .await
            .expect("a misspelt option must stop the node at start")
            .expect("wait for raft-kv")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misspelt option must stop the node");
    assert!(stderr.contains("cache_sise"), "{stderr}");
}
