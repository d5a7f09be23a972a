//! Keys with URL syntax in them (`/ ? # %`, spaces, `+`, dots, unicode) read and write the same
//! key through a follower, over HTTP, gRPC and the CLI; random keys do too (a property test); an
//! empty key and an overlong one are refused.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest::test_runner::TestCaseError;
use proptest::test_runner::TestRunner;
use raft_kv::client::KvClient;
use raft_kv::client::key_target;
use raft_kv::config::DEFAULT_MAX_KEY_BYTES;
use raft_kv::grpc::proto;
use raft_kv::grpc::proto::key_value_client::KeyValueClient;
use raft_kv::tools::cluster::Cluster;
use serde_json::Value;
use serde_json::json;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const CLI: &str = env!("CARGO_BIN_EXE_raft-kv-cli");
const SECS: Duration = Duration::from_secs(30);

/// Keys that are URL syntax somewhere, with the keys a wrong decoding would reach instead.
const KEYS: &[&str] = &[
    "q?x",
    "q%3Fx",
    "h#x",
    "h%23x",
    "p%x",
    "%",
    "a/b",
    "/lead",
    "trail/",
    "a//b",
    "a/../b",
    ".",
    "..",
    "with space",
    "plus+sign",
    "amp&x=1",
    "ünï/cødé 日本",
    "tab\tnew\nline",
];
/// What the keys above would turn into if a layer cut them at `?` or `#` or decoded them twice.
const NEIGHBOURS: &[&str] = &["q", "h", "p", "a", "b", "q?x2", "plusplus"];

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

async fn json(response: reqwest::Response) -> (u16, Value) {
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

/// One node's HTTP API addressed by key, as a client would send it.
struct Http<'a> {
    http: &'a reqwest::Client,
    addr: String,
}

impl Http<'_> {
    async fn set(&self, key: &str, value: &str) -> (u16, Value) {
        let body = json!({ key: value }).to_string();
        json(
            self.http
                .post(format!("http://{}/key", self.addr))
                .body(body)
                .send()
                .await
                .expect("post"),
        )
        .await
    }

    async fn get(&self, target: &str, stale: bool) -> (u16, Value) {
        let sep = if target.contains('?') { '&' } else { '?' };
        let url = format!("http://{}{target}{sep}stale={stale}", self.addr);
        json(self.http.get(url).send().await.expect("get")).await
    }

    async fn update(&self, target: &str, value: &str) -> (u16, Value) {
        let url = format!("http://{}{target}", self.addr);
        let body = json!({ "value": value }).to_string();
        json(self.http.put(url).body(body).send().await.expect("put")).await
    }

    async fn delete(&self, target: &str) -> (u16, Value) {
        let url = format!("http://{}{target}", self.addr);
        json(self.http.delete(url).send().await.expect("delete")).await
    }
}

/// The value of `key` on node `id` as text, read from its own state machine.
async fn stale_text(cluster: &Cluster, id: u64, key: &str) -> Option<String> {
    cluster
        .client_of(id)
        .get_text(key, true)
        .await
        .unwrap_or_else(|e| panic!("node {id}: reading {key:?}: {e}"))
}

/// Every neighbour key still holds what it was set to, on the leader.
async fn neighbours_untouched(cluster: &Cluster, leader: u64) {
    let client = cluster.client_of(leader);
    for key in NEIGHBOURS {
        let got = client.get_text(key, false).await.expect("read a neighbour");
        assert_eq!(
            got.as_deref(),
            Some(format!("neighbour {key}").as_str()),
            "neighbour {key:?} changed"
        );
    }
}

/// GET `target` on `addr` over a plain TCP connection: the status and the JSON answer.
fn raw_get(addr: &str, target: &str) -> (u16, Value) {
    use std::io::Read as _;
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(SECS)).expect("timeout");
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(CLI).args(args).output().expect("run raft-kv-cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn keys_with_url_syntax_through_a_follower_over_http_grpc_and_the_cli() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rt = runtime();
    let mut cluster = rt
        .block_on(Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[]))
        .expect("start");
    let leader = rt.block_on(cluster.leader(SECS)).expect("leader");
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    rt.block_on(async {
        over_http(&cluster, follower).await;
        neighbours_untouched(&cluster, leader).await;
        over_grpc(&cluster, leader, follower).await;
        neighbours_untouched(&cluster, leader).await;
    });
    over_the_cli(&cluster, follower);
    rt.block_on(async {
        neighbours_untouched(&cluster, leader).await;
        cluster.stop_all().await.expect("stop");
    });
}

