//! Benchmark targets for raft-store: one small trait, [`Target`], implemented by every backend
//! through `LogStore` (the path openraft uses) and by the raw fsync floor.
//!
//! Every timed append is durable when it returns, on every target.

#![forbid(unsafe_code)]
// Statistics over sample counts: the counts are far below 2^52, so float casts are exact enough.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store_core::Engine;
use raft_store_core::LogStore;

openraft::declare_raft_types!(
    /// The type config of the benchmarks: string payloads (serialized as raw bytes).
    pub BenchConfig: D = String, R = String
);

/// One benchmarked store.
pub trait Target {
    /// The target's name in reports.
    fn name(&self) -> String;

    /// Append `n` entries of `size` payload bytes after the last one, as one call, and return
    /// once they are durable.
    fn append(&mut self, n: u64, size: usize) -> io::Result<()>;

    /// Submit `n` appends of one entry each without waiting, then wait for the last callback.
    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()>;
}

/// What a raft log store target can do beyond appending (the floor cannot).
pub trait LogTarget: Target {
    /// Read entries `from..to`; returns how many were read.
    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize>;

    /// Remove every entry after `index`.
    fn truncate_after(&mut self, index: u64) -> io::Result<()>;

    /// Remove every entry up to and including `index`, and wait until that is durable.
    fn purge(&mut self, index: u64) -> io::Result<()>;

    /// Index of the last appended entry (0: none).
    fn last_index(&self) -> u64;

    /// Append `n` entries of `size` bytes in batches of 1,000, pipelined, waiting for the last.
    fn fill(&mut self, n: u64, size: usize) -> io::Result<()>;
}

/// The log id of `index` (term 1, node 0).
pub fn log_id(index: u64) -> LogIdOf<BenchConfig> {
    LogIdOf::<BenchConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    )
}

/// An entry with `size` payload bytes.
pub fn entry(index: u64, size: usize) -> EntryOf<BenchConfig> {
    EntryOf::<BenchConfig>::new_normal(log_id(index), "x".repeat(size))
}

/// Constructors of every store target, by name, each opening a fresh store in a directory.
pub type Opener = fn(&Path) -> io::Result<Box<dyn LogTarget>>;

/// Every backend compiled into the benchmarks, through `LogStore`.
pub fn backends() -> Vec<(&'static str, Opener)> {
    vec![
        ("redb", |dir| {
            let engine = raft_store_redb::RedbEngine::open(dir, &raft_store_redb::RedbOptions::default())
                .map_err(|e| io::Error::new(e.kind(), e))?;
            Ok(Box::new(StoreTarget::new("redb", engine)?))
        }),
        ("lmdb", |dir| {
            let engine = raft_store_lmdb::LmdbEngine::open(dir, &raft_store_lmdb::LmdbOptions::default())
                .map_err(|e| io::Error::new(e.kind(), e))?;
            Ok(Box::new(StoreTarget::new("lmdb", engine)?))
        }),
        ("rocksdb", |dir| {
            let engine =
                raft_store_rocksdb::RocksEngine::open(dir, &raft_store_rocksdb::RocksOptions::default())
                    .map_err(|e| io::Error::new(e.kind(), e))?;
            Ok(Box::new(StoreTarget::new("rocksdb", engine)?))
        }),
        ("sled", |dir| {
            let engine = raft_store_sled::SledEngine::open(dir, &raft_store_sled::SledOptions::default())
                .map_err(|e| io::Error::new(e.kind(), e))?;
            Ok(Box::new(StoreTarget::new("sled", engine)?))
        }),
        ("mem", |_dir| {
            Ok(Box::new(StoreTarget::new(
                "mem",
                raft_store_core::MemEngine::new(),
            )?))
        }),
    ]
}

/// A [`LogStore`] over an engine, driven from a current-thread runtime.
pub struct StoreTarget<E: Engine> {
    name: String,
    store: LogStore<BenchConfig, E>,
    next: u64,
    rt: tokio::runtime::Runtime,
}

impl<E: Engine> StoreTarget<E> {
    /// Wrap an opened engine.
    pub fn new(name: impl Into<String>, engine: E) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            name: name.into(),
            store: LogStore::open(engine)?,
            next: 1,
            rt,
        })
    }
}

impl<E: Engine> Target for StoreTarget<E> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        let entries: Vec<_> = (self.next..self.next + n).map(|i| entry(i, size)).collect();
        self.next += n;
        let store = &mut self.store;
        self.rt.block_on(async {
            let (tx, rx) = BenchConfig::oneshot();
            store.append(entries, IOFlushed::signal(tx)).await?;
            rx.await.map_err(|_| io::Error::other("flush callback dropped"))?
        })
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        let first = self.next;
        self.next += n;
        let store = &mut self.store;
        self.rt.block_on(async {
            let mut last = None;
            for i in first..first + n {
                let (tx, rx) = BenchConfig::oneshot();
                store.append([entry(i, size)], IOFlushed::signal(tx)).await?;
                last = Some(rx);
            }
            match last {
                Some(rx) => rx.await.map_err(|_| io::Error::other("flush callback dropped"))?,
                None => Ok(()),
            }
        })
    }
}

impl<E: Engine> LogTarget for StoreTarget<E> {
    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize> {
        let store = &mut self.store;
        self.rt
            .block_on(async { Ok(store.try_get_log_entries(from..to).await?.len()) })
    }

    fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        let store = &mut self.store;
        self.next = index + 1;
        self.rt.block_on(async {
            store.truncate_after(Some(log_id(index))).await?;
            Ok(store.flush().await?)
        })
    }

    fn purge(&mut self, index: u64) -> io::Result<()> {
        let store = &mut self.store;
        self.rt.block_on(async {
            store.purge(log_id(index)).await?;
            Ok(store.flush().await?)
        })
    }

    fn last_index(&self) -> u64 {
        self.next - 1
    }

    fn fill(&mut self, n: u64, size: usize) -> io::Result<()> {
        let first = self.next;
        self.next += n;
        let store = &mut self.store;
        self.rt.block_on(async {
            let mut last = None;
            let mut i = first;
            while i < first + n {
                let end = (i + 1000).min(first + n);
                let (tx, rx) = BenchConfig::oneshot();
                store
                    .append((i..end).map(|j| entry(j, size)), IOFlushed::signal(tx))
                    .await?;
                last = Some(rx);
                i = end;
            }
            match last {
                Some(rx) => rx.await.map_err(|_| io::Error::other("flush callback dropped"))?,
                None => Ok(()),
            }
        })
    }
}

/// The floor: the same bytes appended to a plain file, each append followed by `fdatasync`.
pub struct Floor {
    file: File,
}

impl Floor {
    /// A floor file in `dir`.
    pub fn new(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("floor.log"))?,
        })
    }
}

impl Target for Floor {
    fn name(&self) -> String {
        "floor (write + fdatasync)".into()
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        // Same payload plus the envelope and key bytes a store writes, in one write.
        let per_entry = size + 5 + 8 + 16;
        self.file.write_all(&vec![b'x'; per_entry * n as usize])?;
        self.file.sync_data()
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        // Without a group commit of its own, the floor syncs every append.
        for _ in 0..n {
            self.append(1, size)?;
        }
        Ok(())
    }
}

/// Latency samples of one measured operation.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Time `op` `n` times.
    pub fn measure(n: usize, mut op: impl FnMut() -> io::Result<()>) -> io::Result<Self> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            op()?;
            out.push(t.elapsed());
        }
        out.sort_unstable();
        Ok(Self(out))
    }

    /// The `p`-th percentile (0..=100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }
}
