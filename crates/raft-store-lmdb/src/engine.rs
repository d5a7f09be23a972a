//! [`LmdbEngine`]: one LMDB environment, one named database per keyspace.

#![forbid(unsafe_code)]

use std::ops::Bound;
use std::path::Path;
use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;

use heed::Database;
use heed::Env;
use heed::PutFlags;
use heed::RwTxn;
use heed::WithoutTls;
use heed::types::Bytes;
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

use crate::env::open_env;
use crate::error::ctx;
use crate::error::from_heed;
use crate::options::LmdbOptions;

/// The backend name stored in the format record and the directory marker.
pub const BACKEND: &str = "lmdb";

type Db = Database<'static, Bytes, Bytes>;

struct Open {
    env: Env<WithoutTls>,
    dbs: [Db; 4],
    map_size: usize,
}

/// A raft-store [`Engine`] over an LMDB environment (through heed).
///
/// Layout: the store directory holds the raft-store marker and lock and LMDB's `data.mdb` and
/// `lock.mdb`, with one named database per [`Space`] (`log`, `meta`, `sm_data`, `sm_meta`).
///
/// Each [`Engine::write`] is one LMDB write transaction, durable on commit: LMDB is opened
/// without `NO_SYNC`, `NO_META_SYNC` or `WRITE_MAP`, modes in which a power loss may corrupt the
/// file. Syncs are grouped above, in the core's flusher, instead. A buffered write is therefore
/// durable too (stronger than asked). Log entries that extend the log are written with
/// `MDB_APPEND` (see [`LmdbOptions::append_mode`]). A write that finds the map full grows the
/// map and is retried (see [`LmdbOptions`]).
///
/// LMDB keeps no checksums of its pages and follows the page numbers and offsets it finds, so a
/// damaged page structure would fault inside LMDB. Before mapping the file, [`open`](Self::open)
/// reads every page reachable from the current meta page and refuses a file LMDB could fault on
/// (see [`LmdbOptions::verify_on_open`]); damage to a value is caught by the core's checksums
/// when it is read. Damage made while the store is open is not checked: keep the store on a
/// local file system and let no other program write its files.
///
/// LMDB stores keys of at most 511 bytes (its compile-time `MDB_MAXKEYSIZE`, as heed builds
/// it; [`Engine::limits`] reports the environment's own figure) and values of at most
/// `u32::MAX` bytes; a longer key fails the write with `MDB_BAD_VALSIZE`. The key-value state
/// machine of raft-store-core stores longer keys under a hash of them, so it takes keys of
/// any length on LMDB too.
pub struct LmdbEngine {
    state: RwLock<Option<Open>>,
    /// The environment's largest key, read once at open: it is fixed when LMDB is compiled.
    max_key: usize,
    path: PathBuf,
    options: LmdbOptions,
    dir: StoreDir,
}

fn page_round(n: usize) -> usize {
    const PAGE: usize = 64 * 1024; // a multiple of every common OS page size
    n.div_ceil(PAGE).saturating_mul(PAGE)
}

fn closed() -> EngineError {
    EngineError::backend(
        BACKEND,
        "using the environment",
        "the environment is closed after a failed map resize",
    )
}

