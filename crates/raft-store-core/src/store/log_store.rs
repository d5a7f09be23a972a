//! [`LineLogStore`]: the raft log over any [`Engine`], for either openraft line.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::RwLock;

use crate::line::Line;
use futures::channel::oneshot;

use super::check::CheckKind;
use super::check::EntryCheck;
use super::flusher::Finish;
use super::flusher::Sink;
use super::options::LogStoreOptions;
use super::reader::LineLogReader;
use super::shared::LogView;
use super::shared::PendingEntry;
use super::shared::Shared;
use super::writer::Writer;
use crate::Batch;
use crate::CodecError;
use crate::Engine;
use crate::Space;
use crate::StoreStats;
use crate::codec::Codec;
use crate::codec::ENVELOPE_HEADER;
use crate::codec::MessagePack;
use crate::codec::RoundTripError;
use crate::codec::log_key;
use crate::codec::seal;
use crate::error::StoreError;
use crate::format::check_or_init;
use crate::format::meta_key;
use crate::groups::GroupHook;

/// Durable raft log storage over an [`Engine`], with group commit.
///
/// - `append` encodes the entries, makes them readable at once from memory and queues them;
///   a flusher thread writes every queued job as one engine batch with one sync and then
///   completes the `IOFlushed` callbacks in order.
/// - `save_vote` returns once the vote is durable; `save_committed`, `truncate_after` and
///   `purge` are queued in order with the appends and become durable with the next group.
/// - **Fail-stop**: after a write or sync fails, the error reaches the callbacks of that group and
///   every later write is refused with [`StoreError::Poisoned`]; reopen the store to go on.
///   Retrying a failed fsync is not safe: the kernel may already have dropped the dirty pages.
/// - Every value is checksummed; a damaged one is an error naming the keyspace and log index.
/// - **Acknowledged means returned as written**: every entry is decoded once more before it is
///   written, and checked as its [`EntryCheck`] says (equal to what was given, or decodable under
///   a self-describing codec); an entry that would come back different is refused by `append`
///   ([`StoreError::EntryRefused`]) with nothing written, instead of being acknowledged. Under
///   openraft such a refusal stops the raft node: see [`EntryCheck`] for why, and for checking
///   a payload before proposing it.
/// - The codec `K` is [`MessagePack`] by default (self-describing). A codec that is not
///   ([`Bincode`](crate::Bincode), [`Postcard`](crate::Postcard)) is taken only by
///   [`open_checked`](Self::open_checked), with a value comparison or an explicit promise.
///
/// Dropping the store finishes every queued write, then stops the flusher thread.
pub struct LineLogStore<C: Line, E: Engine, K: Codec = MessagePack> {
    shared: Arc<Shared<C, E, K>>,
    writer: Writer,
    reader: LineLogReader<C, E, K>,
    check: EntryCheck<C::Entry>,
}

