//! Applying committed entries: each call's data changes and its new state record in one batch.

use std::collections::HashMap;
use std::sync::Arc;

use super::KvLine;
use super::KvRequest;
use super::KvResponse;
use super::LineStateMachine;
use super::keys::Bucket;
use super::keys::is_hashed_form;
use super::state::Shared;
use super::state::SmState;
use super::state::lock;
use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::Space;
use crate::codec::Codec;
use crate::codec::seal_bytes;
use crate::error::StoreError;

/// The stored records a request reads and writes, by stored key: `None` for a deleted one.
/// Holds what earlier requests of the same apply call wrote (not in the engine yet).
pub(crate) type Overlay = HashMap<Vec<u8>, Option<Vec<u8>>>;

/// Why a request was not applied: an error of the store (the apply fails), or a request that
/// can never be stored on this engine (it is answered [`KvResponse::Refused`], changes nothing
/// and the next entries apply).
enum Failed {
    Store(StoreError),
    Refused(String),
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

/// One request being applied: its writes go to its own batch and overlay, merged into the
/// apply call's only if every write of the request fits, so a refused request (a `SetMany`
/// with one pair too large, say) leaves nothing behind.
struct Step<'a, C: KvLine, E: Engine, K> {
    shared: &'a Shared<C, E, K>,
    generation: u64,
    earlier: &'a Overlay,
    batch: Batch,
    overlay: Overlay,
}

impl<C: KvLine, E: Engine, K: Codec> Step<'_, C, E, K> {
    /// The record stored under `stored` as this request sees it.
    fn record(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(record) = self.overlay.get(stored).or_else(|| self.earlier.get(stored)) {
            return Ok(record.clone());
        }
        Ok(self.shared.engine.get(Space::Data, stored)?)
    }

    fn put(&mut self, stored: Vec<u8>, record: Option<Vec<u8>>) {
        match &record {
            Some(bytes) => self.batch.put(Space::Data, stored.clone(), bytes.clone()),
            None => self.batch.delete(Space::Data, stored.clone()),
        }
        self.overlay.insert(stored, record);
    }

    /// The bucket under the hashed key `stored`, empty if there is none.
    fn bucket(&self, stored: &[u8]) -> Result<Bucket, StoreError> {
        match self.record(stored)? {
            Some(bytes) => self.shared.bucket(stored, &bytes),
            None => Ok(Bucket::default()),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.shared.stored_key(self.generation, key);
        match self.record(&stored)? {
            Some(bytes) => self.shared.value_in(&stored, key, &bytes),
            None => Ok(None),
        }
    }

    /// Set `key` to `value`; returns the value before. Refused if the record would not fit
    /// the engine, or a snapshot record (lengths of 32 bits).
    fn set(&mut self, key: &str, value: &[u8]) -> Result<Option<Vec<u8>>, Failed> {
        // The snapshot file keeps lengths in 32 bits (a key length of u32::MAX ends the
        // records): what is applied must go into a snapshot, or the next build fails.
        if !u32::try_from(key.len()).is_ok_and(|len| len < u32::MAX) {
            return Err(Failed::Refused(format!(
                "a key of {} bytes is longer than a snapshot record holds (u32::MAX - 1 bytes)",
                key.len()
            )));
        }
        if u32::try_from(value.len()).is_err() {
            return Err(Failed::Refused(format!(
                "a value of {} bytes is longer than a snapshot record holds (u32::MAX bytes)",
                value.len()
            )));
        }
        let stored = self.shared.stored_key(self.generation, key);
        let (previous, record) = if is_hashed_form(&stored) {
            let mut bucket = self.bucket(&stored)?;
            let previous = bucket.set(key.as_bytes(), value);
            (previous, bucket.encode())
        } else {
            (self.get(key)?, Some(seal_bytes(value)))
        };
        let limits = &self.shared.limits;
        match record {
            Some(record) if limits.fits(stored.len(), record.len()) => {
                self.put(stored, Some(record));
                Ok(previous)
            }
            _ => Err(Failed::Refused(format!(
                "a value of {} bytes under a key of {} bytes is too large for the {} engine: \
                 it stores values of at most {} bytes (key and value together: {})",
                value.len(),
                key.len(),
                self.shared.backend,
                limits.max_value,
                limits.max_pair
            ))),
        }
    }

    /// Remove `key`; returns its value.
    fn delete(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.shared.stored_key(self.generation, key);
        if !is_hashed_form(&stored) {
            let previous = self.get(key)?;
            if previous.is_some() {
                self.put(stored, None);
            }
            return Ok(previous);
        }
        let mut bucket = self.bucket(&stored)?;
        let previous = bucket.remove(key.as_bytes());
        if previous.is_some() {
            // Smaller than the bucket stored before, so it fits wherever that did.
            let record = if bucket.is_empty() { None } else { bucket.encode() };
            self.put(stored, record);
        }
        Ok(previous)
    }
}