fn open_all(dir: &Path, map_size: usize, options: &LmdbOptions) -> Result<Open, EngineError> {
    // Before mapping: LMDB trusts its file, and a file cut short or a damaged page structure
    // would fault inside LMDB instead of failing with an error.
    let databases = Space::ALL.map(Space::name);
    crate::check::check(&dir.join("data.mdb"), options.verify_on_open, &databases).map_err(|refusal| {
        match refusal {
            crate::check::Refusal::Damaged(detail) => EngineError::NotAStore {
                backend: BACKEND,
                path: dir.join("data.mdb"),
                detail,
            },
            // EIO from the disk is not a foreign file: say so, as an I/O error an operator retries.
            crate::check::Refusal::Io(what, source) => EngineError::io(BACKEND, what, source),
        }
    })?;
    let env = open_env(dir, map_size, options).map_err(|e| match e {
        heed::Error::Mdb(heed::MdbError::Invalid | heed::MdbError::VersionMismatch) => {
            EngineError::NotAStore {
                backend: BACKEND,
                path: dir.join("data.mdb"),
                detail: e.to_string(),
            }
        }
        heed::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            EngineError::PermissionDenied {
                backend: BACKEND,
                path: dir.to_path_buf(),
                source: io,
            }
        }
        other => from_heed("opening the environment", other),
    })?;
    let wtxn = env.write_txn().map_err(ctx("beginning a write transaction"))?;
    let dbs = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
            let mut dbs = Vec::with_capacity(Space::ALL.len());
            for space in Space::ALL {
                dbs.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(space.name()))?);
            }
            let dbs: [_; 4] = dbs
                .try_into()
                .map_err(|_| heed::Error::Mdb(heed::MdbError::Incompatible))?;
            Ok(heed::CommitOrAbort::<_, ()>::Commit(dbs))
        })
        .map_err(ctx("creating the databases"))?
        .unwrap_commit();
    let map_size = env.info().map_size;
    Ok(Open { env, dbs, map_size })
}

impl LmdbEngine {
    /// Open (or create) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: &LmdbOptions) -> Result<Self, EngineError> {
        let dir = dir.as_ref();
        let store_dir = StoreDir::open(BACKEND, dir)?;
        let open = open_all(dir, page_round(options.map_size.max(1 << 20)), options)?;
        let max_key = open.env.max_key_size();
        // The names of the files the engine just created are durable only once their
        // directories are synced; the first durable write must not vanish at a power cut.
        store_dir.sync_tree()?;
        Ok(Self {
            state: RwLock::new(Some(open)),
            max_key,
            path: dir.to_path_buf(),
            options: *options,
            dir: store_dir,
        })
    }

    /// The current map size in bytes.
    pub fn map_size(&self) -> usize {
        self.read().as_ref().map_or(0, |o| o.map_size)
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<Open>> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Grow the map after a write found it full at `full_at` bytes and needed about `need`.
    fn grow(&self, full_at: usize, need: usize) -> Result<(), EngineError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(open) = state.take() else {
            return Err(closed());
        };
        if open.map_size != full_at {
            // Another writer grew it meanwhile.
            *state = Some(open);
            return Ok(());
        }
        if full_at >= self.options.max_map_size {
            *state = Some(open);
            return Err(EngineError::backend(
                BACKEND,
                "writing",
                format!(
                    "the map is full at max_map_size = {} bytes",
                    self.options.max_map_size
                ),
            ));
        }
        let new_size = page_round(
            full_at
                .saturating_mul(2)
                .max(full_at.saturating_add(need.saturating_mul(2))),
        )
        .min(self.options.max_map_size);
        // Close before reopening: an environment must never be open twice in one process.
        let Open { env, .. } = open;
        env.prepare_for_closing().wait();
        let reopened = open_all(&self.path, new_size, &self.options)?;
        *state = Some(reopened);
        Ok(())
    }

    fn write_once(&self, open: &Open, batch: &Batch) -> Result<(), heed::Error> {
        let mut txn = open.env.write_txn()?;
        let mut log_last: Option<Option<Vec<u8>>> = None;
        for op in batch.ops() {
            let db = open.dbs[op.space() as usize];
            match op {
                Op::Put { space, key, value } => {
                    if *space == Space::Log && self.options.append_mode {
                        let last = match &log_last {
                            Some(last) => last.clone(),
                            None => db.last(&txn)?.map(|(k, _)| k.to_vec()),
                        };
                        if last.as_deref().is_none_or(|l| key.as_slice() > l) {
                            db.put_with_flags(&mut txn, PutFlags::APPEND, key, value)?;
                            log_last = Some(Some(key.clone()));
                            continue;
                        }
                        log_last = Some(last);
                    }
                    db.put(&mut txn, key, value)?;
                }
                Op::Delete { space, key } => {
                    db.delete(&mut txn, key)?;
                    if *space == Space::Log {
                        log_last = None;
                    }
                }
                Op::DeleteRange { space, start, end } => {
                    let range = match end {
                        Some(end) => KeyRange::half_open(start, end),
                        None => KeyRange::from(start),
                    };
                    if !range.is_empty() {
                        delete_range(db, &mut txn, range)?;
                    }
                    if *space == Space::Log {
                        log_last = None;
                    }
                }
            }
        }
        txn.commit()
    }
}