/// HTTP: set through the body, then read, update, read and delete through the URL, by path and
/// by query, all through the follower (which forwards to the leader); every node ends the same.
async fn over_http(cluster: &Cluster, follower: u64) {
    let http = reqwest::Client::new();
    let on_follower = Http {
        http: &http,
        addr: cluster.node(follower).http.clone(),
    };
    for key in NEIGHBOURS {
        let (status, answer) = on_follower.set(key, &format!("neighbour {key}")).await;
        assert_eq!(status, 200, "{answer}");
    }
    for key in KEYS {
        let path = key_target(key);
        let query = format!("/key?key={}", form_encode(key));
        for target in [path, query] {
            let (status, answer) = on_follower.set(key, "v1").await;
            assert_eq!(status, 200, "set {key:?}: {answer}");
            let (status, answer) = on_follower.get(&target, false).await;
            assert_eq!(
                (status, &answer["value"]),
                (200, &json!("v1")),
                "get {target}: {answer}"
            );
            assert_eq!(answer["key"], json!(key), "get {target}");
            let (status, answer) = on_follower.update(&target, "v2").await;
            assert_eq!(
                (status, &answer["previous"]),
                (200, &json!("v1")),
                "update {target}: {answer}"
            );
            let index = answer["index"].as_u64().expect("an index");
            cluster.wait_applied(index, SECS).await.expect("applied");
            for id in 1..=3 {
                assert_eq!(
                    stale_text(cluster, id, key).await.as_deref(),
                    Some("v2"),
                    "node {id}: {target}"
                );
            }
            let (status, answer) = on_follower.delete(&target).await;
            assert_eq!(
                (status, &answer["existed"]),
                (200, &json!(true)),
                "delete {target}: {answer}"
            );
            let (status, answer) = on_follower.get(&target, false).await;
            assert_eq!(status, 404, "get after delete {target}: {answer}");
        }
    }
}

/// gRPC: save, update, read and delete through the follower; the leader reads the same key.
async fn over_grpc(cluster: &Cluster, leader: u64, follower: u64) {
    let mut grpc = KeyValueClient::connect(format!("http://{}", cluster.node(follower).grpc))
        .await
        .expect("connect");
    for key in KEYS {
        let id = (*key).to_string();
        grpc.save_entries(proto::SaveEntriesRequest {
            id: id.clone(),
            secrets: b"g1".to_vec(),
        })
        .await
        .unwrap_or_else(|e| panic!("save {key:?}: {e}"));
        grpc.update_entries(proto::UpdateEntriesRequest {
            id: id.clone(),
            secrets: b"g2".to_vec(),
        })
        .await
        .unwrap_or_else(|e| panic!("update {key:?}: {e}"));
        let got = grpc
            .get_entries(proto::GetEntriesRequest {
                id: id.clone(),
                stale: false,
            })
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e}"))
            .into_inner();
        assert_eq!((got.id.as_str(), got.data.as_slice()), (*key, &b"g2"[..]));
        let on_leader = cluster
            .client_of(leader)
            .get_text(key, false)
            .await
            .expect("read on the leader");
        assert_eq!(on_leader.as_deref(), Some("g2"), "{key:?} on the leader");
        let deleted = grpc
            .delete_entries(proto::DeleteEntriesRequest { id })
            .await
            .unwrap_or_else(|e| panic!("delete {key:?}: {e}"))
            .into_inner();
        assert!(deleted.existed, "{key:?}");
    }
}

/// The CLI over both transports, through the follower only.
fn over_the_cli(cluster: &Cluster, follower: u64) {
    for transport in ["http", "grpc"] {
        let node = if transport == "grpc" {
            cluster.node(follower).grpc.clone()
        } else {
            cluster.node(follower).http.clone()
        };
        let mut base = vec!["--nodes", node.as_str()];
        if transport == "grpc" {
            base.push("--grpc");
        }
        let run = |rest: &[&str]| {
            let mut args = base.clone();
            args.extend_from_slice(rest);
            cli(&args)
        };
        for key in KEYS.iter().copied().chain(["cliq?x"]) {
            let (code, out, err) = run(&["put", key, "c1"]);
            assert_eq!(code, 0, "{transport} put {key:?}: {out} {err}");
            let (code, out, err) = run(&["update", key, "c2"]);
            assert_eq!(
                (code, out.as_str()),
                (0, "ok"),
                "{transport} update {key:?}: {err}"
            );
            let (code, out, err) = run(&["get", key]);
            assert_eq!((code, out.as_str()), (0, "c2"), "{transport} get {key:?}: {err}");
            let (code, out, err) = run(&["delete", key]);
            assert_eq!(
                (code, out.as_str()),
                (0, "ok existed=true"),
                "{transport} delete {key:?}: {err}"
            );
            let (code, _, err) = run(&["get", key]);
            assert_eq!(code, 1, "{transport} get {key:?} after delete: {err}");
        }
    }
}

