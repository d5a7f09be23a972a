//! [`LmdbOptions`]: map size, its growth, and how log keys are written.

#![forbid(unsafe_code)]

/// Options of an [`LmdbEngine`](crate::LmdbEngine).
///
/// **Map size and growth.** LMDB maps its file into memory and refuses writes past the map size
/// (`MDB_MAP_FULL`). The engine starts with [`map_size`](Self::map_size) (default 1 GiB of
/// address space; the file itself only grows as data is written) and, when a write finds the
/// map full, closes the environment, reopens it with twice the map size (or more if one batch
/// needs more) and retries the write, so the caller never sees `MapFull` while the disk has
/// space. Growth stops at [`max_map_size`](Self::max_map_size) (default 1 TiB); past it the
/// write fails with an error naming the limit. A store reopened later keeps the larger size.
///
/// **Key size.** LMDB stores keys of at most 511 bytes (fixed when LMDB is compiled; no option
/// changes it) and reports it through [`Engine::limits`](raft_store_engine::Engine::limits).
/// raft-store's own keys are short, and its key-value state machine stores a longer user key
/// under a hash of it, so applications need not bound their keys on LMDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct LmdbOptions {
    /// Initial map size in bytes (rounded up to a multiple of the page size). Default 1 GiB.
    pub map_size: usize,
    /// The map never grows past this many bytes. Default 1 TiB.
    pub max_map_size: usize,
    /// Maximum number of concurrent read transactions. Default 126 (LMDB's default).
    pub max_readers: u32,
    /// Write log entries that extend the log with `MDB_APPEND`, which skips the B-tree search
    /// and fills pages completely instead of splitting them in half. Default `true`.
    pub append_mode: bool,
    /// Read every page of `data.mdb` reachable from its current meta page on open and refuse a
    /// file whose page structure is damaged, which LMDB would otherwise follow into a crash
    /// (`SIGSEGV`) instead of an error. Costs one read of the live pages at each open (the
    /// bytes of values on overflow pages are skipped: the core checksums them). Default
    /// `true`; turn it off only where opening must not read the whole file and the file is
    /// trusted. With it off, a file cut short is refused only when it loses the root page of
    /// the free-page tree or of the main tree.
    pub verify_on_open: bool,
}

impl Default for LmdbOptions {
    fn default() -> Self {
        Self {
            map_size: 1 << 30,
            max_map_size: 1 << 40,
            max_readers: 126,
            append_mode: true,
            verify_on_open: true,
        }
    }
}

impl LmdbOptions {
    /// Set the initial map size in bytes.
    #[must_use]
    pub fn map_size(mut self, bytes: usize) -> Self {
        self.map_size = bytes;
        self
    }

    /// Set the largest map size growth may reach.
    #[must_use]
    pub fn max_map_size(mut self, bytes: usize) -> Self {
        self.max_map_size = bytes;
        self
    }

    /// Set the maximum number of concurrent readers.
    #[must_use]
    pub fn max_readers(mut self, readers: u32) -> Self {
        self.max_readers = readers;
        self
    }

    /// Use `MDB_APPEND` for entries that extend the log (or not).
    #[must_use]
    pub fn append_mode(mut self, on: bool) -> Self {
        self.append_mode = on;
        self
    }

    /// Check the page structure of `data.mdb` on open (or not).
    #[must_use]
    pub fn verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }
}
