//! How a log store hands its writes to a flusher: its own, or its multi-group store's.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::RwLock;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use super::flusher;
use super::flusher::Finish;
use super::flusher::Job;
use super::flusher::Sink;
use crate::Batch;
use crate::EngineError;
use crate::StoreStats;
use crate::error::StoreError;
use crate::groups::GroupPrefix;

/// The flusher of a multi-group store, shared by all its groups: what a group's engine view
/// hands a log store opened on it (through [`Engine::group_writer`](crate::Engine)).
pub(crate) struct SharedFlusher {
    tx: Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub backend: &'static str,
    pub poison: Arc<OnceLock<Arc<EngineError>>>,
    pub stats: Arc<StoreStats>,
}

impl SharedFlusher {
    /// Start the flusher of a multi-group store over `sink`.
    pub fn start(sink: Sink) -> Result<Self, StoreError> {
        let (backend, poison, stats) = (sink.backend, sink.poison.clone(), sink.stats.clone());
        let (tx, thread) = flusher::start(sink)?;
        Ok(Self {
            tx,
            thread: Mutex::new(Some(thread)),
            backend,
            poison,
            stats,
        })
    }

    /// Queue `job` (in the engine's keys).
    pub fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(job).map_err(|_| StoreError::Closed {
            backend: self.backend,
        })
    }
}

impl Drop for SharedFlusher {
    fn drop(&mut self) {
        // The last group and the store are gone: finish what is queued, then stop.
        let _ = self.tx.send(Job::Shutdown);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = thread
            && handle.join().is_err()
        {
            tracing::error!(backend = self.backend, "raft-store flusher thread panicked");
        }
    }
}

/// Where a log store sends its jobs.
pub(crate) enum Writer {
    /// A flusher of the store's own, stopped when the store is dropped.
    Own {
        tx: Sender<Job>,
        thread: Option<JoinHandle<()>>,
        backend: &'static str,
    },
    /// The flusher of the multi-group store the log store is one group of.
    Group {
        flusher: Arc<SharedFlusher>,
        prefix: GroupPrefix,
    },
}

impl Writer {
    /// A writer with a flusher of its own over `sink`.
    pub fn own(sink: Sink) -> Result<Self, StoreError> {
        let backend = sink.backend;
        let (tx, thread) = flusher::start(sink)?;
        Ok(Writer::Own {
            tx,
            thread: Some(thread),
            backend,
        })
    }

    fn backend(&self) -> &'static str {
        match self {
            Writer::Own { backend, .. } => backend,
            Writer::Group { flusher, .. } => flusher.backend,
        }
    }

    /// Queue `batch` (in the log store's keys) behind everything queued so far; `done` is told
    /// once it is durable. `exclusive` is the store's reader lock, for a batch that deletes log
    /// entries.
    pub fn send(
        &self,
        batch: Batch,
        exclusive: Option<Arc<RwLock<()>>>,
        done: Option<Box<dyn Finish>>,
    ) -> Result<(), StoreError> {
        match self {
            Writer::Own { tx, backend, .. } => tx
                .send(Job::Write {
                    batch,
                    exclusive,
                    done,
                })
                .map_err(|_| StoreError::Closed { backend }),
            Writer::Group { flusher, prefix } => flusher.send(Job::Write {
                batch: prefix.batch(batch),
                exclusive,
                done,
            }),
        }
    }

    /// Finish every job queued so far, blocking: a flusher of the store's own is stopped, the
    /// shared one is waited on (the other groups go on).
    pub fn close(&mut self) {
        match self {
            Writer::Own { tx, thread, backend } => {
                let _ = tx.send(Job::Shutdown);
                if let Some(handle) = thread.take()
                    && handle.join().is_err()
                {
                    tracing::error!(backend = *backend, "raft-store flusher thread panicked");
                }
            }
            Writer::Group { flusher, .. } => {
                // A group's log store may be opened again at once (openraft restarts a group):
                // its queued writes must be in the engine before the new one reads it. A
                // barrier waits for them without a sync of its own, so closing many groups
                // costs no fsync each.
                let (tx, rx) = std::sync::mpsc::channel();
                if flusher.send(Job::Barrier(Box::new(Wake(tx)))).is_ok() {
                    let _ = rx.recv();
                }
            }
        }
    }

    /// The error of a send to a flusher that is gone.
    pub fn closed(&self) -> StoreError {
        StoreError::Closed {
            backend: self.backend(),
        }
    }
}

/// Wakes a thread blocked in [`Writer::close`].
struct Wake(std::sync::mpsc::Sender<()>);

impl Finish for Wake {
    fn finish(self: Box<Self>, _: Result<(), StoreError>) {
        let _ = self.0.send(());
    }
}
