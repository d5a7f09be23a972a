//! [`LineLogReader`]: reads entries from the engine plus the not-yet-written tail in memory.

use std::ops::Bound;
use std::ops::ControlFlow;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Weak;

use crate::line::Line;

use super::shared::Shared;
use super::shared::decode_entry;
use super::shared::key_index;
use crate::Engine;
use crate::KeyRange;
use crate::Space;
use crate::codec::Codec;
use crate::codec::log_key;
use crate::error::StoreError;

/// A read handle to a log store's log, cheap to clone.
///
/// It sees every appended entry as soon as `append` returns, durable or not. Each read is one
/// consistent view: a concurrent truncate or purge is seen entirely or not at all.
///
/// A reader does not keep the store open: once the `LineLogStore` is dropped (openraft drops it
/// when the `Raft` shuts down), the engine closes and releases its directory, and reads through
/// readers still around fail with [`StoreError::Closed`]. So a store can be reopened right
/// after shutdown, whatever tasks still hold readers.
pub struct LineLogReader<C: Line, E, K> {
    shared: Weak<Shared<C, E, K>>,
    backend: &'static str,
    /// The store's [`LogStoreOptions::limited_read_bytes`](super::LogStoreOptions::limited_read_bytes).
    limited_read_bytes: usize,
}

impl<C: Line, E, K> Clone for LineLogReader<C, E, K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            backend: self.backend,
            limited_read_bytes: self.limited_read_bytes,
        }
    }
}

impl<C, E, K> LineLogReader<C, E, K>
where
    C: Line,
    E: Engine,
    K: Codec,
{
    pub(crate) fn new(shared: &Arc<Shared<C, E, K>>) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            backend: shared.backend,
            limited_read_bytes: shared.options.limited_read_bytes,
        }
    }

    fn shared(&self) -> Result<Arc<Shared<C, E, K>>, StoreError> {
        self.shared.upgrade().ok_or(StoreError::Closed {
            backend: self.backend,
        })
    }

    /// Entries with `start <= index < end` that the log holds, stopping early once more than
    /// `max_bytes` of stored values were read (always returning at least one entry).
    pub fn read_range(&self, start: u64, end: u64, max_bytes: usize) -> Result<Vec<C::Entry>, StoreError> {
        let shared = self.shared()?;
        let backend = shared.backend;
        // Shared: the flusher cannot delete log entries while the view and the scan are taken.
        let guard = shared
            .deleting
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (lo, engine_hi, tail) = {
            let view = shared.view();
            let lo = start.max(view.log_start);
            let last_plus_one = view
                .last_log_id
                .as_ref()
                .map_or(0, |l| C::index(l).saturating_add(1));
            let hi = end.min(last_plus_one);
            if lo >= hi {
                return Ok(Vec::new());
            }
            let engine_hi = hi.min(view.pending_start().max(lo));
            let tail: Vec<C::Entry> = view
                .pending
                .iter()
                .filter(|p| p.index >= lo && p.index < hi)
                .map(|p| p.entry.clone())
                .collect();
            (lo, engine_hi, tail)
        };

        let mut raw: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut limited = false;
        let mut bad_key = None;
        if lo < engine_hi {
            let (from, to) = (log_key(lo), log_key(engine_hi));
            shared
                .engine
                .scan(Space::Log, KeyRange::half_open(&from, &to), &mut |k, v| {
                    let index = match key_index(backend, k) {
                        Ok(index) => index,
                        Err(e) => {
                            bad_key = Some(e);
                            return ControlFlow::Break(());
                        }
                    };
                    bytes += v.len();
                    raw.push((index, v.to_vec()));
                    if bytes > max_bytes {
                        limited = true;
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                })?;
        }
        drop(guard);
        if let Some(e) = bad_key {
            return Err(e);
        }

        let mut out = Vec::with_capacity(raw.len() + tail.len());
        let mut want = lo;
        for (index, value) in raw {
            if index != want {
                return Err(StoreError::Missing { backend, index: want });
            }
            out.push(decode_entry::<C, K>(backend, index, &value)?);
            want += 1;
        }
        if limited {
            return Ok(out);
        }
        if want != engine_hi {
            return Err(StoreError::Missing { backend, index: want });
        }
        out.extend(tail);
        Ok(out)
    }
}

/// `(start, end)` of a range of log indexes, `end` exclusive.
pub(crate) fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<C: Line, E: Engine, K: Codec> LineLogReader<C, E, K> {
    /// Entries in `range` that the log holds, all of them.
    pub(crate) fn read_bounds(&self, range: &impl RangeBounds<u64>) -> Result<Vec<C::Entry>, StoreError> {
        let (start, end) = bounds(range);
        self.read_range(start, end, usize::MAX)
    }

    /// Entries with `start <= index < end`, bounded to about one replication message of bytes.
    pub(crate) fn read_limited(&self, start: u64, end: u64) -> Result<Vec<C::Entry>, StoreError> {
        self.read_range(start, end, self.limited_read_bytes)
    }

    /// The last saved vote.
    pub(crate) fn vote(&self) -> Result<Option<C::Vote>, StoreError> {
        Ok(self.shared()?.view().vote.clone())
    }
}
