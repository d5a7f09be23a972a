//! Where a crash test keeps its store and what each crash does to it: a `SIGKILL` alone (the
//! page cache survives, so only what the process had not yet handed to the kernel is lost), or
//! a `SIGKILL` followed by a power cut on the fault file system (everything not fsynced is lost,
//! or a torn part of it is kept). The kill loops in [`log_crash`](crate::log_crash) and
//! [`kv_crash`](crate::kv_crash) run the same way on either, and count what they saw per kind of
//! crash ([`Tally`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use raft_store::Backend;

use raft_store_faultfs::CutMode;
use raft_store_testkit::power_cut::Mounted;
use raft_store_testkit::util;

use crate::Rng;
use crate::process::Child;
use crate::process::Ending;

/// The variable that sets the number of kills of a `SIGKILL` test.
pub const KILLS_ENV: &str = "RAFT_STORE_KILLS";
/// The variable that sets the number of power cuts of a power-cut test.
pub const CUTS_ENV: &str = raft_store_testkit::power_cut::CUTS_ENV;

/// The store directory of a crash test and what a crash does.
pub struct CrashSite {
    place: Place,
    count: usize,
    seed: u64,
    started: Instant,
}

enum Place {
    Kill(tempfile::TempDir),
    PowerCut(Box<Mounted>),
}

/// What a crash test does to the store after each kill of its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crashes {
    /// Nothing: `SIGKILL` alone, on a temporary directory.
    Kill,
    /// A power cut, on the fault file system.
    PowerCut,
}

impl CrashSite {
    /// A fresh store directory for `test` of `backend`, crashed as `crashes` says, `defaults.0`
    /// times for kills ([`KILLS_ENV`] for more) or `defaults.1` for power cuts ([`CUTS_ENV`]);
    /// prints the count and the seed. `None` when the test needs FUSE, FUSE is missing and the
    /// run opted out (`RAFT_STORE_NO_FUSE=1`: the gate has said it skipped); a panic naming what
    /// is missing when FUSE is missing otherwise.
    pub fn new(crashes: Crashes, test: &str, backend: Backend, defaults: (usize, usize)) -> Option<Self> {
        let (place, count) = match crashes {
            Crashes::Kill => (
                Place::Kill(util::tempdir()),
                crate::count_from_env(KILLS_ENV, defaults.0),
            ),
            Crashes::PowerCut => (
                Place::PowerCut(Box::new(
                    Mounted::new(test).unwrap_or_else(|e| panic!("{test}: {e}"))?,
                )),
                crate::count_from_env(CUTS_ENV, defaults.1),
            ),
        };
        let site = Self {
            place,
            count,
            seed: crate::seed(),
            started: Instant::now(),
        };
        eprintln!(
            "{backend}: {count} {}, RAFT_STORE_SEED={}",
            site.noun(),
            site.seed
        );
        Some(site)
    }

    /// How many crashes the test makes.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The test's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The time since the site was made.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        match &self.place {
            Place::Kill(dir) => dir.path(),
            Place::PowerCut(mount) => mount.store_dir(),
        }
    }

    /// The store's directory as a child's argument.
    pub fn dir_arg(&self) -> String {
        self.dir()
            .to_str()
            .expect("the store directory is UTF-8")
            .to_string()
    }

    /// What a crash is called in messages: `kills` or `power cuts`.
    pub fn noun(&self) -> &'static str {
        match self.place {
            Place::Kill(_) => "kills",
            Place::PowerCut(_) => "power cuts",
        }
    }

    /// Crash `k` after its child was killed: nothing more for a kill; for a power cut, cut with
    /// the next mode of the rotation (every volatile write dropped, a torn prefix of the dirty
    /// pages kept, a random subset of them kept). Returns what the crash was.
    pub fn crash(&self, k: usize, rng: &mut Rng) -> Crash {
        let Place::PowerCut(mount) = &self.place else {
            return Crash::Kill;
        };
        let mode = match k % 3 {
            0 => CutMode::DropAll,
            1 => CutMode::TornPrefix { seed: rng.next_u64() },
            _ => CutMode::TornSubset { seed: rng.next_u64() },
        };
        mount
            .control()
            .cut(mode)
            .unwrap_or_else(|e| panic!("power cut {k} ({mode:?}): {e}"));
        Crash::Cut(mode)
    }
}

/// Kill the child `name` (which must still be running) and add the lines it printed since
/// `lines` was read to them.
pub fn kill(child: Child, name: &str, lines: &mut Vec<String>) -> Result<(), String> {
    let (rest, ending, stderr) = child.kill().map_err(|e| format!("kill {name}: {e}"))?;
    if ending != Ending::Signal(9) {
        return Err(format!("{name} ended by itself ({ending:?}): {stderr}"));
    }
    lines.extend(rest);
    Ok(())
}

/// What one crash was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// `SIGKILL` only.
    Kill,
    /// `SIGKILL`, then a power cut of this mode.
    Cut(CutMode),
}

impl Crash {
    /// The kind of crash, without its seed: `kill`, `DropAll`, `TornPrefix`, `TornSubset`.
    pub fn kind(self) -> &'static str {
        match self {
            Crash::Kill => "kill",
            Crash::Cut(CutMode::DropAll) => "DropAll",
            Crash::Cut(CutMode::TornPrefix { .. }) => "TornPrefix",
            Crash::Cut(CutMode::TornSubset { .. }) => "TornSubset",
            // A mode added to the fault file system later.
            Crash::Cut(_) => "other cut",
        }
    }
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crash::Kill => f.write_str("kill"),
            Crash::Cut(mode) => write!(f, "power cut {mode:?}"),
        }
    }
}

/// What the crashes of one kind saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Crashes.
    pub crashes: usize,
    /// Operations (or entries) the children issued.
    pub issued: u64,
    /// Of those, acknowledged (or synced) before the crash.
    pub acked: u64,
    /// Unacknowledged ones found durable after the crash.
    pub beyond_ack: u64,
}

/// What a test's crashes saw, per kind of crash.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<&'static str, Counts>);

impl Tally {
    /// Count one crash.
    pub fn add(&mut self, crash: Crash, issued: u64, acked: u64, beyond_ack: u64) {
        let c = self.0.entry(crash.kind()).or_default();
        c.crashes += 1;
        c.issued += issued;
        c.acked += acked;
        c.beyond_ack += beyond_ack;
    }

    /// The counts of every kind together.
    pub fn total(&self) -> Counts {
        self.0.values().fold(Counts::default(), |mut t, c| {
            t.crashes += c.crashes;
            t.issued += c.issued;
            t.acked += c.acked;
            t.beyond_ack += c.beyond_ack;
            t
        })
    }
}

impl fmt::Display for Tally {
    /// `<kind>: <crashes> (<issued> issued, <acked> acked, <beyond> unacked durable); ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, c)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{kind}: {} ({} issued, {} acked, {} unacked durable)",
                c.crashes, c.issued, c.acked, c.beyond_ack
            )?;
        }
        Ok(())
    }
}
