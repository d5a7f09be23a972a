//! Faults from the file system, under the real engine: the store runs on the fault file system
//! ([`raft_store_faultfs`], through [`Mounted`]), which fails an fsync with `EIO` (dropping the
//! file's dirty data, as Linux does), runs out of space (`ENOSPC`) or fails reads of a byte
//! range with `EIO`. The engine meets the error from the kernel, as it would on a failing disk,
//! and the cases check what reaches openraft: the error, in the callback of the write it hit;
//! every later write refused (fail-stop, contract 6); after a power cut and a reopen, every
//! acknowledged entry (contracts 2 and 3); and on reads, an error that names the I/O failure,
//! never a panic and never wrong entries.
//!
//! The store is a [`LogStore`] directly over the engine (no [`FaultEngine`](super::FaultEngine)
//! in between), in this process: the file system needs no child to fail a call. Without FUSE
//! the cases fail with what is missing, unless
//! [`NO_FUSE_ENV`](raft_store_faultfs::NO_FUSE_ENV) is `1`: then they say they skipped.

use std::io;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use futures::FutureExt;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::VoteOf;
use raft_store_faultfs::Control;

use super::CaseError;
use super::CaseResult;
use super::EngineHarness;
use super::TestConfig;
use super::power_cut::Mounted;
use super::util::Flushed;
use super::util::append_nowait;
use super::util::entry_with;
use super::util::same_entries;
use super::util::vote;
use crate::ensure;
use raft_store_core::EngineError;
use raft_store_core::LogStore;
use raft_store_core::StoreError;

type Store<H> = LogStore<TestConfig, <H as EngineHarness>::Engine>;
type Entry = EntryOf<TestConfig>;

/// Entries the read case writes before it fails reads: a few files' worth, about 1.5 MiB.
const READ_CASE_ENTRIES: u64 = 1500;

/// Appends after an armed fault before a case gives up waiting for the error.
const MAX_APPENDS_TO_FAULT: u64 = 16;

/// How long the space case appends before it gives up waiting for `ENOSPC`.
const FILL_TIMEOUT: Duration = Duration::from_secs(120);

/// Entry `index` of these cases: term 1, a payload of about 1 KiB naming its index, so files
/// grow by whole pages and a wrong entry is easy to spot.
fn entry(index: u64) -> Entry {
    entry_with(1, index, format!("fs-i{index}-{}", "x".repeat(1000)))
}

/// Entries `from..to`.
fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..to).map(entry).collect()
}

fn open<H: EngineHarness>(h: &H, dir: &Path) -> Result<Store<H>, CaseError> {
    let engine = h.open(dir)?;
    Ok(LogStore::open(engine)?)
}

/// An error and its sources, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// The `io::ErrorKind` a case error carries, if it is one of ours.
fn kind_of(e: &CaseError) -> Option<io::ErrorKind> {
    if let Some(e) = e.downcast_ref::<io::Error>() {
        Some(e.kind())
    } else if let Some(e) = e.downcast_ref::<StoreError>() {
        Some(e.kind())
    } else {
        e.downcast_ref::<EngineError>().map(EngineError::kind)
    }
}

/// The result an append's callback reported; a callback dropped without a result (a flusher
/// thread that panicked) fails the case.
async fn callback(rx: Flushed, what: &str) -> Result<Result<(), io::Error>, CaseError> {
    rx.await.map_err(|_| {
        format!("the flush callback of {what} was dropped without a result (did the flusher thread panic?)")
            .into()
    })
}

/// Appends `entry(index)` and waits: `Ok(())` if acknowledged, the error of `append` or of the
/// callback otherwise.
async fn append_one<H: EngineHarness>(
    store: &mut Store<H>,
    index: u64,
) -> Result<Result<(), CaseError>, CaseError> {
    match append_nowait(store, vec![entry(index)]).await {
        Err(e) => Ok(Err(e.into())),
        Ok(rx) => Ok(callback(rx, &format!("the append of {index}"))
            .await?
            .map_err(CaseError::from)),
    }
}

