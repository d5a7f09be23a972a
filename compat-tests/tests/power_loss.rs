//! Simulated power loss on the in-memory engine, through the same checks as the crash tests: a
//! random workload runs through `LogStore` over `FaultEngine<MemEngine>`, the power is cut at a
//! random operation (every later write fails), everything never synced is dropped, and the
//! reopened store must hold the state after some prefix of the issued operations no shorter than
//! the acknowledged one.

use compat_tests::LogOp;
use compat_tests::Model;
use compat_tests::Rng;
use compat_tests::model;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_testkit::FaultEngine;
use raft_store_testkit::TestConfig;
use raft_store_testkit::util;

#[test]
fn power_loss_keeps_every_acknowledged_operation() {
    let rounds = compat_tests::count_from_env("RAFT_STORE_POWER_CUTS", 200);
    let seed = compat_tests::seed();
    eprintln!("{rounds} power cuts, RAFT_STORE_SEED={seed}");
    let mut rng = Rng::new(seed);
    let mem = MemEngine::with_power_loss();
    let mut base = Model::default();
    let mut previous: (Vec<LogOp>, usize) = (Vec::new(), 0);
    let (mut issued, mut acked_total, mut dropped) = (0usize, 0usize, 0usize);

    util::run(async {
        // One more open than cuts: the last round only checks what the last cut left.
        for round in 0..=rounds {
            let mut store: LogStore<TestConfig, FaultEngine<MemEngine>> =
                LogStore::open(FaultEngine::new(mem.clone())).expect("open after power loss");
            let observed = model::observe(&mut store)
                .await
                .unwrap_or_else(|e| panic!("round {round} (seed {seed}): {e}"));
            let prefix = model::check(&base, &previous.0, previous.1, &observed)
                .unwrap_or_else(|e| panic!("round {round} (seed {seed}): {e}"));
            dropped += previous.0.len() - prefix;
            base = observed;
            if round == rounds {
                break;
            }

            let faults = store.engine().faults().clone();
            let mut workload = compat_tests::Workload::resume(&base);
            let count = rng.between(1, 120) as usize;
            let cut_at = rng.below(count as u64) as usize;
            let mut ops = Vec::new();
            let mut pending = Vec::new();
            let mut acked = 0;
            for n in 0..count {
                if n == cut_at {
                    faults.cut_power();
                }
                let op = workload.next_op(&mut rng);
                ops.push(op);
                match model::issue(&mut store, &op).await {
                    Ok(Some(flushed)) => pending.push((n, flushed)),
                    Ok(None) if matches!(op, LogOp::Vote { .. }) => acked = n + 1,
                    Ok(None) => {}
                    // After the cut the store refuses work: nothing later is issued.
                    Err(_) => break,
                }
                if rng.below(16) == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for (n, flushed) in pending {
                if util::wait_flushed(flushed).await.is_ok() {
                    acked = acked.max(n + 1);
                }
            }
            issued += ops.len();
            acked_total += acked;
            drop(store);
            mem.power_loss();
            previous = (ops, acked);
        }
    });
    eprintln!(
        "{rounds} power cuts: {issued} operations issued, {acked_total} acknowledged, \
         {dropped} unacknowledged ones lost"
    );
    assert!(
        dropped > 0,
        "no power cut ever dropped an unsynced operation: the test exercised nothing"
    );
}
