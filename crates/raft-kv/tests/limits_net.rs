//! Connection limits over real processes: slowloris heads and stalled bodies are cut at their
//! timeouts while the node serves on, idle keep-alive connections are closed, a listener at its
//! cap makes room by closing an idle connection (or answers 503 when all are busy), and a node
//! with a 1,024 open file limit flooded with idle connections on its API, raft and gRPC ports
//! keeps serving and its cluster keeps its leader.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use raft_kv::grpc::proto;
use raft_kv::grpc::proto::key_value_client::KeyValueClient;
use raft_kv::tools::cluster::Cluster;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const SECS: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// A plain HTTP client without retries: a request must be answered within 5 s.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// One normal write and read through `addr`, each answered within the client's timeout.
async fn put_and_get(http: &reqwest::Client, addr: &str, key: &str, value: &str) -> Result<(), String> {
    let put = http
        .post(format!("http://{addr}/key"))
        .json(&serde_json::json!({ key: value }))
        .send()
        .await
        .map_err(|e| format!("PUT {key}: {e}"))?;
    if !put.status().is_success() {
        return Err(format!(
            "PUT {key}: {} {}",
            put.status(),
            put.text().await.unwrap_or_default()
        ));
    }
    let got: serde_json::Value = http
        .get(format!("http://{addr}/key/{key}"))
        .send()
        .await
        .map_err(|e| format!("GET {key}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {key}: {e}"))?;
    if got["value"] != value {
        return Err(format!("GET {key}: {got}"));
    }
    Ok(())
}

/// Read `stream` until the server closes it (or resets it), at most `limit`: what it sent and
/// when it closed, or `None` if it stayed open. While waiting, send `trickle` once a second.
async fn until_closed(
    stream: &mut TcpStream,
    limit: Duration,
    trickle: Option<&[u8]>,
) -> (Vec<u8>, Option<Instant>) {
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut next_trickle = start + Duration::from_secs(1);
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (answer, None);
        }
        let wake = if trickle.is_some() {
            next_trickle
        } else {
            Instant::now() + left
        };
        tokio::select! {
            read = stream.read_buf(&mut answer) => match read {
                Ok(0) | Err(_) => return (answer, Some(Instant::now())),
                Ok(_) => {}
            },
            () = tokio::time::sleep_until(wake.into()) => {
                if let Some(bytes) = trickle {
                    // A reset while trickling is a close too; the read sees it.
                    let _ = stream.write_all(bytes).await;
                    next_trickle += Duration::from_secs(1);
                }
            }
        }
    }
}

/// The status code of a raw HTTP answer.
fn status_of(answer: &[u8]) -> Option<u16> {
    String::from_utf8_lossy(answer)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Read one complete HTTP answer with a `content-length` from a keep-alive connection.
async fn read_answer(stream: &mut TcpStream) -> Result<(u16, String), String> {
    let mut buf = Vec::new();
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("no content-length in {head:?}"))?;
                if buf.len() >= end + 4 + length {
                    let status = status_of(&buf).ok_or("no status")?;
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                    return Ok((status, body));
                }
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&buf))),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

fn log_of(dir: &Path, id: u64) -> String {
    std::fs::read_to_string(dir.join(format!("node-{id}.log"))).unwrap_or_default()
}

