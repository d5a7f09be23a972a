//! [`RedbEngine`]: one redb database file, one table per keyspace.

use std::ops::Bound;
use std::path::Path;
use std::path::PathBuf;

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
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;

use crate::error::ctx;
use crate::error::from_redb;
use crate::options::RedbOptions;

/// The backend name stored in the format record and the directory marker.
pub const BACKEND: &str = "redb";

/// The database file inside the store directory.
pub const FILE_NAME: &str = "raft.redb";

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

const fn table(space: Space) -> Table {
    TableDefinition::new(space.name())
}

/// A raft-store [`Engine`] over a redb database.
///
/// Layout: the store directory holds the raft-store marker and lock and one redb file,
/// `raft.redb`, with one table per [`Space`] (`log`, `meta`, `sm_data`, `sm_meta`).
///
/// Each [`Engine::write`] is one redb write transaction, so a batch is atomic across tables. A
/// durable write commits with `Durability::Immediate` (fsync before the commit returns); a
/// buffered one with `Durability::None`, which redb keeps out of the file until the next
/// immediate commit, so a crash never leaves a torn or corrupt file. Range deletes use
/// `retain_in` inside the same transaction.
///
/// A panic inside redb (its debug builds panic on some corrupt pages) is caught and returned as
/// an error, so damaged data never takes the process down.
pub struct RedbEngine {
    db: redb::Database,
    options: RedbOptions,
    dir: StoreDir,
}

/// Run a redb call, turning a panic into an error.
fn guard<T>(context: &str, f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    raft_store_engine::catch_panic(BACKEND, context, f)
}

impl RedbEngine {
    /// Open (or create) the store in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: &RedbOptions) -> Result<Self, EngineError> {
        let dir = dir.as_ref();
        let store_dir = StoreDir::open(BACKEND, dir)?;
        let file = dir.join(FILE_NAME);
        let db = guard("opening the database", || open_db(&file, options))?;
        let engine = Self {
            db,
            options: *options,
            dir: store_dir,
        };
        // Create every table up front so reads of an empty keyspace find a table.
        engine.write(&Batch::new(), Durability::Durable)?;
        // The names of the files the engine just created are durable only once their
        // directories are synced; the first durable write must not vanish at a power cut.
        engine.dir.sync_tree()?;
        Ok(engine)
    }

    /// Compact the database file, returning freed pages to the file system (redb's own
    /// `Database::compact`; `true` if it freed any). Needs exclusive access, so no other
    /// transaction is in progress. [`Engine::compact`](raft_store_engine::Engine::compact) is
    /// what the store calls after a purge.
    pub fn compact_file(&mut self) -> Result<bool, EngineError> {
        guard("compacting", || {
            self.db.compact().map_err(|e| from_redb("compacting", e))
        })
    }
}

fn open_db(file: &PathBuf, options: &RedbOptions) -> Result<redb::Database, EngineError> {
    let mut builder = redb::Database::builder();
    builder.set_cache_size(options.cache_size);
    builder.set_check_integrity_on_open(options.verify_on_open);
    builder.create(file).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => EngineError::Locked {
            backend: BACKEND,
            path: file.clone(),
            detail: "redb reports the database already open".into(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => EngineError::NotAStore {
            backend: BACKEND,
            path: file.clone(),
            detail,
        },
        redb::DatabaseError::UpgradeRequired(version) => EngineError::NotAStore {
            backend: BACKEND,
            path: file.clone(),
            detail: format!("redb file format {version} needs an upgrade by an older redb first"),
        },
        other => from_redb(&format!("opening {}", file.display()), other),
    })
}

/// redb's limits (its `MAX_VALUE_LENGTH` and `MAX_PAIR_LENGTH`, crate-private constants of redb
/// 4.x, `tree_store/page_store/base.rs`): an insert whose key or value is over 3 GiB, or whose
/// key and value together are over 3.75 GiB, fails with `StorageError::ValueTooLarge`.
const REDB_MAX_KEY_OR_VALUE: usize = 3 << 30;
const REDB_MAX_PAIR: usize = (3 << 30) + (768 << 20);

