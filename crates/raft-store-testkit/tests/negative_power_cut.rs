//! Proof that the power-cut and file-system fault cases can fail: stores with one seeded
//! durability bug each must fail the named case, while the same design without the bug passes
//! it. The engines are the file design of `custom_engine.rs` (an append-only file of
//! checksummed batch records); the store-level bugs sit in a `RaftLogStorage` of this file
//! over a [`LogStore`] on the sound engine.
//!
//! The power-cut cases re-run this test binary as their child with `--exact <test>`, so every
//! `#[test]` here calls exactly one case, first thing, with its own name (the
//! [`cut_test!`] macro passes it), and the control runs are `#[test]`s of their own. Each
//! failure is checked for its message too: a child that ran the wrong test would fail the case
//! as well, for a reason that proves nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Read;
use std::io::Write;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;

use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::LogState;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;
use raft_store_core::Batch;
use raft_store_core::Bincode;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::LogStore;
use raft_store_core::Op;
use raft_store_core::Space;
use raft_store_core::StoreDir;
use raft_store_core::Visitor;
use raft_store_engine::codec::seal;
use raft_store_engine::codec::unseal;
use raft_store_testkit::CaseResult;
use raft_store_testkit::EngineHarness;
use raft_store_testkit::EngineStores;
use raft_store_testkit::StoreOpener;
use raft_store_testkit::TestConfig;
use raft_store_testkit::fs_faults;
use raft_store_testkit::power_cut;
use raft_store_testkit::power_cut::model::Order;
use raft_store_testkit::run;

const BACKEND: &str = "batchfile";

/// The one thing a broken engine does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    /// None: the engine of `custom_engine.rs`.
    Sound,
    /// (a) A durable write writes the file and returns without `fdatasync`.
    NeverSyncs,
    /// (b) Syncs its data, but never the directory after creating `batches.log`.
    DirNeverSynced,
    /// (c) Appends and syncs each op of a batch as a record of its own, so a crash can leave
    /// half a batch.
    BatchOpByOp,
    /// (f) Ignores the error of `fdatasync` and reports the write durable.
    SwallowsFsyncError,
    /// (g) Replays a torn last record without its checksum: every op of it that still decodes
    /// is applied (then the tail is cut off as usual).
    IgnoresChecksum,
}

struct State {
    maps: [BTreeMap<Vec<u8>, Vec<u8>>; 4],
    file: File,
    /// Encoded buffered records, written with the next durable write.
    unsynced: Vec<u8>,
}

/// `custom_engine.rs`'s engine: every batch one record `[len u32 BE][crc32c u32 BE][ops]`
/// appended to `batches.log`, with `bug` seeded.
struct BatchFileEngine {
    state: Mutex<State>,
    bug: Bug,
    _dir: StoreDir,
}

fn io_err(context: &str, e: io::Error) -> EngineError {
    EngineError::io(BACKEND, context, e)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// One record holding `ops`.
fn encode(batch_ops: &[Op]) -> Vec<u8> {
    let mut ops = Vec::new();
    for op in batch_ops {
        match op {
            Op::Put { space, key, value } => {
                ops.extend([0, *space as u8]);
                put_bytes(&mut ops, key);
                put_bytes(&mut ops, value);
            }
            Op::Delete { space, key } => {
                ops.extend([1, *space as u8]);
                put_bytes(&mut ops, key);
            }
            Op::DeleteRange { space, start, end } => {
                ops.extend([2, *space as u8]);
                put_bytes(&mut ops, start);
                ops.push(u8::from(end.is_some()));
                put_bytes(&mut ops, end.as_deref().unwrap_or_default());
            }
        }
    }
    let mut record = Vec::with_capacity(ops.len() + 8);
    record.extend_from_slice(&u32::try_from(ops.len()).unwrap_or(u32::MAX).to_be_bytes());
    record.extend_from_slice(&crc32c::crc32c(&ops).to_be_bytes());
    record.extend_from_slice(&ops);
    record
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = buf.split_at_checked(n)?;
    *buf = rest;
    Some(head)
}

fn take_u32(buf: &mut &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(take(buf, 4)?.try_into().ok()?))
}

