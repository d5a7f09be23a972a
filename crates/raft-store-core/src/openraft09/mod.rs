//! The glue for openraft 0.9, the stable line (feature `openraft-0-9`): the same log store
//! and key-value state machine as for 0.10, with openraft 0.9's storage traits.
//!
//! ```
//! // openraft 0.9's `declare_raft_types!` names its default `SnapshotData` as plain `Cursor`.
//! use std::io::Cursor;
//!
//! use openraft_09 as openraft; // in your application: `openraft = "0.9"`
//! use openraft::storage::RaftLogStorage;
//! use raft_store_core::MemEngine;
//! use raft_store_core::openraft09::LogStore;
//!
//! openraft::declare_raft_types!(pub Config: D = String, R = String);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store: LogStore<Config, MemEngine> = LogStore::open(MemEngine::new())?;
//! let state = store.get_log_state().await?;
//! assert!(state.last_log_id.is_none());
//! // Hand `store` to `openraft::Raft::new(id, config, network, store, state_machine)`.
//! # Ok(())
//! # }
//! ```
//!
//! Same guarantees as the 0.10 glue, from the same code: group commit, checksums, fail-stop,
//! no holes, and the same keys and values on disk; only the types the entries are encoded with
//! are 0.9's, and the format record says so (a store of one line is refused by the other).
//!
//! Errors reach openraft 0.9 as `StorageError::IO`, whose `AnyError` keeps the store's message
//! and the name of its type; the typed [`StoreError`] is what the store's own methods (`open`,
//! `flush`) return.
//!
//! The store's tunables are the same as on 0.10: open it with `LogStore::open_with` and
//! [`LogStoreOptions`], the state machine with `kv::KvStateMachine::open_with` and
//! [`kv::KvOptions`].

pub mod kv;

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;

use openraft::LogId;
use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogId;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;
use openraft::StorageError;
use openraft::StorageIOError;
use openraft::Vote;
use openraft::storage::LogFlushed;
use openraft::storage::RaftLogStorage;
use openraft_09 as openraft;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Codec;
use crate::Engine;
use crate::MessagePack;
use crate::OpenraftLine;
use crate::StoreError;
use crate::line::Line;
use crate::line::V0_9;
use crate::store;

// Line-neutral, like the store itself; here too so that a 0.9 application finds everything of
// its log store in this module.

/// Durable raft log storage for openraft 0.9 over an [`Engine`], with group commit: see
/// [`LineLogStore`](store::LineLogStore) for what it guarantees.
pub type LogStore<C, E, K = MessagePack> = store::LineLogStore<V0_9<C>, E, K>;

/// A read handle to a [`LogStore`]'s log for openraft 0.9: see [`LineLogReader`](store::LineLogReader).
pub type LogReader<C, E, K = MessagePack> = store::LineLogReader<V0_9<C>, E, K>;

impl<C> Line for V0_9<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    const LINE: OpenraftLine = OpenraftLine::V0_9;
    type Config = C;
    type Entry = C::Entry;
    type LogId = LogId<C::NodeId>;
    type Vote = Vote<C::NodeId>;
    type Flushed = LogFlushed<C>;

    fn entry_index(entry: &Self::Entry) -> u64 {
        entry.get_log_id().index
    }

    fn entry_log_id(entry: &Self::Entry) -> Self::LogId {
        entry.get_log_id().clone()
    }

    fn index(log_id: &Self::LogId) -> u64 {
        log_id.index
    }

    fn flushed(callback: Self::Flushed, result: Result<(), io::Error>) {
        callback.log_io_completed(result);
    }
}

/// A store's error as openraft 0.9 takes it: an I/O error of the logs.
fn read_err<NID: openraft::NodeId>(e: &StoreError) -> StorageError<NID> {
    StorageIOError::read_logs(e).into()
}

fn write_err<NID: openraft::NodeId>(e: &StoreError) -> StorageError<NID> {
    StorageIOError::write_logs(e).into()
}

impl<C, E, K> RaftLogReader<C> for store::LineLogStore<V0_9<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
    E: Engine,
    K: Codec,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader_ref().read_bounds(&range).map_err(|e| read_err(&e))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader_ref()
            .read_limited(start, end)
            .map_err(|e| read_err(&e))
    }
}

impl<C, E, K> RaftLogStorage<C> for store::LineLogStore<V0_9<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
    E: Engine,
    K: Codec,
{
    type LogReader = LogReader<C, E, K>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let (last_purged_log_id, last_log_id) = self.log_state();
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader_ref().clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.save_vote_durable(vote)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.reader_ref()
            .vote()
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.queue_committed(committed).map_err(|e| write_err(&e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.committed())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_with_callback(entries.into_iter().collect(), callback)
            .map_err(|e| write_err(&e))
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // 0.9 names the first entry to delete; the store keeps the id of the last one left.
        self.truncate_from(log_id.index).map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.purge_upto(log_id).map_err(|e| write_err(&e))
    }
}

impl<C, E, K> RaftLogReader<C> for store::LineLogReader<V0_9<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
    E: Engine,
    K: Codec,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.read_bounds(&range).map_err(|e| read_err(&e))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.read_limited(start, end).map_err(|e| read_err(&e))
    }
}
