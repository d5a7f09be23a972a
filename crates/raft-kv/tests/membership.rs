//! The raft port and membership changes under messages no honest node sends, from a plain
//! HTTP client outside the cluster: a vote or an append from a non-member, terms at the top of
//! `u64`, joins of dead, silent or clashing nodes, a leave that would lose the quorum.

use std::time::Duration;

use openraft::entry::RaftEntry;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::VoteRequest;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::VoteOf;
use raft_kv::tools::cluster::Cluster;
use raft_kv::tools::wire::SnapshotHeader;
use raft_kv::tools::wire::TypeConfig;
use raft_kv::tools::wire::encode;
use raft_store::kv::KvRequest;
use serde_json::Value;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const SECS: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn log_id(term: u64, node: u64, index: u64) -> LogIdOf<TypeConfig> {
    LogIdOf::<TypeConfig>::new(LeaderId { term, node_id: node }, index)
}

/// POST `body` to `path` of the raft port `raft`: the status and, for a refusal, the JSON.
async fn raft_post(raft: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let answer = http()
        .post(format!("http://{raft}{path}"))
        .body(body)
        .send()
        .await
        .expect("send to the raft port");
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.expect("answer body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn vote(term: u64, node: u64, last: u64) -> Vec<u8> {
    encode(&VoteRequest::<TypeConfig> {
        vote: VoteOf::<TypeConfig>::new(term, node),
        last_log_id: Some(log_id(term, node, last)),
        leadership_transfer: false,
    })
    .expect("encode")
}

/// (leader, term, last log index) as the leader reports them.
async fn leader_view(cluster: &Cluster) -> (u64, u64, u64) {
    let leader = cluster.leader(SECS).await.expect("leader");
    let status = cluster.status(leader).await.expect("status");
    (
        leader,
        status["term"].as_u64().expect("term"),
        status["last_log_index"].as_u64().expect("last log index"),
    )
}

/// POST `body` as JSON to `url`: the status and the JSON answer.
async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let answer = http().post(url).json(body).send().await.expect("send");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn member_ids(status: &Value) -> Vec<u64> {
    status["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// Votes and appends from an id outside the membership are refused (403) on every node, so
/// they neither depose the leader nor put a value in anyone's state machine; terms at the top
/// of `u64` and far jumps are refused (400) even from a member id, and no node panics.
#[test]
fn the_raft_port_refuses_non_members_and_wild_terms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        cluster.client().put(&[("before", "1")]).await.expect("put");
        let (leader, term, last) = leader_view(&cluster).await;

        // A non-member asks for votes with a higher term and a longer log.
        for id in 1..=3 {
            let raft = cluster.node(id).raft.clone();
            for path in ["/raft/vote", "/raft/pre-vote"] {
                let (status, body) = raft_post(&raft, path, vote(term + 5, 99, last + 1000)).await;
                assert_eq!(status, 403, "{path} to node {id}: {body}");
                assert!(body["error"].as_str().unwrap_or("").contains("node 99"), "{body}");
            }
        }

        // A non-member appends an entry after the leader's last, committed at once.
        let entry = EntryOf::<TypeConfig>::new_normal(
            log_id(term + 1, 99, last + 1),
            KvRequest::Set {
                key: "injected".into(),
                value: b"evil".to_vec(),
            },
        );
        let append = AppendEntriesRequest::<TypeConfig> {
            vote: VoteOf::<TypeConfig>::new_committed(term + 1, 99),
            prev_log_id: Some(log_id(term, leader, last)),
            leader_commit: Some(entry.log_id()),
            entries: vec![entry],
        };
        for id in 1..=3 {
            let (status, body) = raft_post(
                &cluster.node(id).raft,
                "/raft/append",
                encode(&append).expect("encode"),
            )
            .await;
            assert_eq!(status, 403, "append to node {id}: {body}");
        }

        // Terms at the top of u64, and a jump of more than a million, even from a member id.
        let member = (1..=3).find(|&i| i != leader).expect("a follower");
        for bad in [u64::MAX, u64::MAX - 1, term + 2_000_000] {
            for id in 1..=3 {
                let raft = cluster.node(id).raft.clone();
                for path in ["/raft/vote", "/raft/pre-vote"] {
                    let (status, body) = raft_post(&raft, path, vote(bad, member, last)).await;
                    assert_eq!(status, 400, "{path} term {bad} to node {id}: {body}");
                    assert!(
                        body["error"].as_str().unwrap_or("").contains(&bad.to_string()),
                        "{body}"
                    );
                }
                let heartbeat = AppendEntriesRequest::<TypeConfig> {
                    vote: VoteOf::<TypeConfig>::new_committed(bad, leader),
                    prev_log_id: None,
                    leader_commit: None,
                    entries: vec![],
                };
                let (status, body) =
                    raft_post(&raft, "/raft/append", encode(&heartbeat).expect("encode")).await;
                assert_eq!(status, 400, "append term {bad} to node {id}: {body}");
            }
        }

        refuse_messages_from_the_node_itself(&cluster, term, last).await;

        // Every node still answers, the leader and its term are as they were, writes go on,
        // and no node holds the injected key.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (leader_after, term_after, _) = leader_view(&cluster).await;
        assert_eq!(
            (leader_after, term_after),
            (leader, term),
            "leader or term changed"
        );
        let index = cluster
            .client()
            .put(&[("after", "2")])
            .await
            .expect("write after the attacks");
        cluster
            .wait_applied(index, SECS)
            .await
            .expect("applied everywhere");
        for id in 1..=3 {
            let got = cluster
                .client_of(id)
                .get_text("injected", true)
                .await
                .expect("read");
            assert_eq!(got, None, "node {id} serves the injected value");
        }
        cluster
            .stop_all()
            .await
            .expect("every node stops cleanly (none panicked)");
    });
}

