//! [`LogStoreOptions`]: the log store's tunables, and [`OptionsError`], the refusal of a value
//! no store can work with.

use std::time::Duration;

use crate::SLOW_SYNC;
use crate::StoreError;

/// The tunables of a [`LineLogStore`](super::LineLogStore). [`Default`] gives the values a store opened
/// with [`open`](super::LineLogStore::open) has.
///
/// Set them with the `with_*` methods (or the public fields) and open the store with
/// [`open_with`](super::LineLogStore::open_with) or
/// [`open_checked_with`](super::LineLogStore::open_checked_with), which refuse values no store can
/// work with (see [`validate`](Self::validate)) before they touch the engine.
///
/// ```
/// use std::time::Duration;
///
/// use raft_store_core::{LogStore, LogStoreOptions, MemEngine};
///
/// openraft::declare_raft_types!(pub Config: D = String, R = String);
///
/// # fn main() -> Result<(), raft_store_core::StoreError> {
/// let options = LogStoreOptions::default()
///     .with_max_group_bytes(16 << 20)
///     .with_slow_sync(Duration::from_millis(250));
/// let store: LogStore<Config, MemEngine> = LogStore::open_with(MemEngine::new(), options)?;
/// assert_eq!(store.options().max_group_bytes, 16 << 20);
/// # Ok(())
/// # }
/// ```
///
/// With the feature `serde`, the options read from (and write to) any serde format. Every field
/// may be left out (it keeps its default), an unknown field is refused, and the slow-sync
/// threshold is a whole number of milliseconds named `slow_sync_ms`. In TOML:
///
/// ```toml
/// max_group_bytes = 67108864   # 64 MiB
/// limited_read_bytes = 8388608 # 8 MiB
/// slow_sync_ms = 100
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct LogStoreOptions {
    /// The flusher stops adding queued jobs to a group (the jobs one engine batch with one
    /// sync writes) once the group holds this many bytes of keys and values, so one
    /// transaction stays bounded: only its last job can take it past this, and a job this
    /// large on its own is written without any after it. At least 1. Default 64 MiB
    /// (`67108864`).
    pub max_group_bytes: usize,
    /// `limited_get_log_entries` (what openraft reads to replicate) stops after this many bytes
    /// of stored entries, returning at least one entry, so one replication message stays
    /// bounded. At least 1. Default 8 MiB (`8388608`).
    pub limited_read_bytes: usize,
    /// A durable write (write plus sync) slower than this is logged as a warning (`tracing`,
    /// target `raft_store::sync`). Zero logs every durable write. Default 100 ms
    /// ([`SLOW_SYNC`]). Under serde: `slow_sync_ms`, whole milliseconds (written rounded
    /// down).
    #[cfg_attr(feature = "serde", serde(rename = "slow_sync_ms", with = "millis"))]
    pub slow_sync: Duration,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        Self {
            max_group_bytes: 64 << 20,
            limited_read_bytes: 8 << 20,
            slow_sync: SLOW_SYNC,
        }
    }
}

impl LogStoreOptions {
    /// These options with [`max_group_bytes`](Self::max_group_bytes) set to `bytes`.
    #[must_use]
    pub fn with_max_group_bytes(mut self, bytes: usize) -> Self {
        self.max_group_bytes = bytes;
        self
    }

    /// These options with [`limited_read_bytes`](Self::limited_read_bytes) set to `bytes`.
    #[must_use]
    pub fn with_limited_read_bytes(mut self, bytes: usize) -> Self {
        self.limited_read_bytes = bytes;
        self
    }

    /// These options with [`slow_sync`](Self::slow_sync) set to `threshold`.
    #[must_use]
    pub fn with_slow_sync(mut self, threshold: Duration) -> Self {
        self.slow_sync = threshold;
        self
    }

    /// Whether a store can work with these options: every byte bound is at least 1 (a bound of
    /// zero would write or read nothing, so it is a mistake, not a choice). The store's
    /// `open_with` checks this before it touches the engine; call it to refuse a configuration
    /// earlier, with the typed error.
    pub fn validate(&self) -> Result<(), OptionsError> {
        at_least_one("LogStoreOptions", "max_group_bytes", self.max_group_bytes)?;
        at_least_one("LogStoreOptions", "limited_read_bytes", self.limited_read_bytes)?;
        Ok(())
    }
}

/// A value of a store's options that no store can work with.
///
/// The stores' `open_with` constructors return it as the source of
/// [`StoreError::InvalidOptions`]; the options' `validate` returns it alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// A bound that must be at least 1 is 0.
    #[error("{options}::{field} is 0; it must be at least 1")]
    Zero {
        /// The options type (`LogStoreOptions`, `KvOptions`).
        options: &'static str,
        /// The field.
        field: &'static str,
    },
}

impl OptionsError {
    /// This refusal as the error of opening a store on the engine `backend`.
    pub(crate) fn into_store_error(self, backend: &'static str) -> StoreError {
        StoreError::InvalidOptions {
            backend,
            source: self,
        }
    }
}

/// Refuse a `value` of 0 for `options::field`.
pub(crate) fn at_least_one(
    options: &'static str,
    field: &'static str,
    value: usize,
) -> Result<(), OptionsError> {
    if value == 0 {
        return Err(OptionsError::Zero { options, field });
    }
    Ok(())
}

/// A [`Duration`] as whole milliseconds, for serde: humans write `slow_sync_ms = 250`.
#[cfg(feature = "serde")]
mod millis {
    use std::time::Duration;

    use serde::Deserialize;
    use serde::Deserializer;
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        // Rounded down; a duration of more than u64::MAX ms (585 million years) saturates.
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}
