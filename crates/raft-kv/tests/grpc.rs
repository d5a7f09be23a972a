//! The gRPC API and the command-line client against a 3-node cluster of real processes.

use std::process::Command;
use std::time::Duration;

use raft_kv::grpc::GrpcClient;
use raft_kv::grpc::proto;
use raft_kv::grpc::proto::key_value_client::KeyValueClient;
use raft_kv::tools::cluster::Cluster;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");

/// The backend of a test that wants one other than the default: lmdb in a build that has
/// it (CI's, with every feature), redb otherwise.
const LMDB_OR_REDB: &str = if cfg!(feature = "lmdb") { "lmdb" } else { "redb" };

/// The backend of a test that wants one other than the default: rocksdb in a build that has
/// it (CI's, with every feature), redb otherwise.
const ROCKSDB_OR_REDB: &str = if cfg!(feature = "rocksdb") {
    "rocksdb"
} else {
    "redb"
};
const CLI: &str = env!("CARGO_BIN_EXE_raft-kv-cli");
const SECS: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

async fn client(addr: &str) -> KeyValueClient<tonic::transport::Channel> {
    KeyValueClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[test]
fn grpc_calls_with_forwarding_and_status_codes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
        let mut on_leader = client(&cluster.node(leader).grpc).await;
        let secret = vec![0u8, 0xFF, 7, b'x'];
        let r = on_leader
            .save_entries(proto::SaveEntriesRequest {
                id: "s1".into(),
                secrets: secret.clone(),
            })
            .await
            .expect("save on the leader")
            .into_inner();
        assert!(!r.existed);
        // A write sent to a follower is forwarded and answered.
        let mut on_follower = client(&cluster.node(followers[0]).grpc).await;
        let r2 = on_follower
            .save_entries(proto::SaveEntriesRequest {
                id: "s2".into(),
                secrets: b"two".to_vec(),
            })
            .await
            .expect("save through a follower")
            .into_inner();
        assert!(r2.index > r.index);
        // Linearizable reads from every follower (forwarded), then stale reads once applied.
        for &f in &followers {
            let mut c = client(&cluster.node(f).grpc).await;
            let got = c
                .get_entries(proto::GetEntriesRequest {
                    id: "s1".into(),
                    stale: false,
                })
                .await
                .expect("linearizable read on a follower")
                .into_inner();
            assert_eq!((got.id.as_str(), got.data.as_slice()), ("s1", secret.as_slice()));
        }
        cluster.wait_applied(r2.index, SECS).await.expect("applied");
        for &f in &followers {
            let mut c = client(&cluster.node(f).grpc).await;
            let got = c
                .get_entries(proto::GetEntriesRequest {
                    id: "s2".into(),
                    stale: true,
                })
                .await
                .expect("stale read")
                .into_inner();
            assert_eq!(got.data, b"two");
        }
        // Update only an existing key; NOT_FOUND otherwise; delete; errors as status codes.
        on_follower
            .update_entries(proto::UpdateEntriesRequest {
                id: "s1".into(),
                secrets: b"new".to_vec(),
            })
            .await
            .expect("update");
        let err = on_follower
            .update_entries(proto::UpdateEntriesRequest {
                id: "nope".into(),
                secrets: b"x".to_vec(),
            })
            .await
            .expect_err("update of a missing key");
        assert_eq!(err.code(), Code::NotFound, "{err}");
        let d = on_leader
            .delete_entries(proto::DeleteEntriesRequest { id: "s2".into() })
            .await
            .expect("delete")
            .into_inner();
        assert!(d.existed);
        let err = on_follower
            .get_entries(proto::GetEntriesRequest {
                id: "s2".into(),
                stale: false,
            })
            .await
            .expect_err("read of a deleted key");
        assert_eq!(err.code(), Code::NotFound, "{err}");
        bad_input_is_refused(&mut on_leader, &mut on_follower).await;
        let status = on_follower
            .status(proto::StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        assert_eq!((status.leader, status.members.len()), (leader, 3), "{status:?}");
        assert!(status.members.iter().all(|m| !m.grpc.is_empty()), "{status:?}");

        cluster.stop_all().await.expect("stop");
    });
}

