//! [`RocksOptions`]: RocksDB settings for a raft log workload.

use std::fmt;

/// Compression of a column family's SST files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4.
    Lz4,
}

/// Options of a [`RocksEngine`](crate::RocksEngine).
///
/// Durability never depends on these: every durable group is one `WriteBatch` written with a
/// synced WAL write, and the WAL is always on.
/// With feature `serde`, every field but [`db_options`](Self::db_options) reads from a config
/// file (`snake_case` names, each field optional with its default).
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct RocksOptions {
    /// Memtable size per column family, in bytes. Default 64 MiB.
    pub write_buffer_size: usize,
    /// Shared LRU block cache, in bytes. Default 64 MiB.
    pub block_cache_size: usize,
    /// Once the WALs hold this many bytes, RocksDB flushes the column families that keep the
    /// oldest WAL alive, so a rarely written keyspace cannot pin WAL files. Default 256 MiB.
    pub max_total_wal_size: u64,
    /// WAL files kept for reuse instead of creating new ones: a synced write to a reused,
    /// preallocated file needs no file-size metadata update. Default 4. RocksDB allows this only
    /// with its point-in-time WAL recovery mode, which this engine always uses (it drops
    /// recycling itself with the other modes, whose recovery could not tell recycled garbage
    /// from real corruption).
    pub recycle_log_file_num: usize,
    /// Compression of the log column family. Default none: log entries are read back soon and
    /// deleted soon, so compressing them costs CPU on the append path for little gain.
    pub log_compression: Compression,
    /// Compression of the state machine's data column family. Default LZ4.
    pub data_compression: Compression,
    /// After a purge, compact the purged range in a background thread so its space comes back
    /// without waiting for RocksDB's own compactions; appends never wait for it. Default `true`.
    pub compact_after_purge: bool,
    /// Your own `rocksdb::Options`, used instead of the settings above (which then do not
    /// apply). The engine still forces what it needs: `create_if_missing`,
    /// `create_missing_column_families`, point-in-time WAL recovery, automatic WAL flushing
    /// (`manual_wal_flush = false`) and `track_and_verify_wals_in_manifest`.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub db_options: Option<rocksdb::Options>,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            write_buffer_size: 64 << 20,
            block_cache_size: 64 << 20,
            max_total_wal_size: 256 << 20,
            recycle_log_file_num: 4,
            log_compression: Compression::None,
            data_compression: Compression::Lz4,
            compact_after_purge: true,
            db_options: None,
        }
    }
}

impl Clone for RocksOptions {
    fn clone(&self) -> Self {
        Self {
            db_options: self.db_options.clone(),
            ..*self
        }
    }
}

impl fmt::Debug for RocksOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksOptions")
            .field("write_buffer_size", &self.write_buffer_size)
            .field("block_cache_size", &self.block_cache_size)
            .field("max_total_wal_size", &self.max_total_wal_size)
            .field("recycle_log_file_num", &self.recycle_log_file_num)
            .field("log_compression", &self.log_compression)
            .field("data_compression", &self.data_compression)
            .field("compact_after_purge", &self.compact_after_purge)
            .field("db_options", &self.db_options.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl RocksOptions {
    /// Use your own `rocksdb::Options` (see [`RocksOptions::db_options`]).
    #[must_use]
    pub fn with_db_options(mut self, options: rocksdb::Options) -> Self {
        self.db_options = Some(options);
        self
    }

    /// Set the memtable size per column family.
    #[must_use]
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Set the block cache size.
    #[must_use]
    pub fn block_cache_size(mut self, bytes: usize) -> Self {
        self.block_cache_size = bytes;
        self
    }

    /// Compact purged ranges in the background (or not).
    #[must_use]
    pub fn compact_after_purge(mut self, on: bool) -> Self {
        self.compact_after_purge = on;
        self
    }
}
