//! Power cuts under the log store on every backend: the crash test of `tests/crash.rs`
//! ([`compat_tests::log_crash`]) with the store on the fault file system, and after each
//! `SIGKILL` of the child a power cut (rotating: every unsynced write dropped, a torn prefix of
//! the dirty 4 KiB pages kept, a random subset of them kept). Every acknowledged operation must
//! be there after the cut, and the store must hold exactly the state after a prefix of the
//! issued ones. A kill alone keeps the page cache; only the cut shows a missing fsync.
//!
//! 25 cuts per backend by default; `RAFT_STORE_POWER_CUTS` for more, `RAFT_STORE_SEED`
//! replays. Needs FUSE (`RAFT_STORE_NO_FUSE=1` skips, saying so).

use compat_tests::crash_site::Crashes;
use raft_store::Backend;

fn log_power_cut(backend: Backend) {
    let exe = env!("CARGO_BIN_EXE_crash-writer");
    compat_tests::log_crash::run(
        backend,
        Crashes::PowerCut,
        &format!("log_power_cut_{backend}"),
        exe,
    );
}

compat_tests::backend_tests!(
    log_power_cut: log_power_cut_redb,
    log_power_cut_lmdb,
    log_power_cut_rocksdb,
    log_power_cut_sled
);