impl<C: KvLine, E: Engine, K: Codec> LineStateMachine<C, E, K> {
    /// Apply one request into `batch` and `overlay`. A request that can never be stored on
    /// this engine changes nothing and is answered [`KvResponse::Refused`]: failing the apply
    /// instead would stop the node, and again on every start, since the committed entry is
    /// applied again.
    fn apply_request(
        &self,
        generation: u64,
        request: &KvRequest,
        batch: &mut Batch,
        overlay: &mut Overlay,
    ) -> Result<KvResponse, StoreError> {
        let mut step = Step {
            shared: &*self.shared,
            generation,
            earlier: overlay,
            batch: Batch::new(),
            overlay: Overlay::new(),
        };
        let applied = (|| -> Result<KvResponse, Failed> {
            Ok(match request {
                KvRequest::Set { key, value } => KvResponse::Set {
                    previous: step.set(key, value)?,
                },
                KvRequest::SetMany { pairs } => {
                    let mut previous = Vec::with_capacity(pairs.len());
                    for (key, value) in pairs {
                        previous.push(step.set(key, value)?);
                    }
                    KvResponse::SetMany { previous }
                }
                KvRequest::Delete { key } => KvResponse::Delete {
                    previous: step.delete(key)?,
                },
                KvRequest::UpdateIfExists { key, value } => {
                    let previous = step.get(key)?;
                    if previous.is_some() {
                        step.set(key, value)?;
                    }
                    KvResponse::UpdateIfExists { previous }
                }
            })
        })();
        match applied {
            Ok(response) => {
                let Step {
                    batch: written,
                    overlay: changed,
                    ..
                } = step;
                batch.extend(written);
                overlay.extend(changed);
                Ok(response)
            }
            Err(Failed::Store(e)) => Err(e),
            Err(Failed::Refused(reason)) => {
                tracing::warn!(
                    target: "raft_store::apply",
                    backend = self.shared.backend,
                    request = %request,
                    reason = %reason,
                    "a committed request is refused: applied as a no-op"
                );
                Ok(KvResponse::Refused { reason })
            }
        }
    }

    /// Apply committed entries in order and return one response per entry, as openraft's
    /// `apply` does (without responders): for tools, tests and replays.
    pub fn apply_entries<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e C::Entry>,
    ) -> Result<Vec<KvResponse>, StoreError>
    where
        C::Entry: 'e,
    {
        let mut applying = Applying::new(self);
        let mut replies = Vec::new();
        for entry in entries {
            replies.push(applying.entry(self, entry)?);
            if applying.full() {
                applying.commit(self)?;
            }
        }
        applying.commit(self)?;
        Ok(replies)
    }
}

/// One apply call in progress: the state after the entries seen so far, their data changes not
/// written yet, and what those changes did to each key (later requests of the same call read
/// it).
pub(crate) struct Applying<C: KvLine> {
    st: SmState<C>,
    batch: Batch,
    overlay: Overlay,
    dirty: bool,
    /// Entries seen since the last commit, counted as applied once it is written.
    entries: u64,
    /// The state machine's [`KvOptions::batch_bytes`](super::KvOptions::batch_bytes).
    batch_bytes: usize,
}

impl<C: KvLine> Applying<C> {
    pub(crate) fn new<E: Engine, K: Codec>(sm: &LineStateMachine<C, E, K>) -> Self {
        Self {
            st: lock(&sm.shared.state).clone(),
            batch: Batch::new(),
            overlay: HashMap::new(),
            dirty: false,
            entries: 0,
            batch_bytes: sm.shared.options.batch_bytes,
        }
    }

    pub(crate) fn entry<E: Engine, K: Codec>(
        &mut self,
        sm: &LineStateMachine<C, E, K>,
        entry: &C::Entry,
    ) -> Result<KvResponse, StoreError> {
        self.st.last_applied = Some(C::entry_log_id(entry));
        if let Some(membership) = C::membership(entry) {
            self.st.last_membership = membership;
        }
        self.dirty = true;
        self.entries += 1;
        match C::request(entry) {
            Some(request) => {
                sm.apply_request(self.st.generation, request, &mut self.batch, &mut self.overlay)
            }
            None => Ok(KvResponse::Empty),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.batch.size_bytes() >= self.batch_bytes
    }

    /// Write the data changes and the state record in one batch, then publish the new state.
    pub(crate) fn commit<E: Engine, K: Codec>(
        &mut self,
        sm: &LineStateMachine<C, E, K>,
    ) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let mut guard = lock(&sm.shared.state);
        let written = sm
            .shared
            .put_state(&mut self.batch, &self.st)
            .and_then(|()| Ok(sm.shared.engine.write(&self.batch, Durability::Buffered)?));
        if let Err(e) = written {
            sm.shared.stats.record_error("apply", format!("{:?}", e.kind()));
            // Shared, so the stats keep the same typed error the caller gets: openraft keeps
            // only its message once it stops on it.
            let source = Arc::new(e);
            let failed = || StoreError::ApplyFailed {
                backend: sm.shared.backend,
                source: source.clone(),
            };
            sm.shared
                .stats
                .record_fatal(|| format!("applying committed entries failed: {source}"), failed);
            let e = failed();
            tracing::error!(
                target: "raft_store::apply",
                backend = sm.shared.backend,
                error = %e,
                "applying committed entries failed"
            );
            return Err(e);
        }
        sm.shared.stats.record_applied(self.entries);
        self.entries = 0;
        *guard = self.st.clone();
        self.batch = Batch::new();
        self.overlay.clear();
        self.dirty = false;
        Ok(())
    }
}
