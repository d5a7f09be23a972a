//! The measured operations, shared by the criterion benches and the report so both time exactly
//! the same thing: each run prepares what it needs untimed and returns the time of the operation
//! alone.

use std::io;
use std::time::Duration;
use std::time::Instant;

use crate::Target;

/// Payload size of entries used to prepare stores (and of pipelined appends).
pub const FILL_SIZE: usize = 256;

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// One durable append of `batch` entries of `size` payload bytes.
    Append {
        /// Entries in the call.
        batch: u64,
        /// Payload bytes per entry.
        size: usize,
    },
    /// `appends` single-entry appends submitted without waiting, timed until the last callback.
    Pipelined {
        /// Appends in flight.
        appends: u64,
        /// Payload bytes per entry.
        size: usize,
    },
    /// Read the last `entries` entries of a store holding at least that many, warm.
    GetLog {
        /// Entries read.
        entries: u64,
    },
    /// Durably remove the last `entries` entries (appended untimed before each run).
    TruncateLast {
        /// Entries removed.
        entries: u64,
    },
    /// Durably purge `entries` entries (appended untimed before each run).
    Purge {
        /// Entries removed.
        entries: u64,
    },
    /// Close and reopen a store holding `entries` entries.
    Reopen {
        /// Entries in the store.
        entries: u64,
    },
}

impl Op {
    /// A short label: `append 16x1KiB`, `get_log 64`.
    pub fn label(&self) -> String {
        match *self {
            Op::Append { batch, size } => format!("append {batch}x{}", size_label(size)),
            Op::Pipelined { appends, size } => format!("pipelined {appends}x{}", size_label(size)),
            Op::GetLog { entries } => format!("get_log {entries}"),
            Op::TruncateLast { entries } => format!("truncate last {entries}"),
            Op::Purge { entries } => format!("purge {entries}"),
            Op::Reopen { entries } => format!("reopen {entries}"),
        }
    }

    /// Entries one run writes, reads or removes (for throughput).
    pub fn entries(&self) -> u64 {
        match *self {
            Op::Append { batch, .. } => batch,
            Op::Pipelined { appends, .. } => appends,
            Op::GetLog { entries }
            | Op::TruncateLast { entries }
            | Op::Purge { entries }
            | Op::Reopen { entries } => entries,
        }
    }

    /// Payload bytes one run writes (0 for operations that write none).
    pub fn payload_bytes(&self) -> u64 {
        match *self {
            Op::Append { batch, size } => batch * size as u64,
            Op::Pipelined { appends, size } => appends * size as u64,
            _ => 0,
        }
    }

    /// Prepare `target` once before runs of this operation (untimed): the entries a read or a
    /// reopen needs, and one warm-up read.
    ///
    /// Fails with [`io::ErrorKind::Unsupported`] if the target cannot do the operation.
    pub fn prepare(&self, target: &mut dyn Target) -> io::Result<()> {
        if !target.supports(self) {
            return Err(crate::unsupported(target.name(), &self.label()));
        }
        match *self {
            Op::GetLog { entries } => {
                // The entries read are the last ones: append them fresh, so every read is of
                // `FILL_SIZE` entries whatever earlier operations left at the tail.
                target.fill(entries, FILL_SIZE)?;
                self.run(target).map(drop)
            }
            Op::TruncateLast { .. } => {
                // Keep at least one entry: truncating the whole log is a different operation,
                // and raft-log cannot truncate before its first entry unless it was purged.
                if target.last_index() == 0 {
                    target.fill(1, FILL_SIZE)?;
                }
                Ok(())
            }
            Op::Reopen { entries } => {
                if target.last_index() < entries {
                    target.fill(entries - target.last_index(), FILL_SIZE)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One run: untimed setup, then the timed operation; returns its time. Checks what it can
    /// of the result, so a target that silently does less fails instead of looking fast.
    pub fn run(&self, target: &mut dyn Target) -> io::Result<Duration> {
        match *self {
            Op::Append { batch, size } => {
                let before = target.last_index();
                let t = Instant::now();
                target.append(batch, size)?;
                let elapsed = t.elapsed();
                expect(target, "append", target.last_index() == before + batch)?;
                Ok(elapsed)
            }
            Op::Pipelined { appends, size } => {
                let t = Instant::now();
                target.append_pipelined(appends, size)?;
                Ok(t.elapsed())
            }
            Op::GetLog { entries } => {
                let last = target.last_index();
                let t = Instant::now();
                let read = target.get_log(last + 1 - entries, last + 1)?;
                let elapsed = t.elapsed();
                expect(target, "get_log", read as u64 == entries)?;
                Ok(elapsed)
            }
            Op::TruncateLast { entries } => {
                target.fill(entries, FILL_SIZE)?;
                let keep = target.last_index() - entries;
                let t = Instant::now();
                target.truncate_after(keep)?;
                let elapsed = t.elapsed();
                expect(target, "truncate", target.last_index() == keep)?;
                Ok(elapsed)
            }
            Op::Purge { entries } => {
                target.fill(entries, FILL_SIZE)?;
                let last = target.last_index();
                let t = Instant::now();
                target.purge_upto(last)?;
                Ok(t.elapsed())
            }
            Op::Reopen { .. } => {
                let last = target.last_index();
                let t = Instant::now();
                target.reopen()?;
                let elapsed = t.elapsed();
                expect(target, "reopen", target.last_index() == last)?;
                Ok(elapsed)
            }
        }
    }
}

fn expect(target: &dyn Target, op: &str, ok: bool) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{}: {op} left the log at index {}, not where it should be",
            target.name(),
            target.last_index()
        )))
    }
}

/// `64B`, `1KiB`, `16KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

/// Latency samples of one measured operation, sorted.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Time `op` `n` times.
    pub fn measure(n: usize, mut op: impl FnMut() -> io::Result<()>) -> io::Result<Self> {
        Self::collect(n, || {
            let t = Instant::now();
            op()?;
            Ok(t.elapsed())
        })
    }

    /// Collect `n` durations, each measured by `run` itself (which may prepare untimed).
    pub fn collect(n: usize, mut run: impl FnMut() -> io::Result<Duration>) -> io::Result<Self> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(run()?);
        }
        out.sort_unstable();
        Ok(Self(out))
    }

    /// Sorted samples from unsorted durations.
    pub fn from_unsorted(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// The `p`-th percentile (0..=100), nearest rank; zero when there are no samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }

    /// The mean; zero when there are no samples.
    pub fn mean(&self) -> Duration {
        match u32::try_from(self.0.len()) {
            Ok(0) | Err(_) => Duration::ZERO,
            Ok(n) => self.0.iter().sum::<Duration>() / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let s = Samples::from_unsorted((1..=100).rev().map(Duration::from_micros).collect());
        assert_eq!(s.percentile(0.0), Duration::from_micros(1));
        assert_eq!(s.percentile(50.0), Duration::from_micros(51));
        assert_eq!(s.percentile(99.0), Duration::from_micros(99));
        assert_eq!(s.percentile(100.0), Duration::from_micros(100));
        assert_eq!(s.mean(), Duration::from_nanos(50_500));
        assert_eq!(Samples::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn labels_name_batch_and_size() {
        assert_eq!(
            Op::Append {
                batch: 16,
                size: 1024
            }
            .label(),
            "append 16x1KiB"
        );
        assert_eq!(Op::Append { batch: 1, size: 64 }.label(), "append 1x64B");
        assert_eq!(
            Op::Pipelined {
                appends: 1000,
                size: 256
            }
            .payload_bytes(),
            256_000
        );
    }
}
