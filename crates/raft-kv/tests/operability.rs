//! What an operator relies on, over real processes: a node whose disk fills stops and exits
//! with the cause in its log, `/status` and `/health` first; `grpc.health.v1` and server
//! reflection answer; `/health` and `/openapi.json` need no token.

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use raft_kv::tools::cluster::Cluster;
use raft_kv::tools::cluster::Security;
use serde_json::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const SECS: Duration = Duration::from_secs(30);
/// The exit code of a node stopped by a fatal error (see `src/main.rs`).
const EXIT_FATAL: i32 = 3;

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// A small tmpfs mounted at a directory: a disk that fills after a few MiB. Unmounted (lazily,
/// so a process still holding a file cannot keep it) when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test fills a node's disk: it mounts a {size} tmpfs at {} and needs root (or CAP_SYS_ADMIN) for that; mount said: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn get_json(url: &str) -> Result<(u16, Value), String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

async fn channel(addr: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
}

async fn grpc_health(addr: &str, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(
        channel(addr)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?,
    );
    let answer = client
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?;
    Ok(answer.into_inner().status())
}

/// A follower's disk fills while the cluster takes writes: the follower logs the cause, shows
/// it in `/status` and `/health` (and gRPC health says `NOT_SERVING`), refuses client requests
/// as retryable, and exits with [`EXIT_FATAL`] after its drain; the other two go on.
#[test]
fn a_node_whose_disk_fills_exits_non_zero_with_the_cause_first_shown_in_status_and_health() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 2, dir.path(), &[])
            .await
            .expect("start two nodes");
        let _disk = SmallDisk::mount(&dir.path().join("node-3"), "4m");
        let first = cluster.node(1).http.clone();
        cluster.add(3, Some(&first)).await.expect("start node 3");
        cluster.wait_for_voters(3, SECS).await.expect("three voters");
        let node3 = (cluster.node(3).http.clone(), cluster.node(3).grpc.clone());
        let client = cluster.client_for(vec![cluster.node(1).http.clone(), cluster.node(2).http.clone()]);
        let value = "x".repeat(60_000);
        let mut fatal_status = None;
        // 300 writes of 60 KB: 18 MB, far over the 4 MiB node 3 has.
        for i in 0..300 {
            client
                .put(&[(&format!("fill-{i}"), &value)])
                .await
                .expect("nodes 1 and 2 keep committing");
            if let Ok((200, status)) = get_json(&format!("http://{}/status", node3.0)).await
                && status["fatal"].is_string()
            {
                fatal_status = Some(status);
                break;
            }
        }
        let status = fatal_status.unwrap_or_else(|| {
            panic!(
                "node 3's /status never showed a fatal error after 18 MB onto a 4 MiB disk:\n{}",
                cluster.log_tail(3)
            )
        });
        let cause = status["fatal"].as_str().unwrap_or_default().to_string();
        assert!(cause.contains("No space left on device"), "{status}");
        let (code, health) = get_json(&format!("http://{}/health", node3.0))
            .await
            .expect("/health of the stopping node");
        assert_eq!(code, 503, "{health}");
        assert_eq!(health["status"], "fatal", "{health}");
        assert_eq!(health["error"], cause.as_str(), "{health}");
        // Client requests are refused as retryable: another node must answer them.
        let (code, refused) = get_json(&format!("http://{}/key/fill-0?stale=true", node3.0))
            .await
            .expect("a read of the stopping node");
        assert_eq!(code, 503, "{refused}");
        assert_eq!(refused["retry"], true, "{refused}");
        // The gRPC health service follows within its update interval.
        let deadline = Instant::now() + Duration::from_millis(1500);
        loop {
            match grpc_health(&node3.1, "raftkv.v1.KeyValue").await {
                Ok(ServingStatus::NotServing) => break,
                other => assert!(
                    Instant::now() < deadline,
                    "gRPC health of the stopping node: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let exit = cluster.wait_exit(3, SECS).await.expect("node 3 exits by itself");
        assert_eq!(
            exit.code(),
            Some(EXIT_FATAL),
            "{exit:?}:\n{}",
            cluster.log_tail(3)
        );
        let log = cluster.log_text(3);
        assert!(
            log.lines()
                .any(|l| l.contains("ERROR") && l.contains("fatal") && l.contains("No space left on device")),
            "no fatal error with its cause in node 3's log:\n{log}"
        );
        assert!(log.contains("exiting on a fatal error"), "{log}");

        // The two others still hold a quorum.
        client
            .put(&[("after-the-full-disk", "yes")])
            .await
            .expect("a write after node 3 exited");
    });
}

