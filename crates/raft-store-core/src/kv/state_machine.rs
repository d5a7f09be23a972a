//! [`KvStateMachine`]: openraft's `RaftStateMachine` and `RaftSnapshotBuilder` over an engine.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::io::Seek;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use futures::Stream;
use futures::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::RaftTypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::StoredMembershipOf;
use serde::Deserialize;
use serde::Serialize;

use super::KvRequest;
use super::KvResponse;
use super::snapshot::ReadError;
use super::snapshot::SnapshotFile;
use super::snapshot::SnapshotReader;
use super::snapshot::SnapshotWriter;
use crate::codec::Bincode;
use crate::codec::Codec;
use crate::codec::open_envelope;
use crate::codec::seal;
use crate::codec::seal_bytes;
use crate::codec::unseal;
use crate::engine::Batch;
use crate::engine::Durability;
use crate::engine::Engine;
use crate::engine::KeyRange;
use crate::engine::Space;
use crate::engine::Visitor;
use crate::error::StoreError;
use crate::stats::StoreStats;

/// Data bytes gathered before a batch is written, while applying or installing. Bounds memory.
const BATCH_BYTES: usize = 4 << 20;
/// While installing, a durable write after this many bytes, so engines that keep unsynced
/// writes in memory (redb's non-durable commits) do not pile up a whole snapshot.
const SYNC_EVERY_BYTES: usize = 64 << 20;
/// Keys removed per batch when deleting an old generation.
const DELETE_CHUNK: usize = 10_000;
/// The key of the state record in [`Space::DataMeta`].
const STATE_KEY: &[u8] = b"state";

/// An entry whose payload the state machine can read: implemented for openraft's own
/// [`Entry`](openraft::Entry) with [`EntryPayload`], which `declare_raft_types!` uses by default.
pub trait KvEntry {
    /// The request of a normal entry; `None` for blank and membership entries.
    fn request(&self) -> Option<&KvRequest>;
}

impl<CLID, NID, N> KvEntry for openraft::Entry<CLID, EntryPayload<KvRequest, NID, N>>
where
    CLID: openraft::vote::RaftCommittedLeaderId,
    NID: openraft::NodeId,
    N: openraft::Node,
{
    fn request(&self) -> Option<&KvRequest> {
        match &self.payload {
            EntryPayload::Normal(request) => Some(request),
            _ => None,
        }
    }
}

/// A raft type config the key-value state machine works with: `D = KvRequest`,
/// `R = KvResponse` and openraft's default entry type. Any config declared with
/// `openraft::declare_raft_types!(pub Config: D = KvRequest, R = KvResponse)` is one.
pub trait KvTypeConfig: RaftTypeConfig<D = KvRequest, R = KvResponse, Entry: KvEntry> {}

impl<C> KvTypeConfig for C where C: RaftTypeConfig<D = KvRequest, R = KvResponse, Entry: KvEntry> {}

/// What the state machine keeps in [`Space::DataMeta`]: which generation of keys is current,
/// and how far it has applied.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct SmState<C: RaftTypeConfig> {
    generation: u64,
    last_applied: Option<LogIdOf<C>>,
    last_membership: StoredMembershipOf<C>,
}

impl<C: RaftTypeConfig> Clone for SmState<C> {
    fn clone(&self) -> Self {
        Self {
            generation: self.generation,
            last_applied: self.last_applied.clone(),
            last_membership: self.last_membership.clone(),
        }
    }
}

struct Current<C: RaftTypeConfig> {
    meta: SnapshotMetaOf<C>,
    path: PathBuf,
}

struct Shared<C: RaftTypeConfig, E: Engine, K> {
    engine: E,
    backend: &'static str,
    dir: PathBuf,
    /// The state record as last written. Apply and install hold it while they write, and a
    /// snapshot build holds it until its scan has started, so the build's meta and data match.
    state: Mutex<SmState<C>>,
    current: Mutex<Option<Current<C>>>,
    next_file: AtomicU64,
    /// Entries applied, snapshots, errors: usually the log store's counters (see
    /// [`KvStateMachine::open_with_stats`]).
    stats: Arc<StoreStats>,
    _codec: PhantomData<K>,
}