/// An empty id is `INVALID_ARGUMENT`; leaving a cluster one is not part of is `NOT_FOUND`.
async fn bad_input_is_refused(
    on_leader: &mut KeyValueClient<tonic::transport::Channel>,
    on_follower: &mut KeyValueClient<tonic::transport::Channel>,
) {
    let err = on_leader
        .save_entries(proto::SaveEntriesRequest {
            id: String::new(),
            secrets: Vec::new(),
        })
        .await
        .expect_err("an empty id");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = on_follower
        .leave(proto::LeaveRequest { id: 42, force: false })
        .await
        .expect_err("leave of a non-member");
    assert_eq!(err.code(), Code::NotFound, "{err}");
}

/// The failing-over gRPC client: the first address is dead and the call still succeeds; after
/// the leader is killed, calls go on through the others.
#[test]
fn grpc_client_fails_over() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), ROCKSDB_OR_REDB, 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").to_string()
        };
        let mut addresses = vec![dead];
        addresses.extend(cluster.nodes.iter().map(|n| n.grpc.clone()));
        let failover = GrpcClient::new(addresses, Duration::from_secs(5), SECS);
        for (id, what) in [
            ("f1", "save past a dead address"),
            ("f2", "save after the leader died"),
        ] {
            if id == "f2" {
                cluster.kill(leader).await.expect("kill the leader");
            }
            let m = proto::SaveEntriesRequest {
                id: id.into(),
                secrets: id.as_bytes().to_vec(),
            };
            failover
                .call(|c| {
                    let m = m.clone();
                    Box::pin(async move { c.save_entries(m).await })
                })
                .await
                .expect(what);
        }
        cluster.stop_all().await.expect("stop");
    });
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(CLI).args(args).output().expect("run raft-kv-cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// `raft-kv-cli` over both transports: every command, and failover past a dead node.
#[test]
fn cli_over_http_and_grpc() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let rt = runtime();
    let mut cluster = rt
        .block_on(Cluster::start(BIN.as_ref(), LMDB_OR_REDB, 3, dir.path(), &[]))
        .expect("start");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    for transport in ["http", "grpc"] {
        let addresses: Vec<String> = std::iter::once(dead.clone())
            .chain(cluster.nodes.iter().map(|n| {
                if transport == "grpc" {
                    n.grpc.clone()
                } else {
                    n.http.clone()
                }
            }))
            .collect();
        let nodes = addresses.join(",");
        let mut base = vec!["--nodes", nodes.as_str()];
        if transport == "grpc" {
            base.push("--grpc");
        }
        let run = |rest: &[&str]| {
            let mut args = base.clone();
            args.extend_from_slice(rest);
            cli(&args)
        };
        let key = format!("cli-{transport}");
        let (code, out, err) = run(&["put", &key, "v1"]);
        assert_eq!(code, 0, "{transport} put: {out} {err}");
        assert!(out.starts_with("ok index="), "{out}");
        assert_eq!(run(&["get", &key]).1, "v1", "{transport} get");
        let (code, out, _) = run(&["update", &key, "v2"]);
        assert_eq!((code, out.as_str()), (0, "ok"), "{transport} update");
        assert_eq!(run(&["get", &key, "--stale"]).0, 0, "{transport} stale get");
        let (code, _, err) = run(&["update", "never-set", "x"]);
        assert_eq!(code, 1, "{transport} update of a missing key: {err}");
        let (code, out, _) = run(&["delete", &key]);
        assert_eq!((code, out.as_str()), (0, "ok existed=true"), "{transport} delete");
        let (code, _, err) = run(&["get", &key]);
        assert_eq!(code, 1, "{transport} get of a deleted key: {err}");
        let (code, out, _) = run(&["status"]);
        assert_eq!(code, 0, "{transport} status");
        assert!(out.contains("leader"), "{transport} status: {out}");
        let (code, _, err) = run(&["leave", "42"]);
        assert_eq!(code, 2, "{transport} leave of a non-member: {err}");
    }
    // join and leave through the CLI: a fourth node started without --join, added by hand.
    rt.block_on(async {
        let first = cluster.node(1).http.clone();
        cluster.add(4, Some(&first)).await.expect("node 4");
        cluster.wait_for_voters(4, SECS).await.expect("node 4 joined");
    });
    let grpc_nodes: Vec<String> = cluster.nodes.iter().take(3).map(|n| n.grpc.clone()).collect();
    let (code, out, err) = cli(&["--nodes", &grpc_nodes.join(","), "--grpc", "leave", "4"]);
    assert_eq!(code, 0, "leave over gRPC: {out} {err}");
    let n4 = cluster.node(4);
    let (raft4, http4, grpc4) = (n4.raft.clone(), n4.http.clone(), n4.grpc.clone());
    let http_nodes: Vec<String> = cluster.nodes.iter().take(3).map(|n| n.http.clone()).collect();
    let (code, out, err) = cli(&[
        "--nodes",
        &http_nodes.join(","),
        "join",
        "4",
        "--raft",
        &raft4,
        "--http",
        &http4,
        "--grpc",
        &grpc4,
    ]);
    assert_eq!(code, 0, "join over HTTP: {out} {err}");
    rt.block_on(async {
        cluster.wait_for_voters(4, SECS).await.expect("node 4 back");
        cluster.stop_all().await.expect("stop");
    });
}

