//! [`LogReader`]: reads entries from the engine plus the not-yet-written tail in memory.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::ControlFlow;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Weak;

use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;
use openraft::entry::RaftEntry;
use openraft::type_config::alias::VoteOf;

use super::shared::Shared;
use crate::codec::Codec;
use crate::codec::log_index;
use crate::codec::log_key;
use crate::codec::unseal;
use crate::engine::Engine;
use crate::engine::KeyRange;
use crate::engine::Space;
use crate::error::StoreError;

/// `limited_get_log_entries` stops after about this many stored bytes (and at least one entry),
/// so one replication message stays bounded.
const LIMITED_READ_BYTES: usize = 8 << 20;

/// A read handle to a [`LogStore`](crate::LogStore)'s log, cheap to clone.
///
/// It sees every appended entry as soon as `append` returns, durable or not. Each read is one
/// consistent view: a concurrent truncate or purge is seen entirely or not at all.
///
/// A reader does not keep the store open: once the `LogStore` is dropped (openraft drops it
/// when the `Raft` shuts down), the engine closes and releases its directory, and reads through
/// readers still around fail with [`StoreError::Closed`]. So a store can be reopened right
/// after shutdown, whatever tasks still hold readers.
pub struct LogReader<C: RaftTypeConfig, E, K> {
    shared: Weak<Shared<C, E, K>>,
    backend: &'static str,
}

impl<C: RaftTypeConfig, E, K> Clone for LogReader<C, E, K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            backend: self.backend,
        }
    }
}

impl<C, E, K> LogReader<C, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    pub(crate) fn new(shared: &Arc<Shared<C, E, K>>) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            backend: shared.backend,
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
                .map_or(0, |l| l.index().saturating_add(1));
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
                    let Some(index) = log_index(k) else {
                        bad_key = Some(k.len());
                        return ControlFlow::Break(());
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
        if let Some(len) = bad_key {
            return Err(StoreError::Corrupt {
                backend,
                space: Space::Log,
                index: None,
                reason: format!("log key of {len} bytes, expected 8"),
            });
        }

        let mut out = Vec::with_capacity(raw.len() + tail.len());
        let mut want = lo;
        for (index, value) in raw {
            if index != want {
                return Err(StoreError::Missing { backend, index: want });
            }
            let entry: C::Entry = unseal::<K, _>(&value).map_err(|reason| StoreError::Corrupt {
                backend,
                space: Space::Log,
                index: Some(index),
                reason,
            })?;
            if entry.index() != index {
                return Err(StoreError::Corrupt {
                    backend,
                    space: Space::Log,
                    index: Some(index),
                    reason: format!(
                        "entry stored under index {index} says it is index {}",
                        entry.index()
                    ),
                });
            }
            out.push(entry);
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

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
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

impl<C, E, K> RaftLogReader<C> for LogReader<C, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        let (start, end) = bounds(&range);
        Ok(self.read_range(start, end, usize::MAX)?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.shared()?.view().vote.clone())
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.read_range(start, end, LIMITED_READ_BYTES)?)
    }
}
