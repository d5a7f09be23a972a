//! [`RocksEngine`]: one RocksDB database, one column family per keyspace.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use raft_store_engine::Batch;
use raft_store_engine::Durability;
use raft_store_engine::Engine;
use raft_store_engine::EngineError;
use raft_store_engine::EngineLimits;
use raft_store_engine::KeyRange;
use raft_store_engine::Op;
use raft_store_engine::Space;
use raft_store_engine::StoreDir;
use raft_store_engine::Visitor;
use rocksdb::BlockBasedOptions;
use rocksdb::Cache;
use rocksdb::ColumnFamily;
use rocksdb::ColumnFamilyDescriptor;
use rocksdb::DB;
use rocksdb::DBCompressionType;
use rocksdb::DBRecoveryMode;
use rocksdb::ReadOptions;
use rocksdb::WriteBatch;
use rocksdb::WriteOptions;

use crate::error::ctx;
use crate::error::from_rocks;
use crate::options::Compression;
use crate::options::RocksOptions;

/// The backend name stored in the format record and the directory marker.
pub const BACKEND: &str = "rocksdb";

/// The RocksDB directory inside the store directory.
pub const ROCKS_DIR: &str = "rocksdb";

/// A raft-store [`Engine`] over RocksDB.
///
/// Layout: the store directory holds the raft-store marker and lock and RocksDB's own
/// directory `rocksdb/`, with one column family per [`Space`] (`log`, `meta`, `sm_data`,
/// `sm_meta`; `default` stays empty).
///
/// Each [`Engine::write`] is one `WriteBatch`, atomic across column families. A durable write
/// is written with `WriteOptions::sync = true`: RocksDB appends the batch to the WAL and syncs
/// the WAL before returning. Durability comes from the WAL only, never from memtable flushes;
/// recovery uses point-in-time WAL recovery, which stops at the first damaged record, so an
/// acknowledged (synced) batch is always replayed and an unsynced tail may be cut, never a
/// middle. The sizes of closed WALs are tracked in the MANIFEST
/// (`track_and_verify_wals_in_manifest`), so one cut short is refused rather than replayed in
/// part beside column families already flushed past it.
///
/// Truncate and purge are `delete_range` tombstones in the same batch. After a purge, a
/// background thread drops the SST files wholly inside the purged range and compacts the rest
/// of it, so the space comes back; the writer never waits for that thread.
pub struct RocksEngine {
    db: Arc<DB>,
    /// Serializes writes: a range delete without an upper bound needs the last key, which must
    /// not change before the batch lands.
    writer: Mutex<()>,
    compactor: Option<(Sender<Compact>, JoinHandle<()>)>,
    dir: StoreDir,
}

fn compression(c: Compression) -> DBCompressionType {
    match c {
        Compression::None => DBCompressionType::None,
        Compression::Lz4 => DBCompressionType::Lz4,
    }
}

fn db_options(options: &RocksOptions) -> (rocksdb::Options, Vec<ColumnFamilyDescriptor>) {
    let mut db = options.db_options.clone().unwrap_or_else(|| {
        let mut o = rocksdb::Options::default();
        o.set_max_total_wal_size(options.max_total_wal_size);
        o.set_recycle_log_file_num(options.recycle_log_file_num);
        o.set_keep_log_file_num(4);
        o
    });
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    db.set_manual_wal_flush(false);
    // A column family flushed to an SST is ahead of the others, whose records stay in the
    // older WAL until they flush too. A damaged older WAL that ends cleanly at a record
    // boundary would then open as a mix of the two (a log without the vote and purge record
    // written with it): the corruption tests found one. Tracking closed WALs' sizes in the
    // MANIFEST makes RocksDB refuse a WAL shorter than it was; it costs a MANIFEST record per
    // WAL switch, nothing per write.
    db.set_track_and_verify_wals_in_manifest(true);

    let cache = Cache::new_lru_cache(options.block_cache_size);
    let cfs = Space::ALL
        .iter()
        .map(|space| {
            let cf = if let Some(custom) = &options.db_options {
                custom.clone()
            } else {
                let mut cf = rocksdb::Options::default();
                cf.set_write_buffer_size(options.write_buffer_size);
                let mut table = BlockBasedOptions::default();
                table.set_block_cache(&cache);
                cf.set_block_based_table_factory(&table);
                cf.set_compression_type(match space {
                    Space::Log => compression(options.log_compression),
                    Space::Data => compression(options.data_compression),
                    Space::Meta | Space::DataMeta => DBCompressionType::None,
                });
                cf
            };
            ColumnFamilyDescriptor::new(space.name(), cf)
        })
        .collect();
    (db, cfs)
}

