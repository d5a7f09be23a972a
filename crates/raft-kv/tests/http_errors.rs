//! Every HTTP error answer is a JSON body with an `"error"` key, the framework's own rejections
//! included: a method a route does not serve, a body over the limit, a URI too long, headers too
//! large or too many, a query that does not parse, a path that is no UTF-8, a malformed head.

use std::io::Read;
use std::io::Write;
use std::time::Duration;

use raft_kv::tools::cluster::Cluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_raft-kv");
const SECS: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    raft_kv::tools::cluster::runtime().expect("runtime")
}

/// Send raw bytes on a new connection and read the answer to the end: its status and body.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(SECS)).expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn assert_json_error(status: u16, body: &str, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    let value: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body:?}"));
    assert!(
        value["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no error message in {value}"
    );
}

#[test]
fn framework_rejections_are_json() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let addr = cluster.node(1).http.clone();
        let raft = cluster.node(1).raft.clone();
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let many_headers = (0..200).fold(http.get(format!("{base}/status")), |r, i| {
            r.header(format!("x-h{i}"), "1")
        });
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (http.delete(format!("{base}/status")), 405, "DELETE /status"),
            (http.patch(format!("{base}/key/k")), 405, "PATCH /key/k"),
            (http.get(format!("{base}/key")), 400, "GET /key without a key"),
            (
                http.get(format!("{base}/key/k?stale=maybe")),
                400,
                "a query that does not parse",
            ),
            (http.get(format!("{base}/key/%FF")), 400, "a key that is no UTF-8"),
            (
                http.post(format!("{base}/key")).body(vec![b' '; 8 << 20]),
                413,
                "a body over the limit",
            ),
            (
                http.get(format!("{base}/key/{}", "u".repeat(20 << 10))),
                414,
                "a URI of 20 KiB",
            ),
            (
                http.get(format!("{base}/status"))
                    .header("x-big", "h".repeat(100 << 10)),
                431,
                "a header of 100 KiB",
            ),
            (
                http.get(format!("{base}/status"))
                    .header("x-big", "h".repeat(1 << 20)),
                431,
                "a header of 1 MiB",
            ),
            (many_headers, 431, "200 headers"),
            (
                http.get(format!("http://{raft}/raft/append")),
                405,
                "GET on the raft endpoint",
            ),
            (
                http.post(format!("http://{raft}/raft/append")).body("junk"),
                400,
                "junk to the raft endpoint",
            ),
        ];
        for (request, expected, what) in cases {
            let response = request
                .timeout(SECS)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.text().await.unwrap_or_default();
            assert_json_error(status, &body, expected, what);
            assert!(
                content_type.starts_with("application/json"),
                "{what}: {content_type}"
            );
        }
        cluster.stop_all().await.expect("stop");
    });
}

#[test]
fn heads_hyper_would_refuse_bare_are_json() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let addr = cluster.node(1).http.clone();
        // What no client library sends: a URI over 64 KiB (hyper's own bound, and the `http`
        // crate's), a malformed head, a header line without a colon.
        let long_uris: Vec<(Vec<u8>, &str)> = [(100 << 10, "a URI of 100 KiB"), (1 << 20, "a URI of 1 MiB")]
            .into_iter()
            .map(|(len, what)| {
                (
                    format!("GET /key/{} HTTP/1.1\r\nhost: x\r\n\r\n", "u".repeat(len)).into_bytes(),
                    what,
                )
            })
            .collect();
        for (request, what) in &long_uris {
            let (status, body) = raw(&addr, request);
            assert_json_error(status, &body, 414, what);
        }
        for (request, expected, what) in [
            (
                &b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"[..],
                400,
                "a header without a colon",
            ),
            (&b"G\x01T / HTTP/1.1\r\n\r\n"[..], 400, "a bad method"),
            (
                &b"POST /key HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"[..],
                400,
                "two framings",
            ),
        ] {
            let (status, body) = raw(&addr, request);
            assert_json_error(status, &body, expected, what);
        }
        // A good request, then a refused head on the same connection: the first is answered,
        // then the refusal.
        let mut pipelined = b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
        pipelined.extend_from_slice(format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(100 << 10)).as_bytes());
        let (status, text) = raw(&addr, &pipelined);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("HTTP/1.1 414 "), "{text}");
        assert!(text.ends_with('}'), "{text}");
        cluster.stop_all().await.expect("stop");
    });
}

/// A body must be one JSON object, with each key once: serde takes an array for a struct
/// (`[5]` as `{"id": 5}`) and keeps the last of two equal map keys, dropping the other value.
#[test]
fn json_bodies_must_be_one_object_with_unique_keys() {
    let dir = tempfile::tempdir().expect("temporary directory");
    runtime().block_on(async {
        let mut cluster = Cluster::start(BIN.as_ref(), "redb", 1, dir.path(), &[])
            .await
            .expect("start");
        let base = format!("http://{}", cluster.node(1).http);
        let http = reqwest::Client::new();
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (
                http.post(format!("{base}/leave")).body("[5]"),
                400,
                "an array for /leave",
            ),
            (
                http.post(format!("{base}/join")).body("[7, \"a:1\", \"b:2\"]"),
                400,
                "an array for /join",
            ),
            (
                http.put(format!("{base}/key/k")).body("[\"v\"]"),
                400,
                "an array for PUT",
            ),
            (
                http.post(format!("{base}/key")).body(r#"{"a": "1", "a": "2"}"#),
                400,
                "a key given twice",
            ),
        ];
        for (request, expected, what) in cases {
            let response = request
                .timeout(SECS)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_json_error(status, &body, expected, what);
        }
        // Nothing of the refused bodies was written, and the refusal names the twice-given key.
        let twice = http
            .post(format!("{base}/key"))
            .body(r#"{"a": "1", "a": "2"}"#)
            .send()
            .await
            .expect("POST /key");
        let said: Value = twice.json().await.expect("JSON");
        assert!(
            said["error"]
                .as_str()
                .is_some_and(|e| e.contains("\"a\" is given twice")),
            "{said}"
        );
        let missing = http
            .get(format!("{base}/key/a"))
            .send()
            .await
            .expect("GET /key/a");
        assert_eq!(missing.status().as_u16(), 404);
        let status = cluster.status(1).await.expect("status");
        assert_eq!(status["members"].as_array().map(Vec::len), Some(1), "{status}");
        cluster.stop_all().await.expect("stop");
    });
}
