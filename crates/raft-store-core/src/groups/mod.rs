//! Many raft groups on one engine: [`GroupStore`], and [`Group`], one group's view of it.
//!
//! Every key a group's log, raft meta and key-value state machine write carries the group's
//! prefix (see the layout in `prefix.rs`), so groups share the engine's keyspaces without
//! touching each other's keys. Every group's log store writes through the store's one flusher:
//! a round takes the queued jobs of every group and writes them as one engine batch with one
//! sync, so N groups appending at once cost about one sync, not N.

mod prefix;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::OnceLock;
use std::sync::Weak;

pub(crate) use prefix::GroupPrefix;

use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::EngineError;
use crate::EngineLimits;
use crate::KeyRange;
use crate::LogStoreOptions;
use crate::Space;
use crate::StoreDir;
use crate::StoreStats;
use crate::Visitor;
use crate::error::StoreError;
use crate::format::check_or_init_groups;
use crate::store::SharedFlusher;
use crate::store::Sink;

/// The first byte of a registry key: `G` and the group id (8 bytes big-endian), in the meta
/// keyspace, for every group that exists.
const REGISTRY_TAG: u8 = b'G';
/// A registry value: the group exists.
const LIVE: &[u8] = b"live";
/// A registry value: the group is being dropped; its keys are deleted on the next open if the
/// drop did not finish.
const DROPPING: &[u8] = b"drop";
/// How many keys one batch of a drop deletes, so a drop of a large group never makes one
/// transaction of all its keys.
const DROP_CHUNK_KEYS: usize = 10_000;

