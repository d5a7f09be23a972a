//! Kill tests of the key-value state machine on every backend: a child (`kv-writer`) applies a
//! deterministic workload through `KvStateMachine` beside a log store in one engine, syncing,
//! building and installing snapshots now and then; this test kills it with `SIGKILL` at a
//! random moment or just after a snapshot build or install began, reopens the store and checks
//! that the data is exactly the workload's state at the applied id the state machine reports
//! (never part of an apply call), that nothing synced was lost, and that no key of an unfinished
//! install is left ([`compat_tests::kv_crash`]). `tests/kv_power_cut.rs` runs the same loop with
//! a power cut after each kill.
//!
//! 12 kills per backend by default; `RAFT_STORE_KILLS` for more, `RAFT_STORE_SEED` replays.

use compat_tests::crash_site::Crashes;
use raft_store::Backend;

fn kv_crash_test(backend: Backend) {
    let exe = env!("CARGO_BIN_EXE_kv-writer");
    compat_tests::kv_crash::run(backend, Crashes::Kill, &format!("kv_crash_test_{backend}"), exe);
}

compat_tests::backend_tests!(kv_crash_test: kv_crash_redb, kv_crash_lmdb, kv_crash_rocksdb, kv_crash_sled);
