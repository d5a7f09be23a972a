//! The key-value state machine for openraft 0.9: its `RaftStateMachine` and
//! `RaftSnapshotBuilder` on the same [`StateMachine`] as 0.10's.
//!
//! ```
//! use std::sync::Arc;
//!
//! use openraft_09 as openraft; // in your application: `openraft = "0.9"`
//! use raft_store_core::MemEngine;
//! use raft_store_core::kv::{KvRequest, KvResponse, SnapshotFile};
//! use raft_store_core::openraft09::LogStore;
//! use raft_store_core::openraft09::kv::KvStateMachine;
//!
//! // 0.9 names the snapshot data in the type config: the state machine's files.
//! openraft::declare_raft_types!(
//!     pub Config: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
//! );
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let snapshots = tempfile::tempdir()?;
//! let engine = Arc::new(MemEngine::new());
//! let log: LogStore<Config, _> = LogStore::open(engine.clone())?;
//! let sm: KvStateMachine<Config, _> = KvStateMachine::open(engine, snapshots.path())?;
//! assert_eq!(sm.reader().get("missing")?, None);
//! # drop(log);
//! # Ok(())
//! # }
//! ```

use openraft::EntryPayload;
use openraft::LogId;
use openraft::OptionalSend;
use openraft::RaftLogId;
use openraft::RaftSnapshotBuilder;
use openraft::RaftTypeConfig;
use openraft::Snapshot;
use openraft::SnapshotMeta;
use openraft::StorageError;
use openraft::StorageIOError;
use openraft::StoredMembership;
use openraft::entry::RaftPayload;
use openraft::storage::RaftStateMachine;
use openraft_09 as openraft;

use crate::Codec;
use crate::Engine;
use crate::MessagePack;
use crate::kv::KvLine;
use crate::kv::LineSnapshotBuilder;
use crate::kv::LineStateMachine;
use crate::kv::LineStateReader;
use crate::kv::apply::Applying;
use crate::kv::snapshot_files::blocking;
use crate::kv::state::lock;
use crate::line::V0_9;

// The requests, responses and snapshot files are the same types on both lines; here too so
// that everything of the 0.9 state machine is in one module (as in the facade).
use crate::kv::KvRequest;
use crate::kv::KvResponse;
use crate::kv::SnapshotFile;

/// A durable key-value map replicated by openraft 0.9: `RaftStateMachine` +
/// `RaftSnapshotBuilder` over an [`Engine`]; see [`StateMachine`].
pub type KvStateMachine<C, E, K = MessagePack> = LineStateMachine<V0_9<C>, E, K>;

/// A read handle on a [`KvStateMachine`]; see [`StateReader`].
pub type KvReader<C, E, K = MessagePack> = LineStateReader<V0_9<C>, E, K>;

/// The snapshot builder of a [`KvStateMachine`].
pub type KvSnapshotBuilder<C, E, K = MessagePack> = LineSnapshotBuilder<V0_9<C>, E, K>;

/// An openraft 0.9 type config the key-value state machine works with: `D = KvRequest`,
/// `R = KvResponse`, openraft's own entry type and `SnapshotData = SnapshotFile`. Any config
/// declared with
/// `openraft::declare_raft_types!(pub Config: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile)`
/// is one.
pub trait KvTypeConfig:
    RaftTypeConfig<D = KvRequest, R = KvResponse, Entry = openraft::Entry<Self>, SnapshotData = SnapshotFile>
{
}

impl<C> KvTypeConfig for C where
    C: RaftTypeConfig<D = KvRequest, R = KvResponse, Entry = openraft::Entry<C>, SnapshotData = SnapshotFile>
{
}

impl<C: KvTypeConfig> KvLine for V0_9<C> {
    type Membership = StoredMembership<C::NodeId, C::Node>;
    type SnapshotMeta = SnapshotMeta<C::NodeId, C::Node>;

    fn request(entry: &C::Entry) -> Option<&KvRequest> {
        match &entry.payload {
            EntryPayload::Normal(request) => Some(request),
            _ => None,
        }
    }

    fn membership(entry: &C::Entry) -> Option<Self::Membership> {
        entry
            .get_membership()
            .map(|m| StoredMembership::new(Some(entry.get_log_id().clone()), m.clone()))
    }

    fn snapshot_meta(
        last_applied: Option<LogId<C::NodeId>>,
        membership: Self::Membership,
        snapshot_id: String,
    ) -> Self::SnapshotMeta {
        SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        }
    }

    fn meta_last_applied(meta: &Self::SnapshotMeta) -> Option<&LogId<C::NodeId>> {
        meta.last_log_id.as_ref()
    }

    fn meta_membership(meta: &Self::SnapshotMeta) -> &Self::Membership {
        &meta.last_membership
    }
}

fn sm_write_err<NID: openraft::NodeId>(e: &(impl std::error::Error + 'static)) -> StorageError<NID> {
    StorageIOError::write_state_machine(e).into()
}

impl<C, E, K> RaftSnapshotBuilder<C> for LineSnapshotBuilder<V0_9<C>, E, K>
where
    C: KvTypeConfig,
    E: Engine,
    K: Codec,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<C::NodeId>> {
        let shared = self.shared.clone();
        let built = blocking(move || shared.build()).await;
        let (meta, snapshot) = self
            .shared
            .count_snapshot(built, false)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(snapshot),
        })
    }
}

impl<C, E, K> RaftStateMachine<C> for LineStateMachine<V0_9<C>, E, K>
where
    C: KvTypeConfig,
    E: Engine,
    K: Codec,
{
    type SnapshotBuilder = KvSnapshotBuilder<C, E, K>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<C::NodeId>>, StoredMembership<C::NodeId, C::Node>), StorageError<C::NodeId>>
    {
        Ok(self.applied())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KvResponse>, StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // 0.9 takes every reply at the end, so they go out only once everything is written.
        let mut applying = Applying::new(self);
        let mut replies = Vec::new();
        for entry in entries {
            replies.push(applying.entry(self, &entry).map_err(|e| sm_write_err(&e))?);
            if applying.full() {
                applying.commit(self).map_err(|e| sm_write_err(&e))?;
            }
        }
        applying.commit(self).map_err(|e| sm_write_err(&e))?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_builder()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError<C::NodeId>> {
        self.receive_snapshot()
            .map(Box::new)
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let shared = self.shared.clone();
        let owned = meta.clone();
        let installed = blocking(move || shared.install(&owned, *snapshot)).await;
        self.shared
            .count_snapshot(installed.map(|()| (meta.clone(), ())), true)
            .map(|_| ())
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<C::NodeId>> {
        // Opened under the lock: a newer snapshot replacing this one removes its file, but an
        // open handle keeps the data readable.
        let current = lock(&self.shared.current);
        match current.as_ref() {
            None => Ok(None),
            Some(c) => {
                let file = SnapshotFile::open(&c.path)
                    .map_err(|e| StorageIOError::read_snapshot(Some(c.meta.signature()), &e))?;
                Ok(Some(Snapshot {
                    meta: c.meta.clone(),
                    snapshot: Box::new(file),
                }))
            }
        }
    }
}