impl RocksEngine {
    /// Open (or create) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: &RocksOptions) -> Result<Self, EngineError> {
        let dir = dir.as_ref();
        let store_dir = StoreDir::open(BACKEND, dir)?;
        let rocks_dir = dir.join(ROCKS_DIR);
        let (db_opts, cfs) = db_options(options);
        let db = DB::open_cf_descriptors(&db_opts, &rocks_dir, cfs).map_err(|e| match e.kind() {
            rocksdb::ErrorKind::Corruption
            | rocksdb::ErrorKind::InvalidArgument
            | rocksdb::ErrorKind::NotSupported => EngineError::NotAStore {
                backend: BACKEND,
                path: rocks_dir.clone(),
                detail: e.into_string(),
            },
            rocksdb::ErrorKind::IOError if e.to_string().contains("lock") => EngineError::Locked {
                backend: BACKEND,
                path: rocks_dir.clone(),
                detail: e.into_string(),
            },
            _ => from_rocks("opening the database", e),
        })?;
        let db = Arc::new(db);
        let compactor = if options.compact_after_purge {
            Some(spawn_compactor(db.clone())?)
        } else {
            None
        };
        // The names of the files the engine just created are durable only once their
        // directories are synced; the first durable write must not vanish at a power cut.
        store_dir.sync_tree()?;
        Ok(Self {
            db,
            writer: Mutex::new(()),
            compactor,
            dir: store_dir,
        })
    }

    fn cf(&self, space: Space) -> Result<&ColumnFamily, EngineError> {
        self.db.cf_handle(space.name()).ok_or_else(|| {
            EngineError::backend(
                BACKEND,
                "finding a column family",
                format!("column family {space} is missing"),
            )
        })
    }

    /// The key right after every key of `space` in the database and in `puts` (keys this batch
    /// writes before the range delete), or `None` if there is no key at all.
    fn end_after_last(&self, space: Space, puts: Option<&Vec<u8>>) -> Result<Option<Vec<u8>>, EngineError> {
        let last = self.last_key(space)?;
        let mut end = match (last, puts) {
            (Some(a), Some(b)) => a.max(b.clone()),
            (Some(a), None) => a,
            (None, Some(b)) => b.clone(),
            (None, None) => return Ok(None),
        };
        end.push(0);
        Ok(Some(end))
    }
}

/// What the compaction thread is asked to do.
enum Compact {
    /// Reclaim the log keys below this exclusive end (a purge landed).
    Purged(Vec<u8>),
    /// Tell the sender once every request sent before this one is done.
    Idle(std::sync::mpsc::Sender<()>),
}

/// The last 8-byte log key strictly below the exclusive bound `end`, or `None` if there is
/// none. `DeleteFilesInRange` includes its end key, so it must get the last purged key, never
/// the first kept one (a file ending at the first kept entry would be dropped with it).
fn last_log_key_below(end: &[u8]) -> Option<[u8; 8]> {
    match end.len() {
        // A log key: the one before it.
        8 => raft_store_engine::codec::log_index(end)?
            .checked_sub(1)
            .map(raft_store_engine::codec::log_key),
        // `end_after_last` appends a zero byte to the last key: that key itself is the last one
        // below.
        9 if end.last() == Some(&0) => end.get(..8)?.try_into().ok(),
        _ => None,
    }
}

/// A thread that compacts purged log ranges, coalescing requests that arrive while it works.
fn spawn_compactor(db: Arc<DB>) -> Result<(Sender<Compact>, JoinHandle<()>), EngineError> {
    let (tx, rx) = std::sync::mpsc::channel::<Compact>();
    let handle = std::thread::Builder::new()
        .name("raft-store-rocksdb-compact".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut end: Option<Vec<u8>> = None;
                let mut idle = Vec::new();
                for request in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                    match request {
                        Compact::Purged(e) => end = Some(end.map_or(e.clone(), |end| end.max(e))),
                        Compact::Idle(tx) => idle.push(tx),
                    }
                }
                if let Some(end) = end {
                    let Some(cf) = db.cf_handle(Space::Log.name()) else {
                        return;
                    };
                    // Dropping whole files first frees most of the space at once; the compaction
                    // then rewrites the files that straddle the end of the range.
                    if let Some(last) = last_log_key_below(&end)
                        && let Err(e) = db.delete_file_in_range_cf(cf, [].as_slice(), last.as_slice())
                    {
                        // The space still comes back with the compaction below; nothing to fail.
                        tracing::warn!(error = %e, "raft-store-rocksdb: dropping purged files failed");
                    }
                    db.compact_range_cf(cf, None::<&[u8]>, Some(end.as_slice()));
                }
                for tx in idle {
                    let _ = tx.send(());
                }
            }
        })
        .map_err(|e| EngineError::io(BACKEND, "spawning the compaction thread", e))?;
    Ok((tx, handle))
}

impl Drop for RocksEngine {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.compactor.take() {
            drop(tx);
            let _ = handle.join();
        }
    }
}

