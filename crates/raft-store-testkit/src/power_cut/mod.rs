//! Power cuts for real: the store under test runs in a child process on the fault file system
//! ([`raft_store_faultfs`]), which keeps every write volatile until it is synced; the case kills
//! the child with `SIGKILL` at a random point of its workload, cuts the power (dropping what
//! was never synced, or keeping a torn part of it), reopens the store and checks what is left
//! against what was acknowledged.
//!
//! In one process a crash cannot be seen: unsynced bytes stay in the page cache and come back on
//! reopen, and `SIGKILL` leaves the page cache too. Only a file system that forgets unsynced data
//! shows a missing fsync, and it needs no cooperation from the engine: these cases check a
//! user's engine exactly as they check ours.
//!
//! The child is the test binary itself, re-run with `--exact <test>` and an environment
//! variable naming its job, so a user needs no binary of their own. Each case makes
//! [`DEFAULT_CUTS`] cuts ([`CUTS_ENV`] for more). Every other cut is made at an fsync
//! ([`Control::tear_at_fsync`]): the power goes as the child syncs a write over two pages or
//! more, whose last page is lost, so every run meets a torn last record, which a replay must
//! cut off by its checksum (a kill at a random instant lands inside a write only now and
//! then). The cuts between kill the child at a random instant and rotate between losing every
//! volatile write, keeping a prefix of the dirty pages and keeping a random subset of them.
//! The seed is printed; [`SEED_ENV`](super::rng::SEED_ENV) replays it.
//!
//! Without FUSE the cases fail with what is missing and how to get it, unless
//! [`NO_FUSE_ENV`](raft_store_faultfs::NO_FUSE_ENV) is `1`: then they say they skipped.

mod batches;
pub mod model;

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;
use std::time::Instant;

use raft_store_faultfs::Control;
use raft_store_faultfs::CutMode;
use raft_store_faultfs::FaultFs;
use raft_store_faultfs::MountOptions;

pub use self::batches::engine_batches;
use self::model::LogOp;
use self::model::Model;
use self::model::Order;
use self::model::Workload;
use super::CaseError;
use super::CaseResult;
use super::StoreOpener;
use super::process::Child;
use super::process::Ending;
use super::rng;
use super::rng::Rng;
use super::util;
use crate::ensure;

/// Power cuts each case makes, unless [`CUTS_ENV`] says otherwise.
pub const DEFAULT_CUTS: usize = 8;

/// The environment variable that sets the number of power cuts per case.
pub const CUTS_ENV: &str = "RAFT_STORE_POWER_CUTS";

/// Tells a re-run of the test binary that it is the child: `<store dir>\n<seed>`.
const CHILD_ENV: &str = "RAFT_STORE_POWER_CUT_CHILD";

/// A child nobody killed stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

/// How long a child may take to open its store and print its first line.
const CHILD_START: Duration = Duration::from_secs(30);

/// A case that hangs (a stuck request on the mount) ends the test process after this long.
const WATCHDOG: Duration = Duration::from_secs(600);

/// Appends awaiting their callback at most in the child; it waits for the oldest beyond this.
const IN_FLIGHT: usize = 64;

/// A cut at an fsync comes at one of the child's first this many fsyncs of a file with two
/// dirty pages or more (drawn at random).
const TEAR_WITHIN: u64 = 12;

/// How long a cut at an fsync waits for the child to make that fsync; an engine that never
/// syncs two dirty pages at once gets a cut after a kill instead.
const TEAR_WAIT: Duration = Duration::from_secs(15);

/// The fault file system mounted for one case, with the store's directory on it.
pub struct Mounted {
    fs: FaultFs,
    store: PathBuf,
    // Declared after `fs`: the mount goes before its directories are removed.
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    _watchdog: mpsc::Sender<()>,
}

