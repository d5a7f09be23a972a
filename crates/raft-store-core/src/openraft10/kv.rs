//! The key-value state machine for openraft 0.10: its `RaftStateMachine` and
//! `RaftSnapshotBuilder` on [`StateMachine`].

use std::io;

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

use crate::Codec;
use crate::Engine;
use crate::MessagePack;
use crate::kv::KvLine;
use crate::kv::KvRequest;
use crate::kv::KvResponse;
use crate::kv::LineSnapshotBuilder;
use crate::kv::LineStateMachine;
use crate::kv::LineStateReader;
use crate::kv::SnapshotFile;
use crate::kv::apply::Applying;
use crate::kv::snapshot_files::blocking;
use crate::kv::state::lock;
use crate::line::V0_10;

/// A durable key-value map replicated by openraft 0.10: `RaftStateMachine` +
/// `RaftSnapshotBuilder` over an [`Engine`]; see [`StateMachine`].
pub type KvStateMachine<C, E, K = MessagePack> = LineStateMachine<V0_10<C>, E, K>;

/// A read handle on a [`KvStateMachine`]; see [`StateReader`].
pub type KvReader<C, E, K = MessagePack> = LineStateReader<V0_10<C>, E, K>;

/// The snapshot builder of a [`KvStateMachine`].
pub type KvSnapshotBuilder<C, E, K = MessagePack> = LineSnapshotBuilder<V0_10<C>, E, K>;

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

impl<C> KvLine for V0_10<C>
where
    C: KvTypeConfig,
    C::Entry: Clone,
{
    type Membership = StoredMembershipOf<C>;
    type SnapshotMeta = SnapshotMetaOf<C>;

    fn request(entry: &C::Entry) -> Option<&KvRequest> {
        entry.request()
    }

    fn membership(entry: &C::Entry) -> Option<Self::Membership> {
        entry
            .get_membership()
            .map(|m| StoredMembershipOf::<C>::new(Some(entry.log_id()), m))
    }

    fn snapshot_meta(
        last_applied: Option<LogIdOf<C>>,
        membership: Self::Membership,
        _snapshot_id: String,
    ) -> Self::SnapshotMeta {
        SnapshotMetaOf::<C> {
            last_log_id: last_applied,
            last_membership: membership,
        }
    }

    fn meta_last_applied(meta: &Self::SnapshotMeta) -> Option<&LogIdOf<C>> {
        meta.last_log_id.as_ref()
    }

    fn meta_membership(meta: &Self::SnapshotMeta) -> &Self::Membership {
        &meta.last_membership
    }
}

impl<C, E, K> RaftSnapshotBuilder<C> for LineSnapshotBuilder<V0_10<C>, E, K>
where
    C: KvTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, SnapshotFile>, io::Error> {
        let shared = self.shared.clone();
        let built = blocking(move || shared.build()).await;
        let (meta, snapshot) = self.shared.count_snapshot(built, false)?;
        Ok(SnapshotOf::<C, SnapshotFile> { meta, snapshot })
    }
}

impl<C, E, K> RaftStateMachine<C> for LineStateMachine<V0_10<C>, E, K>
where
    C: KvTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
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
        self.snapshot_builder()
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