/// `grpc.health.v1` answers for the server and the API, and for nothing else; reflection lists
/// the API and serves its descriptors, so `grpcurl` can call it without the `.proto`.
#[test]
fn grpc_health_and_reflection_answer() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let grpc = cluster.node(1).grpc.clone();
        let deadline = Instant::now() + SECS;
        for service in ["", "raftkv.v1.KeyValue"] {
            loop {
                match grpc_health(&grpc, service).await {
                    Ok(ServingStatus::Serving) => break,
                    other => assert!(Instant::now() < deadline, "health of {service:?}: {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let unknown = grpc_health(&grpc, "no.such.Service").await;
        assert_eq!(unknown.map_err(|s| s.code()), Err(tonic::Code::NotFound));

        let mut reflection = ServerReflectionClient::new(channel(&grpc).await.expect("connect"));
        let ask = |request: MessageRequest| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let mut answers = reflection
            .server_reflection_info(futures::stream::iter([
                ask(MessageRequest::ListServices(String::new())),
                ask(MessageRequest::FileContainingSymbol("raftkv.v1.KeyValue".into())),
            ]))
            .await
            .expect("reflection")
            .into_inner();
        let listed = answers.message().await.expect("an answer").expect("the list");
        let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
            panic!("not a service list: {listed:?}");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "raftkv.v1.KeyValue",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(names.contains(&name), "{name} not in {names:?}");
        }
        let file = answers.message().await.expect("an answer").expect("the file");
        let Some(MessageResponse::FileDescriptorResponse(files)) = file.message_response else {
            panic!("not a file descriptor: {file:?}");
        };
        let described = files
            .file_descriptor_proto
            .iter()
            .any(|f| f.windows(b"SaveEntries".len()).any(|w| w == b"SaveEntries"));
        assert!(
            described,
            "the descriptor of raftkv.v1.KeyValue names no SaveEntries"
        );
    });
}

/// With an auth file, `/health` and `/openapi.json` still answer without a token (a probe has
/// none), while `/status` asks for one.
#[test]
fn health_and_the_contract_need_no_token() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let auth = dir.path().join("auth.toml");
    std::fs::write(&auth, "write operator-test-token-0123456789abcdef\n").expect("auth file");
    std::fs::create_dir_all(dir.path().join("nodes")).expect("nodes directory");
    runtime().block_on(async {
        let security = Security {
            auth_file: Some(auth.clone()),
            token: Some("operator-test-token-0123456789abcdef".into()),
            ..Security::default()
        };
        let cluster =
            Cluster::start_secure(BIN.as_ref(), "redb", 1, &dir.path().join("nodes"), &[], security)
                .await
                .expect("start");
        let http = cluster.node(1).http.clone();
        let (code, health) = get_json(&format!("http://{http}/health")).await.expect("/health");
        assert_eq!(code, 200, "{health}");
        assert_eq!(health["status"], "serving", "{health}");
        assert_eq!(health["id"], 1, "{health}");
        let (code, contract) = get_json(&format!("http://{http}/openapi.json"))
            .await
            .expect("/openapi.json");
        assert_eq!(code, 200);
        let paths = contract["paths"].as_object().expect("paths");
        for route in [
            "/key",
            "/key/{key}",
            "/join",
            "/leave",
            "/status",
            "/metrics",
            "/health",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(route), "{route} is not in the contract");
        }
        let (code, refused) = get_json(&format!("http://{http}/status")).await.expect("/status");
        assert_eq!(code, 401, "{refused}");
    });
}

/// A join at an address a member already listens on is refused with 409: at the leader's own
/// raft address it made the leader replicate to itself, and openraft's core panicked, leaving a
/// node that refused every write for good. The node stays healthy and takes writes.
#[test]
fn a_join_at_a_members_address_is_refused_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let node = cluster.node(1);
        let http = reqwest::Client::new();
        for (body, clash) in [
            (
                serde_json::json!({ "id": 0, "raft": node.raft, "http": "127.0.0.1:1" }),
                format!("raft address {} is node 1's", node.raft),
            ),
            (
                serde_json::json!({ "id": 5, "raft": "127.0.0.1:1", "http": node.http }),
                format!("HTTP address {} is node 1's", node.http),
            ),
        ] {
            let answer = http
                .post(format!("http://{}/join", node.http))
                .json(&body)
                .timeout(SECS)
                .send()
                .await
                .expect("POST /join");
            let code = answer.status().as_u16();
            let said: Value = answer.json().await.expect("a JSON answer");
            assert_eq!(code, 409, "{body}: {said}");
            assert!(
                said["error"].as_str().is_some_and(|e| e.contains(&clash)),
                "{body}: {said}"
            );
        }
        let (code, health) = get_json(&format!("http://{}/health", node.http))
            .await
            .expect("/health");
        assert_eq!(code, 200, "{health}");
        cluster
            .client()
            .put(&[("after-the-refused-joins", "yes")])
            .await
            .expect("a write after the refused joins");
        let status = cluster.status(1).await.expect("status");
        assert_eq!(status["members"].as_array().map(Vec::len), Some(1), "{status}");
    });
}

