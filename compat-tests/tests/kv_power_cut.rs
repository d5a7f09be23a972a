//! Power cuts under the key-value state machine on every backend: the kill test of
//! `tests/kv_crash.rs` ([`compat_tests::kv_crash`]) with the store on the fault file system,
//! and after each `SIGKILL` of the child a power cut (rotating: every unsynced write dropped, a
//! torn prefix of the dirty 4 KiB pages kept, a random subset of them kept). The data must be
//! the workload's state at the applied id the state machine reports, nothing synced lost, no key
//! of an unfinished install left.
//!
//! 25 cuts per backend by default (10 on sled, whose reopen is slow); `RAFT_STORE_POWER_CUTS`
//! for more, `RAFT_STORE_SEED` replays. Needs FUSE (`RAFT_STORE_NO_FUSE=1` skips, saying so).

use compat_tests::crash_site::Crashes;
use raft_store::Backend;

fn kv_power_cut(backend: Backend) {
    let exe = env!("CARGO_BIN_EXE_kv-writer");
    compat_tests::kv_crash::run(
        backend,
        Crashes::PowerCut,
        &format!("kv_power_cut_{backend}"),
        exe,
    );
}

compat_tests::backend_tests!(
    kv_power_cut: kv_power_cut_redb,
    kv_power_cut_lmdb,
    kv_power_cut_rocksdb,
    kv_power_cut_sled
);
