//! [`StoreDir`]: the checks and the lock every adapter does before opening its engine.
//!
//! A store is a directory. Before an engine touches it, [`StoreDir::open`]:
//! - refuses a path that is a file, and names a permission problem as one;
//! - reads the marker file `RAFT_STORE` naming the backend that created the store, and refuses
//!   a store of another backend; a non-empty directory without a marker is refused too, so a
//!   typo in a path never turns someone's files into a store;
//! - takes an exclusive advisory lock on `RAFT_STORE.lock`, held until the [`StoreDir`] is
//!   dropped, so a second open of the same store fails in this process and in any other.
//!
//! The lock goes with the last handle to the engine. An application that drops its handles
//! does not always drop the last one: openraft's state machine task owns the state machine (the
//! key-value state machine holds the engine) and ends a moment after `Raft::shutdown` returns.
//! A restart in the same process awaits [`StoreDir::wait_released`] (the facade's async
//! `wait_released`) before it opens the store again; this process's held directories are kept
//! in a registry for that.
//!
//! Once the store's format record is durable, the marker gets a second line, `initialized`.
//! A store whose marker says so but whose engine holds no format record lost its files (a
//! database file cut to nothing, an engine that started over after damage): it is refused,
//! never started again empty.

use std::collections::BTreeMap;
use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;
use std::time::Duration;

use crate::error::EngineError;

/// The marker file's name.
pub(crate) const MARKER: &str = "RAFT_STORE";
/// The lock file's name.
pub(crate) const LOCK: &str = "RAFT_STORE.lock";

