//! Crash tests on every backend: a child process (`crash-writer`) issues random appends,
//! truncates, purges, vote and committed saves through `LogStore`, printing each operation before
//! issuing it and each acknowledgement; this test kills it with `SIGKILL` while an operation of a
//! chosen kind is in flight, reopens the store and checks it holds exactly the state after some
//! prefix of the issued operations no shorter than the acknowledged one (every acknowledged entry
//! and vote there, the log contiguous, no wrong entry), then appends to it
//! ([`compat_tests::log_crash`]). `tests/log_power_cut.rs` runs the same loop with a power cut
//! after each kill.
//!
//! 25 kills per backend by default; `RAFT_STORE_KILLS=500` for more, `RAFT_STORE_SEED` to replay.

use compat_tests::crash_site::Crashes;
use raft_store::Backend;

fn crash_test(backend: Backend) {
    let exe = env!("CARGO_BIN_EXE_crash-writer");
    compat_tests::log_crash::run(backend, Crashes::Kill, &format!("crash_test_{backend}"), exe);
}

compat_tests::backend_tests!(crash_test: crash_redb, crash_lmdb, crash_rocksdb, crash_sled);