impl<C, E, K> LineLogStore<C, E, K>
where
    C: Line,
    E: Engine,
    K: Codec,
{
    /// Open the raft log kept in `engine`: check (or, for a new store, write) the format record,
    /// load vote, committed and last purged ids and rebuild the log state.
    ///
    /// Every entry appended must decode again ([`EntryCheck`]'s default for a self-describing
    /// codec). A codec that is not self-describing is refused here
    /// ([`StoreError::UncheckedCodec`]): open such a store with
    /// [`open_checked`](Self::open_checked).
    ///
    /// The store has the default [`LogStoreOptions`]; [`open_with`](Self::open_with) takes
    /// others.
    pub fn open(engine: E) -> Result<Self, StoreError> {
        Self::open_with(engine, LogStoreOptions::default())
    }

    /// Open the raft log kept in `engine` as [`open`](Self::open) does, with `options` instead
    /// of the default ones. Options no store can work with (see
    /// [`LogStoreOptions::validate`]) are refused before anything is read or written.
    pub fn open_with(engine: E, options: LogStoreOptions) -> Result<Self, StoreError> {
        if !K::SELF_DESCRIBING {
            return Err(StoreError::UncheckedCodec {
                backend: engine.backend(),
                codec: K::NAME,
            });
        }
        Self::open_checked_with(engine, EntryCheck::decodes(), options)
    }

    /// Open the raft log kept in `engine` as [`open`](Self::open) does, checking every appended
    /// entry as `check` says: [`EntryCheck::equal`] compares each entry with its decoding (under
    /// any codec), [`EntryCheck::trust_payload_encoding`] only decodes it.
    ///
    /// ```
    /// use raft_store_core::{Bincode, EntryCheck, LogStore, MemEngine};
    ///
    /// openraft::declare_raft_types!(pub Config: D = String, R = String);
    ///
    /// # fn main() -> Result<(), raft_store_core::StoreError> {
    /// // bincode, with every entry compared with what it reads back as.
    /// let store: LogStore<Config, MemEngine, Bincode> =
    ///     LogStore::open_checked(MemEngine::new(), EntryCheck::equal())?;
    /// # drop(store);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_checked(engine: E, check: EntryCheck<C::Entry>) -> Result<Self, StoreError> {
        Self::open_checked_with(engine, check, LogStoreOptions::default())
    }

    /// Open the raft log kept in `engine` as [`open_checked`](Self::open_checked) does, with
    /// `options` instead of the default ones (refused, before anything is read or written, if
    /// no store can work with them: see [`LogStoreOptions::validate`]).
    pub fn open_checked_with(
        engine: E,
        check: EntryCheck<C::Entry>,
        options: LogStoreOptions,
    ) -> Result<Self, StoreError> {
        let backend = engine.backend();
        options.validate().map_err(|e| e.into_store_error(backend))?;
        check_or_init(&engine, K::NAME, C::LINE)?;
        let view = LogView::recover::<E, K>(&engine)?;
        // One group of a multi-group store writes through the store's flusher (one sync for
        // every group), and shares its fail-stop state and counters; any other engine gets a
        // flusher of its own.
        let group = engine
            .group_writer()
            .and_then(|hook| hook.downcast::<GroupHook>().ok());
        let (poison, stats) = match &group {
            Some(hook) => (hook.flusher.poison.clone(), hook.flusher.stats.clone()),
            None => (Arc::new(OnceLock::new()), Arc::new(StoreStats::default())),
        };
        let shared = Arc::new(Shared {
            engine,
            backend,
            view: Mutex::new(view),
            deleting: Arc::new(RwLock::new(())),
            poison,
            stats,
            options,
            _codec: PhantomData,
        });
        let writer = if let Some(hook) = group {
            Writer::Group {
                flusher: hook.flusher.clone(),
                prefix: hook.prefix,
            }
        } else {
            let target = shared.clone();
            Writer::own(Sink {
                write: Box::new(move |batch| target.engine.write(batch, crate::Durability::Durable)),
                backend,
                poison: shared.poison.clone(),
                stats: shared.stats.clone(),
                max_group_bytes: shared.options.max_group_bytes,
                slow_sync: shared.options.slow_sync,
            })?
        };
        let reader = LineLogReader::new(&shared);
        Ok(Self {
            shared,
            writer,
            reader,
            check,
        })
    }

    /// How `append` checks each entry before writing it.
    pub fn entry_check(&self) -> &EntryCheck<C::Entry> {
        &self.check
    }

    /// Whether `entry` would be accepted by `append`: encoded, decoded and checked as the store
    /// checks it, with nothing written. The error is the one `append` would return.
    pub fn check_entry(&self, entry: &C::Entry) -> Result<(), StoreError> {
        self.seal_checked(entry).map(|_| ())
    }

    /// Encode `entry` into its envelope and check that it comes back as written.
    fn seal_checked(&self, entry: &C::Entry) -> Result<Vec<u8>, StoreError> {
        let refused = |source: RoundTripError| StoreError::EntryRefused {
            backend: self.shared.backend,
            index: C::entry_index(entry),
            log_id: format!("{:?}", C::entry_log_id(entry)),
            check: self.check.describe(),
            source: Box::new(source),
        };
        let value = seal::<K, _>(entry).map_err(|reason| {
            refused(RoundTripError::Encode {
                codec: K::NAME,
                source: reason,
            })
        })?;
        // Decode it again before anything is written: an entry that does not come back as
        // written would be acknowledged, replicated and applied as another value on every node
        // (or refused on every node for ever). Refused here, it never leaves this append.
        let payload = value.get(ENVELOPE_HEADER..).unwrap_or_default();
        let back = K::decode::<C::Entry>(payload).map_err(|reason| {
            refused(RoundTripError::Decode {
                codec: K::NAME,
                len: payload.len(),
                source: reason,
            })
        })?;
        if let CheckKind::Compare(eq) = self.check.kind
            && !eq(&back, entry)
        {
            return Err(refused(RoundTripError::Different { codec: K::NAME }));
        }
        Ok(value)
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &LogStoreOptions {
        &self.shared.options
    }

    /// The backend name of the engine.
    pub fn backend(&self) -> &'static str {
        self.shared.backend
    }

    /// The engine under the store.
    pub fn engine(&self) -> &E {
        &self.shared.engine
    }

    /// The store's counters (sync latency, group sizes, bytes, errors), shared: hand the same
    /// to the state machine with `KvStateMachine::open_with_stats` to count its applies too.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.shared.stats.clone()
    }

    /// Why the store refuses writes, if an earlier write or sync failed: the engine's error
    /// (its [`kind`](crate::EngineError::kind) says `StorageFull` for a full disk).
    pub fn poisoned(&self) -> Option<Arc<crate::EngineError>> {
        self.shared.poison.get().cloned()
    }

    /// Whether an earlier failed write or sync made the store refuse writes.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poison.get().is_some()
    }

    /// Wait until every write queued so far is durable.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        self.write_and_wait(Batch::new()).await
    }

    /// Append `entries` and wait until they are durable, without an openraft callback: for
    /// tools (a migration, a replay) and tests. The same checks as openraft's `append`: the
    /// entries must continue the log, and each must decode again.
    pub async fn append_and_wait(&mut self, entries: Vec<C::Entry>) -> Result<(), StoreError> {
        self.append_queued(entries)?.await
    }

    /// Queue `entries` as [`append_and_wait`](Self::append_and_wait) does, without waiting: the
    /// future resolves once they are durable. Appends queued one after another share syncs
    /// (group commit), as openraft's appends do; their entries are readable at once.
    pub fn append_queued(
        &mut self,
        entries: Vec<C::Entry>,
    ) -> Result<impl Future<Output = Result<(), StoreError>> + Send + use<C, E, K>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.append_entries(entries, Tell::Notify(tx))?;
        let backend = self.backend();
        Ok(async move { rx.await.map_err(|_| StoreError::Closed { backend })? })
    }

    /// Queue `batch` behind everything queued so far and wait until it is durable.
    async fn write_and_wait(&self, batch: Batch) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(batch, false, Some(Tell::Notify(tx)), None)?;
        rx.await.map_err(|_| self.writer.closed())?
    }

    /// Queue `batch` (which `deletes` log entries, or not); `tell` is told once it is durable,
    /// after the pending entries up to `max_seq` are dropped from memory.
    fn send(
        &self,
        batch: Batch,
        deletes: bool,
        tell: Option<Tell<C>>,
        max_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        let done = tell.map(|tell| {
            Box::new(Durable {
                shared: self.shared.clone(),
                max_seq,
                tell,
            }) as Box<dyn Finish>
        });
        let exclusive = deletes.then(|| self.shared.deleting.clone());
        self.writer.send(batch, exclusive, done)
    }

    fn encode_err(&self, what: &'static str) -> impl Fn(CodecError) -> StoreError {
        let backend = self.shared.backend;
        move |source| StoreError::encode(backend, what, source)
    }

    /// Append entries; `done` is told once they are durable. Refuses (and writes nothing for) an
    /// append that does not start right after the last entry or is not consecutive.
    fn append_entries(&mut self, entries: Vec<C::Entry>, tell: Tell<C>) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        let mut batch = Batch::new();
        for entry in &entries {
            let value = self.seal_checked(entry)?;
            batch.put(Space::Log, log_key(C::entry_index(entry)), value);
        }
        let mut view = self.shared.view();
        if let Some(first) = entries.first() {
            let mut want = view
                .last_log_id
                .as_ref()
                .map_or(C::entry_index(first), |l| C::index(l).saturating_add(1));
            for entry in &entries {
                if C::entry_index(entry) != want {
                    return Err(StoreError::NotContiguous {
                        backend: self.shared.backend,
                        expected: want,
                        got: C::entry_index(entry),
                    });
                }
                want = want.saturating_add(1);
            }
        }
        if view.last_log_id.is_none()
            && let Some(first) = entries.first()
        {
            view.log_start = C::entry_index(first);
        }
        let mut max_seq = None;
        for entry in entries {
            let seq = view.next_seq;
            view.next_seq += 1;
            max_seq = Some(seq);
            view.last_log_id = Some(C::entry_log_id(&entry));
            view.pending.push_back(PendingEntry {
                index: C::entry_index(&entry),
                seq,
                entry,
            });
        }
        // Sent while the view is locked so the flusher sees jobs in the order the view changed.
        self.send(batch, false, Some(tell), max_seq)
    }

    /// Delete every entry after `after` (all of them for `None`).
    pub(crate) fn truncate_after(&mut self, after: Option<C::LogId>) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        let mut view = self.shared.view();
        let first_gone = after.as_ref().map_or(0, |l| C::index(l).saturating_add(1));
        let last = view.last_log_id.as_ref().map(C::index);
        if last.is_none_or(|last| last < first_gone) {
            return Ok(());
        }
        while view.pending.back().is_some_and(|p| p.index >= first_gone) {
            view.pending.pop_back();
        }
        view.last_log_id = if let Some(after) = after {
            Some(after)
        } else {
            view.log_start = view.after_purged();
            view.last_purged.clone()
        };
        let mut batch = Batch::new();
        batch.delete_range(Space::Log, log_key(first_gone), None);
        self.send(batch, true, None, None)
    }

    /// Delete every entry up to and including `upto`, remembering it as the last purged id.
    pub(crate) fn purge_upto(&mut self, upto: C::LogId) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        let value = seal::<K, _>(&upto).map_err(self.encode_err("last purged log id"))?;
        let mut view = self.shared.view();
        if view
            .last_purged
            .as_ref()
            .is_some_and(|p| C::index(p) >= C::index(&upto))
        {
            return Ok(());
        }
        while view.pending.front().is_some_and(|p| p.index <= C::index(&upto)) {
            view.pending.pop_front();
        }
        if view
            .last_log_id
            .as_ref()
            .is_none_or(|l| C::index(l) < C::index(&upto))
        {
            view.last_log_id = Some(upto.clone());
        }
        let end = C::index(&upto).checked_add(1).map(|i| log_key(i).to_vec());
        view.last_purged = Some(upto);
        view.log_start = view.after_purged();
        let mut batch = Batch::new();
        // One batch: the purge mark and the deletion land together or not at all.
        batch.put(Space::Meta, meta_key::PURGED, value);
        batch.delete_range(Space::Log, Vec::new(), end);
        self.send(batch, true, None, None)
    }
}