fn take_bytes(buf: &mut &[u8]) -> Option<Vec<u8>> {
    let len = take_u32(buf)? as usize;
    Some(take(buf, len)?.to_vec())
}

fn decode(mut ops: &[u8]) -> Option<Batch> {
    let mut batch = Batch::new();
    while !ops.is_empty() {
        decode_op(&mut ops, &mut batch)?;
    }
    Some(batch)
}

/// Decodes the op at the front of `ops` into `batch`, consuming it.
fn decode_op(ops: &mut &[u8], batch: &mut Batch) -> Option<()> {
    let [tag, space] = take(ops, 2)? else {
        return None;
    };
    let space = *Space::ALL.get(usize::from(*space))?;
    match tag {
        0 => batch.put(space, take_bytes(ops)?, take_bytes(ops)?),
        1 => batch.delete(space, take_bytes(ops)?),
        2 => {
            let start = take_bytes(ops)?;
            let bounded = take(ops, 1)? == [1];
            let end = take_bytes(ops)?;
            batch.delete_range(space, start, bounded.then_some(end));
        }
        _ => return None,
    }
    Some(())
}

/// The ops at the front of `ops` that decode whole, up to the first that does not: what a
/// replay that trusts the bytes instead of the checksum finds in a torn record.
fn decode_prefix(mut ops: &[u8]) -> Batch {
    let mut batch = Batch::new();
    while !ops.is_empty() && decode_op(&mut ops, &mut batch).is_some() {}
    batch
}

fn apply(maps: &mut [BTreeMap<Vec<u8>, Vec<u8>>; 4], batch: &Batch) {
    for op in batch.ops() {
        let map = &mut maps[op.space() as usize];
        match op {
            Op::Put { key, value, .. } => {
                map.insert(key.clone(), value.clone());
            }
            Op::Delete { key, .. } => {
                map.remove(key);
            }
            Op::DeleteRange { start, end, .. } => {
                let end = end
                    .as_ref()
                    .map_or(Bound::Unbounded, |e| Bound::Excluded(e.clone()));
                if matches!(&end, Bound::Excluded(e) if e <= start) {
                    continue;
                }
                let doomed: Vec<_> = map
                    .range((Bound::Included(start.clone()), end))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in doomed {
                    map.remove(&k);
                }
            }
        }
    }
}

impl BatchFileEngine {
    /// Open the store in `dir`, replaying every complete record and cutting off a torn tail.
    fn open(dir: &Path, bug: Bug) -> Result<Self, EngineError> {
        let store_dir = StoreDir::open(BACKEND, dir)?;
        let path = dir.join("batches.log");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("opening", e))?;
        if bug != Bug::DirNeverSynced {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("syncing the store directory", e))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io_err("reading", e))?;
        let mut maps: [BTreeMap<Vec<u8>, Vec<u8>>; 4] = Default::default();
        let mut rest = &bytes[..];
        let mut good = 0usize;
        while let (Some(len), Some(crc)) = (take_u32(&mut rest), take_u32(&mut rest)) {
            let len = len as usize;
            let body = rest;
            let Some(ops) = take(&mut rest, len).filter(|ops| crc32c::crc32c(ops) == crc) else {
                if bug == Bug::IgnoresChecksum {
                    // The torn record's bytes: what is left of the file, up to its length.
                    let torn = &body[..len.min(body.len())];
                    apply(&mut maps, &decode_prefix(torn));
                }
                break;
            };
            let batch = decode(ops).ok_or_else(|| EngineError::NotAStore {
                backend: BACKEND,
                path: path.clone(),
                detail: format!("record at byte {good} has a valid checksum but cannot be decoded"),
            })?;
            apply(&mut maps, &batch);
            good += 8 + len;
        }
        file.set_len(good as u64)
            .map_err(|e| io_err("cutting a torn tail", e))?;
        Ok(Self {
            state: Mutex::new(State {
                maps,
                file,
                unsynced: Vec::new(),
            }),
            bug,
            _dir: store_dir,
        })
    }

    fn sync(&self, file: &File) -> Result<(), EngineError> {
        match self.bug {
            Bug::NeverSyncs => Ok(()),
            Bug::SwallowsFsyncError => {
                let _ = file.sync_data();
                Ok(())
            }
            _ => file.sync_data().map_err(|e| io_err("syncing", e)),
        }
    }
}

