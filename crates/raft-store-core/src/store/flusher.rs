//! The flusher thread: group commit.
//!
//! Every write of the log store becomes a [`Job`] on one channel. The flusher takes every job
//! queued so far, writes them as one engine batch with one sync, and only then completes their
//! callbacks in order. Appends that arrive while a sync runs wait in the channel and share the
//! next sync, so N appends in flight cost far fewer than N syncs. The async runtime never waits
//! on the sync: it only sends to the channel.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::sync::mpsc::Sender;
use std::sync::mpsc::TryRecvError;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::line::Line;
use futures::channel::oneshot;

use super::shared::Shared;
use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::EngineError;
use crate::Op;
use crate::Space;
use crate::error::StoreError;

/// Who to tell when a job is durable.
pub(crate) enum Done<C: Line> {
    /// Nobody: the job rides along with the next group.
    Nothing,
    /// openraft's append callback.
    Flushed(C::Flushed),
    /// A waiting caller (`save_vote`, `flush`).
    Notify(oneshot::Sender<Result<(), StoreError>>),
}

/// One queued write.
pub(crate) enum Job<C: Line> {
    Write {
        batch: Batch,
        /// Highest sequence number of the entries this job appends.
        max_seq: Option<u64>,
        /// Whether the batch deletes log entries (truncate, purge).
        deletes: bool,
        done: Done<C>,
    },
    /// Finish every job queued before this one, then exit.
    Shutdown,
}

/// Start the flusher thread of `shared`: it writes the jobs sent on the returned channel, and
/// exits once it has written every job sent before a [`Job::Shutdown`] (or once every sender
/// is gone).
pub(crate) fn start<C, E, K>(
    shared: &Arc<Shared<C, E, K>>,
) -> Result<(Sender<Job<C>>, JoinHandle<()>), StoreError>
where
    C: Line,
    E: Engine,
    K: Send + Sync + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let backend = shared.backend;
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("raft-store-{backend}-flush"))
            .spawn(move || run(&shared, &rx))
            .map_err(|e| {
                StoreError::Engine(crate::EngineError::io(backend, "spawning the flusher thread", e))
            })?
    };
    Ok((tx, thread))
}

fn run<C, E, K>(shared: &Arc<Shared<C, E, K>>, rx: &Receiver<Job<C>>)
where
    C: Line,
    E: Engine,
{
    let mut group: Vec<Job<C>> = Vec::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        gather(rx, first, &mut group, shared.options.max_group_bytes);
        let stop = commit_group(shared, &mut group);
        if stop {
            return;
        }
    }
}