impl Engine for RocksEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut wb = WriteBatch::default();
        let mut purged_to: Option<Vec<u8>> = None;
        let mut max_put: [Option<Vec<u8>>; 4] = Default::default();
        for op in batch.ops() {
            let space = op.space();
            let cf = self.cf(space)?;
            match op {
                Op::Put { key, value, .. } => {
                    let m = &mut max_put[space as usize];
                    if m.as_ref().is_none_or(|m| key > m) {
                        *m = Some(key.clone());
                    }
                    wb.put_cf(cf, key, value);
                }
                Op::Delete { key, .. } => wb.delete_cf(cf, key),
                Op::DeleteRange { start, end, .. } => {
                    let end = match end {
                        Some(end) => end.clone(),
                        None => match self.end_after_last(space, max_put[space as usize].as_ref())? {
                            Some(end) => end,
                            None => continue,
                        },
                    };
                    if end <= *start {
                        continue;
                    }
                    if space == Space::Log && start.is_empty() {
                        purged_to = Some(end.clone());
                    }
                    wb.delete_range_cf(cf, start, &end);
                }
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(durability == Durability::Durable);
        self.db.write_opt(wb, &wo).map_err(ctx("writing a batch"))?;
        if let (Some(end), Some((tx, _))) = (purged_to, &self.compactor) {
            // The compactor only exits when the engine drops it; a send cannot fail before.
            let _ = tx.send(Compact::Purged(end));
        }
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(space)?, key)
            .map_err(ctx("reading"))?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        if range.is_empty() {
            return Ok(());
        }
        let mut ro = ReadOptions::default();
        match range.end {
            std::ops::Bound::Excluded(e) => ro.set_iterate_upper_bound(e.to_vec()),
            std::ops::Bound::Included(e) => {
                let mut bound = e.to_vec();
                bound.push(0);
                ro.set_iterate_upper_bound(bound);
            }
            std::ops::Bound::Unbounded => {}
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(space)?, ro);
        match range.start {
            std::ops::Bound::Included(s) | std::ops::Bound::Excluded(s) => it.seek(s),
            std::ops::Bound::Unbounded => it.seek_to_first(),
        }
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let skip = matches!(range.start, std::ops::Bound::Excluded(s) if k == s);
            if !skip && visit(k, v).is_break() {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(ctx("scanning"))
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        let mut it = self.db.raw_iterator_cf(self.cf(space)?);
        it.seek_to_last();
        let key = if it.valid() {
            it.key().map(<[u8]>::to_vec)
        } else {
            None
        };
        it.status().map_err(ctx("reading the last key"))?;
        Ok(key)
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        if range.is_empty() {
            return Ok(None);
        }
        let mut it = self.db.raw_iterator_cf(self.cf(space)?);
        // seek_for_prev lands on the greatest key at or below its target.
        match range.end {
            std::ops::Bound::Unbounded => it.seek_to_last(),
            std::ops::Bound::Included(e) | std::ops::Bound::Excluded(e) => it.seek_for_prev(e),
        }
        while it.valid() {
            let Some(k) = it.key() else { break };
            if matches!(range.end, std::ops::Bound::Excluded(e) if k >= e) {
                it.prev();
                continue;
            }
            let key = range.contains(k).then(|| k.to_vec());
            it.status().map_err(ctx("reading the last key of a range"))?;
            return Ok(key);
        }
        it.status().map_err(ctx("reading the last key of a range"))?;
        Ok(None)
    }

    fn store_dir(&self) -> Option<&StoreDir> {
        Some(&self.dir)
    }

    /// RocksDB's write batch refuses (`InvalidArgument`, "key is too large" / "value is too
    /// large") a key over `u32::MAX - 8` bytes (8 bytes of sequence number and type are added
    /// to it inside, and the sum must fit a `u32`: `kMaxWriteBatchKeySize` in
    /// `db/write_batch.cc`) and a value over `u32::MAX` bytes. RocksDB's FAQ advises keys of at
    /// most 8 MB and values of at most 3 GB for speed; those are advice, not limits.
    fn limits(&self) -> EngineLimits {
        let u32_max = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        EngineLimits {
            max_key: u32_max - 8,
            max_value: u32_max,
            max_pair: usize::MAX,
        }
    }

    /// Flush every column family's memtable to SST files, wait for the purge compactions asked
    /// for so far, then compact the log column family into the bottom level.
    fn compact(&self) -> Result<(), EngineError> {
        for space in Space::ALL {
            self.db
                .flush_cf(self.cf(space)?)
                .map_err(ctx("flushing a memtable"))?;
        }
        if let Some((tx, _)) = &self.compactor {
            let (done, idle) = std::sync::mpsc::channel();
            if tx.send(Compact::Idle(done)).is_ok() {
                // The thread answers once it has handled every earlier request.
                let _ = idle.recv();
            }
        }
        self.db
            .compact_range_cf(self.cf(Space::Log)?, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }
}
