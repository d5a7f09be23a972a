//! Benchmarks for raft-store: one small trait, [`Target`], implemented by every backend through
//! `LogStore` (the path openraft uses), by the in-memory reference engine, by the raw fsync floor
//! and by a peer (the `raft-log` crate); a fixed set of operations over it ([`Op`]); and the
//! pieces of the comparative report ([`report`]).
//!
//! Every timed append, truncate and purge is durable when it returns, on every target: the
//! figures compare the same promise.
//!
//! ```no_run
//! use raft_store_bench::{Op, Samples, targets};
//!
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! for spec in targets() {
//!     let mut target = (spec.open)(&dir.path().join(spec.name))?;
//!     let op = Op::Append { batch: 1, size: 256 };
//!     let samples = Samples::collect(100, || op.run(&mut *target))?;
//!     println!("{}: p50 {:?}", spec.name, samples.percentile(50.0));
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
// Statistics over sample counts: the counts are far below 2^52, so float casts are exact enough.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

mod floor;
mod ops;
mod peer;
pub mod report;
mod store;

use std::io;
// openraft 0.9's `declare_raft_types!` names its default `SnapshotData` as plain `Cursor`.
#[allow(unused_imports)]
use std::io::Cursor;
use std::path::Path;

pub use floor::Floor;
use openraft::entry::RaftEntry;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
pub use ops::Op;
pub use ops::Samples;
pub use peer::RaftLogPeer;
pub use raft_store_core::OpenraftLine;
pub use store::Glue;
pub use store::Line09;
pub use store::Line10;
pub use store::Line10Codec;
pub use store::StoreTarget;

openraft::declare_raft_types!(
    /// The type config of the benchmarks: string payloads (serialized as raw bytes).
    pub BenchConfig: D = String, R = String
);

openraft_09::declare_raft_types!(
    /// The same type config on openraft 0.9, for the `--openraft 0.9` runs.
    pub BenchConfig09: D = String, R = String
);

/// What a target is, for grouping in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A plain file append plus `fdatasync`: what no durable log can beat.
    Floor,
    /// A raft-store backend through `LogStore`.
    Backend,
    /// `LogStore` over the in-memory engine: the cost of the store itself, without a disk.
    Memory,
    /// Another raft log storage, measured with the same entries and the same durability.
    Peer,
}

/// One benchmarked store.
///
/// Appends, truncates and purges are durable when the call returns. Operations a target cannot
/// do (the floor reads nothing back) return an [`io::ErrorKind::Unsupported`] error, which the
/// report shows as "n/a".
pub trait Target {
    /// The target's name in reports.
    fn name(&self) -> &str;

    /// Append `n` entries of `size` payload bytes after the last one, as one call, and return
    /// once they are durable.
    fn append(&mut self, n: u64, size: usize) -> io::Result<()>;

    /// Submit `n` appends of one entry each without waiting, then wait until the last one is
    /// durable (which, appends being ordered, makes all of them durable).
    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()>;

    /// Whether the target can do `op` at all (the floor only appends; a store in memory cannot
    /// be reopened).
    fn supports(&self, op: &Op) -> bool {
        let _ = op;
        true
    }

    /// Read entries `from..to` and return how many were read.
    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize> {
        let _ = (from, to);
        Err(unsupported(self.name(), "get_log"))
    }

    /// Remove every entry after `index`, durably.
    fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        let _ = index;
        Err(unsupported(self.name(), "truncate_after"))
    }

    /// Remove every entry up to and including `index`, durably.
    fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        let _ = index;
        Err(unsupported(self.name(), "purge"))
    }

    /// Close the store and open it again from its files, ready for appends.
    fn reopen(&mut self) -> io::Result<()> {
        Err(unsupported(self.name(), "reopen"))
    }

    /// Index of the last appended entry (0: none).
    fn last_index(&self) -> u64;

    /// Append `n` entries of `size` bytes as fast as the target allows (batches of 1,000) and
    /// return once all are durable. Used to prepare stores, never timed as an operation.
    fn fill(&mut self, n: u64, size: usize) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            let batch = left.min(1000);
            self.append(batch, size)?;
            left -= batch;
        }
        Ok(())
    }

    /// Bytes the target's files take on disk (allocated blocks), `None` for a store in memory.
    fn disk_bytes(&self) -> io::Result<Option<u64>>;
}

