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
//! writes them in rounds of many groups; that time is printed too.
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
    groups: u64,
    entries: u64,
    only: Option<Vec<String>>,
    dir: Option<PathBuf>,
}

fn args() -> Res<Args> {
    let mut out = Args {
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

async fn measure(backend: Backend, dir: &Path, a: &Args) -> Res<Row> {
    let config = StoreConfig::new(backend, dir);
    let fill;
    {
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
        fill = started.elapsed();
    }
    raft_store::wait_released(dir, Duration::from_secs(30)).await?;
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
    // Every group open and idle: what it costs is its log store, its view and its cached
    // vote and log ids.
    let idle_bytes = rss_anon()?.saturating_sub(before) as f64 / a.groups as f64;
    Ok(Row {
        backend: backend.name(),
        fill,
        idle_bytes,
        open_store,
        open_groups,
    })
}

fn main() -> Res<()> {
    let a = args()?;
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
