//! The same store for openraft 0.9, the stable line (feature `openraft-0-9`): every item the
//! crate root has for 0.10, with openraft 0.9's types and traits.
//!
//! ```no_run
//! use raft_store::openraft09::openraft; // or your own `openraft = "0.9"`
//! use raft_store::openraft09::kv::{KvRequest, KvResponse, SnapshotFile};
//! use raft_store::{Backend, StoreConfig};
//!
//! openraft::declare_raft_types!(
//!     pub KvConfig: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
//! );
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = StoreConfig::new(Backend::Redb, "/var/lib/my-node/raft");
//! let (log_store, state_machine) = raft_store::openraft09::open_with_kv::<KvConfig>(&config)?;
//! // openraft::Raft::new(node_id, raft_config, network, log_store, state_machine).await?
//! # drop((log_store, state_machine));
//! # Ok(())
//! # }
//! ```
//!
//! Outside raft, the store is read through openraft 0.9's own traits, so bring them into scope;
//! the state machine's reader serves reads before `Raft::new`, while raft owns the state
//! machine, and after `Raft::shutdown`:
//!
//! ```no_run
//! use raft_store::openraft09::openraft;
//! use raft_store::openraft09::kv::{KvRequest, KvResponse, SnapshotFile};
//! use openraft::storage::RaftLogStorage; // get_log_state, read_vote, read_committed
//!
//! openraft::declare_raft_types!(
//!     pub KvConfig: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
//! );
//!
//! # async fn after_a_restart(config: raft_store::StoreConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let (mut log_store, state_machine) = raft_store::openraft09::open_with_kv::<KvConfig>(&config)?;
//! let state = log_store.get_log_state().await?;
//! let vote = log_store.read_vote().await?;
//! println!("last log id {:?}, vote {vote:?}", state.last_log_id);
//! let value = state_machine.reader().get("some key")?;
//! // ... Raft::new(.., log_store, state_machine), and at the end:
//! // raft.shutdown().await?; then drop the Raft: the log store finishes the writes it queued.
//! // To open the store again in this process, first await its release (openraft's state
//! // machine task drops the state machine a moment after `shutdown` returns):
//! // raft_store::wait_released(&config.path, Duration::from_secs(10)).await?;
//! # drop(value);
//! # Ok(())
//! # }
//! ```
//!
//! A whole single-node application on this line is `examples/openraft_0_9.rs` (initialize,
//! write, shut down, start again on the same directory, read back), run as a test.
//!
//! A store written under one line is refused by the other (its format record names the line);
//! see `raft_store_core::migrate` to move a 0.9 store to 0.10.

use openraft::RaftTypeConfig;
pub use openraft_09 as openraft;
pub use raft_store_core::openraft09::LogReader;
pub use raft_store_core::openraft09::LogStore;
use serde_bounds::Serde;

use crate::AnyEngine;
use crate::StoreConfig;
use crate::StoreError;
use raft_store_core::Codec;
use raft_store_core::EntryCheck;
use raft_store_core::MessagePack;

/// The key-value state machine for openraft 0.9, and its requests and responses.
pub mod kv {
    pub use raft_store_core::kv::KvRequest;
    pub use raft_store_core::kv::KvResponse;
    pub use raft_store_core::kv::SnapshotFile;
    pub use raft_store_core::openraft09::kv::KvReader;
    pub use raft_store_core::openraft09::kv::KvSnapshotBuilder;
    pub use raft_store_core::openraft09::kv::KvStateMachine;
    pub use raft_store_core::openraft09::kv::KvTypeConfig;
}

pub(crate) mod serde_bounds {
    /// What the 0.9 glue needs of an entry: cloning and serde (openraft 0.9's `serde` feature
    /// gives its own entry both).
    pub trait Serde: Clone + serde::Serialize + serde::de::DeserializeOwned {}
    impl<T: Clone + serde::Serialize + serde::de::DeserializeOwned> Serde for T {}
}

/// The one log store type for every compiled backend; its codec `K` is
/// [`MessagePack`] unless chosen otherwise with [`open_checked`].
pub type Store<C, K = MessagePack> = LogStore<C, AnyEngine, K>;

/// Open (or create) the store `config` names.
pub fn open<C>(config: &StoreConfig) -> Result<Store<C>, StoreError>
where
    C: RaftTypeConfig,
    C::Entry: Serde,
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
    C::Entry: Serde,
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
{
    let engine = std::sync::Arc::new(config.open_engine()?);
    // The log store first: it writes the format record and the store's marker.
    let log = LogStore::open(engine.clone())?;
    let sm = kv::KvStateMachine::open_with_stats(engine, config.path.join("snapshots"), log.stats())?;
    Ok((log, sm))
}

crate::macros::backend_modules!({ C: ::openraft_09::RaftTypeConfig, C::Entry: crate::openraft09::serde_bounds::Serde });

/// [`open_with_kv`] with codec `K` and the entry check `check` (see [`open_checked`]).
pub fn open_with_kv_checked<C, K>(
    config: &StoreConfig,
    check: EntryCheck<C::Entry>,
) -> Result<WithKv<C, K>, StoreError>
where
    C: kv::KvTypeConfig,
    K: Codec,
{
    let engine = std::sync::Arc::new(config.open_engine()?);
    let log = LogStore::open_checked(engine.clone(), check)?;
    let sm = kv::KvStateMachine::open_with_stats(engine, config.path.join("snapshots"), log.stats())?;
    Ok((log, sm))
}
