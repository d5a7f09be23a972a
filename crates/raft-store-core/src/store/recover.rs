//! Recovering the log's state from what the engine holds, once, when the store opens.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use serde::de::DeserializeOwned;

use super::shared::LogView;
use super::shared::decode_entry;
use super::shared::key_index;
use crate::Engine;
use crate::KeyRange;
use crate::Space;
use crate::codec::Codec;
use crate::codec::unseal;
use crate::error::StoreError;
use crate::format::meta_key;
use crate::line::Line;

impl<C: Line> LogView<C> {
    /// The log as `engine` holds it: the vote, the committed and last purged ids from the meta
    /// keyspace, and the bounds of the log from its first and last keys (the last entry is
    /// decoded, for its log id). Nothing is pending yet.
    pub(crate) fn recover<E: Engine, K: Codec>(engine: &E) -> Result<Self, StoreError> {
        let vote: Option<C::Vote> = read_meta::<K, _>(engine, meta_key::VOTE, "vote")?;
        // Stored as an `Option` itself: `save_committed(None)` writes a record too.
        let committed: Option<C::LogId> =
            read_meta::<K, Option<C::LogId>>(engine, meta_key::COMMITTED, "committed")?.flatten();
        let last_purged: Option<C::LogId> = read_meta::<K, _>(engine, meta_key::PURGED, "last purged")?;
        let log_start = match &last_purged {
            Some(purged) => C::index(purged).saturating_add(1),
            // Never purged: the log starts at its first key (a store started from a snapshot
            // may begin anywhere), or at 0 while it is empty.
            None => first_index(engine)?.unwrap_or(0),
        };
        // Every entry may be purged: the log then ends at the last purged id.
        let last_log_id =
            last_entry_id::<C, E, K>(engine, last_purged.as_ref())?.or_else(|| last_purged.clone());
        Ok(Self {
            log_start,
            last_purged,
            last_log_id,
            pending: VecDeque::new(),
            next_seq: 0,
            vote,
            committed,
        })
    }
}

/// The record under `key` of the meta keyspace, decoded; `what` names it in an error.
fn read_meta<K: Codec, T: DeserializeOwned>(
    engine: &impl Engine,
    key: &'static [u8],
    what: &str,
) -> Result<Option<T>, StoreError> {
    let backend = engine.backend();
    let Some(bytes) = engine.get(Space::Meta, key)? else {
        return Ok(None);
    };
    let value =
        unseal::<K, T>(&bytes).map_err(|e| StoreError::corrupt(backend, Space::Meta, None, what, e))?;
    Ok(Some(value))
}

/// The index of the first log key, if the log holds any.
fn first_index(engine: &impl Engine) -> Result<Option<u64>, StoreError> {
    let backend = engine.backend();
    let mut first = None;
    engine.scan(Space::Log, KeyRange::ALL, &mut |k, _| {
        first = Some(key_index(backend, k));
        ControlFlow::Break(())
    })?;
    first.transpose()
}

/// The log id of the last stored entry, unless it is at or below `last_purged`: such an entry
/// is purged, whatever the engine still holds of it.
fn last_entry_id<C: Line, E: Engine, K: Codec>(
    engine: &E,
    last_purged: Option<&C::LogId>,
) -> Result<Option<C::LogId>, StoreError> {
    let backend = engine.backend();
    let Some(key) = engine.last_key(Space::Log)? else {
        return Ok(None);
    };
    let index = key_index(backend, &key)?;
    if last_purged.is_some_and(|purged| index <= C::index(purged)) {
        return Ok(None);
    }
    let bytes = engine
        .get(Space::Log, &key)?
        .ok_or(StoreError::Missing { backend, index })?;
    let entry = decode_entry::<C, K>(backend, index, &bytes)?;
    Ok(Some(C::entry_log_id(&entry)))
}
