//! The openraft 0.10 items at the crate root (feature `openraft-0-10`, the default).

use openraft::RaftTypeConfig;
pub use raft_store_core::LogReader;
pub use raft_store_core::LogStore;

use crate::AnyEngine;
use crate::StoreConfig;
use crate::StoreError;
use crate::kv;
use raft_store_core::Codec;
use raft_store_core::EntryCheck;
use raft_store_core::MessagePack;

/// The one log store type for every compiled backend; its codec `K` is
/// [`MessagePack`] unless chosen otherwise with [`open_checked`].
pub type Store<C, K = MessagePack> = LogStore<C, AnyEngine, K>;

/// Open (or create) the store `config` names.
pub fn open<C>(config: &StoreConfig) -> Result<Store<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    LogStore::open(config.open_engine()?)
}

/// Open (or create) the store `config` names with codec `K`, checking each appended entry as
/// `check` says: the way to use a codec that is not self-describing ([`Bincode`](crate::Bincode),
/// [`Postcard`](crate::Postcard)), and to open a store an earlier release wrote with bincode.
/// See [`EntryCheck`] for the choices.
pub fn open_checked<C, K>(
    config: &StoreConfig,
    check: EntryCheck<C::Entry>,
) -> Result<Store<C, K>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    K: Codec,
{
    LogStore::open_checked(config.open_engine()?, check)
}

/// The log store of [`open_with_kv`]: it shares its engine with the state machine.
pub type SharedStore<C, K = MessagePack> = LogStore<C, std::sync::Arc<AnyEngine>, K>;

/// The key-value state machine of [`open_with_kv`], in the same engine as the log.
pub type KvStore<C, K = MessagePack> = kv::KvStateMachine<C, std::sync::Arc<AnyEngine>, K>;

/// The log store and the key-value state machine of [`open_with_kv_checked`], in one engine.
pub type WithKv<C, K = MessagePack> = (SharedStore<C, K>, KvStore<C, K>);

/// Open (or create) the store `config` names together with a key-value state machine in the
/// same engine; its snapshot files go to `snapshots/` inside the store directory.
///
/// Keys of any length apply on every backend: keys over the backend's key limit (LMDB: more
/// than 503 bytes) are stored under their hash (see the state machine's docs).
pub fn open_with_kv<C>(config: &StoreConfig) -> Result<(SharedStore<C>, KvStore<C>), StoreError>
where
    C: kv::KvTypeConfig,
    C::Entry: Clone,
{
    let engine = std::sync::Arc::new(config.open_engine()?);
    // The log store first: it writes the format record and the store's marker.
    let log = LogStore::open(engine.clone())?;
    // One set of counters for both: a node's metrics show its syncs and applies together.
    let sm = kv::KvStateMachine::open_with_stats(engine, config.path.join("snapshots"), log.stats())?;
    Ok((log, sm))
}

crate::macros::backend_modules!({ C: ::openraft::RaftTypeConfig, C::Entry: Clone });

/// [`open_with_kv`] with codec `K` and the entry check `check` (see [`open_checked`]).
pub fn open_with_kv_checked<C, K>(
    config: &StoreConfig,
    check: EntryCheck<C::Entry>,
) -> Result<WithKv<C, K>, StoreError>
where
    C: kv::KvTypeConfig,
    C::Entry: Clone,
    K: Codec,
{
    let engine = std::sync::Arc::new(config.open_engine()?);
    let log = LogStore::open_checked(engine.clone(), check)?;
    let sm = kv::KvStateMachine::open_with_stats(engine, config.path.join("snapshots"), log.stats())?;
    Ok((log, sm))
}