fn registry_key(id: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = REGISTRY_TAG;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Held by every open view of a group; a drop waits for none and refuses while any is alive.
#[derive(Debug)]
struct OpenToken;

/// What the registry knows of a group.
enum State {
    /// The group exists; `open` is alive while a view of it is.
    Live { open: Weak<OpenToken> },
    /// The group's drop has started.
    Dropping,
}

/// What a group's engine view hands a log store opened on it: the store's shared flusher and
/// the group's prefix.
pub(crate) struct GroupHook {
    pub flusher: Arc<SharedFlusher>,
    pub prefix: GroupPrefix,
}

struct Inner<E> {
    engine: Arc<E>,
    backend: &'static str,
    flusher: Arc<SharedFlusher>,
    registry: Mutex<BTreeMap<u64, State>>,
}

/// Many raft groups on one [`Engine`], with one flusher (one batch and one sync per round) for
/// all of them.
///
/// ```
/// use raft_store_core::{Group, GroupStore, LogStore, MemEngine};
///
/// openraft::declare_raft_types!(pub Config: D = String, R = String);
///
/// # fn main() -> Result<(), raft_store_core::StoreError> {
/// let store = GroupStore::open(MemEngine::new())?;
/// store.create_group(7)?;
/// // A group's view is an engine: open its log store (and state machine) on it as on any
/// // engine. Its writes go through the store's one flusher with every other group's.
/// let log: LogStore<Config, Group<MemEngine>> = LogStore::open(store.group(7)?)?;
/// assert_eq!(store.groups(), vec![7]);
/// # drop(log);
/// # Ok(())
/// # }
/// ```
///
/// - **Groups are explicit**: [`create_group`](Self::create_group) writes a registry record
///   (durably); [`group`](Self::group) of an id never created is refused. Opening the store
///   reads only the registry: each group's state is read when its log store opens (lazily), so
///   a store of many groups opens at once and an idle group costs nothing until it is used.
/// - **Isolation**: a group's keys are its prefix and the key a single-group store would use;
///   every read of a view stays inside the group's range, every write is moved into it.
/// - **One flusher**: a log store opened on a view writes through the store's flusher. The
///   store's [`LogStoreOptions`] (group cap, slow-sync threshold) are the flusher's; a group's
///   own options set only what is per store (the read cap).
/// - **Fail-stop per engine**: a failed write or sync poisons every group: each waiting
///   callback gets the error, every later write of every group is refused. Reopen the store.
/// - **Drop**: [`drop_group`](Self::drop_group) deletes every key of a group in batches of
///   10,000 keys, after a durable mark; a power cut part way leaves the group marked, and the
///   next open finishes the drop, so after a reopen the group is whole or gone.
/// - The store's format record names the layout, so a single-group store is never opened as a
///   multi-group one, nor the other way round.
pub struct GroupStore<E: Engine> {
    inner: Arc<Inner<E>>,
}

impl<E: Engine> Clone for GroupStore<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Engine> GroupStore<E> {
    /// Open the multi-group store kept in `engine` (a new one if the engine is empty), with
    /// the default [`LogStoreOptions`] for its flusher. Finishes any drop a crash interrupted.
    pub fn open(engine: E) -> Result<Self, StoreError> {
        Self::open_with(engine, &LogStoreOptions::default())
    }

    /// Open the store as [`open`](Self::open) does, with `options` for its flusher (its group
    /// cap and slow-sync threshold hold for the rounds of all groups together).
    pub fn open_with(engine: E, options: &LogStoreOptions) -> Result<Self, StoreError> {
        let backend = engine.backend();
        options.validate().map_err(|e| e.into_store_error(backend))?;
        check_or_init_groups(&engine)?;
        let registry = read_registry(&engine)?;
        let engine = Arc::new(engine);
        let target = engine.clone();
        let flusher = Arc::new(SharedFlusher::start(Sink {
            write: Box::new(move |batch| target.write(batch, Durability::Durable)),
            backend,
            poison: Arc::new(OnceLock::new()),
            stats: Arc::new(StoreStats::default()),
            max_group_bytes: options.max_group_bytes,
            slow_sync: options.slow_sync,
        })?);
        let store = Self {
            inner: Arc::new(Inner {
                engine,
                backend,
                flusher,
                registry: Mutex::new(BTreeMap::new()),
            }),
        };
        let mut live = BTreeMap::new();
        for (id, dropping) in registry {
            if dropping {
                store.finish_drop(id)?;
            } else {
                live.insert(id, State::Live { open: Weak::new() });
            }
        }
        *store.registry() = live;
        Ok(store)
    }

    fn registry(&self) -> MutexGuard<'_, BTreeMap<u64, State>> {
        // Only short sections that cannot panic hold it.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The backend name of the engine.
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// The engine under the store.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }

    /// Counters of the shared flusher (syncs, round sizes, bytes, errors) for all groups.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.inner.flusher.stats.clone()
    }

    /// Why every group refuses writes, if a write or sync of the shared flusher failed.
    pub fn poisoned(&self) -> Option<Arc<EngineError>> {
        self.inner.flusher.poison.get().cloned()
    }

    /// Create group `id`, durably. Returns `false` (and writes nothing) if it exists already.
    pub fn create_group(&self, id: u64) -> Result<bool, StoreError> {
        self.create_groups([id]).map(|created| created == 1)
    }

    /// Create every group of `ids` that does not exist yet, in one durable batch. Returns how
    /// many were created.
    pub fn create_groups(&self, ids: impl IntoIterator<Item = u64>) -> Result<usize, StoreError> {
        let mut registry = self.registry();
        let mut batch = Batch::new();
        let mut new = Vec::new();
        for id in ids {
            match registry.get(&id) {
                Some(State::Live { .. }) => {}
                Some(State::Dropping) => {
                    return Err(StoreError::GroupDropping {
                        backend: self.backend(),
                        group: id,
                    });
                }
                None if new.contains(&id) => {}
                None => {
                    batch.put(Space::Meta, registry_key(id).to_vec(), LIVE.to_vec());
                    new.push(id);
                }
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        self.check_poison()?;
        self.inner.engine.write(&batch, Durability::Durable)?;
        for &id in &new {
            registry.insert(id, State::Live { open: Weak::new() });
        }
        Ok(new.len())
    }

    /// The ids of every group, in ascending order.
    pub fn groups(&self) -> Vec<u64> {
        self.registry()
            .iter()
            .filter(|(_, state)| matches!(state, State::Live { .. }))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether group `id` exists.
    pub fn contains(&self, id: u64) -> bool {
        matches!(self.registry().get(&id), Some(State::Live { .. }))
    }

    /// The engine view of group `id`: open its log store and state machine on it. Refused for
    /// a group that does not exist ([`StoreError::NoSuchGroup`]).
    pub fn group(&self, id: u64) -> Result<Group<E>, StoreError> {
        let mut registry = self.registry();
        let open = match registry.get_mut(&id) {
            Some(State::Live { open }) => {
                if let Some(token) = open.upgrade() {
                    token
                } else {
                    let token = Arc::new(OpenToken);
                    *open = Arc::downgrade(&token);
                    token
                }
            }
            Some(State::Dropping) => {
                return Err(StoreError::GroupDropping {
                    backend: self.backend(),
                    group: id,
                });
            }
            None => {
                return Err(StoreError::NoSuchGroup {
                    backend: self.backend(),
                    group: id,
                });
            }
        };
        let prefix = GroupPrefix::new(id);
        Ok(Group {
            id,
            engine: self.inner.engine.clone(),
            hook: Arc::new(GroupHook {
                flusher: self.inner.flusher.clone(),
                prefix,
            }),
            prefix,
            open,
        })
    }

    /// Drop group `id`: delete every key it has, in bounded batches, then forget it. Refused
    /// while a view of it is open ([`StoreError::GroupInUse`]): drop its log store, state
    /// machine and views first. A crash part way is finished by the next open.
    ///
    /// Returns `false` if there was no such group. The group's snapshot files (kept by the
    /// state machine in a directory of yours) are not touched.
    pub fn drop_group(&self, id: u64) -> Result<bool, StoreError> {
        {
            let mut registry = self.registry();
            match registry.get(&id) {
                None => return Ok(false),
                Some(State::Dropping) => {
                    return Err(StoreError::GroupDropping {
                        backend: self.backend(),
                        group: id,
                    });
                }
                Some(State::Live { open }) if open.strong_count() > 0 => {
                    return Err(StoreError::GroupInUse {
                        backend: self.backend(),
                        group: id,
                    });
                }
                Some(State::Live { .. }) => {}
            }
            self.check_poison()?;
            // The mark first, durably: from here a crash leaves the group to be dropped.
            let mut batch = Batch::new();
            batch.put(Space::Meta, registry_key(id).to_vec(), DROPPING.to_vec());
            self.inner.engine.write(&batch, Durability::Durable)?;
            registry.insert(id, State::Dropping);
        }
        self.finish_drop(id)?;
        Ok(true)
    }

    /// Delete every key of group `id`, whose drop mark is durable, then its registry record.
    fn finish_drop(&self, id: u64) -> Result<(), StoreError> {
        let prefix = GroupPrefix::new(id);
        let engine = &*self.inner.engine;
        for space in Space::ALL {
            delete_all(engine, space, &prefix)?;
        }
        let mut batch = Batch::new();
        batch.delete(Space::Meta, registry_key(id).to_vec());
        engine.write(&batch, Durability::Durable)?;
        self.registry().remove(&id);
        Ok(())
    }

    fn check_poison(&self) -> Result<(), StoreError> {
        match self.inner.flusher.poison.get() {
            Some(first) => Err(crate::store::poisoned(self.backend(), first)),
            None => Ok(()),
        }
    }
}

/// Delete every key of `prefix`'s group in `space`, [`DROP_CHUNK_KEYS`] at a time.
fn delete_all<E: Engine>(engine: &E, space: Space, prefix: &GroupPrefix) -> Result<(), EngineError> {
    let all = prefix.all();
    loop {
        let (mut last, mut n) = (None, 0usize);
        engine.scan(space, all.as_range(), &mut |key, _| {
            last = Some(key.to_vec());
            n += 1;
            if n >= DROP_CHUNK_KEYS {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let Some(mut end) = last else { return Ok(()) };
        // The first key after `last`: the batch deletes exactly the keys just counted.
        end.push(0);
        let mut batch = Batch::new();
        batch.delete_range(space, prefix.start().to_vec(), Some(end));
        engine.write(&batch, Durability::Buffered)?;
        if n < DROP_CHUNK_KEYS {
            return Ok(());
        }
    }
}

/// The registry: every group id and whether its drop has started.
fn read_registry<E: Engine>(engine: &E) -> Result<Vec<(u64, bool)>, StoreError> {
    let backend = engine.backend();
    let (start, end) = ([REGISTRY_TAG], [REGISTRY_TAG + 1]);
    let mut out = Vec::new();
    let mut bad = None;
    engine.scan(
        Space::Meta,
        KeyRange::half_open(&start, &end),
        &mut |key, value| {
            let id = key
                .strip_prefix(&[REGISTRY_TAG][..])
                .and_then(|id| <[u8; 8]>::try_from(id).ok())
                .map(u64::from_be_bytes);
            match (id, value) {
                (Some(id), LIVE) => out.push((id, false)),
                (Some(id), DROPPING) => out.push((id, true)),
                _ => {
                    bad = Some(format!(
                        "group registry record {key:?} = {value:?} is neither a live nor a dropping group"
                    ));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    match bad {
        Some(what) => Err(StoreError::damaged(backend, Space::Meta, None, what)),
        None => Ok(out),
    }
}

/// One raft group of a [`GroupStore`]: an [`Engine`] whose keys are the group's alone.
///
/// Open the group's log store (`LogStore::open`, for either openraft line) and key-value state
/// machine on it as on any engine; the log store writes through the store's shared flusher. A
/// group cannot be dropped while a view of it (or a store opened on one) is alive.
pub struct Group<E> {
    id: u64,
    engine: Arc<E>,
    hook: Arc<GroupHook>,
    prefix: GroupPrefix,
    /// Keeps the group from being dropped while the view is alive.
    open: Arc<OpenToken>,
}

impl<E> Clone for Group<E> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            engine: self.engine.clone(),
            hook: self.hook.clone(),
            prefix: self.prefix,
            open: self.open.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> Group<E> {
    /// The group's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The engine of the whole store.
    pub fn store_engine(&self) -> &E {
        &self.engine
    }
}

impl<E: Engine> Engine for Group<E> {
    fn backend(&self) -> &'static str {
        self.engine.backend()
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        self.engine.write(&self.prefix.batch(batch.clone()), durability)
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.engine.get(space, &self.prefix.key(key))
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        if range.is_empty() {
            return Ok(());
        }
        let range = self.prefix.range(range);
        let prefix = self.prefix;
        self.engine.scan(
            space,
            range.as_range(),
            &mut |key, value| match prefix.strip(key) {
                Some(key) => visit(key, value),
                // Not a key of this group (none is written between groups): not ours to show.
                None => ControlFlow::Continue(()),
            },
        )
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        self.last_key_in(space, KeyRange::ALL)
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        if range.is_empty() {
            return Ok(None);
        }
        let range = self.prefix.range(range);
        let last = self.engine.last_key_in(space, range.as_range())?;
        Ok(last.and_then(|key| self.prefix.strip(&key).map(<[u8]>::to_vec)))
    }

    /// The engine's limits less the prefix every key of the group carries.
    fn limits(&self) -> EngineLimits {
        let limits = self.engine.limits();
        let less = |n: usize| {
            if n == usize::MAX {
                n
            } else {
                n.saturating_sub(self.prefix.start().len())
            }
        };
        EngineLimits {
            max_key: less(limits.max_key),
            max_value: limits.max_value,
            max_pair: less(limits.max_pair),
        }
    }

    /// None: the store's directory belongs to the store, which keeps its own format record
    /// and marks the directory itself.
    fn store_dir(&self) -> Option<&StoreDir> {
        None
    }

    fn compact(&self) -> Result<(), EngineError> {
        self.engine.compact()
    }

    fn group_writer(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self.hook.clone())
    }
}
