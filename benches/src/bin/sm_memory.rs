//! Memory of the key-value state machine's snapshots: fills a store with `--size-mib` of data
//! (default 1024) through `KvStateMachine` on each backend, then builds a snapshot and installs
//! it into a fresh store, sampling the process's anonymous resident memory (`RssAnon`, heap and
//! engine caches; not the page cache or LMDB's file-backed map) every 2 ms during each step.
//! Prints a Markdown table: anonymous memory before each step, its peak during it, and the
//! growth, next to the data size.
//!
//! The engines' own caches count too: redb's page cache, RocksDB's block cache and memtables
//! and sled's cache are 64 MiB each by default and fill up while 1 GiB streams through them.
//! `--cache-mib N` sets all of them to N MiB, which separates what the engine is configured to
//! keep from what the state machine needs. Run one backend per process (`--only`) for a clean
//! baseline: memory freed by one backend is not always returned to the system.
//!
//! `cargo run --release -p raft-store-bench --bin sm_memory -- [--size-mib N] [--cache-mib N] [--only a,b] [--dir D]`

#![forbid(unsafe_code)]
// Byte counts shown in MiB with one decimal: far below 2^52, the float casts are exact enough.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use openraft::RaftSnapshotBuilder;
use openraft::entry::RaftEntry;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_core::LogStore;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvResponse;
use raft_store_core::kv::KvStateMachine;
use raft_store_core::kv::SnapshotFile;

openraft::declare_raft_types!(
    /// The type config of this bench: the key-value requests.
    pub Config: D = KvRequest, R = KvResponse
);

type Sm = KvStateMachine<Config, Arc<AnyEngine>>;
type Log = LogStore<Config, Arc<AnyEngine>>;

/// Value size: 4 KiB, so 1 GiB is 262,144 keys.
const VALUE: usize = 4096;
/// Pairs per entry and entries per apply call: 64 x 64 x 4 KiB = 16 MiB per call.
const PAIRS: usize = 64;
const ENTRIES: usize = 64;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut size_mib = 1024u64;
    let mut cache_mib: Option<usize> = None;
    let mut only: Option<Vec<String>> = None;
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size-mib" => size_mib = args.next().ok_or("--size-mib needs a number")?.parse()?,
            "--cache-mib" => cache_mib = Some(args.next().ok_or("--cache-mib needs a number")?.parse()?),
            "--only" => {
                only = Some(
                    args.next()
                        .ok_or("--only needs names")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                );
            }
            "--dir" => dir = PathBuf::from(args.next().ok_or("--dir needs a path")?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "| backend | engine caches | data | fill | anon before build | peak during build | growth | anon before install | peak during install | growth |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for backend in [Backend::Redb, Backend::Lmdb, Backend::Rocksdb, Backend::Sled] {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == backend.name()))
        {
            continue;
        }
        let root = tempfile::Builder::new().prefix("sm-memory-").tempdir_in(&dir)?;
        let row = rt.block_on(measure(backend, root.path(), size_mib, cache_mib))?;
        println!("{row}");
    }
    Ok(())
}

fn open(backend: Backend, dir: &Path, cache_mib: Option<usize>) -> Res<(Log, Sm)> {
    let mut config = StoreConfig::new(backend, dir.join("store"));
    if let Some(mib) = cache_mib {
        let bytes = mib << 20;
        config.redb.cache_size = bytes;
        config.rocksdb.block_cache_size = bytes;
        config.rocksdb.write_buffer_size = bytes;
        config.sled.cache_capacity = bytes as u64;
    }
    let engine = Arc::new(config.open_engine()?);
    let log = LogStore::open(engine.clone())?;
    let sm = KvStateMachine::open(engine, dir.join("snapshots"))?;
    Ok((log, sm))
}

fn log_id(index: u64) -> LogIdOf<Config> {
    LogIdOf::<Config>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    )
}

/// A value that does not compress (RocksDB and sled would otherwise store far less than the
/// data size): xorshift bytes, hex-encoded to stay a string.
fn value(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::with_capacity(VALUE);
    while s.len() < VALUE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(s, "{x:016x}");
    }
    s.truncate(VALUE);
    s
}

