//! What a store did, counted as it happens: the durable writes (each one sync) with their
//! latency and size, the entries applied, and the errors by kind.
//!
//! A [`LogStore`](crate::LogStore) and a [`KvStateMachine`](crate::kv::KvStateMachine) opened
//! on one engine can share one [`StoreStats`]; a server renders [`StoreStats::snapshot`] on each
//! scrape without touching the disk.
//!
//! ```
//! use raft_store_core::{LogStore, MemEngine};
//!
//! openraft::declare_raft_types!(pub Config: D = String, R = String);
//!
//! let store: LogStore<Config, MemEngine> = LogStore::open(MemEngine::new()).unwrap();
//! let stats = store.stats().snapshot();
//! assert_eq!(stats.sync_seconds.count, 0);
//! assert_eq!(stats.bytes_written, 0);
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::StoreError;

/// A durable write slower than this is logged as a warning (`tracing`, target
/// `raft_store::sync`): a disk that takes this long holds every append behind it. The default
/// of [`LogStoreOptions::slow_sync`](crate::LogStoreOptions::slow_sync), which sets
/// another threshold for one store.
pub const SLOW_SYNC: Duration = Duration::from_millis(100);

/// Upper bounds (seconds) of the sync latency buckets: 50 us to 5 s, about 2.5x apart, so both
/// a fast flash sync and a stalled disk land in a bucket of their own.
pub const SYNC_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 5.0,
];

/// Upper bounds of the group size buckets (jobs sharing one sync).
pub const GROUP_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0, 4096.0];

/// `n` as a float for a histogram: exact below 2^53, which a count of jobs or microseconds
/// summed over a node's life never reaches.
#[allow(clippy::cast_precision_loss, reason = "exact below 2^53")]
fn to_f64(n: u64) -> f64 {
    n as f64
}

/// A histogram of fixed buckets, updated without locks.
struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: [AtomicU64; N],
    above: AtomicU64,
    /// Sum of the observations, in the unit's millionths (microseconds for latency), so it
    /// adds up in an integer.
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [f64; N]) -> Self {
        Self {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            above: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        let slot = self.bounds.iter().position(|b| value <= *b);
        match slot.and_then(|i| self.counts.get(i)) {
            Some(count) => count.fetch_add(1, Ordering::Relaxed),
            None => self.above.fetch_add(1, Ordering::Relaxed),
        };
        // Saturating: a float far out of range becomes u64::MAX, never wraps the sum.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to 0 first; `as` saturates at u64::MAX"
        )]
        let micros = (value * 1e6).max(0.0) as u64;
        let _ = self
            .sum_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_add(micros))
            });
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(N);
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative = cumulative.saturating_add(count.load(Ordering::Relaxed));
            buckets.push((*bound, cumulative));
        }
        let count = cumulative.saturating_add(self.above.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            count,
            sum: to_f64(self.sum_micros.load(Ordering::Relaxed)) / 1e6,
        }
    }
}

/// A histogram read at one instant, in Prometheus' shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, cumulative, bounds increasing.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation, the ones above the last bound included.
    pub count: u64,
    /// The sum of the observations.
    pub sum: f64,
}

/// The counters of one store; see the [module docs](self).
pub struct StoreStats {
    sync_seconds: Histogram<12>,
    group_jobs: Histogram<10>,
    bytes_written: AtomicU64,
    entries_appended: AtomicU64,
    entries_applied: AtomicU64,
    snapshots_built: AtomicU64,
    snapshots_installed: AtomicU64,
    /// `(operation, error kind)` to count. Errors are rare: a lock costs nothing that matters.
    errors: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// The first error the store cannot go on after (a failed durable write, a failed apply):
    /// its message for a server's status, and the error itself for an application.
    fatal: OnceLock<(String, StoreError)>,
}

impl Default for StoreStats {
    fn default() -> Self {
        Self {
            sync_seconds: Histogram::new(&SYNC_BUCKETS),
            group_jobs: Histogram::new(&GROUP_BUCKETS),
            bytes_written: AtomicU64::new(0),
            entries_appended: AtomicU64::new(0),
            entries_applied: AtomicU64::new(0),
            snapshots_built: AtomicU64::new(0),
            snapshots_installed: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            fatal: OnceLock::new(),
        }
    }
}

/// The counters of a [`StoreStats`] read at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Latency of each durable log write (write plus sync), in seconds.
    pub sync_seconds: HistogramSnapshot,
    /// Jobs (appends, vote and committed saves, truncates, purges) written by each sync.
    pub group_jobs: HistogramSnapshot,
    /// Bytes of keys and values the log store's durable writes carried.
    pub bytes_written: u64,
    /// Log entries made durable.
    pub entries_appended: u64,
    /// Entries applied to the state machine.
    pub entries_applied: u64,
    /// Snapshots the state machine built.
    pub snapshots_built: u64,
    /// Snapshots the state machine installed (received from a leader).
    pub snapshots_installed: u64,
    /// Errors by `(operation, kind)`: operation `write` (a failed durable write or sync: the
    /// store is poisoned), `refused` (a write refused because it was), `apply`, `snapshot`,
    /// `read`, `encode`; the kind is the I/O error kind or the store error's variant.
    pub errors: BTreeMap<(&'static str, String), u64>,
}

