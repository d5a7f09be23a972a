//! `scripts/cluster.sh` as the README uses it: start three nodes, write and read, add a
//! node, remove it, stop, start again from the data, clean. Free ports, a temporary directory.

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The backend of a test that wants one other than the default: sled in a build that has
/// it (CI's, with every feature), redb otherwise.
const SLED_OR_REDB: &str = if cfg!(feature = "sled") { "sled" } else { "redb" };

use raft_kv::client::KvClient;

struct Script {
    dir: PathBuf,
    tls: bool,
}

impl Script {
    fn run(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster.sh");
        let out = Command::new("bash")
            .arg(script)
            .args(args)
            .env("RAFT_KV_BIN", env!("CARGO_BIN_EXE_raft-kv"))
            .env("RAFT_KV_CLUSTER_DIR", &self.dir)
            .env("RAFT_KV_HTTP_BASE", "0")
            .env("RAFT_KV_TLS", if self.tls { "1" } else { "0" })
            .output()
            .expect("run cluster.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn http(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.http")))
            .expect("address file")
            .trim()
            .to_string()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // Never leave processes behind, whatever failed.
        let _ = std::panic::catch_unwind(|| self.run(&["stop"]));
    }
}

#[test]
fn cluster_script_walk_through() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let script = Script {
        dir: tmp.path().join("cluster"),
        tls: false,
    };
    let out = script.run(&["start", SLED_OR_REDB]);
    assert!(out.contains("cluster up"), "{out}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let nodes: Vec<String> = (1..=3).map(|id| script.http(id)).collect();
    runtime.block_on(async {
        let client = KvClient::new(
            vec![nodes[1].clone()],
            Duration::from_secs(5),
            Duration::from_secs(20),
        );
        client
            .put(&[("greeting", "hello")])
            .await
            .expect("put through node 2");
        let reader = KvClient::new(
            vec![nodes[2].clone()],
            Duration::from_secs(5),
            Duration::from_secs(20),
        );
        assert_eq!(
            reader.get_text("greeting", false).await.expect("get").as_deref(),
            Some("hello")
        );
    });
    let out = script.run(&["add"]);
    assert!(out.contains("node 4 joined"), "{out}");
    let out = script.run(&["status"]);
    assert_eq!(
        out.matches("\"voter\":true").count(),
        16,
        "four nodes each listing four voters: {out}"
    );
    let out = script.run(&["remove", "4"]);
    assert!(out.contains("node 4 left"), "{out}");
    let out = script.run(&["stop"]);
    assert_eq!(out.matches("stopped").count(), 3, "{out}");
    script.run(&["start"]);
    runtime.block_on(async {
        let client = KvClient::new(nodes.clone(), Duration::from_secs(5), Duration::from_secs(30));
        assert_eq!(
            client
                .get_text("greeting", false)
                .await
                .expect("get after restart")
                .as_deref(),
            Some("hello")
        );
        let status = client.status().await.expect("status");
        assert_eq!(status["members"].as_array().map(Vec::len), Some(3), "{status}");
    });
    script.run(&["clean"]);
    assert!(!script.dir.exists(), "clean left {}", script.dir.display());
}

#[test]
fn cluster_script_with_tls() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let script = Script {
        dir: tmp.path().join("cluster"),
        tls: true,
    };
    let out = script.run(&["start"]);
    assert!(
        out.contains("TLS on") && out.contains("cluster up: https://"),
        "{out}"
    );
    let ca = script.dir.join("certs/ca.pem");
    let tls = raft_kv::client::ClientTls::from_files(&ca, None).expect("the cluster CA");
    let token = |role: &str| {
        std::fs::read_to_string(script.dir.join(format!("certs/{role}-token")))
            .expect("the token file")
            .trim()
            .to_string()
    };
    let (write, read) = (token("write"), token("read"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let nodes: Vec<String> = (1..=3).map(|id| script.http(id)).collect();
    runtime.block_on(async {
        let client = KvClient::new(nodes.clone(), Duration::from_secs(5), Duration::from_secs(20))
            .with_tls(&tls)
            .expect("HTTPS client")
            .with_token(write.clone());
        client
            .put(&[("greeting", "hello")])
            .await
            .expect("put over HTTPS");
        // The script's cluster needs its tokens: none is refused, a read token may only read.
        let anonymous = KvClient::new(nodes.clone(), Duration::from_secs(5), Duration::from_secs(5))
            .with_tls(&tls)
            .expect("HTTPS client");
        let refused = anonymous
            .get_text("greeting", false)
            .await
            .expect_err("a read without a token");
        assert!(refused.to_string().contains("401"), "{refused}");
        let reader = KvClient::new(nodes.clone(), Duration::from_secs(5), Duration::from_secs(5))
            .with_tls(&tls)
            .expect("HTTPS client")
            .with_token(read.clone());
        assert_eq!(
            reader
                .get_text("greeting", false)
                .await
                .expect("a read token reads")
                .as_deref(),
            Some("hello")
        );
        let refused = reader
            .put(&[("greeting", "changed")])
            .await
            .expect_err("a write with a read token");
        assert!(refused.to_string().contains("403"), "{refused}");
        // Plain HTTP gets no answer from a TLS node.
        let plain = KvClient::new(
            vec![nodes[0].clone()],
            Duration::from_secs(5),
            Duration::from_secs(2),
        );
        assert!(plain.status().await.is_err());
    });
    let out = script.run(&["status"]);
    assert_eq!(
        out.matches("\"voter\":true").count(),
        9,
        "three nodes each listing three voters: {out}"
    );
    let out = script.run(&["add"]);
    assert!(
        out.contains("node 4 joined") && script.dir.join("certs/node-4.pem").exists(),
        "{out}"
    );
    let out = script.run(&["remove", "4"]);
    assert!(out.contains("node 4 left"), "{out}");
    script.run(&["stop"]);
    // A restart keeps TLS (the data directory does not remember it; the script does).
    let out = script.run(&["start"]);
    assert!(out.contains("cluster up: https://"), "{out}");
    runtime.block_on(async {
        let client = KvClient::new(nodes.clone(), Duration::from_secs(5), Duration::from_secs(30))
            .with_tls(&tls)
            .expect("HTTPS client")
            .with_token(write.clone());
        assert_eq!(
            client
                .get_text("greeting", false)
                .await
                .expect("get after restart")
                .as_deref(),
            Some("hello")
        );
    });
    script.run(&["clean"]);
}
