//! The child of the crash tests: opens a store and issues random log operations until it is
//! killed, printing `I <n> <op>` before issuing operation `n` and `A <n>` once operation `n` (and
//! so every one before it) is durable. The parent kills it with `SIGKILL` at a moment of its
//! choosing and checks the store against what was acknowledged.
//!
//! `crash-writer <backend> <dir> <seed>`; it stops by itself after 30 seconds.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use std::time::Instant;

use compat_tests::Rng;
use compat_tests::Workload;
use compat_tests::model;
use raft_store::Backend;

/// Appends awaiting their callback at most; the writer waits for the oldest beyond this.
const IN_FLIGHT: usize = 64;
/// The writer stops by itself after this long, should nobody kill it.
const LIFETIME: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, dir, seed] = args.as_slice() else {
        eprintln!("usage: crash-writer <backend> <dir> <seed>");
        return ExitCode::from(2);
    };
    let (Ok(backend), Ok(seed)) = (backend.parse::<Backend>(), seed.parse::<u64>()) else {
        eprintln!("crash-writer: bad backend {backend:?} or seed {seed:?}");
        return ExitCode::from(2);
    };
    let rt = match compat_tests::child_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crash-writer: runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(run(backend, Path::new(dir), seed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            ExitCode::from(4)
        }
    }
}

async fn run(backend: Backend, dir: &Path, seed: u64) -> Result<(), String> {
    let mut store = compat_tests::open_store(backend, dir).map_err(|e| format!("open: {e}"))?;
    let start = model::observe(&mut store).await?;
    let mut workload = Workload::resume(&start);
    let mut rng = Rng::new(seed);

    // Callbacks fire in order: one task waits for them in order and prints the acks.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, raft_store_testkit::util::Flushed)>(IN_FLIGHT);
    let acks = tokio::spawn(async move {
        while let Some((n, flushed)) = rx.recv().await {
            match flushed.await {
                Ok(Ok(())) => println!("A {n}"),
                Ok(Err(e)) => return Err(format!("append {n} failed: {e}")),
                Err(_) => return Err(format!("append {n}: callback dropped")),
            }
        }
        Ok(())
    });

    println!("R {}", workload_term(&start));
    let deadline = Instant::now() + LIFETIME;
    let mut n = 0u64;
    while Instant::now() < deadline {
        let op = workload.next_op(&mut rng);
        println!("I {n} {op}");
        let flushed = model::issue(&mut store, &op)
            .await
            .map_err(|e| format!("issuing {op}: {e}"))?;
        match (flushed, op) {
            (Some(flushed), _) => tx
                .send((n, flushed))
                .await
                .map_err(|_| "the ack task stopped".to_string())?,
            // `save_vote` returns once durable.
            (None, model::LogOp::Vote { .. }) => println!("A {n}"),
            // Truncate, purge and committed are queued in order with the appends; some of them
            // wait for the next flush, so the parent also kills while they are in flight.
            (None, _) => {
                if rng.below(2) == 0 {
                    store
                        .flush()
                        .await
                        .map_err(|e| format!("flush after {op}: {e}"))?;
                    println!("A {n}");
                }
            }
        }
        n += 1;
    }
    drop(tx);
    acks.await.map_err(|e| format!("ack task: {e}"))??;
    Ok(())
}

/// The term the store was left in (printed for the log of the test).
fn workload_term(m: &compat_tests::Model) -> u64 {
    m.max_term()
}
