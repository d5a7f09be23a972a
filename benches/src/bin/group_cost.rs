//! The cost of a raft group in a multi-group store (`GroupStore`), per backend:
//!
//! - **memory of an idle open group**: the growth of the process's anonymous resident memory
//!   (`RssAnon`: the heap, not the page cache or LMDB's file-backed map) while the log store of
//!   every group of the reopened store is opened (nothing pending in any), divided by the
//!   number of groups; engine caches warmed by the reads count too, so it is an upper bound;
//! - **opening a store of many groups**: a store of `--groups` groups with `--entries` entries
//!   each (256-byte payloads) is closed and opened again; the time to open the store (it reads
//!   the group registry) and the time to open every group's log store (each reads its vote,
//!   committed and purged ids, its first and last log keys and its last entry).
//!
//! The entries are written through every group's log store at once, so the shared flusher
//! writes them in rounds of many groups; that time is printed too. The reopen runs in a child
//! process, so the heap it measures holds nothing left over from the writes.
//!
//! `cargo run --release -p raft-store-bench --bin group_cost -- [--groups N] [--entries N] [--only a,b] [--dir D]`

#![forbid(unsafe_code)]
// Byte counts and seconds shown with decimals: far below 2^52, the float casts are exact enough.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::Group;
use raft_store::StoreConfig;
use raft_store_core::LogStore;

openraft::declare_raft_types!(
    /// The type config of this bench: string payloads.
    pub Config: D = String, R = String
);

type Log = LogStore<Config, Group<AnyEngine>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Payload bytes of one entry.
const PAYLOAD: usize = 256;

struct Args {
    /// The child's part: reopen the store of this backend in this directory.
    reopen: Option<(String, PathBuf)>,
    groups: u64,
    entries: u64,
    only: Option<Vec<String>>,
    dir: Option<PathBuf>,
}

fn args() -> Res<Args> {
    let mut out = Args {
        reopen: None,
        groups: 10_000,
        entries: 100,
        only: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--groups" => out.groups = value()?.parse()?,
            "--entries" => out.entries = value()?.parse()?,
            "--only" => out.only = Some(value()?.split(',').map(str::to_string).collect()),
            "--dir" => out.dir = Some(PathBuf::from(value()?)),
            "--reopen" => {
                let backend = value()?;
                out.reopen = Some((backend, PathBuf::from(value()?)));
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if out.groups == 0 || out.entries == 0 {
        return Err("--groups and --entries must be at least 1".into());
    }
    Ok(out)
}

/// The process's anonymous resident memory, in bytes.
fn rss_anon() -> Res<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .ok_or("no RssAnon in /proc/self/status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or("RssAnon without a value")?
        .parse()?;
    Ok(kib * 1024)
}

fn entry(group: u64, index: u64) -> EntryOf<Config> {
    let mut payload = format!("group {group} entry {index} ");
    payload.extend(std::iter::repeat_n('x', PAYLOAD.saturating_sub(payload.len())));
    let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 };
    EntryOf::<Config>::new_normal(LogIdOf::<Config>::new(leader, index), payload)
}

struct Row {
    backend: &'static str,
    fill: Duration,
    idle_bytes: f64,
    open_store: Duration,
    open_groups: Duration,
}

/// Fill a new store in `dir`: `groups` groups of `entries` entries, written through every
/// group's log store at once. Returns how long the writes took.
async fn fill(backend: Backend, dir: &Path, a: &Args) -> Res<Duration> {
    let config = StoreConfig::new(backend, dir);
    let store = raft_store::open_groups(&config)?;
    store.create_groups(0..a.groups)?;
    let mut logs: Vec<Log> = Vec::with_capacity(usize::try_from(a.groups)?);
    for group in 0..a.groups {
        logs.push(LogStore::open(store.group(group)?)?);
    }
    let started = Instant::now();
    let mut waits = Vec::with_capacity(logs.len());
    for (group, log) in (0u64..).zip(logs.iter_mut()) {
        let entries = (1..=a.entries).map(|i| entry(group, i)).collect();
        waits.push(log.append_queued(entries)?);
    }
    for wait in waits {
        wait.await?;
    }
    let took = started.elapsed();
    drop(logs);
    drop(store);
    raft_store::wait_released(dir, Duration::from_secs(30)).await?;
    Ok(took)
}

/// In a process of its own (so the heap holds nothing of the fill): open the store in `dir`
/// and every group's log store, checking each ends at `entries`. Prints the time to open the
/// store, the time to open it and every group, and the anonymous memory per open group.
async fn reopen(backend: Backend, dir: &Path, a: &Args) -> Res<()> {
    let config = StoreConfig::new(backend, dir);
    let started = Instant::now();
    let store = raft_store::open_groups(&config)?;
    let open_store = started.elapsed();
    if store.groups().len() as u64 != a.groups {
        return Err(format!("{backend}: {} groups after the reopen", store.groups().len()).into());
    }
    let before = rss_anon()?;
    let mut logs: Vec<Log> = Vec::with_capacity(usize::try_from(a.groups)?);
    for group in 0..a.groups {
        let mut log: Log = LogStore::open(store.group(group)?)?;
        let state = log.get_log_state().await?;
        if state.last_log_id.map(|l| l.index) != Some(a.entries) {
            return Err(format!("{backend}: group {group} ends at {:?}", state.last_log_id).into());
        }
        logs.push(log);
    }
    let open_groups = started.elapsed();
    // Every group open and idle: its log store, its view, its cached vote and log ids, and
    // whatever the engine cached while reading them.
    let idle_bytes = rss_anon()?.saturating_sub(before) as f64 / a.groups as f64;
    println!(
        "{} {} {}",
        open_store.as_secs_f64(),
        open_groups.as_secs_f64(),
        idle_bytes
    );
    Ok(())
}

async fn measure(backend: Backend, dir: &Path, a: &Args) -> Res<Row> {
    let fill = fill(backend, dir, a).await?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--reopen", backend.name()])
        .arg(dir)
        .args([
            "--groups",
            &a.groups.to_string(),
            "--entries",
            &a.entries.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{backend}: the reopen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let figures: Vec<f64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [open_store, open_groups, idle_bytes] = figures[..] else {
        return Err(format!("{backend}: the reopen printed {text:?}").into());
    };
    Ok(Row {
        backend: backend.name(),
        fill,
        idle_bytes,
        open_store: Duration::from_secs_f64(open_store),
        open_groups: Duration::from_secs_f64(open_groups),
    })
}

fn main() -> Res<()> {
    let a = args()?;
    if let Some((backend, dir)) = &a.reopen {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        return rt.block_on(reopen(backend.parse()?, dir, &a));
    }
    let root = match &a.dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for name in ["redb", "lmdb", "rocksdb", "sled"] {
        if a.only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let backend: Backend = name.parse()?;
        let dir = root.path().join(name);
        eprintln!("{name}: {} groups x {} entries", a.groups, a.entries);
        rows.push(rt.block_on(measure(backend, &dir, &a))?);
    }
    let mut out = String::new();
    writeln!(
        out,
        "| backend | groups x entries | fill (all groups at once) | memory per idle open group | open the store | open it and every group's log store |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} x {} | {:.2} s | {:.0} B | {:.1} ms | {:.3} s |",
            r.backend,
            a.groups,
            a.entries,
            r.fill.as_secs_f64(),
            r.idle_bytes,
            r.open_store.as_secs_f64() * 1000.0,
            r.open_groups.as_secs_f64()
        )?;
    }
    print!("{out}");
    Ok(())
}