impl StoreStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sync_seconds: self.sync_seconds.snapshot(),
            group_jobs: self.group_jobs.snapshot(),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            entries_appended: self.entries_appended.load(Ordering::Relaxed),
            entries_applied: self.entries_applied.load(Ordering::Relaxed),
            snapshots_built: self.snapshots_built.load(Ordering::Relaxed),
            snapshots_installed: self.snapshots_installed.load(Ordering::Relaxed),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// The first error the store cannot go on after, if one happened: a durable write or sync
    /// that failed (the log store is poisoned and refuses every write from then on) or an entry
    /// the state machine failed to apply. A server polls this to stop serving and exit, so a
    /// supervisor restarts it on a store that recovers from what is on disk.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.get().map(|(message, _)| message.as_str())
    }

    /// The error behind [`fatal`](Self::fatal), typed: [`StoreError::WriteFailed`] (with the
    /// engine's error as its source) for a failed durable write, the state machine's error for
    /// a failed apply.
    ///
    /// openraft keeps only the message of a storage error once it stops raft on it (its
    /// `Fatal::StorageError` holds an `AnyError`), so an application that kept the stats
    /// ([`LogStore::stats`](crate::LogStore::stats), before handing the store to
    /// `openraft::Raft`) gets the store's error back here:
    ///
    /// ```
    /// # use raft_store_core::{LogStore, MemEngine, StoreError};
    /// # openraft::declare_raft_types!(Config: D = String, R = String);
    /// # fn main() -> Result<(), StoreError> {
    /// let log: LogStore<Config, _> = LogStore::open(MemEngine::new())?;
    /// let stats = log.stats(); // kept by the application
    /// // ... `openraft::Raft::new(id, config, network, log, state_machine)` ...
    /// if let Some(StoreError::WriteFailed { kind, .. }) = stats.fatal_error() {
    ///     eprintln!("the log store stopped on a failed write: {kind:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn fatal_error(&self) -> Option<&StoreError> {
        self.fatal.get().map(|(_, error)| error)
    }

    /// Record `error` as fatal, with `message` for a server's status (only the first one is
    /// kept; neither is built once one is).
    pub(crate) fn record_fatal(&self, message: impl FnOnce() -> String, error: impl FnOnce() -> StoreError) {
        if self.fatal.get().is_none() {
            let _ = self.fatal.set((message(), error()));
        }
    }

    /// One durable write of `jobs` jobs, `entries` log entries and `bytes` bytes took `took`.
    pub(crate) fn record_sync(&self, took: Duration, jobs: usize, entries: u64, bytes: usize) {
        self.sync_seconds.observe(took.as_secs_f64());
        self.group_jobs
            .observe(to_f64(u64::try_from(jobs).unwrap_or(u64::MAX)));
        self.bytes_written
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.entries_appended.fetch_add(entries, Ordering::Relaxed);
    }

    /// `n` entries were applied.
    pub(crate) fn record_applied(&self, n: u64) {
        self.entries_applied.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot was built (`installed == false`) or installed.
    pub(crate) fn record_snapshot(&self, installed: bool) {
        let counter = if installed {
            &self.snapshots_installed
        } else {
            &self.snapshots_built
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An error of `operation`, of `kind`.
    pub(crate) fn record_error(&self, operation: &'static str, kind: impl Into<String>) {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = errors.entry((operation, kind.into())).or_insert(0);
        *count = count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_what_lies_above_them() {
        let stats = StoreStats::default();
        stats.record_sync(Duration::from_micros(40), 1, 1, 10);
        stats.record_sync(Duration::from_micros(900), 3, 3, 30);
        stats.record_sync(Duration::from_secs(9), 5000, 0, 0);
        let s = stats.snapshot();
        assert_eq!(s.sync_seconds.count, 3);
        assert_eq!(s.sync_seconds.buckets.first(), Some(&(0.000_05, 1)));
        let at_1ms = s
            .sync_seconds
            .buckets
            .iter()
            .find(|(b, _)| (*b - 0.001).abs() < 1e-12);
        assert_eq!(at_1ms, Some(&(0.001, 2)));
        assert_eq!(
            s.sync_seconds.buckets.last(),
            Some(&(5.0, 2)),
            "9 s is above every bound"
        );
        assert!(
            (s.sync_seconds.sum - 9.000_94).abs() < 1e-6,
            "{}",
            s.sync_seconds.sum
        );
        assert_eq!(s.group_jobs.buckets.first(), Some(&(1.0, 1)));
        assert_eq!(s.group_jobs.buckets.last(), Some(&(4096.0, 2)));
        assert_eq!(s.bytes_written, 40);
        assert_eq!(s.entries_appended, 4);
    }

    #[test]
    fn errors_are_counted_by_operation_and_kind() {
        let stats = StoreStats::default();
        stats.record_error("write", "StorageFull");
        stats.record_error("refused", "Poisoned");
        stats.record_error("refused", "Poisoned");
        let errors = stats.snapshot().errors;
        assert_eq!(errors.get(&("write", "StorageFull".to_string())), Some(&1));
        assert_eq!(errors.get(&("refused", "Poisoned".to_string())), Some(&2));
        assert_eq!(errors.len(), 2);
    }
}
