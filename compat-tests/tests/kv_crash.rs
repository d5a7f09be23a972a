//! Kill tests of the key-value state machine on every backend: a child (`kv-writer`) applies a
//! deterministic workload through `KvStateMachine` beside a log store in one engine, syncing,
//! building and installing snapshots now and then; this test kills it with `SIGKILL` at a
//! random moment or just after a snapshot build or install began, reopens the store and checks that the data is exactly the workload's state at
//! the applied id the state machine reports (never part of an apply call), that nothing synced
//! was lost, and that no key of an unfinished install is left.
//!
//! 12 kills per backend by default; `RAFT_STORE_KILLS` for more, `RAFT_STORE_SEED` replays.

use std::time::Duration;
use std::time::Instant;

use compat_tests::Rng;
use compat_tests::kv;
use compat_tests::process::Child;
use compat_tests::process::Ending;
use raft_store::Backend;
use raft_store_core::testing::util;

fn kv_crash_test(backend: Backend) {
    let kills = compat_tests::count_from_env("RAFT_STORE_KILLS", 12);
    let seed = compat_tests::seed();
    eprintln!("{backend}: {kills} kills, RAFT_STORE_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = util::tempdir();
    let dir_arg = dir.path().to_str().expect("temp dir is UTF-8").to_string();
    let workload = seed.to_string();
    let (mut synced, mut during_build, mut during_install, mut lost_unsynced) = (0u64, 0, 0, 0u64);

    for k in 0..kills {
        let child_seed = seed.wrapping_add(k as u64 + 1).to_string();
        let child = Child::spawn(
            env!("CARGO_BIN_EXE_kv-writer"),
            &[backend.name(), &dir_arg, &workload, &child_seed],
        )
        .expect("spawn kv-writer");
        // Kill at a random moment, or just after a snapshot build or install started.
        let target = ["any", "B ", "N "][k % 3];
        let wait = Duration::from_millis(rng.between(100, 900));
        let mut skip = rng.below(3);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        let mut started = None;
        while let Some(line) = child.line_before(deadline) {
            if line.starts_with("R ") {
                started = Some(Instant::now());
            }
            let kill_now = if target == "any" {
                started.is_some_and(|s| s.elapsed() >= wait)
            } else if line.starts_with(target) {
                skip = skip.saturating_sub(1);
                skip == 0
            } else {
                false
            };
            lines.push(line);
            if kill_now {
                std::thread::sleep(Duration::from_micros(rng.between(0, 3000)));
                break;
            }
        }
        let (rest, ending, stderr) = child.kill().expect("kill kv-writer");
        assert_eq!(
            ending,
            Ending::Signal(9),
            "{backend}: kv-writer ended by itself before kill {k}: {stderr}"
        );
        lines.extend(rest);
        let mut last_applied = 0;
        let mut in_build = false;
        let mut in_install = false;
        for line in &lines {
            let (tag, n) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("bad line {line:?}"));
            match tag {
                "R" | "A" => {
                    last_applied = n;
                    in_build = false;
                    in_install = false;
                }
                "S" => synced = n,
                "B" => in_build = true,
                "N" => {
                    // An install rolls back to the snapshot: what was synced beyond it is gone
                    // on purpose once the install is done.
                    in_install = true;
                    synced = synced.min(n);
                }
                other => panic!("unexpected line from kv-writer: {other} {n}"),
            }
        }
        during_build += usize::from(in_build && !in_install);
        during_install += usize::from(in_install);

        let applied = check_reopen(backend, dir.path(), seed, synced)
            .unwrap_or_else(|e| panic!("{backend}: after kill {k} (seed {seed}): {e}"));
        lost_unsynced += last_applied.saturating_sub(applied);
    }
    eprintln!(
        "{backend}: {kills} kills, {during_build} inside a snapshot build, {during_install} inside an install; \
         {lost_unsynced} applied but unsynced entries rolled back in all (allowed); every reopen consistent"
    );
}

/// Reopen the store in `dir` and check it: the data is the workload's state at the applied id
/// the state machine reports, that id is not before `synced`, and no key of another generation
/// is left. Returns the applied index.
fn check_reopen(backend: Backend, dir: &std::path::Path, seed: u64, synced: u64) -> Result<u64, String> {
    let (_log, sm) = kv::open_kv(backend, dir).map_err(|e| format!("reopen: {e}"))?;
    let applied = sm.applied().0.map_or(0, |id| id.index);
    if applied < synced {
        return Err(format!(
            "the state machine is at {applied}, but {synced} was synced"
        ));
    }
    let mut data = std::collections::BTreeMap::new();
    sm.reader()
        .scan(&mut |key, value| {
            data.insert(key.to_string(), value.to_vec());
            std::ops::ControlFlow::Continue(())
        })
        .map_err(|e| format!("read: {e}"))?;
    let expected = kv::expected(seed, applied);
    if data != expected {
        return Err(format!(
            "the data is not the state at applied index {applied}: {} keys, expected {}",
            data.len(),
            expected.len()
        ));
    }
    let mut raw = 0usize;
    raft_store_core::Engine::scan(
        &**sm.engine(),
        raft_store_core::Space::Data,
        raft_store_core::KeyRange::ALL,
        &mut |_, _| {
            raw += 1;
            std::ops::ControlFlow::Continue(())
        },
    )
    .map_err(|e| format!("scan the data keyspace: {e}"))?;
    if raw != data.len() {
        return Err(format!(
            "{} keys of another generation are left",
            raw - data.len()
        ));
    }
    Ok(applied)
}

#[test]
fn kv_crash_redb() {
    kv_crash_test(Backend::Redb);
}

#[test]
fn kv_crash_lmdb() {
    kv_crash_test(Backend::Lmdb);
}

#[test]
fn kv_crash_rocksdb() {
    kv_crash_test(Backend::Rocksdb);
}

#[test]
fn kv_crash_sled() {
    kv_crash_test(Backend::Sled);
}
