//! [`wait_released`]: await the moment this process lets go of a store directory.
//!
//! A store's directory is locked until the last handle to its engine is dropped. After
//! `Raft::shutdown` returns, openraft 0.9 and 0.10 have dropped their core task (and with it the
//! log store), but not yet their state machine task: it owns the state machine and a log
//! reader, and ends on its own a moment later, once it sees its command channel closed. An
//! open of the same directory in that moment fails with `EngineError::Locked`. A process that
//! opens the store again (a restart in place, a test) awaits [`wait_released`] first.

use std::path::Path;
use std::time::Duration;

use futures::channel::oneshot;

use crate::EngineError;
use crate::StoreDir;
use crate::StoreError;

/// Wait until this process no longer holds the store directory `path` open, for at most
/// `timeout`: after `Raft::shutdown` and the drop of the application's own handles (the `Raft`,
/// state machine readers, log readers), openraft's state machine task drops the last ones a
/// moment later. Once it returns `Ok`, opening `path` again succeeds (unless another process
/// took it in between).
///
/// Returns at once for a directory this process does not hold; a store another process holds
/// is not waited for. Works on any async runtime: the wait runs on a thread of its own, so it
/// never blocks the tasks that are about to drop the store (a caller that stops waiting leaves
/// that thread to end by `timeout`).
///
/// # Errors
/// [`EngineError::Locked`] if the directory is still held after `timeout`: a handle to the
/// store is still alive (a reader kept by the application, a `Raft` not shut down).
pub async fn wait_released(path: impl AsRef<Path>, timeout: Duration) -> Result<(), StoreError> {
    let path = path.as_ref().to_path_buf();
    if !StoreDir::is_held(&path) {
        return Ok(());
    }
    let (tx, rx) = oneshot::channel();
    let waiting = path.clone();
    std::thread::Builder::new()
        .name("raft-store-release".into())
        .spawn(move || {
            // The receiver is gone only if the caller stopped waiting; nothing to tell then.
            let _ = tx.send(StoreDir::wait_released(&waiting, timeout));
        })
        .map_err(|e| {
            EngineError::io(
                "raft-store",
                "spawning the thread that waits for a store's release",
                e,
            )
        })?;
    let outcome = rx.await.map_err(|_| {
        EngineError::backend(
            "raft-store",
            "waiting for a store's release",
            "the waiting thread ended without an answer",
        )
    })?;
    outcome.map_err(|backend| {
        StoreError::from(EngineError::Locked {
            backend,
            path,
            detail: format!(
                "still held by this process {timeout:?} later: a handle to the store is alive \
                 (a Raft not shut down, or a log store, state machine or reader not dropped)"
            ),
        })
    })
}
