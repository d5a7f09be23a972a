//! The state machine, its read handle and its snapshot builder, and opening one.

use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use super::KvLine;
use super::KvOptions;
use super::SnapshotFile;
use super::generations::delete_keys;
use super::keys::HASHED_KEY_LEN;
use super::snapshot_files::snapshot_io;
use super::state::STATE_KEY;
use super::state::Shared;
use super::state::SmState;
use super::state::gen_prefix;
use super::state::lock;
use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::Space;
use crate::StoreStats;
use crate::codec::Codec;
use crate::codec::MessagePack;
use crate::codec::unseal;
use crate::error::StoreError;

/// A durable key-value map replicated by openraft: `RaftStateMachine` + `RaftSnapshotBuilder`
/// over an [`Engine`], usually the same engine (through an `Arc`) as the [`LogStore`](crate::LogStore).
///
/// See the [module docs](super) for the layout and the crash-safety argument. Snapshot files
/// live in the directory given to [`open`](Self::open).
///
/// Keys may be of any length on every engine: a key too long for the engine's key limit
/// (LMDB: keys of more than 503 bytes, since its limit is 511 and the generation takes 8) is
/// stored under its SHA-256, its full key kept beside the value; see the
/// [module docs](super). A committed request never fails the apply: one whose value the engine
/// cannot store is answered [`KvResponse::Refused`](super::KvResponse::Refused) and changes
/// nothing.
pub struct LineStateMachine<C: KvLine, E: Engine, K: Codec = MessagePack> {
    pub(crate) shared: Arc<Shared<C, E, K>>,
}

/// A read handle on a [`LineStateMachine`]; cheap to clone, usable while openraft owns the state
/// machine.
pub struct LineStateReader<C: KvLine, E: Engine, K: Codec = MessagePack> {
    pub(crate) shared: Arc<Shared<C, E, K>>,
}

impl<C: KvLine, E: Engine, K: Codec> Clone for LineStateReader<C, E, K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// The snapshot builder of a [`LineStateMachine`].
pub struct LineSnapshotBuilder<C: KvLine, E: Engine, K: Codec = MessagePack> {
    pub(crate) shared: Arc<Shared<C, E, K>>,
}

impl<C: KvLine, E: Engine, K: Codec> LineStateMachine<C, E, K> {
    /// Open the state machine kept in `engine`, with its snapshot files in `snapshot_dir`
    /// (created if missing). Removes what an interrupted install or build left behind.
    ///
    /// The state machine has the default [`KvOptions`]; [`open_with`](Self::open_with) takes
    /// others.
    pub fn open(engine: E, snapshot_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_stats(engine, snapshot_dir, Arc::new(StoreStats::default()))
    }

    /// [`open`](Self::open), counting applies, snapshots and errors in `counters` (pass the log
    /// store's [`LogStore::stats`](crate::LogStore::stats) to have one set of figures).
    pub fn open_with_stats(
        engine: E,
        snapshot_dir: impl AsRef<Path>,
        counters: Arc<StoreStats>,
    ) -> Result<Self, StoreError> {
        Self::open_with_options_and_stats(engine, snapshot_dir, KvOptions::default(), counters)
    }

    /// [`open`](Self::open) with `options` instead of the default ones. Options no state
    /// machine can work with (see [`KvOptions::validate`]) are refused before anything is read
    /// or written.
    pub fn open_with(
        engine: E,
        snapshot_dir: impl AsRef<Path>,
        options: KvOptions,
    ) -> Result<Self, StoreError> {
        Self::open_with_options_and_stats(engine, snapshot_dir, options, Arc::new(StoreStats::default()))
    }

