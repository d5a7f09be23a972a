//! Benchmark targets for raft-store: one small trait, [`Target`], implemented by every backend
//! through `LogStore` (the path openraft uses) and by the raw fsync floor.
//!
//! Every timed append is durable when it returns, on every target.

// Statistics over sample counts: the counts are far below 2^52, so float casts are exact enough.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

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

/// An entry with `size` payload bytes.
pub fn entry(index: u64, size: usize) -> EntryOf<BenchConfig> {
    let log_id = LogIdOf::<BenchConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    );
    EntryOf::<BenchConfig>::new_normal(log_id, "x".repeat(size))
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