/// Appends one entry at a time after `last` until one fails (at most `limit` appends, and no
/// longer than `timeout`); returns the last acknowledged index and the error.
///
/// With `rearm` (the mount and `n`), an fsync failed while an append was acknowledged was not
/// that append's: an engine's background work (RocksDB flushing a memtable to a table file,
/// with the data safe in its WAL) met it. The fault is armed again (`fail_fsync(n)`); the
/// acknowledged entries are checked after the power cut like every other.
async fn append_until_error<H: EngineHarness>(
    store: &mut Store<H>,
    mut last: u64,
    limit: u64,
    timeout: Duration,
    rearm: Option<(&Control, u64)>,
) -> Result<(u64, CaseError), CaseError> {
    let deadline = Instant::now() + timeout;
    let mut failed = rearm.map(|(c, _)| failed_fsyncs(c)).transpose()?;
    for _ in 0..limit {
        ensure!(
            Instant::now() < deadline,
            "no append failed within {timeout:?} (last acknowledged entry {last})"
        );
        match append_one::<H>(store, last + 1).await? {
            Ok(()) => last += 1,
            Err(e) => return Ok((last, e)),
        }
        if let (Some((control, n)), Some(before)) = (rearm, failed) {
            let now = failed_fsyncs(control)?;
            if now > before {
                control.fail_fsync(n)?;
                failed = Some(now);
            }
        }
    }
    Err(
        format!("{limit} appends after the fault was armed all succeeded (last acknowledged entry {last})")
            .into(),
    )
}

/// After a failed write: the next append (contiguous with what the store holds in memory,
/// `next`) is refused or its callback fails, `flush` and `save_vote` fail. The fault itself is
/// gone by now (the file system fails one fsync; the budget is lifted), so a store that
/// retried would see success here and report durable what the kernel dropped.
async fn refuses_writes<H: EngineHarness>(store: &mut Store<H>, next: u64, fault: &str) -> CaseResult {
    let refused = match append_nowait(store, vec![entry(next)]).await {
        // Refused, and for the right reason: not a gap, which would prove nothing.
        Err(e) => {
            ensure!(
                e.kind() != io::ErrorKind::InvalidInput,
                "the append of {next} after {fault} was refused as bad input, not for the failure: {e}"
            );
            true
        }
        Ok(rx) => callback(rx, &format!("the append of {next} after {fault}"))
            .await?
            .is_err(),
    };
    ensure!(
        refused,
        "an append after {fault} was acknowledged: the store must refuse writes (fail-stop)"
    );
    ensure!(
        store.flush().await.is_err(),
        "flush after {fault} succeeded: the store must refuse writes (fail-stop)"
    );
    ensure!(
        store.save_vote(&vote(9, 9)).await.is_err(),
        "save_vote after {fault} succeeded: the store must refuse writes (fail-stop)"
    );
    Ok(())
}

/// Reopens the store and reads it whole. Every acknowledged entry (`1..=acked`) must be there,
/// in a contiguous log; the only others allowed are the unacknowledged ones up to `at_most`.
/// Returns the store and its last index.
async fn reopen_and_check<H: EngineHarness>(
    h: &H,
    dir: &Path,
    acked: u64,
    at_most: u64,
    want_vote: &[VoteOf<TestConfig>],
    when: &str,
) -> Result<(Store<H>, u64), CaseError> {
    let at = |e: &dyn std::fmt::Display| format!("{when}: {e}");
    let mut store = open(h, dir).map_err(|e| at(&format!("reopen failed: {}", chain(&*e))))?;
    let mut reader = store.get_log_reader().await;
    let got = reader
        .try_get_log_entries(0..u64::MAX)
        .await
        .map_err(|e| at(&format!("reading the log: {}", chain(&e))))?;
    let n = got.len() as u64;
    same_entries(&got, &entries(1, n + 1))
        .map_err(|e| at(&format!("the log is not entries 1..={n}: {e}")))?;
    ensure!(
        n >= acked,
        "{when}: {acked} entries were acknowledged, {n} are in the store"
    );
    ensure!(
        n <= at_most,
        "{when}: the store holds {n} entries, but only {at_most} were ever accepted"
    );
    let v = reader.read_vote().await?;
    ensure!(
        v.as_ref().is_some_and(|v| want_vote.contains(v)),
        "{when}: the vote is {v:?}, expected one of {want_vote:?}"
    );
    Ok((store, n))
}

/// Drops what was not synced and disarms the faults, as after a power cut and a new disk.
fn cut_and_clear(control: &Control) -> CaseResult {
    control.cut_power()?;
    control.clear_faults()?;
    Ok(())
}

fn failed_fsyncs(control: &Control) -> Result<u64, CaseError> {
    Ok(control.stats()?.failed_fsyncs)
}