/// The error of an operation a target does not have.
fn unsupported(target: &str, op: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{target} does not support {op}"),
    )
}

/// The log id of `index` (term 1, node 0).
pub fn log_id(index: u64) -> LogIdOf<BenchConfig> {
    LogIdOf::<BenchConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    )
}

/// The openraft 0.9 log id of `index` (term 1, node 0).
pub fn log_id09(index: u64) -> openraft_09::LogId<u64> {
    openraft_09::LogId::new(openraft_09::CommittedLeaderId::new(1, 0), index)
}

/// The openraft 0.9 entry of `index` with `size` payload bytes: the same bytes as [`entry`].
pub fn entry09(index: u64, size: usize) -> openraft_09::Entry<BenchConfig09> {
    openraft_09::Entry {
        log_id: log_id09(index),
        payload: openraft_09::EntryPayload::Normal(payload(size)),
    }
}

/// The payload of every benchmark entry: `size` bytes.
pub fn payload(size: usize) -> String {
    "x".repeat(size)
}

/// An entry with `size` payload bytes.
pub fn entry(index: u64, size: usize) -> EntryOf<BenchConfig> {
    EntryOf::<BenchConfig>::new_normal(log_id(index), payload(size))
}

/// Opens a fresh target whose files live in the given (not yet existing) directory.
pub type Opener = fn(&Path) -> io::Result<Box<dyn Target>>;

/// A target the benchmarks know how to open, with what a report says about it.
#[derive(Clone, Copy)]
pub struct TargetSpec {
    /// Name in reports and on the command line.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
    /// The crate doing the storage and its version (from `Cargo.lock`, at build time).
    pub engine: &'static str,
    /// How a durable write reaches the disk on this target.
    pub fsync: &'static str,
    /// Opens a fresh instance.
    pub open: Opener,
}

fn boxed<T: Target + 'static>(t: T) -> Box<dyn Target> {
    Box::new(t)
}

/// Every target, in report order, with the backends' log stores on openraft 0.10.
pub fn targets() -> Vec<TargetSpec> {
    targets_on(OpenraftLine::V0_10)
}

fn redb<G: Glue>(dir: &Path) -> io::Result<Box<dyn Target>> {
    let open = |dir: &Path| {
        raft_store_redb::RedbEngine::open(dir, &raft_store_redb::RedbOptions::default())
            .map_err(|e| io::Error::new(e.kind(), e))
    };
    Ok(boxed(StoreTarget::<G, _>::reopenable("redb", dir, open)?))
}

fn lmdb<G: Glue>(dir: &Path) -> io::Result<Box<dyn Target>> {
    let open = |dir: &Path| {
        raft_store_lmdb::LmdbEngine::open(dir, &raft_store_lmdb::LmdbOptions::default())
            .map_err(|e| io::Error::new(e.kind(), e))
    };
    Ok(boxed(StoreTarget::<G, _>::reopenable("lmdb", dir, open)?))
}

fn rocksdb<G: Glue>(dir: &Path) -> io::Result<Box<dyn Target>> {
    let open = |dir: &Path| {
        raft_store_rocksdb::RocksEngine::open(dir, &raft_store_rocksdb::RocksOptions::default())
            .map_err(|e| io::Error::new(e.kind(), e))
    };
    Ok(boxed(StoreTarget::<G, _>::reopenable("rocksdb", dir, open)?))
}

fn sled<G: Glue>(dir: &Path) -> io::Result<Box<dyn Target>> {
    let open = |dir: &Path| {
        raft_store_sled::SledEngine::open(dir, &raft_store_sled::SledOptions::default())
            .map_err(|e| io::Error::new(e.kind(), e))
    };
    Ok(boxed(StoreTarget::<G, _>::reopenable("sled", dir, open)?))
}

fn mem<G: Glue>(_dir: &Path) -> io::Result<Box<dyn Target>> {
    Ok(boxed(StoreTarget::<G, _>::new(
        "mem",
        raft_store_core::MemEngine::new(),
    )?))
}

fn mem_bincode(_dir: &Path) -> io::Result<Box<dyn Target>> {
    Ok(boxed(
        StoreTarget::<Line10Codec<raft_store_core::Bincode>, _>::new(
            "mem-bincode",
            raft_store_core::MemEngine::new(),
        )?,
    ))
}