impl Engine for BatchFileEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let mut state = lock(&self.state);
        let durable = durability == Durability::Durable;
        if self.bug == Bug::BatchOpByOp {
            // One op at a time, each durable before the next is written (durable or not: a
            // buffered batch only gets synced sooner than it asked).
            for op in batch.ops() {
                let record = encode(std::slice::from_ref(op));
                state
                    .file
                    .write_all(&record)
                    .map_err(|e| io_err("appending", e))?;
                self.sync(&state.file)?;
            }
        } else {
            state.unsynced.extend(encode(batch.ops()));
            if durable {
                let pending = std::mem::take(&mut state.unsynced);
                state
                    .file
                    .write_all(&pending)
                    .map_err(|e| io_err("appending", e))?;
                self.sync(&state.file)?;
            }
        }
        apply(&mut state.maps, batch);
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(lock(&self.state).maps[space as usize].get(key).cloned())
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        let state = lock(&self.state);
        if range.is_empty() {
            return Ok(());
        }
        for (k, v) in state.maps[space as usize].range::<[u8], _>((range.start, range.end)) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(lock(&self.state).maps[space as usize]
            .last_key_value()
            .map(|(k, _)| k.clone()))
    }
}

/// Opens [`BatchFileEngine`]s with one bug.
struct Harness(Bug);

impl EngineHarness for Harness {
    type Engine = BatchFileEngine;

    fn open(&self, dir: &Path) -> Result<BatchFileEngine, EngineError> {
        BatchFileEngine::open(dir, self.0)
    }
}

/// The one thing a broken log store does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreBug {
    /// None.
    Sound,
    /// (d) `append` completes its `IOFlushed` at once and keeps the entries in memory; they
    /// go to the inner store (and are flushed) only with the next call that is not an append.
    CallbackBeforeWrite,
    /// (d, the narrow form) `append` hands the entries to the inner store and completes its
    /// `IOFlushed` at once, without waiting for the inner store's flusher, which syncs them
    /// a moment later.
    CallbackBeforeFlush,
    /// (e) `save_vote` writes the vote file and returns without syncing it: the vote is
    /// durable whenever the kernel writes it back.
    LazyVote,
    /// (e, the narrow form) `save_vote` returns at once; the vote is written and synced at the
    /// start of the next call.
    VoteWithNextCall,
}

type Inner = LogStore<TestConfig, BatchFileEngine>;
type SharedVote = Arc<Mutex<Option<VoteOf<TestConfig>>>>;

/// A `RaftLogStorage` of its own: the log in a [`LogStore`] over the sound engine, the vote
/// in a file `vote` beside it (one sealed record at offset 0, written in place after
/// everything before it was flushed), with `bug` seeded.
struct VoteFileStore {
    inner: Inner,
    file: File,
    vote: SharedVote,
    bug: StoreBug,
    /// Acknowledged entries not yet handed to the inner store ([`StoreBug::CallbackBeforeWrite`]).
    pending: Vec<EntryOf<TestConfig>>,
    /// A vote saved but not yet written ([`StoreBug::VoteWithNextCall`]).
    pending_vote: Option<VoteOf<TestConfig>>,
}

/// Its reader: the log from the inner store, the vote from memory.
struct VoteFileReader {
    inner: <Inner as RaftLogStorage<TestConfig>>::LogReader,
    vote: SharedVote,
}

