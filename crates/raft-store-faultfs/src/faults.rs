//! The faults a test can arm, what a cut keeps of the volatile writes, and the counters.

use std::ops::Range;
use std::path::PathBuf;

/// What a power cut keeps of the volatile file data. Namespace changes that were not made
/// durable are always lost; only data pages of files with a durable name can survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutMode {
    /// Every volatile change is lost: the backing directory holds exactly what was synced.
    DropAll,
    /// The disk got a prefix of the dirty 4 KiB pages, in the order they were last written;
    /// the length of the prefix is drawn from `seed`.
    TornPrefix {
        /// Seed of the draw, so a failing case can be replayed.
        seed: u64,
    },
    /// The disk got a random subset of the dirty 4 KiB pages (each one with probability 1/2),
    /// drawn from `seed`.
    TornSubset {
        /// Seed of the draw, so a failing case can be replayed.
        seed: u64,
    },
}

/// Counters since the mount (a cut does not reset them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// fsync and fdatasync calls on files, failed ones included.
    pub fsyncs: u64,
    /// fsync calls on directories.
    pub dir_syncs: u64,
    /// fsyncs failed on purpose with EIO.
    pub failed_fsyncs: u64,
    /// Bytes accepted by write calls.
    pub bytes_written: u64,
    /// Bytes of file data that a cut would lose now (whole dirty 4 KiB pages).
    pub volatile_bytes: u64,
    /// Power cuts so far.
    pub cuts: u64,
    /// Power cuts made at an armed fsync ([`Control::tear_at_fsync`](crate::Control::tear_at_fsync)),
    /// counted in `cuts` too.
    pub torn_fsyncs: u64,
}

/// The armed faults.
#[derive(Default)]
pub(crate) struct Faults {
    /// The file fsync that fails: 1 is the next one.
    pub(crate) fail_fsync_in: Option<u64>,
    /// Bytes that writes may still add; `None` is unlimited.
    pub(crate) space_left: Option<u64>,
    /// Reads of these byte ranges of these files (paths relative to the mount root) fail.
    pub(crate) bad_reads: Vec<(PathBuf, Range<u64>)>,
    /// The file fsync, counting only those of a file with two dirty pages or more (1 is the
    /// next), at which the power goes, tearing the file's last page off.
    pub(crate) tear_at_fsync: Option<u64>,
    /// The power went at an armed fsync: opens and creates fail with EIO until the faults are
    /// cleared, so nothing the process does after it reaches the disk.
    pub(crate) powered_off: bool,
}

impl Faults {
    /// Counts one file fsync; true if it is the one to fail.
    pub(crate) fn fsync_fails(&mut self) -> bool {
        match self.fail_fsync_in {
            Some(1) => {
                self.fail_fsync_in = None;
                true
            }
            Some(n) => {
                self.fail_fsync_in = Some(n.saturating_sub(1));
                false
            }
            None => false,
        }
    }

    /// Counts one fsync of a file with two dirty pages or more; true if the power goes at it.
    pub(crate) fn fsync_tears(&mut self) -> bool {
        match self.tear_at_fsync {
            Some(1) => {
                self.tear_at_fsync = None;
                true
            }
            Some(n) => {
                self.tear_at_fsync = Some(n.saturating_sub(1));
                false
            }
            None => false,
        }
    }

    /// How many of `len` bytes a write may store; 0 means the device is full.
    pub(crate) fn take_space(&mut self, len: u64) -> u64 {
        match &mut self.space_left {
            None => len,
            Some(left) => {
                let granted = len.min(*left);
                *left -= granted;
                granted
            }
        }
    }
}

/// Chooses which dirty pages, given as (owner, page index, last write sequence), reach the disk.
pub(crate) fn choose_torn<T: Copy>(mode: CutMode, mut pages: Vec<(T, u64, u64)>) -> Vec<(T, u64)> {
    match mode {
        CutMode::DropAll => Vec::new(),
        CutMode::TornPrefix { seed } => {
            pages.sort_by_key(|&(_, _, seq)| seq);
            let keep = (SplitMix(seed).next() % (pages.len() as u64 + 1)) as usize;
            pages
                .into_iter()
                .take(keep)
                .map(|(owner, page, _)| (owner, page))
                .collect()
        }
        CutMode::TornSubset { seed } => {
            // Sorted first so the same seed picks the same pages whatever the map order was.
            pages.sort_by_key(|&(_, page, seq)| (seq, page));
            let mut rng = SplitMix(seed);
            pages
                .into_iter()
                .filter(|_| rng.next() & 1 == 1)
                .map(|(owner, page, _)| (owner, page))
                .collect()
        }
    }
}

/// A tiny seeded generator (splitmix64): reproducible draws without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
