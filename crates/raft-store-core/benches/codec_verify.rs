//! What the decode check of `LogStore::append` costs: sealing an entry alone against sealing it
//! and decoding it again, side by side, for the entry shapes raft-kv and the benchmarks send,
//! and a whole pipelined append of 1,000 entries through `LogStore` over `MemEngine` (which
//! includes the check) for scale.
//!
//! `cargo bench -p raft-store-core --bench codec_verify`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::Criterion;
use criterion::criterion_group;
use criterion::criterion_main;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use raft_store_core::Bincode;
use raft_store_core::Codec;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::kv::KvRequest;
use raft_store_engine::codec::ENVELOPE_HEADER;
use raft_store_engine::codec::seal;
use raft_store_testkit::TestConfig;
use raft_store_testkit::kv_cases::KvTestConfig;
use raft_store_testkit::kv_cases::kv_entry;
use raft_store_testkit::util::entry_with;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn pair<T: Serialize + DeserializeOwned>(c: &mut Criterion, name: &str, value: &T) {
    let mut group = c.benchmark_group(format!("codec_verify/{name}"));
    group.bench_function("seal", |b| {
        b.iter(|| black_box(seal::<Bincode, _>(black_box(value))));
    });
    group.bench_function("seal+decode", |b| {
        b.iter(|| {
            let sealed = seal::<Bincode, _>(black_box(value)).expect("seal");
            let back: T = Bincode::decode(&sealed[ENVELOPE_HEADER..]).expect("decode");
            black_box(back)
        });
    });
    group.finish();
}

fn codec_verify(c: &mut Criterion) {
    pair(c, "text 256 B", &entry_with(1, 7, "x".repeat(256)));
    pair(c, "text 64 KiB", &entry_with(1, 7, "x".repeat(64 << 10)));
    let pairs: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("k{i}"), b"v".to_vec())).collect();
    let many: EntryOf<KvTestConfig> = kv_entry(9, KvRequest::SetMany { pairs });
    pair(c, "SetMany 60 pairs", &many);
    let map: BTreeMap<String, u64> = (0..1000).map(|i| (format!("key{i}"), i)).collect();
    pair(c, "map of 1000 u64", &map);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let mut store = LogStore::<TestConfig, _>::open(MemEngine::new()).expect("store");
    let mut next = 1u64;
    let mut group = c.benchmark_group("codec_verify/LogStore");
    group.throughput(criterion::Throughput::Elements(1000));
    group.bench_function("append 1000 x 256 B", |b| {
        b.iter(|| {
            rt.block_on(async {
                let entries: Vec<_> = (next..next + 1000)
                    .map(|i| entry_with(1, i, "x".repeat(256)))
                    .collect();
                next += 1000;
                let (tx, rx) = TestConfig::oneshot();
                store
                    .append(entries, IOFlushed::signal(tx))
                    .await
                    .expect("append");
                rx.await.expect("callback").expect("durable");
            });
        });
    });
    group.finish();
}

criterion_group!(benches, codec_verify);
criterion_main!(benches);