impl<C: RaftTypeConfig, E: Engine, K> Drop for Shared<C, E, K> {
    /// Applies are written without a sync; on a clean close make them durable, so a reopen
    /// finds everything applied. The stored state record is written again as it is (not the
    /// one in memory), so this can never claim more than the engine holds.
    fn drop(&mut self) {
        let stored = match self.engine.get(Space::DataMeta, STATE_KEY) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "state machine: could not read its state record on close");
                return;
            }
        };
        let mut batch = Batch::new();
        batch.put(Space::DataMeta, STATE_KEY, stored);
        if let Err(e) = self.engine.write(&batch, Durability::Durable) {
            tracing::warn!(error = %e, "state machine: could not sync its writes on close");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The first key of generation `generation` (keys are the generation, 8 bytes big-endian, then
/// the user key).
fn gen_prefix(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

fn data_key(generation: u64, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&gen_prefix(generation));
    k.extend_from_slice(key.as_bytes());
    k
}

/// A durable key-value map replicated by openraft: `RaftStateMachine` + `RaftSnapshotBuilder`
/// over an [`Engine`], usually the same engine (through an `Arc`) as the [`LogStore`](crate::LogStore).
///
/// See the [module docs](super) for the layout and the crash-safety argument. Snapshot files
/// live in the directory given to [`open`](Self::open).
pub struct KvStateMachine<C: KvTypeConfig, E: Engine, K: Codec = Bincode> {
    shared: Arc<Shared<C, E, K>>,
}

/// A read handle on a [`KvStateMachine`]; cheap to clone, usable while openraft owns the state
/// machine.
pub struct KvReader<C: KvTypeConfig, E: Engine, K: Codec = Bincode> {
    shared: Arc<Shared<C, E, K>>,
}

impl<C: KvTypeConfig, E: Engine, K: Codec> Clone for KvReader<C, E, K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// The snapshot builder of a [`KvStateMachine`].
pub struct KvSnapshotBuilder<C: KvTypeConfig, E: Engine, K: Codec = Bincode> {
    shared: Arc<Shared<C, E, K>>,
}

impl<C: KvTypeConfig, E: Engine, K: Codec> KvStateMachine<C, E, K> {
    /// Open the state machine kept in `engine`, with its snapshot files in `snapshot_dir`
    /// (created if missing). Removes what an interrupted install or build left behind.
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
        let backend = engine.backend();
        let dir = snapshot_dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| snapshot_io(&dir, "creating the snapshot directory", e))?;
        // Without this a damaged state key would read as a fresh state machine and the
        // generation cleanup below would delete all its data.
        crate::format::refuse_unknown_keys(&engine, Space::DataMeta, &[STATE_KEY])?;
        let state: SmState<C> = match engine.get(Space::DataMeta, STATE_KEY)? {
            Some(bytes) => unseal::<K, _>(&bytes).map_err(|reason| StoreError::Corrupt {
                backend,
                space: Space::DataMeta,
                index: None,
                reason: format!("state machine state record: {reason}"),
            })?,
            None => SmState {
                generation: 0,
                last_applied: None,
                last_membership: StoredMembershipOf::<C>::default(),
            },
        };
        // Keys of any other generation belong to an install that did not finish or to the
        // generation an install replaced: remove them.
        let current = gen_prefix(state.generation);
        delete_keys(&engine, Vec::new(), Some(current.to_vec()))?;
        if let Some(next) = state.generation.checked_add(1) {
            delete_keys(&engine, gen_prefix(next).to_vec(), None)?;
        }
        let shared = Shared {
            engine,
            backend,
            dir,
            state: Mutex::new(state),
            current: Mutex::new(None),
            next_file: AtomicU64::new(0),
            stats: counters,
            _codec: PhantomData,
        };
        let (current, next_file) = shared.load_snapshots()?;
        *lock(&shared.current) = current;
        shared.next_file.store(next_file, Ordering::Relaxed);
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The engine under the state machine.
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// The counters this state machine adds to.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.shared.stats.clone()
    }

    /// A read handle that stays valid while openraft owns the state machine.
    pub fn reader(&self) -> KvReader<C, E, K> {
        KvReader {
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
    pub fn applied(&self) -> (Option<LogIdOf<C>>, StoredMembershipOf<C>) {
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

    fn apply_request(
        &self,
        generation: u64,
        request: &KvRequest,
        batch: &mut Batch,
        overlay: &mut HashMap<String, Option<Vec<u8>>>,
    ) -> Result<KvResponse, StoreError> {
        let shared = &*self.shared;
        let read =
            |key: &str, overlay: &HashMap<String, Option<Vec<u8>>>| -> Result<Option<Vec<u8>>, StoreError> {
                match overlay.get(key) {
                    Some(v) => Ok(v.clone()),
                    None => shared.read(generation, key),
                }
            };
        let set =
            |key: &str, value: &[u8], batch: &mut Batch, overlay: &mut HashMap<String, Option<Vec<u8>>>| {
                batch.put(Space::Data, data_key(generation, key), seal_bytes(value));
                overlay.insert(key.to_string(), Some(value.to_vec()));
            };
        Ok(match request {
            KvRequest::Set { key, value } => {
                let previous = read(key, overlay)?;
                set(key, value, batch, overlay);
                KvResponse::Set { previous }
            }
            KvRequest::SetMany { pairs } => {
                let mut previous = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    previous.push(read(key, overlay)?);
                    set(key, value, batch, overlay);
                }
                KvResponse::SetMany { previous }
            }
            KvRequest::Delete { key } => {
                let previous = read(key, overlay)?;
                if previous.is_some() {
                    batch.delete(Space::Data, data_key(generation, key));
                    overlay.insert(key.clone(), None);
                }
                KvResponse::Delete { previous }
            }
            KvRequest::UpdateIfExists { key, value } => {
                let previous = read(key, overlay)?;
                if previous.is_some() {
                    set(key, value, batch, overlay);
                }
                KvResponse::UpdateIfExists { previous }
            }
        })
    }

    /// Apply committed entries in order and return one response per entry, as openraft's
    /// `apply` does (without responders): for tools, tests and replays.
    pub fn apply_entries<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e C::Entry>,
    ) -> Result<Vec<KvResponse>, StoreError>
    where
        C::Entry: 'e,
    {
        let mut applying = Applying::new(self);
        let mut replies = Vec::new();
        for entry in entries {
            replies.push(applying.entry(self, entry)?);
            if applying.full() {
                applying.commit(self)?;
            }
        }
        applying.commit(self)?;
        Ok(replies)
    }
}

/// One apply call in progress: the state after the entries seen so far, their data changes not
/// written yet, and what those changes did to each key (later requests of the same call read
/// it).
struct Applying<C: RaftTypeConfig> {
    st: SmState<C>,
    batch: Batch,
    overlay: HashMap<String, Option<Vec<u8>>>,
    dirty: bool,
    /// Entries seen since the last commit, counted as applied once it is written.
    entries: u64,
}

impl<C: KvTypeConfig> Applying<C> {
    fn new<E: Engine, K: Codec>(sm: &KvStateMachine<C, E, K>) -> Self {
        Self {
            st: lock(&sm.shared.state).clone(),
            batch: Batch::new(),
            overlay: HashMap::new(),
            dirty: false,
            entries: 0,
        }
    }

    fn entry<E: Engine, K: Codec>(
        &mut self,
        sm: &KvStateMachine<C, E, K>,
        entry: &C::Entry,
    ) -> Result<KvResponse, StoreError> {
        self.st.last_applied = Some(entry.log_id());
        if let Some(membership) = entry.get_membership() {
            self.st.last_membership = StoredMembershipOf::<C>::new(Some(entry.log_id()), membership);
        }
        self.dirty = true;
        self.entries += 1;
        match entry.request() {
            Some(request) => {
                sm.apply_request(self.st.generation, request, &mut self.batch, &mut self.overlay)
            }
            None => Ok(KvResponse::Empty),
        }
    }

    fn full(&self) -> bool {
        self.batch.size_bytes() >= BATCH_BYTES
    }

    /// Write the data changes and the state record in one batch, then publish the new state.
    fn commit<E: Engine, K: Codec>(&mut self, sm: &KvStateMachine<C, E, K>) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let mut guard = lock(&sm.shared.state);
        let written = sm
            .shared
            .put_state(&mut self.batch, &self.st)
            .and_then(|()| Ok(sm.shared.engine.write(&self.batch, Durability::Buffered)?));
        if let Err(e) = written {
            sm.shared.stats.record_error("apply", format!("{:?}", e.kind()));
            sm.shared
                .stats
                .record_fatal(|| format!("applying committed entries failed: {e}"));
            tracing::error!(
                target: "raft_store::apply",
                backend = sm.shared.backend,
                error = %e,
                "applying committed entries failed"
            );
            return Err(e);
        }
        sm.shared.stats.record_applied(self.entries);
        self.entries = 0;
        *guard = self.st.clone();
        self.batch = Batch::new();
        self.overlay.clear();
        self.dirty = false;
        Ok(())
    }
}

