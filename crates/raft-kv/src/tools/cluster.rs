//! A cluster of real `raft-kv` processes on loopback ports, for the load command and the
//! tests: start, kill, restart, stop. Every node is given loopback ports found free below the
//! kernel's ephemeral range and reports its addresses on its first stdout line; a restarted
//! node reads them back from its data directory, so it comes back on the same ports.
//!
//! [`Cluster::start_secure`] starts the nodes with TLS (certificates as `raft-kv certs` writes
//! them) and an auth file; the cluster's own clients then trust its CA and send its token.

use std::path::Path;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::io::BufReader;
use tokio::process::Child;
use tokio::process::Command;

use crate::client::KvClient;
use crate::tls::ClientTls;

/// A multi-threaded runtime (two workers, all drivers) for driving a cluster from a test or a
/// command that is not async itself.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// One node process of a [`Cluster`].
pub struct ClusterNode {
    /// Node id.
    pub id: u64,
    /// Client API address.
    pub http: String,
    /// Raft address.
    pub raft: String,
    /// gRPC address.
    pub grpc: String,
    /// Data directory.
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl ClusterNode {
    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// TLS and tokens of a [`Cluster`].
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// A directory of certificates as `raft-kv certs` writes them (`ca.pem`, `node-<id>.pem`,
    /// `node-<id>-key.pem`): every node gets its own, and the cluster's clients trust the CA.
    pub certs: Option<PathBuf>,
    /// The auth file every node gets.
    pub auth_file: Option<PathBuf>,
    /// A token of the write role: what the cluster's clients send, and the nodes' join token.
    pub token: Option<String>,
}

impl Security {
    /// The flags of node `id` for these settings.
    pub fn node_args(&self, id: u64) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(dir) = &self.certs {
            for (flag, path) in [
                ("--tls-cert", crate::tools::certs::node_cert(dir, id)),
                ("--tls-key", crate::tools::certs::node_key(dir, id)),
                ("--tls-ca", crate::tools::certs::ca_cert(dir)),
            ] {
                args.push(flag.to_string());
                args.push(path.display().to_string());
            }
        }
        if let Some(file) = &self.auth_file {
            args.push("--auth-file".into());
            args.push(file.display().to_string());
        }
        if let Some(token) = &self.token {
            args.push("--join-token".into());
            args.push(token.clone());
        }
        args
    }
}

/// A set of `raft-kv` processes.
pub struct Cluster {
    binary: PathBuf,
    root: PathBuf,
    backend: String,
    extra: Vec<String>,
    security: Security,
    tls: Option<ClientTls>,
    /// The nodes, by position (node `i + 1` at index `i`).
    pub nodes: Vec<ClusterNode>,
    /// Addresses to give the next nodes before picking free ones (see
    /// [`give_next`](Self::give_next)).
    next_addresses: std::collections::VecDeque<String>,
}

/// How long a node may take to report its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The addresses a node reported: (http, raft, grpc).
type Addresses = (String, String, String);

/// A free loopback address on a port below the kernel's ephemeral range (32768 and up on
/// Linux). A node restarted after a kill must bind the same ports again; a port the kernel
/// picked (`:0`) is in the range it also gives outgoing connections, so any client on the host
/// (a load test's thousand connections, say) could hold it by then and fail the restart.
fn free_address() -> Result<String, String> {
    use std::hash::BuildHasher as _;
    use std::hash::Hasher as _;
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    let random = std::collections::hash_map::RandomState::new();
    for attempt in 0u32..200 {
        let mut hasher = random.build_hasher();
        hasher.write_u32(attempt);
        hasher.write_u32(std::process::id());
        let port = LOW + (hasher.finish() % u64::from(SPAN)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(format!("127.0.0.1:{port}"));
        }
    }
    Err(format!("no free port in {LOW}..{} after 200 tries", LOW + SPAN))
}

async fn spawn(binary: &Path, args: &[String], log: &Path) -> Result<(Child, Addresses), String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| format!("no address line within {START_TIMEOUT:?}; see {}", log.display()))?
        .map_err(|e| format!("reading stdout: {e}"))?
        .ok_or_else(|| {
            format!(
                "the node exited before listening: {}",
                std::fs::read_to_string(log).unwrap_or_default().trim()
            )
        })?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_string)
            .ok_or_else(|| format!("no {name} in {line:?}"))
    };
    let addresses = (field("http=")?, field("raft=")?, field("grpc=")?);
    // Keep reading stdout so the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addresses))
}

impl Cluster {
    /// Start `n` nodes of `binary` on `backend` under `root`: node 1 bootstraps, the others
    /// join through it; returns once every node is a voter. `extra` goes to every node.
    pub async fn start(
        binary: &Path,
        backend: &str,
        n: usize,
        root: &Path,
        extra: &[&str],
    ) -> Result<Cluster, String> {
        Self::start_secure(binary, backend, n, root, extra, Security::default()).await
    }

