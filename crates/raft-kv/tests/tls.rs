//! TLS and tokens over real processes: a 3-node cluster with mutual TLS between its nodes and
//! an auth file serves HTTPS and gRPC over TLS; plaintext, forged raft messages, callers
//! without a token or with a read token on a write, and joins without the joining node's
//! certificate are refused, and the cluster is unharmed.

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use openraft::entry::RaftEntry as _;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use raft_kv::client::ClientTls;
use raft_kv::grpc::GrpcClient;
use raft_kv::grpc::proto;
use raft_kv::tools::certs::CertsArgs;
use raft_kv::tools::cluster::Cluster;
use raft_kv::tools::cluster::Security;
use raft_kv::tools::wire::TypeConfig;
use raft_store::kv::KvRequest;
use serde_json::Value;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const CLI: &str = env!("CARGO_BIN_EXE_raft-kv-cli");
const SECS: Duration = Duration::from_secs(30);
const READ: &str = "read-token-for-the-tests-0001";
const WRITE: &str = "write-token-for-the-tests-0001";

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// Certificates for nodes 1 to 4 under `dir/certs` (node 4 is no member at first), and a
/// second CA with its own nodes under `dir/other`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let ours = dir.join("certs");
    let other = dir.join("other");
    for (at, nodes) in [(&ours, 4), (&other, 3)] {
        raft_kv::tools::certs::generate(&CertsArgs {
            dir: at.clone(),
            nodes,
            hosts: Vec::new(),
        })
        .expect("certificates");
    }
    (ours, other)
}

/// A 3-node cluster with TLS and the tokens [`READ`] and [`WRITE`].
async fn secure_cluster(dir: &Path, certs: &Path) -> Cluster {
    let auth = dir.join("tokens");
    std::fs::write(&auth, format!("# test tokens\nread {READ}\nwrite {WRITE}\n")).expect("auth file");
    std::fs::create_dir_all(dir.join("nodes")).expect("nodes directory");
    Cluster::start_secure(
        BIN.as_ref(),
        "redb",
        3,
        &dir.join("nodes"),
        &[],
        Security {
            certs: Some(certs.to_path_buf()),
            auth_file: Some(auth),
            token: Some(WRITE.into()),
        },
    )
    .await
    .expect("start a TLS cluster")
}

/// An HTTPS client trusting the CA of `certs`, presenting node `id`'s certificate of
/// `identity` (a certificate directory) if given.
fn https(certs: &Path, identity: Option<(&Path, u64)>) -> reqwest::Client {
    let files = identity.map(|(dir, id)| {
        (
            raft_kv::tools::certs::node_cert(dir, id),
            raft_kv::tools::certs::node_key(dir, id),
        )
    });
    let tls = ClientTls::from_files(
        &raft_kv::tools::certs::ca_cert(certs),
        files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )
    .expect("client TLS");
    tls.reqwest(reqwest::Client::builder().timeout(Duration::from_secs(10)))
        .build()
        .expect("HTTPS client")
}

/// Send `request`, expecting an answer: its status and JSON body.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("a body");
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "HTTP {status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, value)
}

fn grpc_client(cluster: &Cluster, id: u64, token: Option<&str>) -> GrpcClient {
    let tls = cluster.client_tls().expect("TLS").clone();
    let client =
        GrpcClient::new(vec![cluster.node(id).grpc.clone()], Duration::from_secs(5), SECS).with_tls(tls);
    match token {
        Some(token) => client.with_token(token).expect("token"),
        None => client,
    }
}

async fn grpc_get(client: &GrpcClient, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let m = proto::GetEntriesRequest {
        id: key.into(),
        stale: false,
    };
    client
        .call(|c| {
            let m = m.clone();
            Box::pin(async move { c.get_entries(m).await })
        })
        .await
        .map(|r| r.data)
}