/// A failed fsync (`EIO`, the file's dirty data dropped) reaches the callback of the append it
/// covered; the store then refuses every write, although the next fsync would succeed; after a
/// power cut the reopened store holds every acknowledged entry and takes appends again.
///
/// Three rounds on one store, failing the first, second and third fsync after the fault is
/// armed: an engine that makes one commit of several fsyncs (data, then a header or meta page)
/// meets the failure at each of them. Last, `save_vote` under a failing fsync must return an
/// error, and the vote after the cut is the old or the new one.
pub async fn fsync_eio_reaches_callback_then_refused<H: EngineHarness>(h: &H, test: &str) -> CaseResult {
    let Some(mount) = Mounted::new(test)? else {
        return Ok(());
    };
    let control = mount.control();
    let dir = mount.store_dir();
    // Acknowledged entries, and the entries the store accepted (the failed one included).
    let (mut acked, mut accepted) = (0u64, 0u64);
    let mut votes = vec![vote(1, 0)];
    {
        let mut store = open(h, dir)?;
        store.save_vote(&vote(1, 0)).await?;
    }
    for nth in 1..=3u64 {
        let round = format!("round {nth} (fsync {nth} from the fault failing)");
        let (mut store, last) =
            reopen_and_check(h, dir, acked, accepted, &votes, &format!("{round}, opening")).await?;
        for i in last + 1..=last + 4 {
            append_one::<H>(&mut store, i)
                .await?
                .map_err(|e| format!("{round}: append {i} before the fault: {e}"))?;
        }
        let v = vote(1, nth);
        store.save_vote(&v).await?;
        votes = vec![v];
        let before = failed_fsyncs(&control)?;
        control.fail_fsync(nth)?;
        let rearm = Some((&control, nth));
        let (last_ok, err) =
            append_until_error::<H>(&mut store, last + 4, MAX_APPENDS_TO_FAULT, FILL_TIMEOUT, rearm)
                .await
                .map_err(|e| format!("{round}: {e}"))?;
        let failed = failed_fsyncs(&control)? - before;
        ensure!(
            failed >= 1,
            "{round}: append {} failed ({err}), but the file system failed no fsync",
            last_ok + 1
        );
        eprintln!("{test}: {round}: append {} failed: {err}", last_ok + 1);
        refuses_writes::<H>(&mut store, last_ok + 2, &format!("a failed fsync ({round})")).await?;
        acked = last_ok;
        accepted = last_ok + 1;
        drop(store);
        cut_and_clear(&control)?;
    }
    let (mut store, last) = reopen_and_check(h, dir, acked, accepted, &votes, "after the last round").await?;
    // As for appends: a save_vote that returns Ok while an fsync failed elsewhere (background
    // work) must be durable; the next one meets the fault armed again.
    let mut durable = vote(1, 3);
    let mut failed_vote = None;
    for k in 1..=MAX_APPENDS_TO_FAULT {
        let before = failed_fsyncs(&control)?;
        control.fail_fsync(1)?;
        if store.save_vote(&vote(2, k)).await.is_err() {
            failed_vote = Some(vote(2, k));
            break;
        }
        ensure!(
            failed_fsyncs(&control)? > before,
            "save_vote returned Ok, but no fsync ran although the next one was armed to fail"
        );
        durable = vote(2, k);
    }
    let failed_vote = failed_vote.ok_or_else(|| {
        format!("{MAX_APPENDS_TO_FAULT} save_vote calls under a failing fsync all returned Ok")
    })?;
    refuses_writes::<H>(&mut store, last + 1, "a failed fsync of save_vote").await?;
    drop(store);
    cut_and_clear(&control)?;
    votes = vec![durable, failed_vote];
    let (mut store, last) = reopen_and_check(h, dir, last, last, &votes, "after save_vote failed").await?;
    append_one::<H>(&mut store, last + 1)
        .await?
        .map_err(|e| format!("an append after recovering from the failed fsyncs: {e}"))?;
    Ok(())
}