const READ_TOKEN: &str = "read-token-of-the-parity-test";
const WRITE_TOKEN: &str = "write-token-of-the-parity-test";

/// One bad request, as HTTP and as gRPC: `(what, http, grpc)`.
type Both = (&'static str, reqwest::RequestBuilder, Call);

/// A gRPC request with the bearer `token` (if any) and the metadata `extra`.
fn grpc_request<T>(message: T, token: Option<&str>, extra: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a metadata value"),
        );
    }
    for (key, value) in extra {
        request
            .metadata_mut()
            .insert(*key, value.parse().expect("a metadata value"));
    }
    request
}

/// The same bad requests to a node's HTTP and gRPC APIs (a leader's and a follower's, so
/// refusals of the leader come back through a forward): the same message, and a gRPC code that
/// corresponds to the HTTP status.
#[test]
fn http_and_grpc_refuse_alike() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let auth = dir.path().join("auth");
    std::fs::write(&auth, format!("read {READ_TOKEN}\nwrite {WRITE_TOKEN}\n")).expect("auth file");
    runtime().block_on(async {
        let security = raft_kv::tools::cluster::Security {
            auth_file: Some(auth),
            token: Some(WRITE_TOKEN.into()),
            ..Default::default()
        };
        let root = dir.path().join("nodes");
        std::fs::create_dir_all(&root).expect("the nodes' directory");
        let limits = ["--max-key-bytes", "64", "--max-request-bytes", "2048"];
        let mut cluster = Cluster::start_secure(BIN.as_ref(), "redb", 3, &root, &limits, security)
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");
        for (id, role) in [(leader, "leader"), (follower, "follower")] {
            let base = format!("http://{}", cluster.node(id).http);
            let grpc = client(&cluster.node(id).grpc).await;
            for ((what, over_http, over_grpc), status, code) in bad_requests(&base, &grpc, id == follower) {
                let answer = over_http.send().await.expect("an HTTP answer");
                let got_status = answer.status().as_u16();
                let body: serde_json::Value = answer.json().await.expect("a JSON body");
                let refused = over_grpc.await.expect_err(what);
                assert_eq!(
                    (got_status, refused.code()),
                    (status, code),
                    "{what} on the {role}: {body} / {refused:?}"
                );
                let message = body["error"].as_str().expect("an error message");
                assert!(!message.is_empty(), "{what} on the {role}");
                assert_eq!(message, refused.message(), "{what} on the {role}");
                let retry = body.get("retry").and_then(serde_json::Value::as_bool) == Some(true);
                assert_eq!(
                    refused.metadata().get("x-raft-kv-retry").is_some(),
                    retry,
                    "{what} on the {role}: {body} / {refused:?}"
                );
                assert_eq!(retry, code == Code::Unavailable, "{what} on the {role}: {body}");
            }
        }
        cluster.stop_all().await.expect("stop");
    });
}