/// Put `first` and the jobs queued behind it into `group`, up to `max_bytes` (see
/// [`LogStoreOptions::max_group_bytes`](super::LogStoreOptions::max_group_bytes)) or a shutdown,
/// without waiting for more.
fn gather<C: Line>(rx: &Receiver<Job<C>>, first: Job<C>, group: &mut Vec<Job<C>>, max_bytes: usize) {
    // The first job counts against the cap like the others: one at or over the cap alone is
    // written without the jobs behind it, or the group would grow past the cap by all of them.
    let mut bytes = job_bytes(&first);
    group.push(first);
    while bytes < max_bytes {
        match rx.try_recv() {
            Ok(job) => {
                bytes = bytes.saturating_add(job_bytes(&job));
                let stop = matches!(job, Job::Shutdown);
                group.push(job);
                if stop {
                    break;
                }
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
}

/// The bytes of keys and values `job` writes.
fn job_bytes<C: Line>(job: &Job<C>) -> usize {
    match job {
        Job::Write { batch, .. } => batch.size_bytes(),
        Job::Shutdown => 0,
    }
}

/// The jobs of one group as one write: their batches in order, and whom to tell once it is
/// durable.
struct Merged<C: Line> {
    batch: Batch,
    /// Highest sequence number of the entries the group appends.
    max_seq: Option<u64>,
    /// Whether any job deletes log entries.
    deletes: bool,
    /// One per write job, in the order they were queued.
    dones: Vec<Done<C>>,
    /// Whether a shutdown was requested.
    stop: bool,
}

/// Merge the jobs of `group` (emptying it) into one write.
fn merge<C: Line>(group: &mut Vec<Job<C>>) -> Merged<C> {
    let mut merged = Merged {
        batch: Batch::new(),
        max_seq: None,
        deletes: false,
        dones: Vec::with_capacity(group.len()),
        stop: false,
    };
    for job in group.drain(..) {
        match job {
            Job::Write {
                batch,
                max_seq,
                deletes,
                done,
            } => {
                merged.batch.extend(batch);
                merged.max_seq = merged.max_seq.max(max_seq);
                merged.deletes |= deletes;
                merged.dones.push(done);
            }
            Job::Shutdown => merged.stop = true,
        }
    }
    merged
}

/// Write one group and complete its callbacks. Returns whether a shutdown was requested.
fn commit_group<C, E, K>(shared: &Shared<C, E, K>, group: &mut Vec<Job<C>>) -> bool
where
    C: Line,
    E: Engine,
{
    let Merged {
        batch,
        max_seq,
        deletes,
        dones,
        stop,
    } = merge(group);
    if dones.is_empty() {
        return stop;
    }
    if let Some(first) = shared.poison.get() {
        refuse(shared, first, dones);
        return stop;
    }
    match write(shared, &batch, deletes, dones.len()) {
        Ok(()) => written(shared, max_seq, dones),
        Err(cause) => fail(shared, &cause, dones),
    }
    stop
}

/// Refuse a group because an earlier write failed with `first`: nothing is written.
fn refuse<C: Line, E: Engine, K>(shared: &Shared<C, E, K>, first: &Arc<EngineError>, dones: Vec<Done<C>>) {
    shared.stats.record_error("refused", "Poisoned");
    for done in dones {
        complete(done, Err(shared.poisoned(first)));
    }
}

/// Write a group's `batch` durably (with readers kept out if it `deletes` log entries), and
/// count it as a write of `jobs` jobs if it succeeds.
fn write<C: Line, E: Engine, K>(
    shared: &Shared<C, E, K>,
    batch: &Batch,
    deletes: bool,
    jobs: usize,
) -> Result<(), Arc<EngineError>> {
    let entries = log_entries(batch);
    let started = Instant::now();
    let result = {
        let _exclusive = deletes.then(|| {
            shared
                .deleting
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        shared.engine.write(batch, Durability::Durable).map_err(Arc::new)
    };
    if result.is_ok() {
        record_written(shared, started.elapsed(), jobs, entries, batch.size_bytes());
    }
    result
}

/// A group is durable: its entries are no longer served from memory, and its callbacks are
/// told, in order.
fn written<C: Line, E: Engine, K>(shared: &Shared<C, E, K>, max_seq: Option<u64>, dones: Vec<Done<C>>) {
    if let Some(max_seq) = max_seq {
        let mut view = shared.view();
        while view.pending.front().is_some_and(|p| p.seq <= max_seq) {
            view.pending.pop_front();
        }
    }
    for done in dones {
        complete(done, Ok(()));
    }
}

/// A group's write failed with `cause`: poison the store, record and log it, and tell every
/// callback of the group.
fn fail<C: Line, E: Engine, K>(shared: &Shared<C, E, K>, cause: &Arc<EngineError>, dones: Vec<Done<C>>) {
    // Fail-stop: the kernel may have dropped the dirty pages, so retrying the sync could
    // report success for data that is gone. Refuse everything from now on.
    let kind = cause.kind();
    let _ = shared.poison.set(cause.clone());
    shared.stats.record_error("write", format!("{kind:?}"));
    shared.stats.record_fatal(
        || format!("a durable log write failed ({kind:?}): {cause}"),
        || shared.write_failed(cause),
    );
    tracing::error!(
        target: "raft_store::sync",
        backend = shared.backend,
        error = %cause,
        kind = ?kind,
        "durable write failed; the store refuses every write from now on (fail-stop)"
    );
    for done in dones {
        complete(done, Err(shared.write_failed(cause)));
    }
}

fn complete<C: Line>(done: Done<C>, result: Result<(), StoreError>) {
    match done {
        Done::Nothing => {}
        Done::Flushed(cb) => C::flushed(cb, result.map_err(std::io::Error::from)),
        Done::Notify(tx) => {
            // The waiter may have given up (its future was dropped); nothing to tell then.
            let _ = tx.send(result);
        }
    }
}

/// The log entries `batch` writes.
fn log_entries(batch: &Batch) -> u64 {
    let n = batch
        .ops()
        .iter()
        .filter(|op| {
            matches!(
                op,
                Op::Put {
                    space: Space::Log,
                    ..
                }
            )
        })
        .count();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Count a durable write of `jobs` jobs that took `took`, and log it if it was slow: a disk that
/// slow holds every append behind it.
fn record_written<C: Line, E: Engine, K>(
    shared: &Shared<C, E, K>,
    took: std::time::Duration,
    jobs: usize,
    entries: u64,
    bytes: usize,
) {
    shared.stats.record_sync(took, jobs, entries, bytes);
    let slow = shared.options.slow_sync;
    if took > slow {
        tracing::warn!(
            target: "raft_store::sync",
            backend = shared.backend,
            millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            jobs,
            bytes,
            "slow durable write: the sync took longer than {} ms",
            slow.as_millis()
        );
    }
}