impl VoteFileStore {
    fn open(dir: &Path, bug: StoreBug) -> io::Result<Self> {
        let engine = BatchFileEngine::open(dir, Bug::Sound).map_err(|e| io::Error::new(e.kind(), e))?;
        let inner = Inner::open(engine)?;
        let path = dir.join("vote");
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        if created {
            // The name is durable before any vote is written into it: only the data sync is
            // ever left out.
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut rest = &bytes[..];
        let vote = match take_bytes(&mut rest).filter(|v| !v.is_empty()) {
            None => None,
            Some(sealed) => Some(
                unseal::<Bincode, VoteOf<TestConfig>>(&sealed)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("vote file: {e}")))?,
            ),
        };
        Ok(Self {
            inner,
            file,
            vote: Arc::new(Mutex::new(vote)),
            bug,
            pending: Vec::new(),
            pending_vote: None,
        })
    }

    /// Hands the entries acknowledged but held back to the inner store, which flushes them.
    async fn write_pending(&mut self) -> io::Result<()> {
        if let Some(vote) = self.pending_vote.take() {
            self.write_vote(&vote).await?;
        }
        if !self.pending.is_empty() {
            let entries = std::mem::take(&mut self.pending);
            self.inner.append(entries, IOFlushed::noop()).await?;
        }
        Ok(())
    }
}

impl VoteFileStore {
    /// Writes `vote` in place, after everything issued before it is durable.
    async fn write_vote(&mut self, vote: &VoteOf<TestConfig>) -> io::Result<()> {
        self.inner.flush().await?;
        let sealed = seal::<Bincode, _>(vote).map_err(io::Error::other)?;
        let mut record = Vec::new();
        put_bytes(&mut record, &sealed);
        self.file.write_all_at(&record, 0)?;
        if self.bug != StoreBug::LazyVote {
            self.file.sync_data()?;
        }
        *lock(&self.vote) = Some(*vote);
        Ok(())
    }
}

impl RaftLogReader<TestConfig> for VoteFileReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<EntryOf<TestConfig>>> {
        self.inner.try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<TestConfig>>> {
        Ok(*lock(&self.vote))
    }
}

impl RaftLogStorage<TestConfig> for VoteFileStore {
    type LogReader = VoteFileReader;

    async fn get_log_state(&mut self) -> io::Result<LogState<TestConfig>> {
        self.write_pending().await?;
        self.inner.get_log_state().await
    }