/// A gRPC call's outcome, its answer dropped.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tonic::Status>>>>;

/// The bad requests of [`http_and_grpc_refuse_alike`] to the node at `base` (HTTP) and `grpc`,
/// each with the HTTP status and the gRPC code it is refused with; past the hop limit too on a
/// `follower` (a leader answers such a request itself).
fn bad_requests(
    base: &str,
    grpc: &KeyValueClient<tonic::transport::Channel>,
    follower: bool,
) -> Vec<(Both, u16, Code)> {
    let http = reqwest::Client::new();
    let get = |key: &str, token: Option<&str>, extra: &[(&'static str, &str)]| -> Call {
        let mut c = grpc.clone();
        let m = proto::GetEntriesRequest {
            id: key.into(),
            stale: false,
        };
        let request = grpc_request(m, token, extra);
        Box::pin(async move { c.get_entries(request).await.map(drop) })
    };
    let update = |key: &str, value: &[u8], token: Option<&str>| -> Call {
        let mut c = grpc.clone();
        let m = proto::UpdateEntriesRequest {
            id: key.into(),
            secrets: value.to_vec(),
        };
        let request = grpc_request(m, token, &[]);
        Box::pin(async move { c.update_entries(request).await.map(drop) })
    };
    let put = |key: &str, value: &[u8]| {
        http.put(format!("{base}/key/{key}"))
            .json(&serde_json::json!({ "value": String::from_utf8_lossy(value) }))
    };
    let read = |path: &str| http.get(format!("{base}{path}")).bearer_auth(READ_TOKEN);
    let long_key = "k".repeat(65);
    let big = vec![b'v'; 2500];
    let unknown = "not-a-token-of-this-cluster";
    let mut cases: Vec<(Both, u16, Code)> = vec![
        (
            ("no token", http.get(format!("{base}/key/a")), get("a", None, &[])),
            401,
            Code::Unauthenticated,
        ),
        (
            (
                "an unknown token",
                http.get(format!("{base}/key/a")).bearer_auth(unknown),
                get("a", Some(unknown), &[]),
            ),
            401,
            Code::Unauthenticated,
        ),
        (
            (
                "a write with a read token",
                put("a", b"x").bearer_auth(READ_TOKEN),
                update("a", b"x", Some(READ_TOKEN)),
            ),
            403,
            Code::PermissionDenied,
        ),
        (
            ("an empty key", read("/key/"), get("", Some(READ_TOKEN), &[])),
            400,
            Code::InvalidArgument,
        ),
        (
            (
                "a key over the limit",
                read(&format!("/key/{long_key}")),
                get(&long_key, Some(READ_TOKEN), &[]),
            ),
            400,
            Code::InvalidArgument,
        ),
        (
            (
                "a request over the limit",
                put("big", &big).bearer_auth(WRITE_TOKEN),
                update("big", &big, Some(WRITE_TOKEN)),
            ),
            413,
            Code::ResourceExhausted,
        ),
        (
            (
                "a read of a missing key",
                read("/key/missing"),
                get("missing", Some(READ_TOKEN), &[]),
            ),
            404,
            Code::NotFound,
        ),
    ];
    if follower {
        // A request that went round too often is refused before it is forwarded again:
        // retryable in both protocols.
        cases.push((
            (
                "a request past the hop limit",
                read("/key/a").header("x-raft-kv-hops", "3"),
                get("a", Some(READ_TOKEN), &[("x-raft-kv-hops", "3")]),
            ),
            503,
            Code::Unavailable,
        ));
    }
    cases
}