impl<C: KvTypeConfig, E: Engine, K: Codec> KvReader<C, E, K> {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let st = lock(&self.shared.state);
        self.shared.read(st.generation, key)
    }

    /// Visit every key and value in key order (one consistent view), until `visit` breaks.
    pub fn scan(&self, visit: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let st = lock(&self.shared.state);
        let generation = st.generation;
        let mut guard = Some(st);
        let mut failed = None;
        let shared = &*self.shared;
        shared.scan_generation(generation, &mut |key, value| {
            guard.take();
            match shared.decode_record(key, value) {
                Ok((k, v)) => {
                    if let Ok(k) = std::str::from_utf8(k) {
                        visit(k, v)
                    } else {
                        failed = Some(shared.corrupt_key(key, "key is not UTF-8"));
                        ControlFlow::Break(())
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// The last applied log id and membership as stored.
    pub fn applied(&self) -> (Option<LogIdOf<C>>, StoredMembershipOf<C>) {
        let st = lock(&self.shared.state);
        (st.last_applied.clone(), st.last_membership.clone())
    }

    /// The meta of the current snapshot, if one exists.
    pub fn current_snapshot(&self) -> Option<SnapshotMetaOf<C>> {
        lock(&self.shared.current).as_ref().map(|c| c.meta.clone())
    }

    /// Same as [`KvStateMachine::receive_snapshot`], for a network server that receives
    /// snapshots while openraft owns the state machine.
    pub fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        self.shared.receive_snapshot()
    }
}

impl<C: KvTypeConfig, E: Engine, K: Codec> Shared<C, E, K> {
    fn put_state(&self, batch: &mut Batch, st: &SmState<C>) -> Result<(), StoreError> {
        let bytes = seal::<K, _>(st).map_err(|reason| StoreError::Encode {
            backend: self.backend,
            what: "state machine state",
            reason,
        })?;
        batch.put(Space::DataMeta, STATE_KEY, bytes);
        Ok(())
    }

    fn corrupt_key(&self, key: &[u8], reason: &str) -> StoreError {
        StoreError::Corrupt {
            backend: self.backend,
            space: Space::Data,
            index: None,
            reason: format!(
                "key {:?}: {reason}",
                String::from_utf8_lossy(key.get(8..).unwrap_or(key))
            ),
        }
    }

    fn read(&self, generation: u64, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = data_key(generation, key);
        let Some(bytes) = self.engine.get(Space::Data, &k)? else {
            return Ok(None);
        };
        let (_, value) = self.decode_record(&k, &bytes)?;
        Ok(Some(value.to_vec()))
    }

    /// Split a stored record into (user key, value), checking the value's envelope.
    fn decode_record<'a>(&self, key: &'a [u8], value: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), StoreError> {
        let user_key = key
            .get(8..)
            .ok_or_else(|| self.corrupt_key(key, "key shorter than its generation prefix"))?;
        let value = open_envelope(value).map_err(|reason| self.corrupt_key(key, &reason))?;
        Ok((user_key, value))
    }

    fn scan_generation(&self, generation: u64, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let start = gen_prefix(generation);
        match generation.checked_add(1) {
            Some(next) => {
                let end = gen_prefix(next);
                self.engine
                    .scan(Space::Data, KeyRange::half_open(&start, &end), visit)?;
            }
            None => self.engine.scan(Space::Data, KeyRange::from(&start), visit)?,
        }
        Ok(())
    }

    fn file_name(&self, kind: &str, index: Option<u64>) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        match (kind, index) {
            ("snapshot", Some(i)) => self.dir.join(format!("snapshot-{i:020}-{n:06}.snap")),
            ("snapshot", None) => self.dir.join(format!("snapshot-none-{n:06}.snap")),
            (kind, _) => self.dir.join(format!("{kind}-{n:06}.tmp")),
        }
    }

    fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        SnapshotFile::create(self.file_name("receive", None))
    }

    /// Find the newest readable snapshot in the directory; remove temporary files and older
    /// snapshots. Returns it and the next free file number.
    fn load_snapshots(&self) -> Result<(Option<Current<C>>, u64), StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| snapshot_io(&self.dir, "listing snapshots", e))?;
        let mut best: Option<Current<C>> = None;
        let mut next = 0u64;
        for entry in entries {
            let path = entry
                .map_err(|e| snapshot_io(&self.dir, "listing snapshots", e))?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(n) = name
                .rsplit('-')
                .next()
                .and_then(|tail| tail.split('.').next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
            let extension = path.extension().and_then(|e| e.to_str());
            if extension == Some("tmp") {
                fs::remove_file(&path)
                    .map_err(|e| snapshot_io(&path, "removing a leftover snapshot file", e))?;
                continue;
            }
            if extension != Some("snap") {
                continue;
            }
            let meta = match Self::read_meta(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable snapshot file");
                    continue;
                }
            };
            let newer = best
                .as_ref()
                .is_none_or(|b| meta.last_log_id > b.meta.last_log_id);
            if newer {
                if let Some(old) = best.replace(Current { meta, path }) {
                    remove_quietly(&old.path);
                }
            } else {
                remove_quietly(&path);
            }
        }
        Ok((best, next))
    }

    fn read_meta(path: &Path) -> Result<SnapshotMetaOf<C>, StoreError> {
        let file = fs::File::open(path).map_err(|e| snapshot_io(path, "opening a snapshot", e))?;
        let (_, meta) = SnapshotReader::new(file).map_err(|e| snapshot_read(path, e))?;
        unseal::<K, SnapshotMetaOf<C>>(&meta).map_err(|reason| StoreError::SnapshotFile {
            path: path.to_path_buf(),
            reason: format!("its meta record: {reason}"),
        })
    }

    /// Make `path` (a finished, synced snapshot file in our directory) the current snapshot,
    /// unless a newer one is already current. Removes the one it replaces.
    fn set_current(&self, meta: SnapshotMetaOf<C>, path: PathBuf) -> Result<(), StoreError> {
        sync_dir(&self.dir)?;
        let mut current = lock(&self.current);
        if let Some(c) = current.as_ref()
            && (c.meta.last_log_id > meta.last_log_id || c.path == path)
        {
            if c.path != path {
                remove_quietly(&path);
            }
            return Ok(());
        }
        if let Some(old) = current.replace(Current { meta, path }) {
            remove_quietly(&old.path);
        }
        Ok(())
    }

    /// Count and log a snapshot built or installed (`installed`), or its failure.
    fn count_snapshot<T>(
        &self,
        result: Result<(SnapshotMetaOf<C>, T), io::Error>,
        installed: bool,
    ) -> Result<(SnapshotMetaOf<C>, T), io::Error> {
        let what = if installed { "installed" } else { "built" };
        match &result {
            Ok((meta, _)) => {
                self.stats.record_snapshot(installed);
                tracing::info!(
                    target: "raft_store::snapshot",
                    backend = self.backend,
                    last_log_index = meta.last_log_id.as_ref().map(RaftEntryIndex::index_of),
                    "snapshot {what}"
                );
            }
            Err(e) => {
                self.stats.record_error("snapshot", format!("{:?}", e.kind()));
                tracing::error!(
                    target: "raft_store::snapshot",
                    backend = self.backend,
                    error = %e,
                    "a snapshot could not be {what}"
                );
            }
        }
        result
    }

    /// Build a snapshot file of the current state; blocking.
    fn build(&self) -> Result<(SnapshotMetaOf<C>, SnapshotFile), StoreError> {
        let guard = lock(&self.state);
        let st = guard.clone();
        let meta = SnapshotMetaOf::<C> {
            last_log_id: st.last_applied.clone(),
            last_membership: st.last_membership.clone(),
        };
        let encoded = seal::<K, _>(&meta).map_err(|reason| StoreError::Encode {
            backend: self.backend,
            what: "snapshot meta",
            reason,
        })?;
        let tmp = self.file_name("build", None);
        let mut writer = SnapshotWriter::create(&tmp, &encoded)
            .map_err(|e| snapshot_io(&tmp, "creating a snapshot", e))?;
        // Applies wait until the scan has its consistent view: the first record proves it has
        // (an empty generation: until the scan returns).
        let mut guard = Some(guard);
        let mut failed: Option<StoreError> = None;
        let scanned = self.scan_generation(st.generation, &mut |key, value| {
            guard.take();
            let result = self.decode_record(key, value).and_then(|(k, v)| {
                writer
                    .record(k, v)
                    .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))
            });
            match result {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        drop(guard);
        let finished = scanned.and_then(|()| failed.map_or(Ok(()), Err)).and_then(|()| {
            writer
                .finish()
                .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))
        });
        if let Err(e) = finished {
            remove_quietly(&tmp);
            return Err(e);
        }
        let path = self.file_name(
            "snapshot",
            meta.last_log_id.as_ref().map(RaftEntryIndex::index_of),
        );
        fs::rename(&tmp, &path).map_err(|e| {
            remove_quietly(&tmp);
            snapshot_io(&path, "naming a finished snapshot", e)
        })?;
        // Opened before it may become current: if a newer snapshot is current already (this
        // state machine restarted behind its last snapshot), the file is removed, and the open
        // handle is what still serves this build's caller.
        let file =
            SnapshotFile::open(&path).map_err(|e| snapshot_io(&path, "opening a finished snapshot", e))?;
        self.set_current(meta.clone(), path)?;
        Ok((meta, file))
    }

    /// Replace the data with the snapshot in `file`; blocking.
    fn install(&self, meta: &SnapshotMetaOf<C>, file: SnapshotFile) -> Result<(), StoreError> {
        let (file, path) = file.into_parts();
        let result = self.install_file(meta, file, &path);
        if result.is_err()
            && path.extension().is_some_and(|e| e == "tmp")
            && path.parent().is_some_and(|p| same_dir(p, &self.dir))
        {
            // A received file that was refused is of no further use.
            remove_quietly(&path);
        }
        result
    }

    fn install_file(&self, meta: &SnapshotMetaOf<C>, file: fs::File, path: &Path) -> Result<(), StoreError> {
        let path = path.to_path_buf();
        let (mut reader, encoded) = SnapshotReader::new(file).map_err(|e| snapshot_read(&path, e))?;
        let found: SnapshotMetaOf<C> =
            unseal::<K, _>(&encoded).map_err(|reason| StoreError::SnapshotFile {
                path: path.clone(),
                reason: format!("its meta record: {reason}"),
            })?;
        if &found != meta {
            return Err(StoreError::SnapshotFile {
                path,
                reason: format!("it holds the snapshot of {found}, but the install is for {meta}"),
            });
        }
        let old = lock(&self.state).clone();
        let generation = old
            .generation
            .checked_add(1)
            .ok_or_else(|| StoreError::SnapshotFile {
                path: path.clone(),
                reason: "no generation number left".into(),
            })?;
        let new_prefix = gen_prefix(generation).to_vec();
        if let Err(e) = self.load_generation(generation, &mut reader, &path) {
            // Nothing points at the partial generation: remove it (or the next open will).
            let _ = delete_keys(&self.engine, new_prefix, None);
            return Err(e);
        }
        let st = SmState::<C> {
            generation,
            last_applied: meta.last_log_id.clone(),
            last_membership: meta.last_membership.clone(),
        };
        {
            let mut guard = lock(&self.state);
            let mut batch = Batch::new();
            self.put_state(&mut batch, &st)?;
            self.engine.write(&batch, Durability::Durable)?;
            *guard = st;
        }
        delete_keys(
            &self.engine,
            gen_prefix(old.generation).to_vec(),
            Some(new_prefix),
        )?;
        self.keep_installed(meta, &path, reader.into_file())
    }

    fn load_generation(
        &self,
        generation: u64,
        reader: &mut SnapshotReader,
        path: &Path,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        let mut since_sync = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        while let Some((key, value)) = reader.next_record().map_err(|e| snapshot_read(path, e))? {
            if last_key.as_ref().is_some_and(|last| *last >= key) {
                return Err(StoreError::SnapshotFile {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its keys are not in ascending order at key {:?}",
                        String::from_utf8_lossy(&key)
                    ),
                });
            }
            if std::str::from_utf8(&key).is_err() {
                return Err(StoreError::SnapshotFile {
                    path: path.to_path_buf(),
                    reason: format!("key {:?} is not UTF-8", String::from_utf8_lossy(&key)),
                });
            }
            let mut k = Vec::with_capacity(8 + key.len());
            k.extend_from_slice(&gen_prefix(generation));
            k.extend_from_slice(&key);
            batch.put(Space::Data, k, seal_bytes(&value));
            last_key = Some(key);
            if batch.size_bytes() >= BATCH_BYTES {
                since_sync += batch.size_bytes();
                let durability = if since_sync >= SYNC_EVERY_BYTES {
                    since_sync = 0;
                    Durability::Durable
                } else {
                    Durability::Buffered
                };
                self.engine.write(&batch, durability)?;
                batch = Batch::new();
            }
        }
        if !batch.is_empty() {
            self.engine.write(&batch, Durability::Buffered)?;
        }
        Ok(())
    }

    /// Keep the installed file as the current snapshot: move (or copy) it into our directory.
    fn keep_installed(
        &self,
        meta: &SnapshotMetaOf<C>,
        path: &Path,
        mut file: fs::File,
    ) -> Result<(), StoreError> {
        if lock(&self.current).as_ref().is_some_and(|c| c.path == path) {
            return Ok(());
        }
        let target = self.file_name(
            "snapshot",
            meta.last_log_id.as_ref().map(RaftEntryIndex::index_of),
        );
        // A received file in our directory is renamed; anything else (a file elsewhere, or one
        // already unlinked, readable only through its handle) is copied through the handle.
        let in_dir = path.parent().is_some_and(|p| same_dir(p, &self.dir)) && path.exists();
        if in_dir {
            file.sync_all()
                .map_err(|e| snapshot_io(path, "syncing a received snapshot", e))?;
            fs::rename(path, &target)
                .map_err(|e| snapshot_io(&target, "keeping an installed snapshot", e))?;
        } else {
            let tmp = self.file_name("copy", None);
            let copied = (|| {
                let mut out = fs::File::create(&tmp)?;
                file.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut file, &mut out)?;
                out.sync_all()
            })();
            if let Err(e) = copied {
                remove_quietly(&tmp);
                return Err(snapshot_io(&tmp, "copying an installed snapshot", e));
            }
            fs::rename(&tmp, &target)
                .map_err(|e| snapshot_io(&target, "keeping an installed snapshot", e))?;
        }
        self.set_current(meta.clone(), target)
    }
}