/// `key` form-encoded for a query (`+` and `&` must be escaped there).
fn form_encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A key of any characters, with the ones that are URL syntax drawn more often.
fn any_key() -> impl Strategy<Value = String> {
    let syntax = prop::sample::select(vec![
        '/', '?', '#', '%', ' ', '+', '.', '&', '=', ';', '\\', '"', '\u{0}',
    ]);
    let char = prop_oneof![3 => syntax, 2 => any::<char>(), 2 => prop::char::range('a', 'c')];
    prop::collection::vec(char, 1..12).prop_map(|chars| chars.into_iter().collect())
}

/// The keys a broken layer might reach instead of `key`: cut at `?` or `#`, decoded once.
fn neighbours_of(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(cut) = key.find(['?', '#']) {
        out.push(key[..cut].to_string());
    }
    if let Ok(decoded) = percent_encoding::percent_decode_str(key).decode_utf8() {
        out.push(decoded.into_owned());
    }
    out.retain(|k| !k.is_empty() && k != key);
    out
}

#[test]
fn random_keys_through_a_follower_read_back_on_the_leader() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rt = runtime();
    let mut cluster = rt
        .block_on(Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[]))
        .expect("start");
    let leader = rt.block_on(cluster.leader(SECS)).expect("leader");
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let via = KvClient::new(vec![cluster.node(follower).http.clone()], SECS, SECS);
    let on_leader = KvClient::new(vec![cluster.node(leader).http.clone()], SECS, SECS);
    // Every key the cases wrote, with its value (None: deleted), checked again at the end.
    let model = std::cell::RefCell::new(BTreeMap::<String, Option<Vec<u8>>>::new());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        any_key(),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    );
    let result = runner.run(&strategy, |(key, value, delete)| {
        rt.block_on(async {
            let fail = |what: String| TestCaseError::fail(format!("{key:?}: {what}"));
            let neighbours = neighbours_of(&key);
            for n in &neighbours {
                let sentinel = format!("neighbour of {key:?}").into_bytes();
                on_leader
                    .put_bytes(&[(n, &sentinel)])
                    .await
                    .map_err(|e| fail(format!("{n:?}: {e}")))?;
                model.borrow_mut().insert(n.clone(), Some(sentinel));
            }
            via.put_bytes(&[(&key, b"first")])
                .await
                .map_err(|e| fail(format!("put: {e}")))?;
            // The update and the read address the key in the URL, through the follower.
            let text = String::from_utf8_lossy(&value).into_owned();
            if !via
                .update(&key, &text)
                .await
                .map_err(|e| fail(format!("update: {e}")))?
            {
                return Err(fail("update found no key".into()));
            }
            let read = via
                .get(&key, false)
                .await
                .map_err(|e| fail(format!("get: {e}")))?;
            prop_assert_eq!(
                read.as_deref(),
                Some(text.as_bytes()),
                "read through the follower"
            );
            let mut expected = Some(text.into_bytes());
            if delete {
                let existed = via.delete(&key).await.map_err(|e| fail(format!("delete: {e}")))?;
                prop_assert!(existed, "delete found no key");
                expected = None;
            }
            let got = on_leader
                .get(&key, false)
                .await
                .map_err(|e| fail(format!("leader get: {e}")))?;
            prop_assert_eq!(&got, &expected, "read on the leader");
            model.borrow_mut().insert(key.clone(), expected);
            for n in &neighbours {
                let got = on_leader
                    .get(n, false)
                    .await
                    .map_err(|e| fail(format!("{n:?}: {e}")))?;
                let sentinel = model.borrow().get(n).cloned().flatten();
                prop_assert_eq!(got, sentinel, "neighbour {:?} changed", n);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}\n{}", cluster.log_tail(leader));
    }
    rt.block_on(async {
        let model = model.borrow().clone();
        for (key, expected) in &model {
            let got = on_leader.get(key, false).await.expect("a final read");
            assert_eq!(&got, expected, "{key:?} changed after its case");
        }
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn empty_and_overlong_keys_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let http = reqwest::Client::new();
        let base = format!("http://{}", cluster.node(1).http);
        let long = "k".repeat(DEFAULT_MAX_KEY_BYTES + 1);
        let at_limit = "k".repeat(DEFAULT_MAX_KEY_BYTES);
        let cases = [
            (
                http.post(format!("{base}/key")).body(r#"{"": "v"}"#),
                "an empty key",
            ),
            (
                http.post(format!("{base}/key")).body(r#"{"a": "1", "": "v"}"#),
                "an empty key among others",
            ),
            (
                http.put(format!("{base}/key/")).body(r#"{"value": "v"}"#),
                "an empty key in the path",
            ),
            (
                http.delete(format!("{base}/key?key=")),
                "an empty key in the query",
            ),
            (
                http.post(format!("{base}/key"))
                    .body(json!({ &long: "v" }).to_string()),
                "a long key",
            ),
            (http.get(format!("{base}/key/{long}")), "a read of a long key"),
            (
                http.delete(format!("{base}/key/{long}")),
                "a delete of a long key",
            ),
        ];
        for (request, what) in cases {
            let (status, answer) = json(request.send().await.expect(what)).await;
            assert_eq!(status, 400, "{what}: {answer}");
            assert!(answer["error"].is_string(), "{what}: {answer}");
            if what.contains("long") {
                assert!(
                    answer["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("limit of 4096 bytes"),
                    "{what}: {answer}"
                );
            }
        }
        // A key at the limit is taken and read back.
        let client = cluster.client_of(1);
        client.put(&[(&at_limit, "v")]).await.expect("a key at the limit");
        assert_eq!(
            client.get_text(&at_limit, false).await.expect("read").as_deref(),
            Some("v")
        );
        // The tester's 1 MiB key: refused on write, and a read is a JSON error too.
        let huge = "k".repeat(1 << 20);
        let (status, answer) = json(
            http.post(format!("{base}/key"))
                .body(json!({ &huge: "v" }).to_string())
                .send()
                .await
                .expect("post a huge key"),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        // (No URL library builds a URI over 64 KiB: the request is written by hand.)
        let (status, answer) = raw_get(&cluster.node(1).http, &format!("/key/{huge}"));
        assert_eq!(status, 414, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");

        let mut grpc = KeyValueClient::connect(format!("http://{}", cluster.node(1).grpc))
            .await
            .expect("connect");
        for id in [String::new(), long] {
            let err = grpc
                .save_entries(proto::SaveEntriesRequest {
                    id: id.clone(),
                    secrets: b"v".to_vec(),
                })
                .await
                .expect_err("a bad id");
            assert_eq!(err.code(), Code::InvalidArgument, "{err}");
            let err = grpc
                .get_entries(proto::GetEntriesRequest { id, stale: true })
                .await
                .expect_err("a bad id");
            assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        }
        cluster.stop_all().await.expect("stop");
    });
}

/// A key in the query whose bytes are not UTF-8 once decoded is refused with 400, as one in the
/// path is: decoded leniently it became U+FFFD and read, overwrote or deleted that other key.
#[test]
fn keys_in_the_query_that_are_not_utf8_are_refused_not_aliased() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let http = reqwest::Client::new();
        let base = format!("http://{}", cluster.node(1).http);
        let client = cluster.client_of(1);
        client.put(&[("\u{fffd}", "victim")]).await.expect("put U+FFFD");
        let cases = [
            (http.get(format!("{base}/key?key=%fe")), "a read"),
            (
                http.put(format!("{base}/key?key=%ff"))
                    .body(r#"{"value": "evil"}"#),
                "an update",
            ),
            (http.delete(format!("{base}/key?key=%c0")), "a delete"),
            (http.get(format!("{base}/key?key=a&key=b")), "two keys"),
        ];
        for (request, what) in cases {
            let (status, answer) = json(request.send().await.expect(what)).await;
            assert_eq!(status, 400, "{what}: {answer}");
            assert!(answer["error"].is_string(), "{what}: {answer}");
        }
        // The real U+FFFD key, percent-encoded as UTF-8, still reads its value.
        let (status, answer) = json(
            http.get(format!("{base}/key?key=%EF%BF%BD"))
                .send()
                .await
                .expect("read U+FFFD"),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["value"], "victim", "{answer}");
        cluster.stop_all().await.expect("stop");
    });
}

/// LMDB stores keys of at most 511 bytes, 503 of them the user's: a longer key used to commit
/// and then fail in apply, which stopped the node for good (every restart applies it again).
/// The limit is LMDB's own there, and a key at it is stored and read back.
#[cfg(feature = "lmdb")]
#[test]
fn lmdb_refuses_keys_it_cannot_store() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "lmdb", 1, dir.path(), &[])
            .await
            .expect("start");
        let client = cluster.client_of(1);
        let at_limit = "k".repeat(503);
        client.put(&[(&at_limit, "v")]).await.expect("a key of 503 bytes");
        assert_eq!(
            client.get_text(&at_limit, false).await.expect("read").as_deref(),
            Some("v")
        );
        let err = client
            .put(&[(&"k".repeat(504), "v")])
            .await
            .expect_err("a key of 504 bytes");
        assert!(err.to_string().contains("limit of 503 bytes"), "{err}");
        client.put(&[("after", "v")]).await.expect("a later write");
        cluster.stop_all().await.expect("stop");
    });
}
