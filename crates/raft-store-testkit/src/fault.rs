//! [`FaultEngine`]: wraps any engine to count, fail, hold and undo writes.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use raft_store_engine::Batch;
use raft_store_engine::Durability;
use raft_store_engine::Engine;
use raft_store_engine::EngineError;
use raft_store_engine::EngineLimits;
use raft_store_engine::KeyRange;
use raft_store_engine::Op;
use raft_store_engine::Space;
use raft_store_engine::Visitor;

/// Which error an injected failure reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A generic I/O error (`EIO`).
    Io,
    /// No space left on the device (`ENOSPC`).
    NoSpace,
}

#[derive(Default)]
struct Plan {
    /// Fail the write when `writes` reaches this count.
    fail_write_at: Option<(u64, Fault)>,
    /// Fail the sync when `syncs` reaches this count.
    fail_sync_at: Option<(u64, Fault)>,
}

/// The control handle of a [`FaultEngine`], shared by its clones.
#[derive(Default)]
pub struct Faults {
    writes: AtomicU64,
    syncs: AtomicU64,
    plan: Mutex<Plan>,
    held: Mutex<bool>,
    held_cv: Condvar,
    waiting: AtomicU64,
    cut: AtomicBool,
    track_unsynced: AtomicBool,
    undo: Mutex<Vec<Batch>>,
    limits: Mutex<Option<EngineLimits>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Faults {
    /// Writes seen so far (durable or not, failed included).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Durable writes (syncs) seen so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Fail the `n`-th write from now (1 = the next one); it applies nothing.
    pub fn fail_nth_write(&self, n: u64, fault: Fault) {
        lock(&self.plan).fail_write_at = Some((self.writes() + n, fault));
    }

    /// Fail the `n`-th sync from now (1 = the next one): its batch is written but not made
    /// durable, and the write reports the error, as a failed `fsync` does.
    pub fn fail_nth_sync(&self, n: u64, fault: Fault) {
        lock(&self.plan).fail_sync_at = Some((self.syncs() + n, fault));
    }

    /// Make every durable write wait (before reaching the engine) until [`Faults::release_syncs`].
    pub fn hold_syncs(&self) {
        *lock(&self.held) = true;
    }

    /// Let held durable writes go on.
    pub fn release_syncs(&self) {
        *lock(&self.held) = false;
        self.held_cv.notify_all();
    }

    /// Durable writes waiting at the hold right now.
    pub fn waiting_syncs(&self) -> u64 {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Simulate the machine stopping now: every later write fails and applies nothing (held
    /// writes included, once released).
    pub fn cut_power(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.release_syncs();
    }

    /// Make the engine state `limits` instead of its own and refuse every write over them, as
    /// a backend with those limits does (LMDB's 511-byte keys on any engine, say). Set it
    /// before opening what reads the limits: the state machine reads them once, at open.
    pub fn set_limits(&self, limits: EngineLimits) {
        *lock(&self.limits) = Some(limits);
    }

    /// The limits [`Faults::set_limits`] set.
    fn limits(&self) -> Option<EngineLimits> {
        *lock(&self.limits)
    }

    /// Whether [`Faults::cut_power`] was called.
    pub fn power_is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    fn injected(backend: &'static str, fault: Fault, what: &str) -> EngineError {
        match fault {
            Fault::Io => EngineError::io(
                backend,
                format!("injected failure of {what}"),
                io::Error::other("EIO"),
            ),
            Fault::NoSpace => EngineError::io(
                backend,
                format!("injected failure of {what}"),
                io::Error::new(io::ErrorKind::StorageFull, "no space left on device (ENOSPC)"),
            ),
        }
    }
}

/// Wraps any [`Engine`] for fault-injection tests. Through its [`Faults`] handle a test can:
/// count writes and syncs, fail the Nth write or sync (EIO or ENOSPC), hold syncs to observe
/// what happens before one completes, cut the power, flip a stored byte, and (with
/// [`FaultEngine::track_unsynced`]) drop every write made since the last sync.
pub struct FaultEngine<E> {
    inner: E,
    faults: Arc<Faults>,
}

impl<E: Engine> FaultEngine<E> {
    /// Wrap `inner`; no fault is planned.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// The control handle.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Remember how to undo buffered writes, so [`FaultEngine::drop_unsynced`] can roll them back.
    pub fn track_unsynced(&self, on: bool) {
        self.faults.track_unsynced.store(on, Ordering::SeqCst);
        lock(&self.faults.undo).clear();
    }

    /// Undo every buffered write since the last durable one, as a power cut would lose them.
    pub fn drop_unsynced(&self) -> Result<(), EngineError> {
        let mut undo = lock(&self.faults.undo);
        for batch in undo.drain(..).rev() {
            self.inner.write(&batch, Durability::Durable)?;
        }
        Ok(())
    }

    /// Flip bit `bit` of byte `offset` of the value stored under `key` (durably). Returns whether
    /// the key existed and was long enough.
    pub fn flip_byte(&self, space: Space, key: &[u8], offset: usize, bit: u8) -> Result<bool, EngineError> {
        let Some(mut value) = self.inner.get(space, key)? else {
            return Ok(false);
        };
        let Some(byte) = value.get_mut(offset) else {
            return Ok(false);
        };
        *byte ^= 1 << (bit % 8);
        let mut batch = Batch::new();
        batch.put(space, key, value);
        self.inner.write(&batch, Durability::Durable)?;
        Ok(true)
    }

    /// The batch that restores what `batch` is about to change.
    fn undo_of(&self, batch: &Batch) -> Result<Batch, EngineError> {
        let mut undo_ops: Vec<Op> = Vec::new();
        for op in batch.ops() {
            match op {
                Op::Put { space, key, .. } | Op::Delete { space, key } => {
                    undo_ops.push(match self.inner.get(*space, key)? {
                        Some(old) => Op::Put {
                            space: *space,
                            key: key.clone(),
                            value: old,
                        },
                        None => Op::Delete {
                            space: *space,
                            key: key.clone(),
                        },
                    });
                }
                Op::DeleteRange { space, start, end } => {
                    let range = match end {
                        Some(end) => KeyRange::half_open(start, end),
                        None => KeyRange::from(start),
                    };
                    self.inner.scan(*space, range, &mut |k, v| {
                        undo_ops.push(Op::Put {
                            space: *space,
                            key: k.to_vec(),
                            value: v.to_vec(),
                        });
                        ControlFlow::Continue(())
                    })?;
                }
            }
        }
        // Undo in reverse so a key changed twice in one batch gets its oldest value back.
        let mut undo = Batch::new();
        for op in undo_ops.into_iter().rev() {
            match op {
                Op::Put { space, key, value } => undo.put(space, key, value),
                Op::Delete { space, key } => undo.delete(space, key),
                Op::DeleteRange { space, start, end } => undo.delete_range(space, start, end),
            }
        }
        Ok(undo)
    }

    fn write_buffered(&self, batch: &Batch) -> Result<(), EngineError> {
        if self.faults.track_unsynced.load(Ordering::SeqCst) {
            let undo = self.undo_of(batch)?;
            lock(&self.faults.undo).push(undo);
        }
        self.inner.write(batch, Durability::Buffered)
    }
}

impl<E: Engine> Engine for FaultEngine<E> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let f = &*self.faults;
        let backend = self.inner.backend();
        let power_cut = || {
            EngineError::backend(
                backend,
                "writing after the power was cut",
                InjectedFault("power is cut"),
            )
        };
        if f.power_is_cut() {
            return Err(power_cut());
        }
        if let Some(limits) = f.limits() {
            for op in batch.ops() {
                let (key, value) = match op {
                    Op::Put { key, value, .. } => (key, value.len()),
                    Op::Delete { key, .. } => (key, 0),
                    Op::DeleteRange { .. } => continue,
                };
                if !limits.fits(key.len(), value) {
                    return Err(EngineError::backend(
                        backend,
                        "writing a batch",
                        format!(
                            "a key of {} bytes with a value of {value} bytes is over the limits {limits:?}",
                            key.len()
                        ),
                    ));
                }
            }
        }
        let n = f.writes.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut plan = lock(&f.plan);
            if let Some((at, fault)) = plan.fail_write_at
                && at == n
            {
                plan.fail_write_at = None;
                return Err(Faults::injected(backend, fault, "a write"));
            }
        }
        if durability == Durability::Buffered {
            return self.write_buffered(batch);
        }
        {
            let mut held = lock(&f.held);
            f.waiting.fetch_add(1, Ordering::SeqCst);
            while *held {
                held = f
                    .held_cv
                    .wait(held)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            f.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        if f.power_is_cut() {
            return Err(power_cut());
        }
        let s = f.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let failing = {
            let mut plan = lock(&f.plan);
            match plan.fail_sync_at {
                Some((at, fault)) if at == s => {
                    plan.fail_sync_at = None;
                    Some(fault)
                }
                _ => None,
            }
        };
        if let Some(fault) = failing {
            self.write_buffered(batch)?;
            return Err(Faults::injected(backend, fault, "a sync"));
        }
        self.inner.write(batch, Durability::Durable)?;
        lock(&f.undo).clear();
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(space, key)
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        self.inner.scan(space, range, visit)
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.last_key(space)
    }

    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.last_key_in(space, range)
    }

    // `group_writer` keeps its default (`None`) on purpose: a log store opened on a fault
    // engine must write through it, or the faults it injects would never be seen. Put the
    // fault engine under a `GroupStore` to inject faults into the shared write path.

    fn store_dir(&self) -> Option<&raft_store_core::StoreDir> {
        self.inner.store_dir()
    }

    fn limits(&self) -> EngineLimits {
        self.faults.limits().unwrap_or_else(|| self.inner.limits())
    }

    fn compact(&self) -> Result<(), EngineError> {
        self.inner.compact()
    }
}

/// The error a [`FaultEngine`] returns for a write after its simulated power cut, wrapped as
/// the source of an [`EngineError::Backend`]. Failed writes and syncs are plain I/O errors
/// (`EIO`, `ENOSPC`), as the kernel would report them.
#[derive(Debug, thiserror::Error)]
#[error("injected fault: {0}")]
pub struct InjectedFault(pub &'static str);
