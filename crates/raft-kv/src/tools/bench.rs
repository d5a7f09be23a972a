//! `raft-kv bench`: for each backend, start a 3-node cluster of this binary on loopback ports,
//! then drive it with concurrent clients for a fixed time per phase: single-key writes to the
//! leader (each durable on a majority before the answer), linearizable reads on the leader,
//! and stale reads on the followers. Reports operations per second and latency percentiles,
//! and can append them as a section to the benchmark report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use serde_json::json;

use crate::Error;
use crate::client::KvClient;
use crate::tools::cluster::Cluster;

/// Options of `raft-kv bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Backends to measure, comma-separated.
    #[arg(long, default_value = "redb,lmdb,rocksdb,sled")]
    pub backends: String,
    /// Seconds per phase (writes, linearizable reads, stale reads).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent clients per phase.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Bytes per written value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Append the results as a Markdown section to this file (the benchmark report).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the raw results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory for the nodes' data (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Results of one phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// Operations completed.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Completed operations per second.
    pub per_second: f64,
    /// Median latency in microseconds.
    pub p50_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
}

fn percentile(sorted: &[u64], permille: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank: the smallest sample with at least permille/1000 of the samples at or below.
    let n = sorted.len();
    let rank = usize::try_from((n as u64 * permille.min(1000)).div_ceil(1000)).unwrap_or(n);
    sorted[rank.saturating_sub(1).min(n - 1)]
}

/// Run `clients` loops of `op` for `duration`; op gets (client, sequence number).
// Operation counts stay far below 2^52, where the f64 rate would round.
#[allow(clippy::cast_precision_loss)]
async fn phase<F, Fut>(clients: usize, duration: Duration, op: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut seq = 0u64;
            while start.elapsed() < duration {
                let t = Instant::now();
                if op(client, seq).await {
                    latencies.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                seq += 1;
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Phase {
        ops: all.len() as u64,
        errors,
        per_second: all.len() as f64 / elapsed,
        p50_us: percentile(&all, 500),
        p99_us: percentile(&all, 990),
    }
}

/// The results for one backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendResult {
    /// Backend name.
    pub backend: String,
    /// Single-key writes through the leader.
    pub writes: Phase,
    /// Linearizable reads on the leader.
    pub reads: Phase,
    /// Stale reads on the followers.
    pub stale_reads: Phase,
}

async fn measure(args: &BenchArgs, backend: &str, root: &std::path::Path) -> Result<BackendResult, Error> {
    let binary = std::env::current_exe().map_err(|e| Error::Io("finding this binary".into(), e))?;
    let dir = root.join(backend);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
    let mut cluster = Cluster::start(&binary, backend, 3, &dir, &[])
        .await
        .map_err(|e| Error::Cluster(format!("{backend}: starting the cluster: {e}")))?;
    let leader = cluster
        .leader(Duration::from_secs(30))
        .await
        .map_err(|e| Error::Cluster(format!("{backend}: {e}")))?;
    let duration = Duration::from_secs(args.seconds);
    let leader_client = Arc::new(cluster.client_of(leader));
    let value = Arc::new("v".repeat(args.value_size));
    let keys = 1000u64;
    eprintln!(
        "[bench] {backend}: writes, {} clients, {} s",
        args.clients, args.seconds
    );
    let writes = {
        let (c, v) = (leader_client.clone(), value.clone());
        phase(args.clients, duration, move |client, seq| {
            let (c, v) = (c.clone(), v.clone());
            async move {
                let key = format!("k{}", (client as u64 * 7919 + seq) % keys);
                c.put(&[(&key, &v)]).await.is_ok()
            }
        })
        .await
    };
    eprintln!("[bench] {backend}: linearizable reads on the leader");
    let reads = {
        let c = leader_client.clone();
        phase(args.clients, duration, move |client, seq| {
            let c = c.clone();
            async move {
                let key = format!("k{}", (client as u64 * 7919 + seq) % keys);
                c.get(&key, false).await.is_ok()
            }
        })
        .await
    };
    eprintln!("[bench] {backend}: stale reads on the followers");
    let followers: Vec<Arc<KvClient>> = cluster
        .nodes
        .iter()
        .filter(|n| n.id != leader)
        .map(|n| Arc::new(cluster.client_of(n.id)))
        .collect();
    let stale_reads = {
        let followers = Arc::new(followers);
        phase(args.clients, duration, move |client, seq| {
            let followers = followers.clone();
            async move {
                let c = &followers[client % followers.len()];
                let key = format!("k{}", (client as u64 * 7919 + seq) % keys);
                c.get(&key, true).await.is_ok()
            }
        })
        .await
    };
    cluster
        .stop_all()
        .await
        .map_err(|e| Error::Cluster(format!("{backend}: stopping the cluster: {e}")))?;
    Ok(BackendResult {
        backend: backend.to_string(),
        writes,
        reads,
        stale_reads,
    })
}

/// The Markdown section of the results.
// Microsecond latencies stay far below 2^52, where the f64 would round.
#[allow(clippy::cast_precision_loss)]
pub fn markdown(args: &BenchArgs, results: &[BackendResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## Replicated key-value cluster (raft-kv)\n");
    let _ = writeln!(
        out,
        "Three `raft-kv` processes on loopback ports per backend, {} concurrent HTTP clients, {} s per phase: single-key writes of {} B values to the leader (`POST /key`, each committed on a majority and applied before the answer), linearizable reads on the leader (`GET /key/k`, read index), stale reads on the two followers (`?stale=true`). Latencies in milliseconds as the client sees them. Command: `raft-kv bench --seconds {} --clients {}`.\n",
        args.clients, args.seconds, args.value_size, args.seconds, args.clients
    );
    let _ = writeln!(
        out,
        "| backend | writes/s | write p50 ms | write p99 ms | reads/s | read p50 ms | read p99 ms | stale reads/s | stale p50 ms | stale p99 ms | errors |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0} | {} | {} | {} |",
            r.backend,
            r.writes.per_second,
            ms(r.writes.p50_us),
            ms(r.writes.p99_us),
            r.reads.per_second,
            ms(r.reads.p50_us),
            ms(r.reads.p99_us),
            r.stale_reads.per_second,
            ms(r.stale_reads.p50_us),
            ms(r.stale_reads.p99_us),
            r.writes.errors + r.reads.errors + r.stale_reads.errors,
        );
    }
    out
}

/// Run the load command.
pub async fn run(args: BenchArgs) -> Result<(), Error> {
    let tmp;
    let root = if let Some(dir) = &args.dir {
        dir.clone()
    } else {
        tmp = tempfile::tempdir().map_err(|e| Error::Io("creating a temporary directory".into(), e))?;
        tmp.path().to_path_buf()
    };
    let mut results = Vec::new();
    for backend in args.backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        results.push(measure(&args, backend, &root).await?);
    }
    let section = markdown(&args, &results);
    println!("{section}");
    if let Some(path) = &args.report {
        let mut text = std::fs::read_to_string(path).unwrap_or_default();
        text.push_str(&section);
        std::fs::write(path, text).map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
    }
    if let Some(path) = &args.json {
        let value = json!({ "clients": args.clients, "seconds": args.seconds, "value_size": args.value_size, "results": results });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}
