//! Every operation of the matrix on every target, under criterion: durable appends (batch 1, 16,
//! 256 x 64 B, 1 KiB, 16 KiB), 1,000 pipelined appends, warm reads of 1, 64 and 1,024 entries,
//! truncating the last 10 and 1,000 entries, purging 10,000 and 100,000, and reopening a store of
//! 1,000,000 entries.
//!
//! The report binary runs the same operations (`raft_store_bench::Op`) with percentiles and
//! ratios to the floor; this bench gives criterion's statistics and run-to-run comparison.

use std::time::Duration;

use criterion::BenchmarkGroup;
use criterion::Criterion;
use criterion::SamplingMode;
use criterion::criterion_group;
use criterion::criterion_main;
use criterion::measurement::WallTime;
use raft_store_bench::Op;
use raft_store_bench::Target;
use raft_store_bench::TargetSpec;
use raft_store_bench::targets;

/// Time `op` on `target` the way the report does: each run prepares untimed.
fn bench_op(group: &mut BenchmarkGroup<'_, WallTime>, target: &mut dyn Target, op: Op) {
    match op.prepare(target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return,
        Err(e) => panic!("{}: preparing {}: {e}", target.name(), op.label()),
    }
    let name = target.name().to_string();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| op.run(target).unwrap_or_else(|e| panic!("{}: {e}", op.label())))
                .sum()
        });
    });
}

/// A group for operations whose untimed preparation is far longer than the operation: criterion
/// sizes iteration counts from the timed part only, so each sample must be a single run.
fn heavy_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(1));
    g
}

fn open(spec: &TargetSpec, dir: &tempfile::TempDir) -> Box<dyn Target> {
    (spec.open)(&dir.path().join(spec.name)).unwrap_or_else(|e| panic!("opening {}: {e}", spec.name))
}

fn appends(c: &mut Criterion) {
    for size in [64usize, 1024, 16 * 1024] {
        for batch in [1u64, 16, 256] {
            let op = Op::Append { batch, size };
            let mut g = c.benchmark_group(op.label());
            g.sample_size(20)
                .measurement_time(Duration::from_secs(2))
                .warm_up_time(Duration::from_millis(500));
            for spec in targets() {
                let dir = tempfile::tempdir().expect("temp dir");
                bench_op(&mut g, &mut *open(&spec, &dir), op);
            }
            g.finish();
        }
    }
    let op = Op::Pipelined {
        appends: 1000,
        size: 256,
    };
    let mut g = c.benchmark_group(op.label());
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for spec in targets() {
        let dir = tempfile::tempdir().expect("temp dir");
        bench_op(&mut g, &mut *open(&spec, &dir), op);
    }
    g.finish();
}

fn reads(c: &mut Criterion) {
    for entries in [1, 64, 1024] {
        let op = Op::GetLog { entries };
        let mut g = c.benchmark_group(op.label());
        g.sample_size(30)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        for spec in targets() {
            let dir = tempfile::tempdir().expect("temp dir");
            bench_op(&mut g, &mut *open(&spec, &dir), op);
        }
        g.finish();
    }
}

fn removals(c: &mut Criterion) {
    for op in [
        Op::TruncateLast { entries: 10 },
        Op::TruncateLast { entries: 1000 },
        Op::Purge { entries: 10_000 },
        Op::Purge { entries: 100_000 },
        Op::Reopen { entries: 1_000_000 },
    ] {
        let mut g = heavy_group(c, &op.label());
        for spec in targets() {
            let dir = tempfile::tempdir().expect("temp dir");
            bench_op(&mut g, &mut *open(&spec, &dir), op);
        }
        g.finish();
    }
}

criterion_group!(benches, appends, reads, removals);
criterion_main!(benches);