/// The store directories this process holds locked, by canonical path, with the backend and
/// the number of holders (one, but a count keeps a path that two spellings reach honest).
///
/// The lock file's advisory lock cannot tell a holder in this process from one in another, and
/// nothing in it can be waited on; this can.
struct Held {
    dirs: Mutex<BTreeMap<PathBuf, (&'static str, usize)>>,
    /// Notified whenever a directory is released.
    released: Condvar,
}

static HELD: Held = Held {
    dirs: Mutex::new(BTreeMap::new()),
    released: Condvar::new(),
};

fn held() -> MutexGuard<'static, BTreeMap<PathBuf, (&'static str, usize)>> {
    // Only insertions and removals run under the lock; a poisoned map is still consistent.
    HELD.dirs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The registry's key for `path`: its canonical form when it exists, so two spellings of one
/// directory are one entry.
fn registry_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// An open, locked store directory. Keep it alive as long as the engine is open.
///
/// Dropping it releases the lock and wakes whoever waits in [`StoreDir::wait_released`]. Every
/// adapter declares it as the last field of its engine, so the engine's own files are closed
/// by then.
#[derive(Debug)]
pub struct StoreDir {
    path: PathBuf,
    backend: &'static str,
    initialized: std::sync::atomic::AtomicBool,
    lock: File,
    /// This directory's key in the registry of held directories.
    key: PathBuf,
}

impl StoreDir {
    /// The file that marks a directory as a raft-store store, naming its backend.
    pub const MARKER_FILE: &str = MARKER;

    /// The lock file held while the store is open.
    pub const LOCK_FILE: &str = LOCK;

    /// Check, create (if missing) and lock the store directory `path` for `backend`.
    pub fn open(backend: &'static str, path: &Path) -> Result<Self, EngineError> {
        let io_err = |what: &str, e: io::Error| -> EngineError {
            if e.kind() == io::ErrorKind::PermissionDenied {
                EngineError::PermissionDenied {
                    backend,
                    path: path.to_path_buf(),
                    source: e,
                }
            } else {
                EngineError::io(backend, format!("{what} {}", path.display()), e)
            }
        };
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(EngineError::NotADirectory {
                    backend,
                    path: path.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path).map_err(|e| io_err("creating the store directory", e))?;
            }
            Err(e) => return Err(io_err("reading the metadata of", e)),
        }

        let marker = path.join(MARKER);
        let mut initialized = false;
        match std::fs::read_to_string(&marker) {
            Ok(text) => {
                initialized = text.lines().nth(1) == Some(INITIALIZED);
                let found = parse_marker(&text).ok_or_else(|| EngineError::NotAStore {
                    backend,
                    path: marker.clone(),
                    detail: "the marker file is not a raft-store marker".into(),
                })?;
                if found != backend {
                    return Err(EngineError::ForeignStore {
                        backend,
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut entries = std::fs::read_dir(path).map_err(|e| io_err("listing", e))?;
                if let Some(other) = entries.find_map(Result::ok) {
                    let name = other.file_name();
                    if name != LOCK {
                        return Err(EngineError::NotAStore {
                            backend,
                            path: path.to_path_buf(),
                            detail: format!(
                                "the directory is not empty ({} is there) and holds no {MARKER} marker",
                                name.to_string_lossy()
                            ),
                        });
                    }
                }
                write_marker(path, backend, false).map_err(|e| io_err("writing the marker in", e))?;
            }
            Err(e) => return Err(io_err("reading the marker in", e)),
        }

        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK))
            .map_err(|e| io_err("opening the lock file in", e))?;
        let key = registry_key(path);
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let detail = if held().contains_key(&key) {
                    format!(
                        "{LOCK} is locked by a store this process still holds open; after \
                         Raft::shutdown openraft drops the store a moment later, so await \
                         wait_released on the directory before opening it again"
                    )
                } else {
                    format!("{LOCK} is locked")
                };
                return Err(EngineError::Locked {
                    backend,
                    path: path.to_path_buf(),
                    detail,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", e)),
        }
        held().entry(key.clone()).or_insert((backend, 0)).1 += 1;
        Ok(Self {
            path: path.to_path_buf(),
            backend,
            initialized: std::sync::atomic::AtomicBool::new(initialized),
            lock,
            key,
        })
    }

    /// Whether this process holds the store directory `path` open (through any engine).
    /// Another process's hold is not seen here: its open fails with `EngineError::Locked`.
    pub fn is_held(path: &Path) -> bool {
        held().contains_key(&registry_key(path))
    }

    /// Wait, blocking this thread for at most `timeout`, until this process no longer holds
    /// the store directory `path` open: every handle to its engine is dropped and its lock is
    /// released. Returns at once for a directory this process does not hold, and returns
    /// whether it was released; on `Err` the backend holding it is named.
    ///
    /// Do not call it on a thread the async tasks that hold the store need to make progress
    /// (the one thread of a current-thread runtime): they could not drop it. The facade's async
    /// `wait_released` runs this on a thread of its own.
    pub fn wait_released(path: &Path, timeout: Duration) -> Result<(), &'static str> {
        let key = registry_key(path);
        let dirs = held();
        let (dirs, _) = HELD
            .released
            .wait_timeout_while(dirs, timeout, |dirs| dirs.contains_key(&key))
            .unwrap_or_else(PoisonError::into_inner);
        match dirs.get(&key) {
            Some((backend, _)) => Err(backend),
            None => Ok(()),
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make the names of every file and directory under the store directory durable: fsync each
    /// directory of the tree, deepest first, and the store directory's parent.
    ///
    /// A new file's name is durable only once its directory is synced (ext4 and XFS may keep
    /// it sooner, but need not), and no engine here syncs the directories of the files it
    /// creates on open: a redb, LMDB or sled store whose first durable write returned could
    /// still vanish whole at a power cut. Every adapter calls this at the end of its open, once
    /// the engine's files exist.
    pub fn sync_tree(&self) -> Result<(), EngineError> {
        let err = |path: &Path, e: io::Error| {
            EngineError::io(
                self.backend,
                format!("syncing the directory {}", path.display()),
                e,
            )
        };
        sync_dirs_below(&self.path).map_err(|(path, e)| err(&path, e))?;
        if let Some(parent) = self.path.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| err(parent, e))?;
        }
        Ok(())
    }

    /// Whether the store was initialized: its format record was durable once.
    pub fn is_initialized(&self) -> bool {
        self.initialized.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Record (durably, in the marker) that the store's format record is durable.
    pub fn mark_initialized(&self) -> Result<(), EngineError> {
        if self.is_initialized() {
            return Ok(());
        }
        write_marker(&self.path, self.backend, true).map_err(|e| {
            EngineError::io(
                self.backend,
                format!("updating the marker in {}", self.path.display()),
                e,
            )
        })?;
        self.initialized.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        // Unlocked before the registry says so: a waiter woken below must find the lock free.
        // Closing the file would release it too, but only after this function returns.
        if let Err(e) = self.lock.unlock() {
            tracing::warn!(
                backend = self.backend,
                path = %self.path.display(),
                error = %e,
                "unlocking the store directory failed; it is released when its lock file closes"
            );
        }
        let mut dirs = held();
        if let Some((_, holders)) = dirs.get_mut(&self.key) {
            *holders = holders.saturating_sub(1);
            if *holders == 0 {
                dirs.remove(&self.key);
            }
        }
        drop(dirs);
        HELD.released.notify_all();
    }
}

/// The marker's second line once the store is initialized.
const INITIALIZED: &str = "initialized";

fn parse_marker(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let backend = first.strip_prefix("raft-store backend=")?.trim_end();
    (!backend.is_empty()
        && backend
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then(|| backend.to_string())
}

/// fsync every directory under `dir` (symlinks not followed), deepest first, then `dir`.
fn sync_dirs_below(dir: &Path) -> Result<(), (std::path::PathBuf, io::Error)> {
    let at = |e| (dir.to_path_buf(), e);
    for item in std::fs::read_dir(dir).map_err(at)? {
        let item = item.map_err(at)?;
        if item.file_type().map_err(at)?.is_dir() {
            sync_dirs_below(&item.path())?;
        }
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(at)
}

/// Write the marker durably: temporary file, fsync, rename, fsync of the directory.
fn write_marker(dir: &Path, backend: &str, initialized: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let mut f = File::create(&tmp)?;
    let second = if initialized {
        format!("{INITIALIZED}\n")
    } else {
        String::new()
    };
    f.write_all(format!("raft-store backend={backend}\n{second}").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(MARKER))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
