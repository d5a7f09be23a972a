//! The facade's run-time choice of engine (`Store<C>` = `LogStore<C, AnyEngine>`, a `match`
//! per engine call) against the same engine used directly: the dispatch must not show.
//!
//! Measured on the in-memory engine, where nothing else (no fsync) hides a difference, and on
//! redb, the default backend.

use criterion::Criterion;
use criterion::criterion_group;
use criterion::criterion_main;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_bench::StoreTarget;
use raft_store_bench::Target;

fn facade_dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("facade_dispatch");
    group.sample_size(30);
    group.measurement_time(std::time::Duration::from_secs(5));
    for backend in [Backend::Mem, Backend::Redb] {
        let direct_dir = tempfile::tempdir().expect("temp dir");
        let facade_dir = tempfile::tempdir().expect("temp dir");
        let config = StoreConfig::new(backend, facade_dir.path());
        let mut facade = StoreTarget::<raft_store_bench::Line10, AnyEngine>::new(
            "facade",
            config.open_engine().expect("open"),
        )
        .expect("store");
        let mut direct: Box<dyn Target> = match backend {
            Backend::Mem => Box::new(
                StoreTarget::<raft_store_bench::Line10, _>::new("direct", raft_store_core::MemEngine::new())
                    .expect("store"),
            ),
            _ => Box::new(
                StoreTarget::<raft_store_bench::Line10, _>::new(
                    "direct",
                    raft_store_redb::RedbEngine::open(
                        direct_dir.path(),
                        &raft_store_redb::RedbOptions::default(),
                    )
                    .expect("open"),
                )
                .expect("store"),
            ),
        };
        group.bench_function(format!("{backend}/direct/1x256B"), |b| {
            b.iter(|| direct.append(1, 256).expect("append"));
        });
        group.bench_function(format!("{backend}/facade/1x256B"), |b| {
            b.iter(|| facade.append(1, 256).expect("append"));
        });
    }
    group.finish();
}

criterion_group!(benches, facade_dispatch);
criterion_main!(benches);
