//! What LMDB's `MDB_APPEND` buys for log keys: durable appends of 1 and of 256 entries with the
//! flag on and off, on stores already holding 100,000 entries, and the file size per entry.

use criterion::Criterion;
use criterion::criterion_group;
use criterion::criterion_main;
use raft_store_bench::StoreTarget;
use raft_store_bench::Target;
use raft_store_lmdb::LmdbEngine;
use raft_store_lmdb::LmdbOptions;

fn open(dir: &std::path::Path, append_mode: bool) -> StoreTarget<raft_store_bench::Line10, LmdbEngine> {
    let engine = LmdbEngine::open(dir, &LmdbOptions::default().append_mode(append_mode)).expect("open lmdb");
    StoreTarget::<raft_store_bench::Line10, _>::new(if append_mode { "append" } else { "put" }, engine)
        .expect("open store")
}

fn lmdb_append_mode(c: &mut Criterion) {
    let mut group = c.benchmark_group("lmdb_append_mode");
    group.sample_size(30);
    group.measurement_time(std::time::Duration::from_secs(5));
    for append_mode in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut t = open(dir.path(), append_mode);
        t.fill(100_000, 256).expect("fill");
        let bytes = std::fs::metadata(dir.path().join("data.mdb")).map_or(0, |m| m.len());
        eprintln!(
            "lmdb {}: data.mdb holds {} bytes per 256 B entry after 100,000 entries",
            t.name(),
            bytes / 100_000
        );
        group.bench_function(format!("{}/1x256B", t.name()), |b| {
            b.iter(|| t.append(1, 256).expect("append"));
        });
        group.bench_function(format!("{}/256x256B", t.name()), |b| {
            b.iter(|| t.append(256, 256).expect("append"));
        });
    }
    group.finish();
}

criterion_group!(benches, lmdb_append_mode);
criterion_main!(benches);