async fn grpc_save(client: &GrpcClient, key: &str, value: &[u8]) -> Result<u64, tonic::Status> {
    let m = proto::SaveEntriesRequest {
        id: key.into(),
        secrets: value.to_vec(),
    };
    client
        .call(|c| {
            let m = m.clone();
            Box::pin(async move { c.save_entries(m).await })
        })
        .await
        .map(|r| r.index)
}

/// Run `raft-kv-cli` against the nodes' HTTP API, or their gRPC API with `grpc`.
fn cli(cluster: &Cluster, certs: &Path, grpc: bool, args: &[&str]) -> std::process::Output {
    let nodes: Vec<String> = (1..=3)
        .map(|id| {
            let node = cluster.node(id);
            if grpc {
                node.grpc.clone()
            } else {
                node.http.clone()
            }
        })
        .collect();
    Command::new(CLI)
        .arg("--nodes")
        .arg(nodes.join(","))
        .args(if grpc { &["--grpc"][..] } else { &[] })
        .arg("--cacert")
        .arg(raft_kv::tools::certs::ca_cert(certs))
        .args(args)
        .output()
        .expect("run raft-kv-cli")
}

// One cluster, started once, then checked case by case: starting it costs more than the checks.
#[allow(clippy::too_many_lines)]
#[test]
fn a_tls_cluster_serves_https_and_grpc_to_callers_with_tokens() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (certs, _) = certificates(dir.path());
    runtime().block_on(async {
        let mut cluster = secure_cluster(dir.path(), &certs).await;
        let leader = cluster.leader(SECS).await.expect("leader");
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");

        // Writes through the leader and through a follower (forwarded over TLS with the
        // caller's token), linearizable reads from every node.
        cluster
            .client_of(leader)
            .put(&[("a", "1")])
            .await
            .expect("put on the leader");
        let index = cluster
            .client_of(follower)
            .put(&[("b", "2")])
            .await
            .expect("put through a follower");
        for id in 1..=3 {
            let got = cluster.client_of(id).get_text("b", false).await.expect("read");
            assert_eq!(got.as_deref(), Some("2"), "node {id}");
        }
        cluster
            .wait_applied(index, SECS)
            .await
            .expect("applied everywhere");
        for id in 1..=3 {
            let got = cluster
                .client_of(id)
                .get_text("a", true)
                .await
                .expect("stale read");
            assert_eq!(got.as_deref(), Some("1"), "node {id}");
        }

        // gRPC over TLS: a write through a follower is forwarded, every node reads it.
        let on_follower = grpc_client(&cluster, follower, Some(WRITE));
        grpc_save(&on_follower, "g", b"grpc")
            .await
            .expect("gRPC save through a follower");
        for id in 1..=3 {
            let c = grpc_client(&cluster, id, Some(READ));
            assert_eq!(grpc_get(&c, "g").await.expect("gRPC read"), b"grpc", "node {id}");
        }

        // Plaintext to any TLS port gets no answer.
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let node = cluster.node(follower);
        for (port, addr) in [("HTTP", &node.http), ("raft", &node.raft)] {
            let r = plain.get(format!("http://{addr}/status")).send().await;
            assert!(r.is_err(), "plain HTTP to the {port} port answered: {r:?}");
        }
        let plain_grpc = GrpcClient::new(
            vec![node.grpc.clone()],
            Duration::from_secs(5),
            Duration::from_secs(2),
        )
        .with_token(READ)
        .expect("token");
        assert!(
            grpc_get(&plain_grpc, "g").await.is_err(),
            "plaintext gRPC answered"
        );

        // Tokens on HTTP: none or unknown 401, a read token on a write 403, a write token ok.
        let client = https(&certs, None);
        let base = format!("https://{}", cluster.node(follower).http);
        let (status, body) = answer(client.get(format!("{base}/key/a"))).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("Bearer")),
            "{body}"
        );
        let (status, _) = answer(
            client
                .get(format!("{base}/key/a"))
                .bearer_auth("not-a-known-token-at-all"),
        )
        .await;
        assert_eq!(status, 401);
        for path in ["/status", "/metrics"] {
            let r = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("an answer");
            assert_eq!(r.status().as_u16(), 401, "{path} without a token");
        }
        let (status, body) = answer(client.get(format!("{base}/key/a")).bearer_auth(READ)).await;
        assert_eq!((status, body["value"].as_str()), (200, Some("1")), "{body}");
        let (status, body) = answer(
            client
                .post(format!("{base}/key"))
                .bearer_auth(READ)
                .json(&serde_json::json!({ "c": "3" })),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        for (method, path) in [
            (reqwest::Method::DELETE, "/key/a"),
            (reqwest::Method::PUT, "/key/a"),
            (reqwest::Method::POST, "/leave"),
        ] {
            let (status, body) = answer(
                client
                    .request(method.clone(), format!("{base}{path}"))
                    .bearer_auth(READ),
            )
            .await;
            assert_eq!(status, 403, "{method} {path} with a read token: {body}");
        }
        let (status, body) = answer(
            client
                .post(format!("{base}/key"))
                .bearer_auth(WRITE)
                .json(&serde_json::json!({ "c": "3" })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // The data directory only to a caller with a token (and /status needs one here).
        let (_, body) = answer(client.get(format!("{base}/status")).bearer_auth(READ)).await;
        assert!(body["data_dir"].as_str().is_some_and(|d| !d.is_empty()), "{body}");

        // Tokens on gRPC: the same roles.
        let anonymous = grpc_client(&cluster, follower, None);
        assert_eq!(
            grpc_get(&anonymous, "a").await.unwrap_err().code(),
            Code::Unauthenticated
        );
        let reader = grpc_client(&cluster, follower, Some(READ));
        assert_eq!(grpc_get(&reader, "a").await.expect("gRPC read"), b"1");
        assert_eq!(
            grpc_save(&reader, "d", b"4").await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let status = reader
            .call(|c| Box::pin(async move { c.status(proto::StatusRequest {}).await }))
            .await
            .expect("gRPC status with a read token");
        assert!(!status.data_dir.is_empty());
        assert_eq!(
            anonymous
                .call(|c| Box::pin(async move { c.status(proto::StatusRequest {}).await }))
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );

        // The command-line client: --cacert and --token.
        let out = cli(&cluster, &certs, false, &["--token", READ, "put", "e", "5"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("HTTP 403"),
            "{out:?}"
        );
        let out = cli(&cluster, &certs, false, &["--token", WRITE, "put", "e", "5"]);
        assert!(out.status.success(), "{out:?}");
        let out = cli(&cluster, &certs, true, &["--token", READ, "get", "e"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5", "{out:?}");

        // A join needs the joining node's own certificate, besides a write token.
        let join = serde_json::json!({ "id": 9, "raft": "127.0.0.1:1", "http": "127.0.0.1:2" });
        let (status, body) = answer(client.post(format!("{base}/join")).bearer_auth(WRITE).json(&join)).await;
        assert_eq!(status, 403, "a join without a certificate: {body}");
        let as_node_4 = https(&certs, Some((&certs, 4)));
        let (status, body) = answer(
            as_node_4
                .post(format!("{base}/join"))
                .bearer_auth(WRITE)
                .json(&join),
        )
        .await;
        assert_eq!(status, 403, "a join of node 9 with node 4's certificate: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("node 4")),
            "{body}"
        );
        let (status, body) = answer(
            as_node_4
                .post(format!("{base}/join"))
                .bearer_auth(READ)
                .json(&serde_json::json!({ "id": 4, "raft": "127.0.0.1:1", "http": "127.0.0.1:2" })),
        )
        .await;
        assert_eq!(status, 403, "a join with a read token: {body}");
        let m = proto::JoinRequest {
            id: 9,
            raft: "127.0.0.1:1".into(),
            http: "127.0.0.1:2".into(),
            grpc: String::new(),
        };
        let writer = grpc_client(&cluster, follower, Some(WRITE));
        let refused = writer
            .call(|c| {
                let m = m.clone();
                Box::pin(async move { c.join(m).await })
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let members = cluster.status(leader).await.expect("status")["members"].clone();
        assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");

        // Node 4 joins with its certificate through a follower, which forwards the join.
        cluster
            .add(4, Some(&cluster.node(follower).http.clone()))
            .await
            .expect("start node 4");
        cluster.wait_for_voters(4, SECS).await.expect("node 4 a voter");
        let got = cluster
            .client_of(4)
            .get_text("c", false)
            .await
            .expect("read on node 4");
        assert_eq!(got.as_deref(), Some("3"));
        cluster.stop_all().await.expect("stop");
    });
}

/// The last log id of node `id` as its status shows it, and its term.
async fn log_state(cluster: &Cluster, id: u64) -> (u64, u64, u64) {
    let status = cluster.status(id).await.expect("status");
    (
        status["term"].as_u64().expect("term"),
        status["leader"].as_u64().expect("leader"),
        status["last_log_index"].as_u64().expect("last log index"),
    )
}

// One cluster, started once, then checked case by case: starting it costs more than the checks.
#[allow(clippy::too_many_lines)]
#[test]
fn the_raft_port_refuses_messages_not_from_the_node_they_name() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (certs, other) = certificates(dir.path());
    runtime().block_on(async {
        let mut cluster = secure_cluster(dir.path(), &certs).await;
        let leader = cluster.leader(SECS).await.expect("leader");
        let index = cluster.client().put(&[("kept", "yes")]).await.expect("put");
        cluster.wait_applied(index, SECS).await.expect("applied");
        let (term, _, last) = log_state(&cluster, leader).await;
        let target = (1..=3).find(|&i| i != leader).expect("a follower");
        // A member that is neither the leader nor the target, whose certificate is used to
        // claim another sender.
        let impostor = (1..=3)
            .find(|&i| i != leader && i != target)
            .expect("a third node");
        let url = |path: &str| format!("https://{}/raft/{path}", cluster.node(target).raft);

        let log_id = |term: u64, node_id: u64, index: u64| {
            LogIdOf::<TypeConfig>::new(openraft::impls::leader_id_adv::LeaderId { term, node_id }, index)
        };
        // A vote far in the future, which would depose the leader.
        let vote = raft_kv::tools::wire::encode(&openraft::raft::VoteRequest::<TypeConfig>::new(
            VoteOf::<TypeConfig>::new(term + 100, leader),
            Some(log_id(term + 100, leader, last + 1000)),
        ))
        .expect("encode");
        // An entry appended in the leader's name, which a follower would apply as committed.
        let append = raft_kv::tools::wire::encode(&openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: VoteOf::<TypeConfig>::new_committed(term, leader),
            prev_log_id: Some(log_id(term, leader, last)),
            entries: vec![EntryOf::<TypeConfig>::new_normal(
                log_id(term, leader, last + 1),
                KvRequest::Set {
                    key: "injected".into(),
                    value: b"evil".to_vec(),
                },
            )],
            leader_commit: Some(log_id(term, leader, last + 1)),
        })
        .expect("encode");
        // A snapshot in the leader's name.
        let header = raft_kv::tools::wire::encode(&raft_kv::tools::wire::SnapshotHeader {
            vote: VoteOf::<TypeConfig>::new_committed(term, leader),
            meta: openraft::type_config::alias::SnapshotMetaOf::<TypeConfig>::default(),
        })
        .expect("encode");
        let mut snapshot = (header.len() as u32).to_be_bytes().to_vec();
        snapshot.extend_from_slice(&header);

        for (what, path, body) in [
            ("vote", "vote", vote.clone()),
            ("pre-vote", "pre-vote", vote),
            ("append", "append", append),
            ("snapshot", "snapshot", snapshot),
        ] {
            // No client certificate, and one of another CA: no TLS session at all.
            for (how, client) in [
                ("without a certificate", https(&certs, None)),
                (
                    "with another CA's certificate",
                    https(&certs, Some((&other, leader))),
                ),
            ] {
                let r = client.post(url(path)).body(body.clone()).send().await;
                assert!(r.is_err(), "a {what} {how} was answered: {r:?}");
            }
            // A cluster certificate of another node than the sender the message names.
            let (status, refusal) = answer(
                https(&certs, Some((&certs, impostor)))
                    .post(url(path))
                    .body(body.clone()),
            )
            .await;
            assert_eq!(
                status, 403,
                "a {what} from node {impostor} in node {leader}'s name: {refusal}"
            );
            assert!(
                refusal["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(&format!("certificate of node {impostor}"))),
                "{refusal}"
            );
        }

        // The cluster is unharmed: the same leader in the same term, nothing injected, and it
        // still takes writes.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for id in 1..=3 {
            let (t, l, _) = log_state(&cluster, id).await;
            assert_eq!((t, l), (term, leader), "node {id}: term and leader");
            assert_eq!(
                cluster
                    .client_of(id)
                    .get_text("injected", true)
                    .await
                    .expect("read"),
                None,
                "node {id}"
            );
            assert_eq!(
                cluster
                    .client_of(id)
                    .get_text("kept", true)
                    .await
                    .expect("read")
                    .as_deref(),
                Some("yes")
            );
        }
        cluster
            .client()
            .put(&[("after", "ok")])
            .await
            .expect("a write after the attacks");

        // Failed handshakes cost no certificate: 500 plaintext connections to each of the
        // target's TLS ports must not write 1,000 lines to its log (each listener logs at most
        // five lines a second, then a count of the rest).
        let handshake_lines = |cluster: &Cluster| cluster.log_text(target).matches("TLS handshake").count();
        let before = handshake_lines(&cluster);
        let started = std::time::Instant::now();
        for addr in [
            cluster.node(target).raft.clone(),
            cluster.node(target).http.clone(),
        ] {
            for _ in 0..500 {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(&addr).await {
                    use tokio::io::AsyncWriteExt as _;
                    let _ = tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let secs = started.elapsed().as_secs() + 2;
        let logged = handshake_lines(&cluster) - before;
        assert!(
            logged > 0 && logged as u64 <= 2 * 5 * secs,
            "{logged} handshake lines in about {secs} s for 1,000 failed handshakes"
        );
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn plaintext_off_loopback_needs_insecure_and_then_warns() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // No address is bound: the settings are refused first.
    let out = Command::new(BIN)
        .args(["--http", "0.0.0.0:0", "--raft", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("refused"))
        .output()
        .expect("run raft-kv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--http 0.0.0.0:0 is not a loopback address") && stderr.contains("--insecure"),
        "{stderr}"
    );
    for (flag, addr) in [("--raft", "192.0.2.1:0"), ("--grpc", "[::]:0")] {
        let out = Command::new(BIN)
            .args(["--http", "127.0.0.1:0", flag, addr, "--data-dir"])
            .arg(dir.path().join("refused"))
            .output()
            .expect("run raft-kv");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{flag} {addr} is not a loopback")),
            "{stderr}"
        );
    }
    // With RAFT_KV_INSECURE the node starts (here on loopback, as tests must) and warns.
    runtime().block_on(async {
        std::fs::create_dir_all(dir.path().join("insecure")).expect("directory");
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, &dir.path().join("insecure"), &[])
            .await
            .expect("start");
        cluster.stop_all().await.expect("stop");
        assert!(
            !cluster.log_tail(1).contains("WARNING"),
            "{}",
            cluster.log_tail(1)
        );
    });
    let mut node = std::process::Command::new(BIN)
        .args(["--http", "127.0.0.1:0", "--raft", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("warned"))
        .env("RAFT_KV_INSECURE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start raft-kv");
    let mut line = String::new();
    let stdout = node.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read stdout");
    let _ = node.kill();
    let out = node.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(line.contains("listening"), "{line} {stderr}");
    assert!(
        stderr.lines().any(|l| l.contains(" WARN ")
            && l.contains("--insecure without TLS")
            && l.contains("unauthenticated plaintext")),
        "{stderr}"
    );
}