    /// [`start`](Self::start) with TLS and tokens as `security` says.
    pub async fn start_secure(
        binary: &Path,
        backend: &str,
        n: usize,
        root: &Path,
        extra: &[&str],
        security: Security,
    ) -> Result<Cluster, String> {
        let tls = match &security.certs {
            Some(dir) => Some(
                ClientTls::from_files(&crate::tools::certs::ca_cert(dir), None).map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let mut cluster = Cluster {
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            backend: backend.to_string(),
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
            security,
            tls,
            nodes: Vec::new(),
            next_addresses: std::collections::VecDeque::new(),
        };
        for id in 1..=n as u64 {
            let join = cluster.nodes.first().map(|n| n.http.clone());
            cluster.add(id, join.as_deref()).await?;
        }
        cluster.wait_for_voters(n, Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    /// Start node `id` (a new data directory), joining through `join` if given.
    ///
    /// A port found free can be taken by another test's node before this one binds it (the
    /// ports are picked, not handed out by the kernel): a node that exits because an address is
    /// in use is started again, from an empty data directory, on new ports (up to 5 times).
    pub async fn add(&mut self, id: u64, join: Option<&str>) -> Result<(), String> {
        let data_dir = self.root.join(format!("node-{id}"));
        let log = self.root.join(format!("node-{id}.log"));
        let mut attempt = 0;
        let (child, (http, raft, grpc)) = loop {
            attempt += 1;
            let args = self.node_args(id, &data_dir, join)?;
            match spawn(&self.binary, &args, &log).await {
                Ok(started) => break started,
                Err(e) if attempt < 5 && e.contains("Address already in use") => {
                    match std::fs::remove_dir_all(&data_dir) {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => return Err(format!("{e}; then removing {}: {err}", data_dir.display())),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        self.nodes.push(ClusterNode {
            id,
            http,
            raft,
            grpc,
            data_dir,
            child: Some(child),
        });
        Ok(())
    }

    /// Give `addresses` to the next nodes [`add`](Self::add) starts (http, raft, grpc of one
    /// node, then of the next), before any picked free. A test hands one that is taken to see
    /// the node started again on other ports.
    pub fn give_next(&mut self, addresses: impl IntoIterator<Item = String>) {
        self.next_addresses.extend(addresses);
    }

    /// The command line of a new node `id`, on ports given by [`give_next`](Self::give_next)
    /// or else free when this is called.
    fn node_args(&mut self, id: u64, data_dir: &Path, join: Option<&str>) -> Result<Vec<String>, String> {
        let mut next = || self.next_addresses.pop_front().map_or_else(free_address, Ok);
        let (http, raft, grpc) = (next()?, next()?, next()?);
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--http".into(),
            http,
            "--raft".into(),
            raft,
            "--grpc".into(),
            grpc,
            "--backend".into(),
            self.backend.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        if let Some(join) = join {
            args.push("--join".into());
            args.push(join.to_string());
        }
        args.extend(self.security.node_args(id));
        args.extend(self.extra.iter().cloned());
        Ok(args)
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> &ClusterNode {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// HTTP addresses of the running nodes.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.http.clone())
            .collect()
    }

    /// The client side of the cluster's TLS (its CA), if it has TLS.
    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// The token the cluster's clients send, if any.
    pub fn token(&self) -> Option<&str> {
        self.security.token.as_deref()
    }

    /// A client of `nodes` with the cluster's TLS and token.
    pub fn client_for(&self, nodes: Vec<String>) -> KvClient {
        let mut client = KvClient::new(nodes, Duration::from_secs(5), Duration::from_secs(20));
        if let Some(token) = &self.security.token {
            client = client.with_token(token.clone());
        }
        if let Some(tls) = &self.tls {
            client = match client.with_tls(tls) {
                Ok(client) => client,
                Err(e) => {
                    // Not expected (the CA loaded); a client of no node reports it per request.
                    eprintln!("cluster: {e}");
                    KvClient::new(Vec::new(), Duration::from_secs(5), Duration::from_secs(20))
                }
            };
        }
        client
    }

    /// A client of every running node.
    pub fn client(&self) -> KvClient {
        self.client_for(self.addresses())
    }

    /// A client of node `id` only.
    pub fn client_of(&self, id: u64) -> KvClient {
        self.client_for(vec![self.node(id).http.clone()])
    }

    /// `GET /status` of node `id`.
    pub async fn status(&self, id: u64) -> Result<Value, String> {
        self.client_of(id).status().await.map_err(|e| e.to_string())
    }

    /// The leader as the running nodes see it, once a majority of them agree on one.
    pub async fn leader(&self, timeout: Duration) -> Result<u64, String> {
        let start = Instant::now();
        loop {
            let mut votes = std::collections::BTreeMap::<u64, usize>::new();
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                if let Ok(status) = self.status(node.id).await
                    && let Some(leader) = status["leader"].as_u64()
                {
                    *votes.entry(leader).or_default() += 1;
                }
            }
            let running = self.nodes.iter().filter(|n| n.is_running()).count();
            if let Some((&leader, _)) = votes
                .iter()
                .find(|(l, c)| **c * 2 > running && self.node(**l).is_running())
            {
                return Ok(leader);
            }
            if start.elapsed() > timeout {
                return Err(format!("no leader agreed within {timeout:?}: {votes:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until node 1's membership has `n` voters and every running node applied as far as
    /// the leader's log.
    pub async fn wait_for_voters(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let leader = self.leader(timeout).await?;
            let status = self.status(leader).await?;
            let voters = status["members"].as_array().map_or(0, |m| {
                m.iter().filter(|m| m["voter"] == Value::Bool(true)).count()
            });
            if voters == n {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{voters} voters after {timeout:?}, expected {n}: {status}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until every running node has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                let applied = self
                    .status(node.id)
                    .await
                    .ok()
                    .and_then(|s| s["last_applied"].as_u64())
                    .unwrap_or(0);
                if applied >= index {
                    break;
                }
                if start.elapsed() > timeout {
                    return Err(format!(
                        "node {} applied {applied} < {index} after {timeout:?}",
                        node.id
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// SIGKILL node `id` and wait for it to die.
    /// Wait up to `timeout` for node `id` to exit by itself; its exit status.
    pub async fn wait_exit(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let Some(child) = self.node_mut(id).child.as_mut() else {
            return Err(format!("node {id} is not running"));
        };
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .map_err(|_| format!("node {id} did not exit within {timeout:?}"))?
            .map_err(|e| format!("waiting for node {id}: {e}"))?;
        self.node_mut(id).child = None;
        Ok(status)
    }

    /// Send SIGKILL to node `id` and wait for it to exit.
    pub async fn kill(&mut self, id: u64) -> Result<(), String> {
        if let Some(mut child) = self.node_mut(id).child.take() {
            child
                .kill()
                .await
                .map_err(|e| format!("killing node {id}: {e}"))?;
        }
        Ok(())
    }

    /// SIGTERM node `id` and wait for it to exit (it shuts raft down and closes its store).
    pub async fn stop(&mut self, id: u64) -> Result<(), String> {
        let Some(mut child) = self.node_mut(id).child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("node {id} exited with {status}")),
            Ok(Err(e)) => Err(format!("waiting for node {id}: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Err(format!("node {id} did not stop within 20 s of SIGTERM"))
            }
        }
    }

    /// SIGSTOP node `id`: it stays a member and keeps its sockets, but answers nothing (a
    /// follower stalled by a long pause, a swap storm or a debugger) until [`resume`](Self::resume).
    pub fn pause(&self, id: u64) -> Result<(), String> {
        self.signal(id, "-STOP")
    }

    /// SIGCONT node `id` after a [`pause`](Self::pause).
    pub fn resume(&self, id: u64) -> Result<(), String> {
        self.signal(id, "-CONT")
    }

    fn signal(&self, id: u64, signal: &str) -> Result<(), String> {
        let pid = self
            .node(id)
            .child
            .as_ref()
            .and_then(Child::id)
            .ok_or_else(|| format!("node {id} is not running"))?;
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|e| format!("kill {signal} node {id}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} node {id}: {status}"))
        }
    }

    /// Restart node `id` from its data directory alone (no other flags but its TLS and auth
    /// settings, which the data directory does not keep).
    pub async fn restart(&mut self, id: u64) -> Result<(), String> {
        if self.node(id).is_running() {
            return Err(format!("node {id} is running"));
        }
        let data_dir = self.node(id).data_dir.clone();
        let mut args = vec!["--data-dir".to_string(), data_dir.display().to_string()];
        args.extend(self.security.node_args(id));
        let log = self.root.join(format!("node-{id}.log"));
        let (child, addresses) = spawn(&self.binary, &args, &log).await?;
        let node = self.node_mut(id);
        let before = (node.http.clone(), node.raft.clone(), node.grpc.clone());
        if addresses != before {
            return Err(format!("node {id} came back on {addresses:?}, not {before:?}"));
        }
        node.child = Some(child);
        Ok(())
    }

    /// Stop every running node with SIGTERM.
    pub async fn stop_all(&mut self) -> Result<(), String> {
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect();
        let mut errors = Vec::new();
        for id in ids {
            if let Err(e) = self.stop(id).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Node `id`'s log (its stderr and stdout) so far; empty if it cannot be read.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(self.root.join(format!("node-{id}.log"))).unwrap_or_default()
    }

    /// The last lines of node `id`'s log, for failure messages.
    pub fn log_tail(&self, id: u64) -> String {
        let text = self.log_text(id);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}