/// LMDB refuses zero-length keys (`EINVAL`), even as a range start; every key is at least the
/// empty key, so an inclusive empty start means no lower bound.
fn bounds(range: KeyRange<'_>) -> (Bound<&[u8]>, Bound<&[u8]>) {
    let start = match range.start {
        Bound::Included([]) => Bound::Unbounded,
        other => other,
    };
    (start, range.end)
}

fn delete_range(db: Db, txn: &mut RwTxn<'_>, range: KeyRange<'_>) -> Result<usize, heed::Error> {
    db.delete_range(txn, &bounds(range))
}

impl Engine for LmdbEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn write(&self, batch: &Batch, _durability: Durability) -> Result<(), EngineError> {
        // Bounded: each retry at least doubles the map, and growth stops at max_map_size.
        for _ in 0..64 {
            let map_size = {
                let state = self.read();
                let open = state.as_ref().ok_or_else(closed)?;
                match self.write_once(open, batch) {
                    Ok(()) => return Ok(()),
                    Err(heed::Error::Mdb(heed::MdbError::MapFull)) => open.map_size,
                    Err(e) => return Err(from_heed("writing a batch", e)),
                }
            };
            self.grow(map_size, batch.size_bytes())?;
        }
        Err(EngineError::backend(
            BACKEND,
            "writing a batch",
            "the map stayed full after growing it 64 times",
        ))
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let state = self.read();
        let open = state.as_ref().ok_or_else(closed)?;
        let txn = open.env.read_txn().map_err(ctx("beginning a read transaction"))?;
        Ok(open.dbs[space as usize]
            .get(&txn, key)
            .map_err(ctx("reading"))?
            .map(<[u8]>::to_vec))
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        if range.is_empty() {
            return Ok(());
        }
        let state = self.read();
        let open = state.as_ref().ok_or_else(closed)?;
        let txn = open.env.read_txn().map_err(ctx("beginning a read transaction"))?;
        for item in open.dbs[space as usize]
            .range(&txn, &bounds(range))
            .map_err(ctx("scanning"))?
        {
            let (k, v) = item.map_err(ctx("scanning"))?;
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        let state = self.read();
        let open = state.as_ref().ok_or_else(closed)?;
        let txn = open.env.read_txn().map_err(ctx("beginning a read transaction"))?;
        Ok(open.dbs[space as usize]
            .last(&txn)
            .map_err(ctx("reading the last key"))?
            .map(|(k, _)| k.to_vec()))
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        if range.is_empty() {
            return Ok(None);
        }
        let state = self.read();
        let open = state.as_ref().ok_or_else(closed)?;
        let txn = open.env.read_txn().map_err(ctx("beginning a read transaction"))?;
        let mut keys = open.dbs[space as usize]
            .rev_range(&txn, &bounds(range))
            .map_err(ctx("scanning"))?;
        match keys.next() {
            Some(item) => Ok(Some(item.map_err(ctx("scanning"))?.0.to_vec())),
            None => Ok(None),
        }
    }

    fn store_dir(&self) -> Option<&StoreDir> {
        Some(&self.dir)
    }

    /// Keys: the environment's `mdb_env_get_maxkeysize` (511 as heed builds LMDB). Values:
    /// LMDB's `MAXDATASIZE`, `0xFFFF_FFFF` bytes, checked by `mdb_put`; no limit on the pair.
    /// A value must also fit the map ([`LmdbOptions::max_map_size`]): that is room on disk,
    /// not a limit of the format, and a write over it fails as a full store.
    fn limits(&self) -> EngineLimits {
        EngineLimits {
            max_key: self.max_key,
            max_value: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
            max_pair: usize::MAX,
        }
    }
}
