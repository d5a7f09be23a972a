//! Durable single-entry append latency on a fresh store against the same store after appending
//! and purging 100,000 entries: purging must not make later appends slower.

use criterion::Criterion;
use criterion::criterion_group;
use criterion::criterion_main;
use raft_store_bench::backends;

fn purge_then_append(c: &mut Criterion) {
    for spec in backends() {
        let (name, open) = (spec.name, spec.open);
        let mut group = c.benchmark_group(format!("purge_then_append/{name}"));
        group.sample_size(30);
        group.measurement_time(std::time::Duration::from_secs(5));

        let fresh_dir = tempfile::tempdir().expect("temp dir");
        let mut fresh = open(&fresh_dir.path().join(name)).expect("open fresh store");
        group.bench_function("fresh", |b| b.iter(|| fresh.append(1, 256).expect("append")));
        drop(fresh);

        let purged_dir = tempfile::tempdir().expect("temp dir");
        let mut purged = open(&purged_dir.path().join(name)).expect("open store");
        purged.fill(100_000, 256).expect("fill 100,000 entries");
        let last = purged.last_index();
        purged.purge_upto(last).expect("purge 100,000 entries");
        group.bench_function("after_purge_100k", |b| {
            b.iter(|| purged.append(1, 256).expect("append"));
        });
        group.finish();
    }
}

criterion_group!(benches, purge_then_append);
criterion_main!(benches);