/// A full disk (`ENOSPC`) reaches the callback of the append that met it, as
/// `io::ErrorKind::StorageFull` (or at least as an error that names the missing space); the
/// store then refuses every write, also once space is free again; after a power cut the
/// reopened store holds every acknowledged entry and takes appends again.
pub async fn enospc_reaches_callback_then_refused<H: EngineHarness>(h: &H, test: &str) -> CaseResult {
    let Some(mount) = Mounted::new(test)? else {
        return Ok(());
    };
    let control = mount.control();
    let dir = mount.store_dir();
    let mut store = open(h, dir)?;
    for i in 1..=8 {
        append_one::<H>(&mut store, i)
            .await?
            .map_err(|e| format!("append {i} before the disk filled: {e}"))?;
    }
    store.save_vote(&vote(1, 1)).await?;
    // A little room: some appends succeed, then one meets the full disk, in the middle of
    // whatever the engine writes for a commit.
    let budget = (disk_usage(dir)? / 8).clamp(64 << 10, 1 << 20);
    control.space_budget(Some(budget))?;
    let (acked, err) = append_until_error::<H>(&mut store, 8, u64::MAX, FILL_TIMEOUT, None)
        .await
        .map_err(|e| format!("with {budget} bytes of room: {e}"))?;
    let kind = kind_of(&err);
    let msg = chain(&*err);
    let named = ["no space", "enospc", "storage full", "disk full"]
        .iter()
        .any(|w| msg.to_lowercase().contains(w));
    // The file system cuts the write that reaches the limit short, as a real one may. An
    // engine that does not retry the rest may name that as it likes: LMDB reports a short
    // write as EIO ("short write, filesystem full?" in mdb.c). That still fails stop and loses
    // nothing, so it passes, but it has to be an I/O error, not data reported damaged.
    ensure!(
        kind == Some(io::ErrorKind::StorageFull) || named || names_io_error(&msg),
        "a full disk reached the callback as {kind:?}, naming neither the missing space nor an \
         I/O error: {msg}"
    );
    if kind != Some(io::ErrorKind::StorageFull) {
        eprintln!("{test}: note: the full disk came as kind {kind:?}, not StorageFull: {msg}");
    }
    eprintln!(
        "{test}: {} appends fitted in {budget} bytes, then: {msg}",
        acked - 8
    );
    refuses_writes::<H>(&mut store, acked + 2, "a full disk").await?;
    control.space_budget(None)?;
    refuses_writes::<H>(&mut store, acked + 2, "a full disk, once space is free again").await?;
    drop(store);
    cut_and_clear(&control)?;
    let (mut store, last) = reopen_and_check(
        h,
        dir,
        acked,
        acked + 1,
        &[vote(1, 1)],
        "after the full disk and a power cut",
    )
    .await?;
    append_one::<H>(&mut store, last + 1)
        .await?
        .map_err(|e| format!("an append after recovering from the full disk: {e}"))?;
    Ok(())
}

/// Bytes in the regular files under `dir`.
fn disk_usage(dir: &Path) -> Result<u64, CaseError> {
    Ok(files_under(dir)?.iter().map(|(_, len)| len).sum())
}

/// Every regular file under `dir`, with its length.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, u64)>, CaseError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What one attempt to open and read the whole store under a read fault gave.
enum Attempt {
    /// The open or a read failed with this error (kind, message).
    Failed(Option<io::ErrorKind>, String),
    /// Everything read back, and it was right.
    Served,
}

/// Opens the store and reads every entry and the vote. A panic or wrong data fails the case;
/// an error is an [`Attempt::Failed`].
async fn try_read_all<H: EngineHarness>(
    h: &H,
    dir: &Path,
    want: &[Entry],
    want_vote: &VoteOf<TestConfig>,
) -> Result<Attempt, CaseError> {
    let attempt = AssertUnwindSafe(async {
        let mut store = open(h, dir)?;
        let mut reader = store.get_log_reader().await;
        let got = reader.try_get_log_entries(0..u64::MAX).await?;
        let v = reader.read_vote().await?;
        let state = store.get_log_state().await?;
        Ok::<_, CaseError>((got, v, state))
    })
    .catch_unwind()
    .await;
    match attempt {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("the store panicked on a read error instead of returning one: {msg}").into())
        }
        Ok(Err(e)) => Ok(Attempt::Failed(kind_of(&e), chain(&*e))),
        Ok(Ok((got, v, state))) => {
            same_entries(&got, want).map_err(|e| format!("served wrong entries under a read fault: {e}"))?;
            ensure!(
                v.as_ref() == Some(want_vote),
                "served the vote {v:?} under a read fault, expected {want_vote:?}"
            );
            let last = want.last().map(|e| e.log_id);
            ensure!(
                state.last_log_id == last,
                "served the last log id {:?} under a read fault, expected {last:?}",
                state.last_log_id
            );
            Ok(Attempt::Served)
        }
    }
}

/// Whether an error message says an I/O operation failed (`EIO`), not that data is damaged.
fn names_io_error(msg: &str) -> bool {
    let msg = msg.to_lowercase();
    ["input/output error", "i/o error", "io error", "os error 5", "eio"]
        .iter()
        .any(|w| msg.contains(w))
}