#[test]
fn slowloris_heads_are_cut_at_the_header_timeout_while_the_node_serves() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &["--header-timeout", "2s"])
            .await
            .expect("start");
        let addr = cluster.node(1).http.clone();
        let mut slow = tokio::task::JoinSet::new();
        for i in 0..50 {
            let addr = addr.clone();
            slow.spawn(async move {
                let mut stream = TcpStream::connect(&addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let opened = Instant::now();
                stream
                    .write_all(b"GET /status HTTP/1.1\r\nhost: x\r\nx-slow: ")
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                // Half trickle a byte a second, half send nothing more.
                let trickle = (i % 2 == 0).then_some(&b"a"[..]);
                let (answer, closed) = until_closed(&mut stream, Duration::from_secs(10), trickle).await;
                let closed = closed.ok_or(format!("connection {i} still open after 10 s"))?;
                Ok::<_, String>((i, trickle.is_some(), closed.duration_since(opened), answer))
            });
        }
        // Normal requests are answered the whole time, before and after the heads time out.
        let client = http();
        let start = Instant::now();
        let mut served = 0;
        while start.elapsed() < Duration::from_secs(5) {
            put_and_get(&client, &addr, &format!("k{served}"), "v")
                .await
                .unwrap_or_else(|e| panic!("while 50 heads trickle: {e}"));
            served += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut answered_408 = 0;
        while let Some(done) = slow.join_next().await {
            let (i, trickled, after, answer) = done.expect("task").unwrap_or_else(|e| panic!("{e}"));
            assert!(
                after >= Duration::from_millis(1500) && after <= Duration::from_secs(6),
                "connection {i} (trickling: {trickled}) closed after {after:?}, not at the 2 s header timeout"
            );
            if !answer.is_empty() {
                let text = String::from_utf8_lossy(&answer);
                assert_eq!(status_of(&answer), Some(408), "connection {i}: {text}");
                assert!(
                    text.contains(r#"{"error":"#) && text.contains("header_timeout"),
                    "{text}"
                );
                answered_408 += 1;
            }
        }
        // A client that stopped sending has nothing unread, so it always gets its answer.
        assert!(answered_408 >= 25, "only {answered_408} of 50 got a 408 answer");
        assert!(served > 10, "{served}");
        assert!(
            log_of(dir.path(), 1).contains("header_timeout"),
            "{}",
            cluster.log_tail(1)
        );
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn a_stalled_body_is_cut_at_the_body_timeout_and_a_slow_one_is_not() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &["--body-timeout", "2s"])
            .await
            .expect("start");
        let api = cluster.node(1).http.clone();
        let raft = cluster.node(1).raft.clone();
        for (addr, head) in [
            (
                &api,
                "POST /key HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"a\": \"b",
            ),
            (
                &raft,
                "POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n\x01\x02",
            ),
        ] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(head.as_bytes()).await.expect("send");
            let sent = Instant::now();
            let (_, closed) = until_closed(&mut stream, Duration::from_secs(10), None).await;
            let after = closed
                .unwrap_or_else(|| panic!("{addr}: a stalled body kept its connection for 10 s"))
                .duration_since(sent);
            assert!(
                after >= Duration::from_millis(1500) && after <= Duration::from_secs(6),
                "{addr}: closed after {after:?}, not at the 2 s body timeout"
            );
        }
        // A body that comes in four parts a second apart takes longer than the timeout in all,
        // but never stalls for it: it is read to the end and answered.
        let body = br#"{"slow": "but steady"}"#;
        let mut stream = TcpStream::connect(&api).await.expect("connect");
        let head = format!(
            "POST /key HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        for part in body.chunks(body.len().div_ceil(4)) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stream.write_all(part).await.expect("send a part");
        }
        let (status, answer) = read_answer(&mut stream).await.expect("answer");
        assert_eq!(status, 200, "{answer}");
        let got = raft_kv::client::KvClient::new(vec![api.clone()], SECS, SECS)
            .get_text("slow", false)
            .await
            .expect("read back");
        assert_eq!(got.as_deref(), Some("but steady"));
        assert!(
            log_of(dir.path(), 1).contains("body_timeout"),
            "{}",
            cluster.log_tail(1)
        );
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn idle_keep_alive_connections_are_closed_at_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &["--idle-timeout", "2s"])
            .await
            .expect("start");
        let api = cluster.node(1).http.clone();
        let raft = cluster.node(1).raft.clone();
        let grpc = cluster.node(1).grpc.clone();
        // Connections that never send a byte are idle from their start, on every port, and
        // closed without an HTTP answer (gRPC's server sends its HTTP/2 settings first).
        let mut silent = tokio::task::JoinSet::new();
        for (addr, http) in [(api.clone(), true), (raft.clone(), true), (grpc, false)] {
            silent.spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.expect("connect");
                let opened = Instant::now();
                let (answer, closed) = until_closed(&mut stream, Duration::from_secs(10), None).await;
                (addr, http, answer, closed.map(|c| c.duration_since(opened)))
            });
        }
        for (addr, request) in [
            (&api, "GET /status HTTP/1.1\r\nhost: x\r\n\r\n"),
            (&raft, "GET /no-such-route HTTP/1.1\r\nhost: x\r\n\r\n"),
        ] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            // Requests a second apart keep a connection open past the timeout.
            for _ in 0..4 {
                stream.write_all(request.as_bytes()).await.expect("send");
                read_answer(&mut stream)
                    .await
                    .unwrap_or_else(|e| panic!("{addr}: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stream.write_all(request.as_bytes()).await.expect("send");
            read_answer(&mut stream)
                .await
                .unwrap_or_else(|e| panic!("{addr}: {e}"));
            let answered = Instant::now();
            let (rest, closed) = until_closed(&mut stream, Duration::from_secs(10), None).await;
            let after = closed
                .unwrap_or_else(|| panic!("{addr}: an idle connection stayed open for 10 s"))
                .duration_since(answered);
            assert!(rest.is_empty(), "{addr}: {}", String::from_utf8_lossy(&rest));
            assert!(
                after >= Duration::from_millis(1500) && after <= Duration::from_secs(5),
                "{addr}: closed {after:?} after the last answer, not at the 2 s idle timeout"
            );
        }
        while let Some(done) = silent.join_next().await {
            let (addr, http, answer, after) = done.expect("task");
            let after = after.unwrap_or_else(|| panic!("{addr}: a silent connection stayed open for 10 s"));
            assert!(
                !http || answer.is_empty(),
                "{addr}: {}",
                String::from_utf8_lossy(&answer)
            );
            assert!(
                after >= Duration::from_millis(1500) && after <= Duration::from_secs(5),
                "{addr}: a silent connection closed after {after:?}, not at the 2 s idle timeout"
            );
        }
        assert!(
            log_of(dir.path(), 1).contains("idle_timeout"),
            "{}",
            cluster.log_tail(1)
        );
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn at_the_cap_the_longest_idle_connection_makes_room_and_busy_ones_refuse() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &["--max-connections", "4"])
            .await
            .expect("start");
        let api = cluster.node(1).http.clone();
        let request = b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n";
        // Four idle connections fill the cap; a fifth is served, and the oldest is closed.
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(&api).await.expect("connect"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut fifth = TcpStream::connect(&api).await.expect("connect");
        fifth.write_all(request).await.expect("send");
        let (status, body) = read_answer(&mut fifth)
            .await
            .expect("the fifth connection is served");
        assert_eq!(status, 200, "{body}");
        let (_, closed) = until_closed(&mut idle[0], Duration::from_secs(5), None).await;
        assert!(closed.is_some(), "the longest-idle connection was not closed");
        drop((idle, fifth));
        // Four connections busy with a request whose body is still coming: a fifth gets 503.
        let mut busy = Vec::new();
        for _ in 0..4 {
            let mut stream = TcpStream::connect(&api).await.expect("connect");
            stream
                .write_all(b"POST /key HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
                .await
                .expect("send");
            busy.push(stream);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut refused = TcpStream::connect(&api).await.expect("connect");
        refused.write_all(request).await.expect("send");
        let (answer, closed) = until_closed(&mut refused, Duration::from_secs(10), None).await;
        assert!(closed.is_some(), "the refused connection was not closed");
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status_of(&answer), Some(503), "{text}");
        assert!(text.contains(r#"{"error":"too many connections"#), "{text}");
        // Once a busy connection ends, a new one is served again.
        drop(busy.pop());
        let client = http();
        let start = Instant::now();
        loop {
            match client.get(format!("http://{api}/status")).send().await {
                Ok(r) if r.status().is_success() => break,
                other => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "not served after a busy connection closed: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = log_of(dir.path(), 1);
        assert!(log.contains("to admit one from"), "{log}");
        assert!(log.contains("refused the connection"), "{log}");
        drop(busy);
        cluster.stop_all().await.expect("stop");
    });
}

/// Open `n` connections to `addr` at once and keep them; those that could not connect within
/// 5 s are left out.
async fn flood(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let addr = addr.to_string();
        tasks.spawn(async move {
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    let mut streams = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(stream)) = done {
            streams.push(stream);
        }
    }
    streams
}

#[test]
fn a_node_with_1024_files_flooded_with_idle_connections_serves_and_keeps_its_leader() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The test holds 4,400 connections itself.
    let limit =
        raft_kv::tools::check_file_limit(6000, "the test's own connections").expect("the open file limit");
    assert!(limit.soft >= 6000, "the test needs 6000 open files: {limit:?}");
    // Every node runs under `prlimit --nofile=1024:1024`, from a script that first notes its
    // pid (prlimit and then exec keep it).
    let script = dir.path().join("raft-kv-1024");
    let pids = dir.path().join("pids");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> {}\nexec prlimit --nofile=1024:1024 {BIN} \"$@\"\n",
            pids.display()
        ),
    )
    .expect("write the script");
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&script, executable).expect("chmod");
    runtime().block_on(async {
        let mut cluster = Cluster::start(&script, "redb", 3, dir.path(), &[])
            .await
            .expect("start (needs prlimit from util-linux)");
        for pid in std::fs::read_to_string(&pids).expect("pids").lines() {
            let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
            let files = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .unwrap_or_default();
            assert_eq!(
                files.split_whitespace().collect::<Vec<_>>()[3..5],
                ["1024", "1024"],
                "node {pid}: {files}"
            );
        }
        let leader = cluster.leader(SECS).await.expect("leader");
        let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
        let (f, g) = (cluster.node(followers[0]), cluster.node(followers[1]));
        // 1,100 idle connections on each of a follower's API, raft and gRPC ports, and on the
        // other follower's raft port: more than either node can open files for.
        let mut held = Vec::new();
        for addr in [&f.http, &f.raft, &f.grpc, &g.raft] {
            held.push((addr, flood(addr, 1100).await));
        }
        // The flooded follower answers a write (forwarded to the leader, which needs a follower's
        // flooded raft port to commit it) and a read, each within the client's 5 s.
        let client = http();
        put_and_get(&client, &f.http, "flood", "weathered")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "through the flooded follower: {e}\n{}",
                    cluster.log_tail(followers[0])
                )
            });
        let mut grpc = tokio::time::timeout(
            Duration::from_secs(5),
            KeyValueClient::connect(format!("http://{}", f.grpc)),
        )
        .await
        .expect("gRPC connect within 5 s")
        .expect("gRPC connect");
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            grpc.get_entries(proto::GetEntriesRequest {
                id: "flood".into(),
                stale: false,
            }),
        )
        .await
        .expect("gRPC answer within 5 s")
        .expect("gRPC get")
        .into_inner();
        assert_eq!(got.data, b"weathered");
        assert_eq!(
            cluster.leader(SECS).await.expect("leader"),
            leader,
            "the leader changed"
        );
        // The flood did reach the nodes: each listener accepted (and closed) nearly all of it.
        for (addr, streams) in &held {
            assert!(streams.len() >= 1000, "{addr}: only {} connected", streams.len());
        }
        // The follower closed connections to stay under its caps, and said so.
        let log = log_of(dir.path(), followers[0]);
        assert!(
            log.contains("to admit one from"),
            "{}",
            cluster.log_tail(followers[0])
        );
        assert!(!log.contains("below the"), "{log}");
        drop(held);
        cluster.stop_all().await.expect("stop");
    });
}
