//! The flusher thread: group commit.
//!
//! Every write of a log store becomes a [`Job`] on one channel. The flusher takes every job
//! queued so far, writes them as one engine batch with one sync, and only then completes their
//! callbacks in order. Appends that arrive while a sync runs wait in the channel and share the
//! next sync, so N appends in flight cost far fewer than N syncs. The async runtime never waits
//! on the sync: it only sends to the channel.
//!
//! A single-group store has a flusher of its own. A multi-group store has one for every group:
//! the jobs of all groups meet on its channel, each already in the engine's keys (the group's
//! prefix added), so a round of many groups is still one batch and one sync. Jobs of one group
//! are queued in that group's order and completed in queue order, so each group sees its own
//! callbacks in order. What a job does once it is durable (drop entries served from memory,
//! tell openraft) is the job's own [`Finish`], so the flusher needs no group's types.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::RwLock;
use std::sync::RwLockWriteGuard;
use std::sync::mpsc::Receiver;
use std::sync::mpsc::Sender;
use std::sync::mpsc::TryRecvError;
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use crate::Batch;
use crate::EngineError;
use crate::Op;
use crate::Space;
use crate::StoreStats;
use crate::error::StoreError;

/// What a job does once its batch is durable (`Ok`) or failed.
pub(crate) trait Finish: Send {
    /// Called once, on the flusher thread, after the round holding the job.
    fn finish(self: Box<Self>, result: Result<(), StoreError>);
}

/// One queued write.
pub(crate) enum Job {
    Write {
        /// In the engine's keys (a group's prefix already added).
        batch: Batch,
        /// The group's reader lock, for a batch that deletes log entries (truncate, purge):
        /// held exclusively while the round is written, so a reader's scan never sees half of
        /// it combined with a view taken before it.
        exclusive: Option<Arc<RwLock<()>>>,
        /// Whom to tell; `None` for a job that rides along with the round.
        done: Option<Box<dyn Finish>>,
    },
    /// Told once every job queued before it is written (or failed), without a write of its
    /// own: a round of only barriers syncs nothing.
    Barrier(Box<dyn Finish>),
    /// Finish every job queued before this one, then exit.
    Shutdown,
}

/// Writes one round's batch durably: the engine under the flusher (a single store's engine,
/// or the shared engine of a multi-group store).
pub(crate) type WriteDurable = Box<dyn Fn(&Batch) -> Result<(), EngineError> + Send>;

/// What a flusher knows of the store it writes for.
pub(crate) struct Sink {
    pub write: WriteDurable,
    pub backend: &'static str,
    /// The first write or sync failure; once set, every write is refused (fail-stop). Shared
    /// with every log store writing through this flusher.
    pub poison: Arc<OnceLock<Arc<EngineError>>>,
    pub stats: Arc<StoreStats>,
    /// See [`LogStoreOptions::max_group_bytes`](super::LogStoreOptions::max_group_bytes).
    pub max_group_bytes: usize,
    /// See [`LogStoreOptions::slow_sync`](super::LogStoreOptions::slow_sync).
    pub slow_sync: Duration,
}

/// Start a flusher thread for `sink`: it writes the jobs sent on the returned channel, and
/// exits once it has written every job sent before a [`Job::Shutdown`] (or once every sender
/// is gone).
pub(crate) fn start(sink: Sink) -> Result<(Sender<Job>, JoinHandle<()>), StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let backend = sink.backend;
    let thread = std::thread::Builder::new()
        .name(format!("raft-store-{backend}-flush"))
        .spawn(move || run(&sink, &rx))
        .map_err(|e| StoreError::Engine(EngineError::io(backend, "spawning the flusher thread", e)))?;
    Ok((tx, thread))
}

fn run(sink: &Sink, rx: &Receiver<Job>) {
    let mut group: Vec<Job> = Vec::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        gather(rx, first, &mut group, sink.max_group_bytes);
        let stop = commit_group(sink, &mut group);
        if stop {
            return;
        }
    }
}