/// Every target, in report order: the floor, each backend, the in-memory engine, the peer; the
/// backends' log stores (and the in-memory one) through the storage traits of `line`.
pub fn targets_on(line: OpenraftLine) -> Vec<TargetSpec> {
    let v09 = line == OpenraftLine::V0_9;
    let mut specs = vec![
        TargetSpec {
            name: "floor",
            kind: Kind::Floor,
            engine: "std::fs::File",
            fsync: "one write of the entries' bytes, then fdatasync",
            open: |dir| Ok(boxed(Floor::new(dir)?)),
        },
        TargetSpec {
            name: "redb",
            kind: Kind::Backend,
            engine: concat!("redb ", env!("BENCH_VERSION_REDB")),
            fsync: "write transaction committed with Durability::Immediate (fsync of raft.redb) per group",
            open: if v09 { redb::<Line09> } else { redb::<Line10> },
        },
        TargetSpec {
            name: "lmdb",
            kind: Kind::Backend,
            engine: concat!(
                "heed ",
                env!("BENCH_VERSION_HEED"),
                " (lmdb-master-sys ",
                env!("BENCH_VERSION_LMDB_SYS"),
                ")"
            ),
            fsync: "mdb_txn_commit without NO_SYNC (fdatasync of data.mdb, then of its meta page) per group",
            open: if v09 { lmdb::<Line09> } else { lmdb::<Line10> },
        },
        TargetSpec {
            name: "rocksdb",
            kind: Kind::Backend,
            engine: concat!(
                "rocksdb ",
                env!("BENCH_VERSION_ROCKSDB"),
                " (librocksdb-sys ",
                env!("BENCH_VERSION_ROCKSDB_SYS"),
                ")"
            ),
            fsync: "WriteBatch with WriteOptions::sync (WAL append + fdatasync) per group",
            open: if v09 { rocksdb::<Line09> } else { rocksdb::<Line10> },
        },
        TargetSpec {
            name: "sled",
            kind: Kind::Backend,
            engine: concat!("sled ", env!("BENCH_VERSION_SLED")),
            fsync: "transaction, flush(), then fsync of the db file and new blobs per group",
            open: if v09 { sled::<Line09> } else { sled::<Line10> },
        },
        TargetSpec {
            name: "mem",
            kind: Kind::Memory,
            engine: "raft-store-core MemEngine",
            fsync: "none: memory only (the cost of LogStore itself)",
            open: if v09 { mem::<Line09> } else { mem::<Line10> },
        },
        TargetSpec {
            name: "mem-bincode",
            kind: Kind::Memory,
            engine: "raft-store-core MemEngine, bincode codec",
            fsync: "none: memory only; bincode with EntryCheck::equal() (openraft 0.10 glue), beside mem's default MessagePack: the codec's cost",
            open: mem_bincode,
        },
        TargetSpec {
            name: "raft-log",
            kind: Kind::Peer,
            engine: concat!("raft-log ", env!("BENCH_VERSION_RAFT_LOG")),
            fsync: "append, then flush(sync = true) (fdatasync of the WAL chunk, batched by its flush worker)",
            open: |dir| Ok(boxed(RaftLogPeer::open(dir)?)),
        },
        TargetSpec {
            name: "raft-log-nowait",
            kind: Kind::Peer,
            engine: concat!("raft-log ", env!("BENCH_VERSION_RAFT_LOG")),
            fsync: "as raft-log, with the flush worker's batch wait (default 1 ms) set to zero",
            open: |dir| {
                Ok(boxed(RaftLogPeer::with_batch_wait(
                    "raft-log-nowait",
                    dir,
                    Some(std::time::Duration::ZERO),
                )?))
            },
        },
    ];
    if v09 {
        // The codec comparison is one line's (0.10's): the codec does not depend on the line.
        specs.retain(|s| s.name != "mem-bincode");
    }
    specs
}

/// Every raft-store backend plus the in-memory engine (the targets that are `LogStore`s).
pub fn backends() -> Vec<TargetSpec> {
    targets()
        .into_iter()
        .filter(|t| matches!(t.kind, Kind::Backend | Kind::Memory))
        .collect()
}

/// Bytes the files under `path` take on disk (allocated 512-byte blocks, as `du` counts them).
pub fn allocated_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.blocks() * 512);
    }
    let mut total = 0;
    for item in std::fs::read_dir(path)? {
        total += allocated_bytes(&item?.path())?;
    }
    Ok(total)
}