/// `GET /health` of the status in `body`, polled until it is `want` (bounded by `within`).
async fn health_becomes(http: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = get_json(&format!("http://{http}/health")).await;
        if let Ok((_, body)) = &answer
            && body["status"] == want
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "/health of {http} is not {want:?} within {within:?}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node cut off from the others stops saying it serves: a leader that no quorum acknowledges,
/// a follower that hears from no leader (pre-vote keeps both believing in the old leader, so
/// "a leader is known" is not enough); both serve again once the others are back.
#[test]
fn health_turns_unhealthy_on_a_node_cut_off_from_its_quorum() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let leader = cluster.leader(SECS).await.expect("leader");
        let others: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
        let leader_http = cluster.node(leader).http.clone();
        health_becomes(&leader_http, "serving", SECS).await;

        // The leader alone.
        for &id in &others {
            cluster.pause(id).expect("pause");
        }
        let cut = health_becomes(&leader_http, "no_leader", Duration::from_secs(10)).await;
        assert!(
            cut["error"]
                .as_str()
                .is_some_and(|e| e.contains("no quorum has acknowledged")),
            "{cut}"
        );
        // A write sent to it is refused as not written, naming why: it still says Leader.
        let refused = reqwest::Client::new()
            .post(format!("http://{leader_http}/key"))
            .json(&serde_json::json!({ "cut-off-write": "x" }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("the cut-off leader answers");
        assert_eq!(refused.status().as_u16(), 503);
        let refused: Value = refused.json().await.expect("a JSON error");
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("is the leader but no quorum")),
            "{refused}"
        );
        assert_eq!(refused["retry"], true, "{refused}");
        let (_, status) = get_json(&format!("http://{leader_http}/status"))
            .await
            .expect("/status");
        assert_eq!(status["state"], "Leader", "{status}");
        for &id in &others {
            cluster.resume(id).expect("resume");
        }
        let back = cluster.leader(SECS).await.expect("a leader again");
        health_becomes(&cluster.node(back).http, "serving", SECS).await;
        let (code, missing) = get_json(&format!("http://{}/key/cut-off-write", cluster.node(back).http))
            .await
            .expect("GET the refused key");
        assert_eq!(code, 404, "the refused write was applied after all: {missing}");

        // A follower alone: its leader and the other follower stopped.
        let follower = (1..=3).find(|&i| i != back).expect("a follower");
        let follower_http = cluster.node(follower).http.clone();
        health_becomes(&follower_http, "serving", SECS).await;
        let stopped: Vec<u64> = (1..=3).filter(|&i| i != follower).collect();
        for &id in &stopped {
            cluster.pause(id).expect("pause");
        }
        let cut = health_becomes(&follower_http, "no_leader", Duration::from_secs(10)).await;
        assert!(cut["error"].as_str().is_some_and(|e| !e.is_empty()), "{cut}");
        assert!(
            cluster
                .log_text(follower)
                .lines()
                .any(|l| l.contains("not serving")),
            "the follower did not log that it stopped serving:\n{}",
            cluster.log_tail(follower)
        );
        for &id in &stopped {
            cluster.resume(id).expect("resume");
        }
        health_becomes(&follower_http, "serving", SECS).await;
    });
}

/// With `--log-format json` every line of stderr is one JSON object, the last word of a node
/// that fails to start included; an empty `--log-level` means the default, not silence.
#[test]
fn json_logs_are_json_to_the_last_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = busy.local_addr().expect("its address").to_string();
    let out = Command::new(BIN)
        .args([
            "--log-format",
            "json",
            "--log-level",
            "",
            "--id",
            "1",
            "--raft",
            "127.0.0.1:0",
            "--http",
        ])
        .arg(&port)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run raft-kv");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "nothing logged");
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["target"].is_string(),
            "{line}"
        );
    }
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).expect("JSON");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&port)),
        "the last line does not name the busy address {port}: {last}"
    );
}