/// The index of a log id (a named function, for `Option::map`).
trait RaftEntryIndex {
    fn index_of(&self) -> u64;
}

impl<T: openraft::vote::RaftCommittedLeaderId> RaftEntryIndex for openraft::LogId<T> {
    fn index_of(&self) -> u64 {
        self.index
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an old snapshot file");
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| snapshot_io(dir, "syncing the snapshot directory", e))
}

fn snapshot_io(path: &Path, context: &'static str, source: io::Error) -> StoreError {
    StoreError::SnapshotIo {
        path: path.to_path_buf(),
        context,
        source,
    }
}

fn snapshot_read(path: &Path, e: ReadError) -> StoreError {
    match e {
        ReadError::Io(source) => snapshot_io(path, "reading a snapshot", source),
        ReadError::Format(reason) => StoreError::SnapshotFile {
            path: path.to_path_buf(),
            reason,
        },
    }
}

/// Remove every key of [`Space::Data`] in `start..end`, a bounded number per batch so that an
/// old generation of any size is removed in small steps.
fn delete_keys<E: Engine>(engine: &E, start: Vec<u8>, end: Option<Vec<u8>>) -> Result<(), StoreError> {
    let mut start = start;
    loop {
        let mut seen = 0usize;
        let mut last: Option<Vec<u8>> = None;
        let range = match &end {
            Some(end) => KeyRange::half_open(&start, end),
            None => KeyRange::from(&start),
        };
        if range.is_empty() {
            return Ok(());
        }
        engine.scan(Space::Data, range, &mut |k, _| {
            seen += 1;
            if seen >= DELETE_CHUNK {
                last = Some(k.to_vec());
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if seen == 0 {
            return Ok(());
        }
        let mut batch = Batch::new();
        if let Some(mut last) = last {
            // A full chunk: delete up to and including its last key, then go on after it.
            last.push(0);
            batch.delete_range(Space::Data, start, Some(last.clone()));
            engine.write(&batch, Durability::Buffered)?;
            start = last;
        } else {
            batch.delete_range(Space::Data, start, end);
            engine.write(&batch, Durability::Buffered)?;
            return Ok(());
        }
    }
}

impl<C: KvTypeConfig, E: Engine, K: Codec> RaftSnapshotBuilder<C> for KvSnapshotBuilder<C, E, K> {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, SnapshotFile>, io::Error> {
        let shared = self.shared.clone();
        let built = blocking(move || shared.build()).await;
        let (meta, snapshot) = self.shared.count_snapshot(built, false)?;
        Ok(SnapshotOf::<C, SnapshotFile> { meta, snapshot })
    }
}

impl<C: KvTypeConfig, E: Engine, K: Codec> RaftStateMachine<C> for KvStateMachine<C, E, K> {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = KvSnapshotBuilder<C, E, K>;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        Ok(self.applied())
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut applying = Applying::new(self);
        let mut replies = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            let reply = applying.entry(self, &entry)?;
            replies.push((responder, reply));
            if applying.full() {
                applying.commit(self)?;
                // Replies go out only once what they report is written.
                for (responder, reply) in replies.drain(..) {
                    if let Some(responder) = responder {
                        responder.send(reply);
                    }
                }
            }
        }
        applying.commit(self)?;
        for (responder, reply) in replies {
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        KvSnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let shared = self.shared.clone();
        let owned = meta.clone();
        let installed = blocking(move || shared.install(&owned, snapshot)).await;
        self.shared
            .count_snapshot(installed.map(|()| (meta.clone(), ())), true)
            .map(|_| ())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, SnapshotFile>>, io::Error> {
        // Opened under the lock: a newer snapshot replacing this one removes its file, but an
        // open handle keeps the data readable.
        let current = lock(&self.shared.current);
        match current.as_ref() {
            None => Ok(None),
            Some(c) => Ok(Some(SnapshotOf::<C, SnapshotFile> {
                meta: c.meta.clone(),
                snapshot: SnapshotFile::open(&c.path)?,
            })),
        }
    }
}

/// Run blocking file and engine work off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, io::Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(io::Error::from),
        Err(e) => Err(io::Error::other(format!("snapshot task failed: {e}"))),
    }
}
