//! Applying committed entries: each call's data changes and its new state record in one batch.

use std::collections::HashMap;
use std::sync::Arc;

use super::KvLine;
use super::KvRequest;
use super::KvResponse;
use super::StateMachine;
use super::state::BATCH_BYTES;
use super::state::SmState;
use super::state::data_key;
use super::state::lock;
use crate::codec::Codec;
use crate::codec::seal_bytes;
use crate::engine::Batch;
use crate::engine::Durability;
use crate::engine::Engine;
use crate::engine::Space;
use crate::error::StoreError;

impl<C: KvLine, E: Engine, K: Codec> StateMachine<C, E, K> {
    fn apply_request(
        &self,
        generation: u64,
        request: &KvRequest,
        batch: &mut Batch,
        overlay: &mut HashMap<String, Option<Vec<u8>>>,
    ) -> Result<KvResponse, StoreError> {
        let shared = &*self.shared;
        let read =
            |key: &str, overlay: &HashMap<String, Option<Vec<u8>>>| -> Result<Option<Vec<u8>>, StoreError> {
                match overlay.get(key) {
                    Some(v) => Ok(v.clone()),
                    None => shared.read(generation, key),
                }
            };
        let set =
            |key: &str, value: &[u8], batch: &mut Batch, overlay: &mut HashMap<String, Option<Vec<u8>>>| {
                batch.put(Space::Data, data_key(generation, key), seal_bytes(value));
                overlay.insert(key.to_string(), Some(value.to_vec()));
            };
        Ok(match request {
            KvRequest::Set { key, value } => {
                let previous = read(key, overlay)?;
                set(key, value, batch, overlay);
                KvResponse::Set { previous }
            }
            KvRequest::SetMany { pairs } => {
                let mut previous = Vec::with_capacity(pairs.len());
                for (key, value) in pairs {
                    previous.push(read(key, overlay)?);
                    set(key, value, batch, overlay);
                }
                KvResponse::SetMany { previous }
            }
            KvRequest::Delete { key } => {
                let previous = read(key, overlay)?;
                if previous.is_some() {
                    batch.delete(Space::Data, data_key(generation, key));
                    overlay.insert(key.clone(), None);
                }
                KvResponse::Delete { previous }
            }
            KvRequest::UpdateIfExists { key, value } => {
                let previous = read(key, overlay)?;
                if previous.is_some() {
                    set(key, value, batch, overlay);
                }
                KvResponse::UpdateIfExists { previous }
            }
        })
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
    overlay: HashMap<String, Option<Vec<u8>>>,
    dirty: bool,
    /// Entries seen since the last commit, counted as applied once it is written.
    entries: u64,
}

impl<C: KvLine> Applying<C> {
    pub(crate) fn new<E: Engine, K: Codec>(sm: &StateMachine<C, E, K>) -> Self {
        Self {
            st: lock(&sm.shared.state).clone(),
            batch: Batch::new(),
            overlay: HashMap::new(),
            dirty: false,
            entries: 0,
        }
    }

    pub(crate) fn entry<E: Engine, K: Codec>(
        &mut self,
        sm: &StateMachine<C, E, K>,
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
        self.batch.size_bytes() >= BATCH_BYTES
    }

    /// Write the data changes and the state record in one batch, then publish the new state.
    pub(crate) fn commit<E: Engine, K: Codec>(
        &mut self,
        sm: &StateMachine<C, E, K>,
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