    /// [`open`](Self::open) with `options` instead of the default ones (refused as
    /// [`open_with`](Self::open_with) refuses them), counting in `counters` as
    /// [`open_with_stats`](Self::open_with_stats) does.
    pub fn open_with_options_and_stats(
        engine: E,
        snapshot_dir: impl AsRef<Path>,
        options: KvOptions,
        counters: Arc<StoreStats>,
    ) -> Result<Self, StoreError> {
        let backend = engine.backend();
        options.validate().map_err(|e| e.into_store_error(backend))?;
        let limits = engine.limits();
        // Long keys are stored under a 41-byte hashed key: an engine must take that much.
        if limits.max_key < HASHED_KEY_LEN {
            return Err(StoreError::Engine(crate::EngineError::backend(
                backend,
                "opening the key-value state machine",
                format!(
                    "the engine stores keys of at most {} bytes; the state machine needs {HASHED_KEY_LEN}",
                    limits.max_key
                ),
            )));
        }
        let dir = snapshot_dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| snapshot_io(&dir, "creating the snapshot directory", e))?;
        // The state machine's records are encoded with `K` too: a store whose format record
        // names another codec (a log opened with another one) is refused here, not read as
        // corrupt data.
        crate::format::check_or_init(&engine, K::NAME, C::LINE)?;
        // Without this a damaged state key would read as a fresh state machine and the
        // generation cleanup below would delete all its data.
        crate::format::refuse_unknown_keys(&engine, Space::DataMeta, &[STATE_KEY])?;
        let state: SmState<C> = match engine.get(Space::DataMeta, STATE_KEY)? {
            Some(bytes) => unseal::<K, _>(&bytes).map_err(|e| {
                StoreError::corrupt(backend, Space::DataMeta, None, "state machine state record", e)
            })?,
            None => SmState {
                generation: 0,
                last_applied: None,
                last_membership: C::Membership::default(),
            },
        };
        // Keys of any other generation belong to an install that did not finish or to the
        // generation an install replaced: remove them.
        let current = gen_prefix(state.generation);
        delete_keys(&engine, Vec::new(), Some(current.to_vec()), options.delete_chunk)?;
        if let Some(next) = state.generation.checked_add(1) {
            delete_keys(&engine, gen_prefix(next).to_vec(), None, options.delete_chunk)?;
        }
        let shared = Shared {
            engine,
            backend,
            limits,
            dir,
            state: Mutex::new(state),
            current: Mutex::new(None),
            next_file: AtomicU64::new(0),
            stats: counters,
            options,
            _codec: PhantomData,
        };
        let (current, next_file) = shared.load_snapshots()?;
        *lock(&shared.current) = current;
        shared.next_file.store(next_file, Ordering::Relaxed);
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// A snapshot builder over the same data.
    pub(crate) fn snapshot_builder(&self) -> LineSnapshotBuilder<C, E, K> {
        LineSnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    /// The engine under the state machine.
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// The options the state machine was opened with.
    pub fn options(&self) -> &KvOptions {
        &self.shared.options
    }

    /// The counters this state machine adds to.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.shared.stats.clone()
    }

    /// A read handle that stays valid while openraft owns the state machine.
    ///
    /// It holds the engine, and so keeps the store directory locked: drop it (and await
    /// [`wait_released`](crate::wait_released)) before opening the store again in this process.
    pub fn reader(&self) -> LineStateReader<C, E, K> {
        LineStateReader {
            shared: self.shared.clone(),
        }
    }

    /// A new empty file in the snapshot directory to receive a snapshot from a leader into;
    /// pass it to `Raft::install_full_snapshot` once complete. Files of receives that never
    /// finished are removed on the next open.
    pub fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        self.shared.receive_snapshot()
    }

    /// The last applied log id and membership as stored.
    pub fn applied(&self) -> (Option<C::LogId>, C::Membership) {
        let st = lock(&self.shared.state);
        (st.last_applied.clone(), st.last_membership.clone())
    }

    /// Make every applied change durable now (the log store's syncs normally do this).
    pub fn sync(&self) -> Result<(), StoreError> {
        let st = lock(&self.shared.state).clone();
        let mut batch = Batch::new();
        self.shared.put_state(&mut batch, &st)?;
        self.shared.engine.write(&batch, Durability::Durable)?;
        Ok(())
    }
}