impl Mounted {
    /// Mounts over fresh temporary directories, with a durable empty `store` directory on it.
    /// `Ok(None)` when FUSE is missing and the run opted out of the cases that need it; an
    /// error naming what is missing otherwise.
    pub fn new(test: &str) -> Result<Option<Self>, CaseError> {
        if !raft_store_faultfs::fuse_gate(test).map_err(|e| format!("{test} needs FUSE: {e}"))? {
            return Ok(None);
        }
        let backing = util::tempdir();
        let mnt = util::tempdir();
        // The backing tree only has to outlive this file system's cuts, not the machine's.
        let options = MountOptions::default().sync_backing(false);
        let fs = FaultFs::mount_with(backing.path(), mnt.path(), &options)
            .map_err(|e| format!("mounting the fault file system for {test}: {e}"))?;
        let store = fs.mountpoint().join("store");
        std::fs::create_dir(&store)?;
        std::fs::File::open(fs.mountpoint())?.sync_all()?;
        Ok(Some(Self {
            fs,
            store,
            _dirs: (mnt, backing),
            _watchdog: watchdog(test),
        }))
    }

    /// The store's directory, on the mount.
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// The fault controls of the mount.
    pub fn control(&self) -> Control {
        self.fs.control()
    }
}

/// Ends the process if the case is still running after [`WATCHDOG`]: a request stuck on the
/// mount would otherwise hang the test run for ever.
fn watchdog(test: &str) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let test = test.to_string();
    std::thread::spawn(move || {
        if rx.recv_timeout(WATCHDOG) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{test}: still running after {WATCHDOG:?} on the fault file system; aborting");
            std::process::abort();
        }
    });
    tx
}

/// The child's job, when this process is one: the store directory and the seed.
fn child_job() -> Option<(PathBuf, u64)> {
    let job = std::env::var(CHILD_ENV).ok()?;
    let (dir, seed) = job.split_once('\n')?;
    Some((PathBuf::from(dir), seed.parse().ok()?))
}

/// How one cut is made.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Kill the child at a random instant, then cut the power this way.
    AfterKill(CutMode),
    /// Cut the power at the child's `nth` fsync of a file with two dirty pages or more,
    /// tearing off the last page of what it was to sync, then kill it.
    AtFsync {
        /// Which fsync of those, 1 the first.
        nth: u64,
    },
}

/// The plan of cut `k`: every other one at an fsync, so a run of two cuts or more always
/// tears a write; the rest rotate through the three kinds of [`CutMode`].
fn plan(k: usize, rng: &mut Rng) -> Plan {
    if k % 2 == 1 {
        return Plan::AtFsync {
            nth: rng.between(1, TEAR_WITHIN),
        };
    }
    Plan::AfterKill(match (k / 2) % 3 {
        0 => CutMode::DropAll,
        1 => CutMode::TornPrefix { seed: rng.next_u64() },
        _ => CutMode::TornSubset { seed: rng.next_u64() },
    })
}

/// Runs `test` of this binary as the child on the mount's store, cuts the power as `plan` says
/// and returns the child's lines and how the cut was made (for messages). A cut planned at an
/// fsync that the child never reached within [`TEAR_WAIT`] is made after a kill instead.
fn run_and_cut(
    test: &str,
    mount: &Mounted,
    child_seed: u64,
    plan: Plan,
    rng: &mut Rng,
) -> Result<(Vec<String>, String), CaseError> {
    let control = mount.control();
    match plan {
        Plan::AfterKill(mode) => {
            let lines = run_and_kill(test, mount.store_dir(), child_seed, None, rng)?;
            control.cut(mode)?;
            Ok((lines, format!("{mode:?}")))
        }
        Plan::AtFsync { nth } => {
            let before = control.stats()?.torn_fsyncs;
            control.tear_at_fsync(nth)?;
            let result = run_and_kill(test, mount.store_dir(), child_seed, Some((&control, before)), rng);
            let torn = control.stats()?.torn_fsyncs > before;
            // Power back on (and disarmed, if the fsync never came); the cut then drops what
            // the child changed after the power went, which never reached the disk.
            control.clear_faults()?;
            control.cut(CutMode::DropAll)?;
            let how = if torn {
                format!("at fsync {nth} of two dirty pages or more, its last page lost")
            } else {
                format!("DropAll: the child made no fsync {nth} of two dirty pages or more")
            };
            Ok((result?, how))
        }
    }
}

