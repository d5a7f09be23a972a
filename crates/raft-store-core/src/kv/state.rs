//! What the state machine keeps and how its records are laid out: the state record, the shared
//! state of a state machine and its readers, and the keys of the data.

use std::fmt::Write as _;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::AtomicU64;

use serde::Deserialize;
use serde::Serialize;

use super::KvLine;
use super::KvOptions;
use super::keys::Bucket;
use super::keys::hashed_start;
use super::keys::is_hashed_form;
use super::keys::stored_key;
use crate::Batch;
use crate::CodecError;
use crate::Durability;
use crate::Engine;
use crate::EngineLimits;
use crate::KeyRange;
use crate::Space;
use crate::StoreStats;
use crate::Visitor;
use crate::codec::Codec;
use crate::codec::open_envelope;
use crate::codec::seal;
use crate::error::StoreError;

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
    /// The engine's key and value limits, read once at open: they decide which keys are
    /// stored under their hash (see [`super::keys`]) and which requests are refused.
    pub(crate) limits: EngineLimits,
    pub(crate) dir: PathBuf,
    /// The state record as last written. Apply and install hold it while they write, and a
    /// snapshot build holds it until its scan has started, so the build's meta and data match.
    pub(crate) state: Mutex<SmState<C>>,
    pub(crate) current: Mutex<Option<Current<C>>>,
    pub(crate) next_file: AtomicU64,
    /// Entries applied, snapshots, errors: usually the log store's counters (see
    /// [`LineStateMachine::open_with_stats`]).
    pub(crate) stats: Arc<StoreStats>,
    /// The tunables the state machine was opened with, checked.
    pub(crate) options: KvOptions,
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
/// the user key or its hash: see [`super::keys`]).
pub(crate) fn gen_prefix(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

impl<C: KvLine, E: Engine, K: Codec> Shared<C, E, K> {
    pub(crate) fn put_state(&self, batch: &mut Batch, st: &SmState<C>) -> Result<(), StoreError> {
        let bytes =
            seal::<K, _>(st).map_err(|e| StoreError::encode(self.backend, "state machine state", e))?;
        batch.put(Space::DataMeta, STATE_KEY, bytes);
        Ok(())
    }

    /// A record whose key or pairs are damaged: `reason` says how.
    pub(crate) fn corrupt_key(&self, key: &[u8], reason: &str) -> StoreError {
        StoreError::damaged(
            self.backend,
            Space::Data,
            None,
            format!("{}: {reason}", shown_key(key)),
        )
    }

    /// A record whose envelope failed.
    pub(crate) fn corrupt_value(&self, key: &[u8], source: CodecError) -> StoreError {
        StoreError::corrupt(self.backend, Space::Data, None, shown_key(key), source)
    }

    /// The stored key of `key` in generation `generation`: short or hashed, by this engine's
    /// key limit.
    pub(crate) fn stored_key(&self, generation: u64, key: &str) -> Vec<u8> {
        stored_key(generation, key.as_bytes(), &self.limits)
    }

    pub(crate) fn read(&self, generation: u64, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.stored_key(generation, key);
        match self.engine.get(Space::Data, &k)? {
            Some(bytes) => self.value_in(&k, key, &bytes),
            None => Ok(None),
        }
    }

    /// The value of `key` in the record `bytes` stored under `stored` (its stored key).
    pub(crate) fn value_in(
        &self,
        stored: &[u8],
        key: &str,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if is_hashed_form(stored) {
            Ok(self
                .bucket(stored, bytes)?
                .get(key.as_bytes())
                .map(<[u8]>::to_vec))
        } else {
            let value = open_envelope(bytes).map_err(|e| self.corrupt_value(stored, e))?;
            Ok(Some(value.to_vec()))
        }
    }

    /// Decode the bucket stored under the hashed key `stored`.
    pub(crate) fn bucket(&self, stored: &[u8], bytes: &[u8]) -> Result<Bucket, StoreError> {
        Bucket::decode(stored, bytes).map_err(|e| e.into_store_error(self.backend, shown_key(stored)))
    }

    /// Split a record of the short form into (user key, value), checking the value's envelope
    /// and that the key is UTF-8.
    pub(crate) fn decode_short<'a>(
        &self,
        key: &'a [u8],
        value: &'a [u8],
    ) -> Result<(&'a str, &'a [u8]), StoreError> {
        let user_key = key
            .get(8..)
            .ok_or_else(|| self.corrupt_key(key, "key shorter than its generation prefix"))?;
        let user_key =
            std::str::from_utf8(user_key).map_err(|_| self.corrupt_key(key, "key is not UTF-8"))?;
        let value = open_envelope(value).map_err(|e| self.corrupt_value(key, e))?;
        Ok((user_key, value))
    }

    /// Visit the records of the short form of a generation, in key order.
    pub(crate) fn scan_short(&self, generation: u64, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let (start, end) = (gen_prefix(generation), hashed_start(generation));
        self.engine
            .scan(Space::Data, KeyRange::half_open(&start, &end), visit)?;
        Ok(())
    }

    /// Visit the records of the hashed form of a generation (in hash order).
    pub(crate) fn scan_hashed(&self, generation: u64, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let start = hashed_start(generation);
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

/// A stored key as messages show it: the user key after the generation prefix, or the hash of
/// a long key.
fn shown_key(key: &[u8]) -> String {
    if is_hashed_form(key) {
        let hash = key[9..].iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        format!("the long key with SHA-256 {hash}")
    } else {
        format!("key {:?}", String::from_utf8_lossy(key.get(8..).unwrap_or(key)))
    }
}