/// A join of an address nobody listens on, of an id already taken with other addresses, or of
/// a node that accepts connections but never answers (that one through a follower), is refused
/// with 409 and leaves the membership as it was; with one voter paused the cluster still commits on its two real
/// copies. A node with no membership yet takes no vote.
#[test]
fn joins_of_dead_silent_or_clashing_nodes_are_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let (leader, _, _) = leader_view(&cluster).await;
        let base = format!("http://{}/join", cluster.node(leader).http);

        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").to_string()
        };
        let (status, body) = post_json(&base, &json!({ "id": 4, "raft": dead, "http": dead })).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains("cannot be reached"),
            "{body}"
        );

        let two = cluster.node(2);
        let (status, body) = post_json(&base, &json!({ "id": 2, "raft": dead, "http": two.http })).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains("already a member"),
            "{body}"
        );
        let same = json!({ "id": 2, "raft": two.raft, "http": two.http, "grpc": two.grpc });
        let answer = http().post(&base).json(&same).send().await.expect("join");
        assert_eq!(answer.status().as_u16(), 200, "the same join again is a success");

        // A listener that accepts and never answers, joined while a follower is paused.
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hole_addr = hole.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hole.accept().await {
                held.push(socket);
            }
        });
        let paused = (1..=3).find(|&i| i != leader).expect("a follower");
        let other = (1..=3)
            .find(|&i| i != leader && i != paused)
            .expect("another follower");
        cluster.pause(paused).expect("pause");
        // Sent through the running follower: it must wait out the leader's whole catch-up
        // wait (20 s) and pass on its 409, not give up as "outcome unknown".
        let via_follower = format!("http://{}/join", cluster.node(other).http);
        let outcome = async {
            let answer = http()
                .post(&via_follower)
                .json(&json!({ "id": 4, "raft": hole_addr, "http": hole_addr }))
                .send()
                .await
                .map_err(|e| format!("join: {e}"))?;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.map_err(|e| format!("JSON: {e}"))?;
            let index = cluster
                .client_of(leader)
                .put(&[("with-one-paused", "yes")])
                .await
                .map_err(|e| format!("write with one paused: {e}"))?;
            let members = member_ids(&cluster.status(leader).await?);
            Ok::<_, String>((status, body, index, members))
        }
        .await;
        cluster.resume(paused).expect("resume");
        let (status, body, index, members) = outcome.expect("join and write");
        assert_eq!(status, 409, "{body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains("not made a voter"),
            "{body}"
        );
        assert_eq!(members, vec![1, 2, 3], "the silent node is still a member");
        for id in [leader, other] {
            let got = cluster
                .client_of(id)
                .get_text("with-one-paused", true)
                .await
                .expect("read");
            assert_eq!(
                got.as_deref(),
                Some("yes"),
                "node {id} lacks the acknowledged write"
            );
        }
        cluster
            .wait_applied(index, SECS)
            .await
            .expect("the paused node catches up");

        // Node 4 started with --join towards nobody has no membership: it grants no vote.
        cluster.add(4, Some(&dead)).await.expect("start node 4");
        let (status, body) = raft_post(&cluster.node(4).raft, "/raft/vote", vote(3, 1, 10)).await;
        assert_eq!(status, 403, "{body}");
        cluster.stop_all().await.expect("stop");
    });
}

/// Removing a voter when the voters left would hold no reachable majority (one of them is
/// paused) is refused with 409; `force=true` removes it anyway.
#[test]
fn a_leave_that_would_lose_the_quorum_needs_force() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        let (leader, _, _) = leader_view(&cluster).await;
        let paused = (1..=3).find(|&i| i != leader).expect("a follower");
        let removed = (1..=3)
            .find(|&i| i != leader && i != paused)
            .expect("another follower");
        let base = format!("http://{}/leave", cluster.node(leader).http);
        cluster.pause(paused).expect("pause");
        let outcome = async {
            // Long enough for the leader to stop counting the paused node as reachable.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let answer = http()
                .post(&base)
                .json(&json!({ "id": removed }))
                .send()
                .await
                .map_err(|e| format!("leave: {e}"))?;
            let refused = (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap_or(Value::Null),
            );
            let members = member_ids(&cluster.status(leader).await?);
            Ok::<_, String>((refused, members))
        }
        .await;
        // Forced: the change commits once the paused node is back.
        let forced = tokio::spawn({
            let url = format!("{base}?force=true");
            async move { http().post(url).json(&json!({ "id": removed })).send().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.resume(paused).expect("resume");
        let ((status, body), members) = outcome.expect("leave refused");
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap_or("").contains("force"), "{body}");
        assert_eq!(members, vec![1, 2, 3]);
        let forced = forced.await.expect("task").expect("forced leave");
        assert_eq!(forced.status().as_u16(), 200, "{:?}", forced.text().await);
        let status = cluster.status(leader).await.expect("status");
        assert!(!member_ids(&status).contains(&removed), "{status}");
        cluster.stop_all().await.expect("stop");
    });
}

