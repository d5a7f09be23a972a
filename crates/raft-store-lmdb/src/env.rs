//! Opening the LMDB environment: the one place in the workspace with `unsafe` code.

#![deny(unsafe_code)]

use std::path::Path;

use heed::Env;
use heed::EnvOpenOptions;
use heed::WithoutTls;
use raft_store_engine::Space;

use crate::options::LmdbOptions;

/// Open the environment in `dir` with a map of `map_size` bytes.
///
/// The caller must hold the store directory's [`StoreDir`](raft_store_engine::StoreDir) lock for
/// `dir` and must have closed (and waited for the closing of) any environment it opened there
/// before.
#[allow(unsafe_code)]
pub(crate) fn open_env(dir: &Path, map_size: usize, options: &LmdbOptions) -> heed::Result<Env<WithoutTls>> {
    let mut builder = EnvOpenOptions::new().read_txn_without_tls();
    builder
        .map_size(map_size)
        .max_dbs(Space::ALL.len() as u32)
        .max_readers(options.max_readers);
    // SAFETY: heed's conditions for `EnvOpenOptions::open` are that the memory-mapped file is not
    // modified behind LMDB's back and that LMDB's own locking is not broken; LMDB adds that an
    // environment must not be open twice in one process at the same time (closing the second
    // handle would drop the first one's advisory locks), and must not live on a network file
    // system. This crate meets them:
    // - one open per path per process: `LmdbEngine::open` first takes the store directory's
    //   exclusive lock (`StoreDir`, a `flock` on `RAFT_STORE.lock`, which a second open in this
    //   or any other process fails to take) and holds it as long as the environment is open;
    //   growing the map closes the environment and waits until it is closed before reopening;
    // - no flags that weaken LMDB's locking or syncing are set (no `NO_LOCK`, `NO_SYNC`,
    //   `NO_META_SYNC`, `WRITE_MAP`), so LMDB's reader table and lock file stay consistent;
    // - the crate never writes the data file itself, and no transaction outlives an engine call.
    // A file modified by another program while open, or a store on a network file system, is
    // outside what this crate can check; the crate docs say so.
    unsafe { builder.open(dir) }
}
