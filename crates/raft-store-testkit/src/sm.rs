//! [`MemStateMachine`]: a minimal in-memory state machine, the partner of the log store in
//! openraft's suite (which builds a log store and a state machine together).

use std::io;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::Mutex;

use futures::Stream;
use futures::TryStreamExt;
use openraft::RaftSnapshotBuilder;
use openraft::entry::RaftEntry;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::type_config::alias::SnapshotOf;
use openraft::type_config::alias::StoredMembershipOf;

use super::TestConfig;

#[derive(Default)]
struct Inner {
    last_applied: Option<LogIdOf<TestConfig>>,
    membership: StoredMembershipOf<TestConfig>,
    /// Payloads of applied normal entries, in order; the snapshot's content.
    data: Vec<String>,
    current: Option<(SnapshotMetaOf<TestConfig>, Vec<u8>)>,
}

/// An in-memory state machine for [`TestConfig`]: applies entries by recording their payloads;
/// a snapshot is the list of payloads as JSON-free plain bytes.
#[derive(Clone, Default)]
pub struct MemStateMachine {
    inner: Arc<Mutex<Inner>>,
}

impl MemStateMachine {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn encode(data: &[String]) -> Vec<u8> {
    data.join("\n").into_bytes()
}

fn decode(bytes: &[u8]) -> Result<Vec<String>, io::Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_string).collect()
    })
}

impl RaftSnapshotBuilder<TestConfig> for MemStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TestConfig, Self::SnapshotData>, io::Error> {
        let mut inner = self.lock();
        let meta = SnapshotMetaOf::<TestConfig> {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
        };
        let bytes = encode(&inner.data);
        inner.current = Some((meta.clone(), bytes.clone()));
        Ok(SnapshotOf::<TestConfig, _> {
            meta,
            snapshot: Cursor::new(bytes),
        })
    }
}

impl RaftStateMachine<TestConfig> for MemStateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TestConfig>>, StoredMembershipOf<TestConfig>), io::Error> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TestConfig>, io::Error>> + Unpin + openraft::OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let mut inner = self.lock();
            inner.last_applied = Some(entry.log_id());
            if let Some(membership) = entry.get_membership() {
                inner.membership = StoredMembershipOf::<TestConfig>::new(Some(entry.log_id()), membership);
            }
            let reply = match &entry.payload {
                openraft::EntryPayload::Normal(data) => {
                    inner.data.push(data.clone());
                    data.clone()
                }
                _ => String::new(),
            };
            drop(inner);
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TestConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let bytes = snapshot.into_inner();
        let data = decode(&bytes)?;
        let mut inner = self.lock();
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.data = data;
        inner.current = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TestConfig, Self::SnapshotData>>, io::Error> {
        let inner = self.lock();
        Ok(inner
            .current
            .as_ref()
            .map(|(meta, bytes)| SnapshotOf::<TestConfig, _> {
                meta: meta.clone(),
                snapshot: Cursor::new(bytes.clone()),
            }))
    }
}