    async fn get_log_reader(&mut self) -> VoteFileReader {
        // Nothing to return an error through: a failure shows at the next call.
        let _ = self.write_pending().await;
        VoteFileReader {
            inner: self.inner.get_log_reader().await,
            vote: self.vote.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &VoteOf<TestConfig>) -> io::Result<()> {
        self.write_pending().await?;
        if self.bug == StoreBug::VoteWithNextCall {
            *lock(&self.vote) = Some(*vote);
            self.pending_vote = Some(*vote);
            return Ok(());
        }
        self.write_vote(vote).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.write_pending().await?;
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogIdOf<TestConfig>>> {
        self.write_pending().await?;
        self.inner.read_committed().await
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TestConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<TestConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Only a held-back vote: held-back entries wait for a call that is not an append.
        if let Some(vote) = self.pending_vote.take() {
            self.write_vote(&vote).await?;
        }
        match self.bug {
            StoreBug::CallbackBeforeWrite => {
                self.pending.extend(entries);
                callback.io_completed(Ok(()));
                Ok(())
            }
            StoreBug::CallbackBeforeFlush => {
                self.inner.append(entries, IOFlushed::noop()).await?;
                callback.io_completed(Ok(()));
                Ok(())
            }
            _ => self.inner.append(entries, callback).await,
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<TestConfig>>) -> io::Result<()> {
        self.write_pending().await?;
        self.inner.truncate_after(last_log_id).await
    }

    async fn purge(&mut self, log_id: LogIdOf<TestConfig>) -> io::Result<()> {
        self.write_pending().await?;
        self.inner.purge(log_id).await
    }
}

/// Opens [`VoteFileStore`]s with one bug.
struct VoteFileStores(StoreBug);

impl StoreOpener for VoteFileStores {
    type Store = VoteFileStore;

    fn open(&self, dir: &Path) -> io::Result<VoteFileStore> {
        VoteFileStore::open(dir, self.0)
    }
}

/// Runs of a power-cut case a test makes for a bug that a cut catches only now and then.
const NARROW_ATTEMPTS: usize = 4;

/// A `#[test]` named `$name` that gets its own exact name as `$test`: the power-cut cases
/// re-run the test binary with `--exact $test`, and a name spelt twice could drift.
macro_rules! cut_test {
    ($(#[$meta:meta])* fn $name:ident($test:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            let $test: &str = stringify!($name);
            $body
        }
    };
}

/// `case` must have failed with a message holding every one of `expect`.
fn assert_fails(case: &str, result: CaseResult, expect: &[&str]) {
    let msg = match result {
        Ok(()) => panic!("{case} passed on a broken store"),
        Err(e) => e.to_string(),
    };
    for want in expect {
        assert!(
            msg.contains(want),
            "{case} failed, but not saying {want:?}:\n{msg}"
        );
    }
    eprintln!("{case} caught it: {msg}");
}

/// Runs `case` (a power-cut case) up to `attempts` times, until it fails; `case` must fail
/// with a message holding every one of `expect`. For bugs whose window is narrow: of the
/// [`power_cut::DEFAULT_CUTS`] cuts of a run, those after a kill land at random points (the
/// others tear a write at an fsync, which these bugs do not need), and may miss it.
fn assert_fails_within(name: &str, attempts: usize, mut case: impl FnMut() -> CaseResult, expect: &[&str]) {
    for attempt in 1..=attempts {
        if let Err(e) = case() {
            eprintln!("{name}: caught in run {attempt} of at most {attempts}");
            return assert_fails(name, Err(e), expect);
        }
        eprintln!("{name}: run {attempt} of at most {attempts} passed");
    }
    panic!("{name} passed {attempts} times on a broken store");
}

/// `case` must have passed.
fn assert_passes(case: &str, result: CaseResult) {
    if let Err(e) = result {
        panic!("{case} fails on the sound store: {e}");
    }
}

// Controls: the same designs without their bug pass the same cases.

cut_test! {
    fn sound_engine_passes_engine_batches(test) {
        assert_passes("engine_batches", power_cut::engine_batches(&Harness(Bug::Sound), test));
    }
}

cut_test! {
    fn sound_engine_passes_log_ops(test) {
        let stores = EngineStores(Harness(Bug::Sound));
        assert_passes("log_ops", power_cut::log_ops(&stores, test, Order::Strict));
    }
}

cut_test! {
    fn sound_vote_file_store_passes_log_ops(test) {
        let stores = VoteFileStores(StoreBug::Sound);
        assert_passes("log_ops", power_cut::log_ops(&stores, test, Order::Openraft));
    }
}

// (a) A durable write that never syncs.

cut_test! {
    fn never_syncs_fails_engine_batches(test) {
        assert_fails(
            "engine_batches",
            power_cut::engine_batches(&Harness(Bug::NeverSyncs), test),
            &["was durable, but the engine holds only batches up to"],
        );
    }
}

cut_test! {
    fn never_syncs_fails_log_ops(test) {
        let stores = EngineStores(Harness(Bug::NeverSyncs));
        assert_fails(
            "log_ops",
            power_cut::log_ops(&stores, test, Order::Strict),
            &["the store matches no state between the"],
        );
    }
}

// (b) A new file whose directory is never synced.

cut_test! {
    fn dir_never_synced_fails_engine_batches(test) {
        assert_fails(
            "engine_batches",
            power_cut::engine_batches(&Harness(Bug::DirNeverSynced), test),
            &["was durable, but the engine holds only batches up to 0"],
        );
    }
}

cut_test! {
    fn dir_never_synced_fails_log_ops(test) {
        let stores = EngineStores(Harness(Bug::DirNeverSynced));
        assert_fails(
            "log_ops",
            power_cut::log_ops(&stores, test, Order::Strict),
            &["the store matches no state between the", "found     no entries"],
        );
    }
}

// (c) A batch written op by op.

cut_test! {
    fn batch_op_by_op_fails_engine_batches(test) {
        // The half batch shows only when the kill lands inside a batch's write.
        assert_fails_within(
            "engine_batches",
            NARROW_ATTEMPTS,
            || power_cut::engine_batches(&Harness(Bug::BatchOpByOp), test),
            &["half a batch"],
        );
    }
}

cut_test! {
    fn batch_op_by_op_fails_log_ops(test) {
        let stores = EngineStores(Harness(Bug::BatchOpByOp));
        assert_fails_within(
            "log_ops",
            NARROW_ATTEMPTS,
            || power_cut::log_ops(&stores, test, Order::Strict),
            &["the store matches no state between the"],
        );
    }
}

// (d) A flush callback fired before the write.

cut_test! {
    fn callback_before_write_fails_log_ops(test) {
        let stores = VoteFileStores(StoreBug::CallbackBeforeWrite);
        assert_fails(
            "log_ops",
            power_cut::log_ops(&stores, test, Order::Openraft),
            &["the store matches no state between the"],
        );
    }
}

cut_test! {
    fn callback_before_flush_fails_log_ops(test) {
        // Lost only if the kill lands between the callback and the inner store's sync.
        let stores = VoteFileStores(StoreBug::CallbackBeforeFlush);
        assert_fails_within(
            "log_ops",
            NARROW_ATTEMPTS,
            || power_cut::log_ops(&stores, test, Order::Openraft),
            &["the store matches no state between the"],
        );
    }
}

// (e) A vote saved lazily.

cut_test! {
    fn lazy_vote_fails_log_ops(test) {
        let stores = VoteFileStores(StoreBug::LazyVote);
        assert_fails(
            "log_ops",
            power_cut::log_ops(&stores, test, Order::Openraft),
            &["the store matches no state between the"],
        );
    }
}

cut_test! {
    fn vote_with_next_call_fails_log_ops(test) {
        let stores = VoteFileStores(StoreBug::VoteWithNextCall);
        assert_fails_within(
            "log_ops",
            NARROW_ATTEMPTS,
            || power_cut::log_ops(&stores, test, Order::Openraft),
            &["the store matches no state between the"],
        );
    }
}

// (g) A replay that ignores the checksum of a torn last record. One run of each case must
// catch it, at the default number of cuts: every other cut tears the write in flight at an
// fsync. Before those cuts, a run caught it only when a random kill landed inside a write
// (9 and 7 runs of 20, log_ops and engine_batches).

cut_test! {
    fn ignores_checksum_fails_engine_batches(test) {
        assert_fails(
            "engine_batches",
            power_cut::engine_batches(&Harness(Bug::IgnoresChecksum), test),
            &["half a batch"],
        );
    }
}

cut_test! {
    fn ignores_checksum_fails_log_ops(test) {
        let stores = EngineStores(Harness(Bug::IgnoresChecksum));
        assert_fails(
            "log_ops",
            power_cut::log_ops(&stores, test, Order::Strict),
            &["the store matches no state between the"],
        );
    }
}

// (f) An fsync error swallowed: the file system fails one fsync with EIO (and drops the
// file's dirty data, as Linux does). No child process here, so one test runs both.

cut_test! {
    fn swallowed_fsync_error_fails_fsync_eio_reaches_callback(test) {
        assert_passes(
            "fsync_eio_reaches_callback_then_refused",
            run(fs_faults::fsync_eio_reaches_callback_then_refused(&Harness(Bug::Sound), test)),
        );
        assert_fails(
            "fsync_eio_reaches_callback_then_refused",
            run(fs_faults::fsync_eio_reaches_callback_then_refused(
                &Harness(Bug::SwallowsFsyncError),
                test,
            )),
            &["appends after the fault was armed all succeeded"],
        );
    }
}
