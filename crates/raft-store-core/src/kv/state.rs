//! What the state machine keeps and how its records are laid out: the state record, the shared
//! state of a state machine and its readers, and the keys of the data.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::AtomicU64;

use serde::Deserialize;
use serde::Serialize;

use super::KvLine;
use crate::codec::Codec;
use crate::codec::open_envelope;
use crate::codec::seal;
use crate::engine::Batch;
use crate::engine::Durability;
use crate::engine::Engine;
use crate::engine::KeyRange;
use crate::engine::Space;
use crate::engine::Visitor;
use crate::error::StoreError;
use crate::stats::StoreStats;

/// Data bytes gathered before a batch is written, while applying or installing. Bounds memory.
pub(crate) const BATCH_BYTES: usize = 4 << 20;
/// While installing, a durable write after this many bytes, so engines that keep unsynced
/// writes in memory (redb's non-durable commits) do not pile up a whole snapshot.
pub(crate) const SYNC_EVERY_BYTES: usize = 64 << 20;
/// Keys removed per batch when deleting an old generation.
pub(crate) const DELETE_CHUNK: usize = 10_000;
/// The key of the state record in [`Space::DataMeta`].
pub(crate) const STATE_KEY: &[u8] = b"state";

/// What the state machine keeps in [`Space::DataMeta`]: which generation of keys is current,
/// and how far it has applied.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct SmState<C: KvLine> {
    pub(crate) generation: u64,
    pub(crate) last_applied: Option<C::LogId>,
    pub(crate) last_membership: C::Membership,
}

impl<C: KvLine> Clone for SmState<C> {
    fn clone(&self) -> Self {
        Self {
            generation: self.generation,
            last_applied: self.last_applied.clone(),
            last_membership: self.last_membership.clone(),
        }
    }
}

pub(crate) struct Current<C: KvLine> {
    pub(crate) meta: C::SnapshotMeta,
    pub(crate) path: PathBuf,
}

pub(crate) struct Shared<C: KvLine, E: Engine, K> {
    pub(crate) engine: E,
    pub(crate) backend: &'static str,
    pub(crate) dir: PathBuf,
    /// The state record as last written. Apply and install hold it while they write, and a
    /// snapshot build holds it until its scan has started, so the build's meta and data match.
    pub(crate) state: Mutex<SmState<C>>,
    pub(crate) current: Mutex<Option<Current<C>>>,
    pub(crate) next_file: AtomicU64,
    /// Entries applied, snapshots, errors: usually the log store's counters (see
    /// [`StateMachine::open_with_stats`]).
    pub(crate) stats: Arc<StoreStats>,
    pub(crate) _codec: PhantomData<K>,
}

impl<C: KvLine, E: Engine, K> Drop for Shared<C, E, K> {
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The first key of generation `generation` (keys are the generation, 8 bytes big-endian, then
/// the user key).
pub(crate) fn gen_prefix(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

pub(crate) fn data_key(generation: u64, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&gen_prefix(generation));
    k.extend_from_slice(key.as_bytes());
    k
}

impl<C: KvLine, E: Engine, K: Codec> Shared<C, E, K> {
    pub(crate) fn put_state(&self, batch: &mut Batch, st: &SmState<C>) -> Result<(), StoreError> {
        let bytes = seal::<K, _>(st).map_err(|reason| StoreError::Encode {
            backend: self.backend,
            what: "state machine state",
            reason,
        })?;
        batch.put(Space::DataMeta, STATE_KEY, bytes);
        Ok(())
    }

    pub(crate) fn corrupt_key(&self, key: &[u8], reason: &str) -> StoreError {
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

    pub(crate) fn read(&self, generation: u64, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = data_key(generation, key);
        let Some(bytes) = self.engine.get(Space::Data, &k)? else {
            return Ok(None);
        };
        let (_, value) = self.decode_record(&k, &bytes)?;
        Ok(Some(value.to_vec()))
    }

    /// Split a stored record into (user key, value), checking the value's envelope.
    pub(crate) fn decode_record<'a>(
        &self,
        key: &'a [u8],
        value: &'a [u8],
    ) -> Result<(&'a [u8], &'a [u8]), StoreError> {
        let user_key = key
            .get(8..)
            .ok_or_else(|| self.corrupt_key(key, "key shorter than its generation prefix"))?;
        let value = open_envelope(value).map_err(|reason| self.corrupt_key(key, &reason))?;
        Ok((user_key, value))
    }

    pub(crate) fn scan_generation(&self, generation: u64, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
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
}
