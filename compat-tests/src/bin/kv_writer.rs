//! The child of the key-value crash test: opens a log store and the key-value state machine in
//! one engine and applies the deterministic workload (`compat_tests::kv::request`) from where the
//! state machine stands, in apply calls of 1 to 200 entries, until it is killed. Now and then it
//! syncs (`S <index>` once durable), builds a snapshot, and installs its own snapshot back
//! (rolling the state back to it), so kills land inside applies, builds and installs.
//!
//! Prints `R <applied>` at start, `A <index>` after each apply call, `B <index>` / `N <index>`
//! when a build / install starts. `kv-writer <backend> <dir> <workload-seed> <seed>`: every child
//! on one store gets the same workload seed; `seed` shapes its calls. Stops by itself after 30 s.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

use compat_tests::Rng;
use compat_tests::kv;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;
use raft_store::Backend;
use raft_store_testkit::kv_cases::kv_entry;

const LIFETIME: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, dir, workload, seed] = args.as_slice() else {
        eprintln!("usage: kv-writer <backend> <dir> <workload-seed> <seed>");
        return ExitCode::from(2);
    };
    let (Ok(backend), Ok(workload), Ok(seed)) = (
        backend.parse::<Backend>(),
        workload.parse::<u64>(),
        seed.parse::<u64>(),
    ) else {
        eprintln!("kv-writer: bad backend {backend:?} or seeds {workload:?} {seed:?}");
        return ExitCode::from(2);
    };
    let rt = match compat_tests::child_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kv-writer: runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(run(backend, Path::new(dir), workload, seed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-writer: {e}");
            ExitCode::from(4)
        }
    }
}

async fn run(backend: Backend, dir: &Path, workload: u64, seed: u64) -> Result<(), String> {
    let (_log, mut sm) = kv::open_kv(backend, dir).map_err(|e| format!("open: {e}"))?;
    let mut next = sm.applied().0.map_or(0, |id| id.index) + 1;
    println!("R {}", next - 1);
    // The kill schedule comes from the parent; this randomness only shapes the calls.
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + LIFETIME;
    let mut calls = 0u64;
    while Instant::now() < deadline {
        let n = rng.between(1, 200);
        let entries: Vec<_> = (next..next + n)
            .map(|i| kv_entry(i, kv::request(workload, i)))
            .collect();
        sm.apply_entries(&entries)
            .map_err(|e| format!("apply {next}..{}: {e}", next + n))?;
        next += n;
        println!("A {}", next - 1);
        calls += 1;
        if calls.is_multiple_of(10) {
            sm.sync().map_err(|e| format!("sync: {e}"))?;
            println!("S {}", next - 1);
        }
        if calls.is_multiple_of(8) {
            println!("B {}", next - 1);
            let mut builder = sm.try_create_snapshot_builder(true).await.ok_or("no builder")?;
            let snap = builder
                .build_snapshot()
                .await
                .map_err(|e| format!("build: {e}"))?;
            if rng.below(2) == 0 {
                let at = snap.meta.last_log_id.map_or(0, |id| id.index);
                println!("N {at}");
                sm.install_snapshot(&snap.meta, snap.snapshot)
                    .await
                    .map_err(|e| format!("install: {e}"))?;
                next = at + 1;
            }
        }
    }
    Ok(())
}