/// Runs `test` of this binary as the child on `dir`, lets it print a random number of lines
/// (or run a random time), kills it and returns every line it printed. With `tear` (the
/// mount's control and its torn fsyncs before the child started), the child runs until the
/// power goes at an fsync instead ([`TEAR_WAIT`] at most), and may have ended by itself when
/// killed: the fsync failed under it.
fn run_and_kill(
    test: &str,
    dir: &Path,
    child_seed: u64,
    tear: Option<(&Control, u64)>,
    rng: &mut Rng,
) -> Result<Vec<String>, CaseError> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, format!("{}\n{child_seed}", dir.display()));
    let child = Child::spawn_command(command)?;
    // The kill comes at a random instant, not at a line: a line is printed between two writes,
    // and a kill that always lands there would miss a write cut in half (a batch written op by
    // op, a callback fired before its sync).
    let kill_after_lines = rng.between(2, 600);
    let kill_after = Duration::from_micros(rng.between(5_000, 400_000));
    let start = Instant::now();
    let deadline = start + CHILD_START;
    let mut lines = Vec::new();
    let mut kill_at: Option<Instant> = None;
    let mut torn = false;
    loop {
        let line = if let Some((control, before)) = tear {
            // Until the power goes: look at the mount between lines.
            torn = control.stats()?.torn_fsyncs > before;
            if torn || start.elapsed() >= TEAR_WAIT {
                break;
            }
            let until = Instant::now() + Duration::from_millis(5);
            match child.line_before(until) {
                Some(line) => line,
                // Its output ended: the child is gone (the fsync failed under it, or worse).
                None if Instant::now() < until => break,
                None => continue,
            }
        } else {
            let wait_until = kill_at.map_or(deadline, |t| t.min(deadline));
            let Some(line) = child.line_before(wait_until) else {
                break;
            };
            line
        };
        if line.starts_with("R ") {
            kill_at = Some(Instant::now() + kill_after);
        }
        if ["R ", "I ", "A "].iter().any(|p| line.starts_with(p)) {
            lines.push(line);
        }
        let kill_now = kill_at.is_some_and(|t| Instant::now() >= t) || lines.len() as u64 >= kill_after_lines;
        if tear.is_none() && kill_now {
            break;
        }
    }
    if let Some((control, before)) = tear {
        torn = control.stats()?.torn_fsyncs > before;
    }
    let (rest, ending, stderr) = child.kill()?;
    ensure!(
        ending == Ending::Signal(9) || torn,
        "the child ended by itself ({ending:?}) before it was killed:\n{stderr}"
    );
    lines.extend(
        rest.into_iter()
            .filter(|l| ["R ", "I ", "A "].iter().any(|p| l.starts_with(p))),
    );
    // A power cut at an fsync may come while the child opens the store.
    ensure!(
        torn || lines.iter().any(|l| l.starts_with("R ")),
        "the child did not open the store within {CHILD_START:?}:\n{stderr}"
    );
    Ok(lines)
}