impl<C: Line, E: Engine, K: Codec> Drop for LineLogStore<C, E, K> {
    fn drop(&mut self) {
        // Finish what is queued (its callbacks are still waited on), then stop a flusher of the
        // store's own so the engine is released once the last reader is gone.
        self.writer.close();
    }
}

/// Who to tell when a job is durable.
enum Tell<C: Line> {
    /// openraft's append callback.
    Flushed(C::Flushed),
    /// A waiting caller (`save_vote`, `flush`).
    Notify(oneshot::Sender<Result<(), StoreError>>),
}

/// What a job of this store does once the flusher wrote it: drop the entries it wrote from
/// memory (they are read from the engine now), then tell its caller.
struct Durable<C: Line, E, K> {
    shared: Arc<Shared<C, E, K>>,
    /// Highest sequence number of the entries the job appends.
    max_seq: Option<u64>,
    tell: Tell<C>,
}

impl<C: Line, E: Engine, K: Send + Sync + 'static> Finish for Durable<C, E, K> {
    fn finish(self: Box<Self>, result: Result<(), StoreError>) {
        if result.is_ok()
            && let Some(max_seq) = self.max_seq
        {
            let mut view = self.shared.view();
            while view.pending.front().is_some_and(|p| p.seq <= max_seq) {
                view.pending.pop_front();
            }
        }
        match self.tell {
            Tell::Flushed(cb) => C::flushed(cb, result.map_err(std::io::Error::from)),
            Tell::Notify(tx) => {
                // The waiter may have given up (its future was dropped); nothing to tell then.
                let _ = tx.send(result);
            }
        }
    }
}