/// Files of snapshots being received (`receive-*`) anywhere under `dir`.
fn receiving_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().starts_with("receive") {
                found.push(path);
            }
        }
    }
    found
}

/// A snapshot body as the raft port reads it: header length (u32 BE), header, file bytes.
fn snapshot_body(vote: VoteOf<TypeConfig>, last: LogIdOf<TypeConfig>) -> Vec<u8> {
    let header = encode(&SnapshotHeader {
        vote,
        meta: SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(last),
            last_membership: openraft::StoredMembership::default(),
        },
    })
    .expect("encode");
    let mut body = u32::try_from(header.len())
        .expect("header size")
        .to_be_bytes()
        .to_vec();
    body.extend_from_slice(&header);
    body.extend_from_slice(b"not a snapshot file");
    body
}

/// Snapshots openraft would stop on (it asserts, in every build, that a snapshot's last log id
/// names no leader past the sender's vote, and that one past the committed log id is at a
/// greater index), sent by a member id: each is refused with 400 before openraft sees it, no
/// node stops; a snapshot from a non-member is refused with 403; and no refused transfer
/// leaves a file in the snapshot directory.
#[test]
fn snapshots_openraft_would_stop_on_are_refused_and_leave_no_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 3, dir.path(), &[])
            .await
            .expect("start");
        for i in 0..5 {
            cluster
                .client()
                .put(&[(&format!("k{i}"), "v")])
                .await
                .expect("put");
        }
        let (leader, term, last) = leader_view(&cluster).await;
        let follower = (1..=3).find(|&i| i != leader).expect("a follower");
        let raft = cluster.node(follower).raft.clone();
        let forged = [
            (
                "a snapshot from a node that is not a member",
                403,
                snapshot_body(
                    VoteOf::<TypeConfig>::new_committed(term + 1, 99),
                    log_id(term + 1, 99, last + 5),
                ),
            ),
            (
                "a last log id of a leader past the vote",
                400,
                snapshot_body(
                    VoteOf::<TypeConfig>::new_committed(term, leader),
                    log_id(term, leader + 10, last + 5),
                ),
            ),
            (
                "a later term at an index the follower has committed",
                400,
                snapshot_body(
                    VoteOf::<TypeConfig>::new_committed(term + 1, leader),
                    log_id(term + 1, leader, 1),
                ),
            ),
        ];
        for (what, want, body) in forged {
            let (status, answer) = raft_post(&raft, "/raft/snapshot", body).await;
            assert_eq!(status, want, "{what}: {answer}");
            assert!(answer["error"].is_string(), "{what}: {answer}");
        }
        let left = receiving_files(&cluster.node(follower).data_dir);
        assert!(left.is_empty(), "refused snapshots left files: {left:?}");

        // Nothing stopped: a write is applied on all three nodes, the leader unchanged.
        let index = cluster.client().put(&[("after", "1")]).await.expect("put after");
        cluster
            .wait_applied(index, SECS)
            .await
            .expect("applied everywhere after the forged snapshots");
        for id in 1..=3 {
            let got = cluster
                .client_of(id)
                .get_text("after", true)
                .await
                .unwrap_or_else(|e| panic!("node {id} after the forged snapshots: {e}"));
            assert_eq!(got.as_deref(), Some("1"), "node {id}");
        }
        let (leader_after, term_after, _) = leader_view(&cluster).await;
        assert_eq!((leader_after, term_after), (leader, term), "the leader changed");
        cluster
            .stop_all()
            .await
            .expect("every node stops cleanly (none panicked)");
    });
}

/// A message claiming to come from the receiving node itself is refused with 400 on every node:
/// a member at the leader's own raft address made the leader hear from itself, and openraft's
/// core panicked.
async fn refuse_messages_from_the_node_itself(cluster: &Cluster, term: u64, last: u64) {
    for id in 1..=3 {
        let raft = cluster.node(id).raft.clone();
        let (status, body) = raft_post(&raft, "/raft/vote", vote(term + 1, id, last)).await;
        assert_eq!(status, 400, "a vote from node {id} to itself: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("which is this node"),
            "{body}"
        );
        let from_itself = AppendEntriesRequest::<TypeConfig> {
            vote: VoteOf::<TypeConfig>::new_committed(term, id),
            prev_log_id: None,
            leader_commit: None,
            entries: vec![],
        };
        let (status, body) = raft_post(&raft, "/raft/append", encode(&from_itself).expect("encode")).await;
        assert_eq!(status, 400, "an append from node {id} to itself: {body}");
    }
}