async fn measure(backend: Backend, root: &Path, size_mib: u64, cache_mib: Option<usize>) -> Res<String> {
    let keys = size_mib * (1 << 20) / VALUE as u64;
    let leader = root.join("leader");
    let started = Instant::now();
    {
        let (_log, mut sm) = open(backend, &leader, cache_mib)?;
        let mut key = 0u64;
        let mut index = 0u64;
        while key < keys {
            let mut entries: Vec<EntryOf<Config>> = Vec::with_capacity(ENTRIES);
            while entries.len() < ENTRIES && key < keys {
                let end = (key + PAIRS as u64).min(keys);
                let pairs = (key..end)
                    .map(|k| (format!("key/{k:010}"), value(k).into_bytes()))
                    .collect();
                key = end;
                index += 1;
                entries.push(EntryOf::<Config>::new_normal(
                    log_id(index),
                    KvRequest::SetMany { pairs },
                ));
            }
            sm.apply_entries(&entries)?;
        }
        sm.sync()?;
    }
    let fill = started.elapsed();
    eprintln!(
        "{backend}: filled {keys} keys ({size_mib} MiB) in {:.1} s",
        fill.as_secs_f64()
    );

    // Build on a freshly opened store, so caches start cold as after a restart.
    let (_log, mut sm) = open(backend, &leader, cache_mib)?;
    let mut builder = sm
        .try_create_snapshot_builder(true)
        .await
        .ok_or("no snapshot builder")?;
    let (built, build_mem) = sampled(builder.build_snapshot()).await;
    let built = built?;
    let path = built.snapshot.path().to_path_buf();
    let file_mib = std::fs::metadata(&path)?.len() as f64 / f64::from(1 << 20);
    eprintln!("{backend}: built a snapshot of {file_mib:.0} MiB");
    drop(builder);

    let follower = root.join("follower");
    let (_flog, mut fsm) = open(backend, &follower, cache_mib)?;
    let (installed, install_mem) =
        sampled(fsm.install_snapshot(&built.meta, SnapshotFile::open(&path)?)).await;
    installed?;
    // The install must hold every key: count them and check a few values.
    let mut count = 0u64;
    let mut checked = BTreeMap::new();
    fsm.reader().scan(&mut |k, v| {
        count += 1;
        if count % 65_536 == 1 {
            checked.insert(k.to_string(), v.len());
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if count != keys {
        return Err(format!("{backend}: the install holds {count} keys, expected {keys}").into());
    }
    for k in checked.keys() {
        let n: u64 = k.trim_start_matches("key/").parse()?;
        if fsm.reader().get(k)?.as_deref() != Some(value(n).as_bytes()) {
            return Err(format!("{backend}: wrong value for {k} after install").into());
        }
    }
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / f64::from(1 << 20));
    Ok(format!(
        "| {backend} | {} | {size_mib} MiB ({keys} keys) | {:.0} s | {} | {} | {} | {} | {} | {} |",
        match (backend, cache_mib) {
            (Backend::Lmdb, _) => "none (file-backed map)".to_string(),
            (_, Some(c)) => format!("{c} MiB"),
            (_, None) => "default (64 MiB)".to_string(),
        },
        fill.as_secs_f64(),
        mib(build_mem.0),
        mib(build_mem.1),
        mib(build_mem.1.saturating_sub(build_mem.0)),
        mib(install_mem.0),
        mib(install_mem.1),
        mib(install_mem.1.saturating_sub(install_mem.0)),
    ))
}

/// Run `fut`, sampling `RssAnon` every 2 ms; returns its output and (anon before, peak anon).
async fn sampled<F: std::future::Future>(fut: F) -> (F::Output, (u64, u64)) {
    let before = rss_anon();
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_anon(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = fut.await;
    peak.fetch_max(rss_anon(), Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, (before, peak.load(Ordering::Relaxed)))
}

/// The process's anonymous resident memory in bytes (0 where `/proc` is missing).
fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