fn bounds(range: KeyRange<'_>) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (range.start, range.end)
}

impl Engine for RedbEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn limits(&self) -> EngineLimits {
        EngineLimits {
            max_key: REDB_MAX_KEY_OR_VALUE,
            max_value: REDB_MAX_KEY_OR_VALUE,
            max_pair: REDB_MAX_PAIR,
        }
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        guard("writing a batch", || {
            let mut txn = self
                .db
                .begin_write()
                .map_err(ctx("beginning a write transaction"))?;
            txn.set_durability(match durability {
                Durability::Durable => redb::Durability::Immediate,
                Durability::Buffered => redb::Durability::None,
            })
            .map_err(ctx("setting durability"))?;
            txn.set_quick_repair(self.options.quick_repair);
            txn.set_two_phase_commit(self.options.two_phase_commit);
            {
                let mut tables = Vec::with_capacity(Space::ALL.len());
                for space in Space::ALL {
                    tables.push(txn.open_table(table(space)).map_err(ctx("opening a table"))?);
                }
                for op in batch.ops() {
                    let t = &mut tables[op.space() as usize];
                    match op {
                        Op::Put { key, value, .. } => {
                            t.insert(key.as_slice(), value.as_slice())
                                .map_err(ctx("inserting"))?;
                        }
                        Op::Delete { key, .. } => {
                            t.remove(key.as_slice()).map_err(ctx("removing"))?;
                        }
                        Op::DeleteRange { start, end, .. } => {
                            let range = match end {
                                Some(end) => KeyRange::half_open(start, end),
                                None => KeyRange::from(start),
                            };
                            if !range.is_empty() {
                                t.retain_in::<&[u8], _>(bounds(range), |_, _| false)
                                    .map_err(ctx("deleting a range"))?;
                            }
                        }
                    }
                }
            }
            txn.commit().map_err(ctx("committing"))
        })
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        guard("reading a key", || {
            let txn = self
                .db
                .begin_read()
                .map_err(ctx("beginning a read transaction"))?;
            let t = txn.open_table(table(space)).map_err(ctx("opening a table"))?;
            Ok(t.get(key).map_err(ctx("reading"))?.map(|v| v.value().to_vec()))
        })
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        if range.is_empty() {
            return Ok(());
        }
        guard("scanning", || {
            let txn = self
                .db
                .begin_read()
                .map_err(ctx("beginning a read transaction"))?;
            let t = txn.open_table(table(space)).map_err(ctx("opening a table"))?;
            for item in t.range::<&[u8]>(bounds(range)).map_err(ctx("scanning"))? {
                let (k, v) = item.map_err(ctx("scanning"))?;
                if visit(k.value(), v.value()).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        guard("reading the last key", || {
            let txn = self
                .db
                .begin_read()
                .map_err(ctx("beginning a read transaction"))?;
            let t = txn.open_table(table(space)).map_err(ctx("opening a table"))?;
            Ok(t.last()
                .map_err(ctx("reading the last key"))?
                .map(|(k, _)| k.value().to_vec()))
        })
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        if range.is_empty() {
            return Ok(None);
        }
        guard("reading the last key of a range", || {
            let txn = self
                .db
                .begin_read()
                .map_err(ctx("beginning a read transaction"))?;
            let t = txn.open_table(table(space)).map_err(ctx("opening a table"))?;
            let mut keys = t.range::<&[u8]>(bounds(range)).map_err(ctx("scanning"))?;
            match keys.next_back() {
                Some(item) => Ok(Some(item.map_err(ctx("scanning"))?.0.value().to_vec())),
                None => Ok(None),
            }
        })
    }

    fn store_dir(&self) -> Option<&StoreDir> {
        Some(&self.dir)
    }
}