/// Put `first` and the jobs queued behind it into `group`, up to `max_bytes` (see
/// [`LogStoreOptions::max_group_bytes`](super::LogStoreOptions::max_group_bytes)) or a shutdown,
/// without waiting for more.
fn gather(rx: &Receiver<Job>, first: Job, group: &mut Vec<Job>, max_bytes: usize) {
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
fn job_bytes(job: &Job) -> usize {
    match job {
        Job::Write { batch, .. } => batch.size_bytes(),
        Job::Barrier(_) | Job::Shutdown => 0,
    }
}

/// The jobs of one round as one write: their batches in order, and whom to tell once it is
/// durable.
struct Merged {
    batch: Batch,
    /// The reader locks of the groups whose jobs delete log entries, each once.
    exclusive: Vec<Arc<RwLock<()>>>,
    /// One per job that has someone to tell, in the order they were queued.
    dones: Vec<Box<dyn Finish>>,
    /// How many write jobs the round holds.
    jobs: usize,
    /// Barriers, told after the round.
    barriers: Vec<Box<dyn Finish>>,
    /// Whether a shutdown was requested.
    stop: bool,
}

/// Merge the jobs of `group` (emptying it) into one write.
fn merge(group: &mut Vec<Job>) -> Merged {
    let mut merged = Merged {
        batch: Batch::new(),
        exclusive: Vec::new(),
        dones: Vec::with_capacity(group.len()),
        jobs: 0,
        barriers: Vec::new(),
        stop: false,
    };
    for job in group.drain(..) {
        match job {
            Job::Write {
                batch,
                exclusive,
                done,
            } => {
                merged.batch.extend(batch);
                if let Some(lock) = exclusive
                    && !merged.exclusive.iter().any(|l| Arc::ptr_eq(l, &lock))
                {
                    merged.exclusive.push(lock);
                }
                merged.dones.extend(done);
                merged.jobs += 1;
            }
            Job::Barrier(done) => merged.barriers.push(done),
            Job::Shutdown => merged.stop = true,
        }
    }
    merged
}

/// Write one round and complete its callbacks. Returns whether a shutdown was requested.
fn commit_group(sink: &Sink, group: &mut Vec<Job>) -> bool {
    let Merged {
        batch,
        exclusive,
        dones,
        jobs,
        barriers,
        stop,
    } = merge(group);
    if jobs > 0 {
        if let Some(first) = sink.poison.get() {
            refuse(sink, first, dones);
        } else {
            match write(sink, &batch, &exclusive, jobs) {
                Ok(()) => {
                    for done in dones {
                        done.finish(Ok(()));
                    }
                }
                Err(cause) => fail(sink, &cause, dones),
            }
        }
    }
    for barrier in barriers {
        barrier.finish(Ok(()));
    }
    stop
}

/// Refuse a round because an earlier write failed with `first`: nothing is written.
fn refuse(sink: &Sink, first: &Arc<EngineError>, dones: Vec<Box<dyn Finish>>) {
    sink.stats.record_error("refused", "Poisoned");
    for done in dones {
        done.finish(Err(poisoned(sink.backend, first)));
    }
}

/// Write a round's `batch` durably (with the readers of every group in `exclusive` kept out),
/// and count it as a write of `jobs` jobs if it succeeds.
fn write(
    sink: &Sink,
    batch: &Batch,
    exclusive: &[Arc<RwLock<()>>],
    jobs: usize,
) -> Result<(), Arc<EngineError>> {
    let entries = log_entries(batch);
    let started = Instant::now();
    let result = {
        // Readers take one group's lock at a time, and only this thread takes several: no
        // order between them can deadlock.
        let _exclusive: Vec<RwLockWriteGuard<'_, ()>> = exclusive
            .iter()
            .map(|l| l.write().unwrap_or_else(std::sync::PoisonError::into_inner))
            .collect();
        (sink.write)(batch).map_err(Arc::new)
    };
    if result.is_ok() {
        record_written(sink, started.elapsed(), jobs, entries, batch.size_bytes());
    }
    result
}

/// A round's write failed with `cause`: poison the store (every group writing through this
/// flusher), record and log it, and tell every callback of the round.
fn fail(sink: &Sink, cause: &Arc<EngineError>, dones: Vec<Box<dyn Finish>>) {
    // Fail-stop: the kernel may have dropped the dirty pages, so retrying the sync could
    // report success for data that is gone. Refuse everything from now on.
    let kind = cause.kind();
    let _ = sink.poison.set(cause.clone());
    sink.stats.record_error("write", format!("{kind:?}"));
    sink.stats.record_fatal(
        || format!("a durable log write failed ({kind:?}): {cause}"),
        || write_failed(sink.backend, cause),
    );
    tracing::error!(
        target: "raft_store::sync",
        backend = sink.backend,
        error = %cause,
        kind = ?kind,
        "durable write failed; the store refuses every write from now on (fail-stop)"
    );
    for done in dones {
        done.finish(Err(write_failed(sink.backend, cause)));
    }
}

/// The refusal of a write because an earlier one failed with `first`: the one way this error
/// is built, so every refusal names the first failure and its kind alike.
pub(crate) fn poisoned(backend: &'static str, first: &Arc<EngineError>) -> StoreError {
    StoreError::Poisoned {
        backend,
        kind: first.kind(),
        source: first.clone(),
    }
}

/// The failure of a durable write with `cause`: the one way this error is built, for the
/// callbacks of the failed round and for the stats' record of it alike.
pub(crate) fn write_failed(backend: &'static str, cause: &Arc<EngineError>) -> StoreError {
    StoreError::WriteFailed {
        backend,
        kind: cause.kind(),
        source: cause.clone(),
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
fn record_written(sink: &Sink, took: Duration, jobs: usize, entries: u64, bytes: usize) {
    sink.stats.record_sync(took, jobs, entries, bytes);
    let slow = sink.slow_sync;
    if took > slow {
        tracing::warn!(
            target: "raft_store::sync",
            backend = sink.backend,
            millis = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            jobs,
            bytes,
            "slow durable write: the sync took longer than {} ms",
            slow.as_millis()
        );
    }
}