/// `EIO` on reads is an error, never data: with reads of the engine's files failing (every
/// file of the engine whole, then the middle half of its largest file), opening or reading the
/// store fails with an error that names the I/O failure, or (only where the fault missed what
/// was read) serves exactly what was written; never a panic, never wrong or missing entries.
/// Once the faults are cleared, everything is there (before and after a power cut): the failed
/// reads lost nothing and "repaired" nothing.
///
/// The store is dropped and the power cut before the faults are armed, so no page of the old
/// files is cached: a cut renumbers every file, and the file system opens files without
/// `FOPEN_KEEP_CACHE`, so a fresh open drops the kernel's cached pages and every read, through
/// `read` or through a mapping, reaches the file system. For an mmap'd engine (LMDB) a failed
/// read of a mapped page would be `SIGBUS`, which no store can turn into an error; the LMDB
/// adapter reads every page it will map (`verify_on_open`) with `read` before mapping the
/// file, so the fault reaches it as an error first.
///
/// The raft-store marker and lock files are left readable: they are ours, not the engine's,
/// and failing them would stop every engine before it reads a byte of its own.
pub async fn eio_on_read_is_an_error_not_data<H: EngineHarness>(h: &H, test: &str) -> CaseResult {
    let Some(mount) = Mounted::new(test)? else {
        return Ok(());
    };
    let control = mount.control();
    let dir = mount.store_dir();
    let root = dir.parent().ok_or("the store directory has no parent")?;
    let want_vote = vote(3, 1);
    {
        let mut store = open(h, dir)?;
        for from in (1..=READ_CASE_ENTRIES).step_by(100) {
            let to = (from + 100).min(READ_CASE_ENTRIES + 1);
            let rx = append_nowait(&mut store, entries(from, to)).await?;
            callback(rx, "an append before the read fault").await??;
        }
        store.save_vote(&want_vote).await?;
    }
    control.cut_power()?;
    for (written, (what, whole)) in (READ_CASE_ENTRIES..).zip([
        ("every file of the engine unreadable", true),
        ("the middle half of its largest file unreadable", false),
    ]) {
        let files = engine_files(dir, root)?;
        ensure!(
            !files.is_empty(),
            "the engine keeps no files in {}",
            dir.display()
        );
        if whole {
            for (path, _) in &files {
                control.fail_reads(path, 0..u64::MAX)?;
            }
        } else if let Some((path, len)) = files.iter().max_by_key(|(_, len)| *len) {
            control.fail_reads(path, len / 4..len - len / 4)?;
        }
        let attempt = try_read_all(h, dir, &entries(1, written + 1), &want_vote)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        match attempt {
            Attempt::Served => {
                ensure!(
                    !whole,
                    "{what}: the store opened and served all {written} entries, read from where?"
                );
                eprintln!("{test}: {what}: served every entry (the fault missed what was read)");
            }
            Attempt::Failed(kind, msg) => {
                eprintln!("{test}: {what}: {kind:?}: {msg}");
                ensure!(
                    names_io_error(&msg),
                    "{what}: the error does not say an I/O operation failed (kind {kind:?}): {msg}"
                );
            }
        }
        control.clear_faults()?;
        let votes = std::slice::from_ref(&want_vote);
        let when = format!("after the read faults ({what}) were cleared");
        drop(reopen_and_check(h, dir, written, written, votes, &when).await?);
        control.cut_power()?;
        let when = format!("after the read faults ({what}) were cleared and the power cut");
        let (mut store, _) = reopen_and_check(h, dir, written, written, votes, &when).await?;
        append_one::<H>(&mut store, written + 1)
            .await?
            .map_err(|e| format!("{when}: append {}: {e}", written + 1))?;
        drop(store);
        control.cut_power()?;
    }
    Ok(())
}

/// The engine's files under the store directory `dir`, relative to the mount `root`, with
/// their lengths: every regular file but the raft-store marker and lock.
fn engine_files(dir: &Path, root: &Path) -> Result<Vec<(PathBuf, u64)>, CaseError> {
    let ours = [
        raft_store_core::StoreDir::MARKER_FILE,
        raft_store_core::StoreDir::LOCK_FILE,
    ]
    .map(|n| dir.join(n));
    files_under(dir)?
        .into_iter()
        .filter(|(p, _)| !ours.contains(p))
        .map(|(p, len)| Ok((p.strip_prefix(root)?.to_path_buf(), len)))
        .collect()
}
