//! The key-value state machine's crash test workload: request `i` is a pure function of the
//! seed and `i`, so the expected data after applying entries `1..=n` is computed by folding the
//! requests, whatever the process that applied them went through.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_core::LogStore;
use raft_store_core::StoreError;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvStateMachine;
use raft_store_testkit::kv_cases::KvModel;
use raft_store_testkit::kv_cases::KvTestConfig;

use crate::Rng;

/// The log store of the key-value crash tests.
pub type KvLogStore = LogStore<KvTestConfig, Arc<AnyEngine>>;
/// The state machine of the key-value crash tests.
pub type KvSm = KvStateMachine<KvTestConfig, Arc<AnyEngine>>;

/// Open the log store and the state machine of `backend` under `dir` (`dir/store`,
/// `dir/snapshots`), log store first, as a server does.
pub fn open_kv(backend: Backend, dir: &Path) -> Result<(KvLogStore, KvSm), StoreError> {
    let engine = Arc::new(StoreConfig::new(backend, dir.join("store")).open_engine()?);
    let log = LogStore::open(engine.clone())?;
    let sm = KvStateMachine::open(engine, dir.join("snapshots"))?;
    Ok((log, sm))
}

/// Request number `index` (from 1) of the workload `seed`: over 500 keys with short values;
/// every 997th sets 20 keys to 256 KiB each (5 MiB, more than the state machine's 4 MiB batch),
/// so an apply call holding it is written as several engine batches.
pub fn request(seed: u64, index: u64) -> KvRequest {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let key = |rng: &mut Rng| format!("key/{:03}", rng.below(500));
    if index.is_multiple_of(997) {
        let big = "w".repeat(256 << 10);
        return KvRequest::SetMany {
            pairs: (0..20)
                .map(|j| (key(&mut rng), format!("{index}.{j}:{big}").into_bytes()))
                .collect(),
        };
    }
    let value = |rng: &mut Rng| format!("{index}:{}", rng.below(1_000_000)).into_bytes();
    match rng.below(10) {
        0..=4 => KvRequest::Set {
            key: key(&mut rng),
            value: value(&mut rng),
        },
        5 | 6 => {
            let n = rng.between(1, 6);
            KvRequest::SetMany {
                pairs: (0..n).map(|_| (key(&mut rng), value(&mut rng))).collect(),
            }
        }
        7 | 8 => KvRequest::Delete { key: key(&mut rng) },
        _ => KvRequest::UpdateIfExists {
            key: key(&mut rng),
            value: value(&mut rng),
        },
    }
}

/// The data after applying requests `1..=applied` of workload `seed`.
pub fn expected(seed: u64, applied: u64) -> BTreeMap<String, Vec<u8>> {
    // One request at a time: the whole history would hold every 5 MiB request at once.
    let mut model = KvModel::default();
    for i in 1..=applied {
        model.apply(&request(seed, i));
    }
    model.0
}