/// What each line's `RaftLogStorage` impl calls: the trait methods without openraft's types.
impl<C, E, K> LineLogStore<C, E, K>
where
    C: Line,
    E: Engine,
    K: Codec,
{
    /// The reader the store serves reads through.
    pub(crate) fn reader_ref(&self) -> &LineLogReader<C, E, K> {
        &self.reader
    }

    /// Last purged and last log id.
    pub(crate) fn log_state(&self) -> (Option<C::LogId>, Option<C::LogId>) {
        let view = self.shared.view();
        (view.last_purged.clone(), view.last_log_id.clone())
    }

    /// Write the vote and wait until it is durable.
    pub(crate) async fn save_vote_durable(&mut self, vote: &C::Vote) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        let value = seal::<K, _>(vote).map_err(self.encode_err("vote"))?;
        let mut batch = Batch::new();
        batch.put(Space::Meta, meta_key::VOTE, value);
        self.write_and_wait(batch).await?;
        self.shared.view().vote = Some(vote.clone());
        Ok(())
    }

    /// Queue the committed log id; durable with the next group.
    pub(crate) fn queue_committed(&mut self, committed: Option<C::LogId>) -> Result<(), StoreError> {
        self.shared.check_poison()?;
        let value = seal::<K, _>(&committed).map_err(self.encode_err("committed log id"))?;
        let mut batch = Batch::new();
        batch.put(Space::Meta, meta_key::COMMITTED, value);
        let mut view = self.shared.view();
        view.committed = committed;
        self.send(batch, false, None, None)
    }

    /// The last saved committed log id.
    pub(crate) fn committed(&self) -> Option<C::LogId> {
        self.shared.view().committed.clone()
    }

    /// Append `entries`; openraft's `callback` is told once they are durable.
    pub(crate) fn append_with_callback(
        &mut self,
        entries: Vec<C::Entry>,
        callback: C::Flushed,
    ) -> Result<(), StoreError> {
        self.append_entries(entries, Tell::Flushed(callback))
    }

    /// Delete every entry at or after index `first_gone` (openraft 0.9's `truncate`), keeping
    /// the log id of the entry before it as the last one.
    #[cfg_attr(not(feature = "openraft-0-9"), allow(dead_code))]
    pub(crate) fn truncate_from(&mut self, first_gone: u64) -> Result<(), StoreError> {
        let Some(prev) = first_gone.checked_sub(1) else {
            return self.truncate_after(None);
        };
        let after = {
            let view = self.shared.view();
            let last = view.last_log_id.as_ref().map(C::index);
            if last.is_none_or(|last| last < first_gone) {
                return Ok(());
            }
            if let Some(p) = view.pending.iter().find(|p| p.index == prev) {
                Some(Some(C::entry_log_id(&p.entry)))
            } else if let Some(purged) = view.last_purged.as_ref().filter(|p| C::index(p) >= prev) {
                // The entry before the cut is purged: the log starts again after the last purged id.
                (C::index(purged) == prev)
                    .then(|| Some(purged.clone()))
                    .or(Some(None))
            } else if prev < view.log_start {
                Some(None)
            } else {
                None
            }
        };
        let after = if let Some(after) = after {
            after
        } else {
            let entries = self.reader.read_range(prev, first_gone, usize::MAX)?;
            let entry = entries.first().ok_or(StoreError::Missing {
                backend: self.shared.backend,
                index: prev,
            })?;
            Some(C::entry_log_id(entry))
        };
        self.truncate_after(after)
    }
}