/// The power-cut case of the raft log: a child issues random appends (many in flight),
/// truncates, purges, vote and committed saves through the store `opener` opens, printing each
/// operation before it issues it and each acknowledgement (a flush callback, or `save_vote`
/// returning); after the kill and the cut the reopened store must hold the state after some
/// prefix of the issued operations at least as long as the acknowledged one, as `order`
/// reads the contract. The next child goes on from what the cut left.
///
/// `test` is the full name of the `#[test]` that calls this (the child re-runs it).
pub fn log_ops<O: StoreOpener>(opener: &O, test: &str, order: Order) -> CaseResult {
    if let Some((dir, seed)) = child_job() {
        return util::run(log_writer(opener, &dir, seed));
    }
    let Some(mount) = Mounted::new(test)? else {
        return Ok(());
    };
    let cuts = rng::count_from_env(CUTS_ENV, DEFAULT_CUTS);
    let seed = rng::seed();
    eprintln!("{test}: {cuts} power cuts, RAFT_STORE_SEED={seed}");
    let mut rng = Rng::new(seed);
    let mut base = Model::default();
    let (mut issued, mut acked_total, mut beyond_ack) = (0usize, 0usize, 0usize);
    let torn_before = mount.control().stats()?.torn_fsyncs;
    for k in 0..cuts {
        let child_seed = seed.wrapping_add(k as u64 + 1);
        let (lines, how) = run_and_cut(test, &mount, child_seed, plan(k, &mut rng), &mut rng)?;
        let (ops, acked) = parse_log_lines(&lines)?;
        let at =
            |e: &dyn std::fmt::Display| format!("after power cut {k} ({how}, RAFT_STORE_SEED={seed}): {e}");
        base = util::run(async {
            let mut store = opener
                .open(mount.store_dir())
                .map_err(|e| at(&format!("reopen: {e}")))?;
            let observed = model::observe(&mut store).await.map_err(|e| at(&e))?;
            let prefix = model::check_with(&base, &ops, acked, &observed, order).map_err(|e| at(&e))?;
            beyond_ack += prefix - acked.min(prefix);
            Ok::<_, CaseError>(observed)
        })?;
        issued += ops.len();
        acked_total += acked;
    }
    let torn = mount.control().stats()?.torn_fsyncs - torn_before;
    eprintln!(
        "{test}: {cuts} cuts ({torn} at an fsync, tearing a write), {issued} operations issued, \
         {acked_total} acknowledged, {beyond_ack} unacknowledged ones found durable"
    );
    ensure!(
        acked_total > 0,
        "no operation was acknowledged in {cuts} runs of the child"
    );
    Ok(())
}

/// The issued operations and the length of the acknowledged prefix, from the child's lines.
fn parse_log_lines(lines: &[String]) -> Result<(Vec<LogOp>, usize), CaseError> {
    let mut ops = Vec::new();
    let mut acked = 0;
    for line in lines {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("I"), Some(n), Some(op)) => {
                ensure!(
                    n.parse::<usize>().ok() == Some(ops.len()),
                    "the child's operations are out of order: {line}"
                );
                ops.push(op.parse::<LogOp>()?);
            }
            (Some("A"), Some(n), None) => {
                let n: usize = n.parse().map_err(|_| format!("bad ack line {line:?}"))?;
                acked = acked.max(n + 1);
            }
            (Some("R"), _, _) => {}
            _ => return Err(format!("unexpected line from the child: {line:?}").into()),
        }
    }
    Ok((ops, acked))
}

/// The child of [`log_ops`]: issue the workload on the store in `dir` until killed.
async fn log_writer<O: StoreOpener>(opener: &O, dir: &Path, seed: u64) -> CaseResult {
    let mut store = opener.open(dir)?;
    let start = model::observe(&mut store).await?;
    let mut workload = Workload::resume(&start);
    let mut rng = Rng::new(seed);
    // Callbacks may fire on another thread: one task waits for them in order and prints acks.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, util::Flushed)>(IN_FLIGHT);
    let acks = tokio::spawn(async move {
        while let Some((n, flushed)) = rx.recv().await {
            match flushed.await {
                Ok(Ok(())) => println!("A {n}"),
                Ok(Err(e)) => return Err(format!("append {n} failed: {e}")),
                Err(_) => return Err(format!("append {n}: the callback was dropped")),
            }
        }
        Ok(())
    });
    // libtest has printed "test <name> ... " without a newline: start a line of our own.
    println!("\nR {}", start.max_term());
    let deadline = Instant::now() + CHILD_LIFETIME;
    let mut n = 0u64;
    while Instant::now() < deadline {
        let op = workload.next_op(&mut rng);
        println!("I {n} {op}");
        let flushed = model::issue(&mut store, &op)
            .await
            .map_err(|e| format!("issuing {op}: {e}"))?;
        match (flushed, op) {
            (Some(flushed), _) => tx.send((n, flushed)).await.map_err(|_| "the ack task stopped")?,
            // `save_vote` returns once the vote, and every write before it, is durable.
            (None, LogOp::Vote { .. }) => println!("A {n}"),
            // Truncate, purge and committed are acknowledged by the next flush callback.
            (None, _) => {}
        }
        n += 1;
    }
    drop(tx);
    acks.await.map_err(io::Error::other)??;
    Ok(())
}
