//! `KvOptions`: the defaults are the bounds the state machine always had, a bound of zero is
//! refused before the engine or the snapshot directory is touched, and each bound shows in the
//! writes the state machine makes, on both openraft lines.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::PoisonError;

use openraft::RaftSnapshotBuilder;
use openraft::entry::RaftEntry;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::MemEngine;
use raft_store_core::Op;
use raft_store_core::OptionsError;
use raft_store_core::Space;
use raft_store_core::Visitor;
use raft_store_core::kv::KvOptions;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvResponse;
use raft_store_core::kv::KvStateMachine;

openraft::declare_raft_types!(
    /// The openraft 0.10 type config of these tests.
    pub Config: D = KvRequest, R = KvResponse
);

/// An in-memory engine that keeps a copy of every batch written to it.
#[derive(Default)]
struct Recording {
    inner: MemEngine,
    writes: Mutex<Vec<(Batch, Durability)>>,
}

impl Recording {
    /// The batches written so far, forgetting them.
    fn take(&self) -> Vec<(Batch, Durability)> {
        std::mem::take(&mut *self.writes.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Engine for Recording {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((batch.clone(), durability));
        self.inner.write(batch, durability)
    }
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(space, key)
    }
    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        self.inner.scan(space, range, visit)
    }
    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.last_key(space)
    }
}

/// Whether `batch` puts a key of the state machine's data.
fn puts_data(batch: &Batch) -> bool {
    batch.ops().iter().any(|op| {
        matches!(
            op,
            Op::Put {
                space: Space::Data,
                ..
            }
        )
    })
}

/// Whether `batch` removes a range of the state machine's data.
fn deletes_data(batch: &Batch) -> bool {
    batch.ops().iter().any(|op| {
        matches!(
            op,
            Op::DeleteRange {
                space: Space::Data,
                ..
            }
        )
    })
}

/// An entry at `index` setting `key{index}`.
fn set(index: u64) -> EntryOf<Config> {
    let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 };
    EntryOf::<Config>::new_normal(
        LogIdOf::<Config>::new(leader, index),
        KvRequest::Set {
            key: format!("key{index}"),
            value: vec![7; 10],
        },
    )
}

#[test]
fn the_defaults_are_the_bounds_the_state_machine_always_had() {
    let options = KvOptions::default();
    assert_eq!(options.batch_bytes, 4 << 20);
    assert_eq!(options.sync_every_bytes, 64 << 20);
    assert_eq!(options.delete_chunk, 10_000);
    assert_eq!(options.validate(), Ok(()));

    let dir = tempfile::tempdir().unwrap();
    let sm: KvStateMachine<Config, MemEngine> = KvStateMachine::open(MemEngine::new(), dir.path()).unwrap();
    assert_eq!(sm.options(), &options, "open has the default options");

    let set = KvOptions::default()
        .with_batch_bytes(1)
        .with_sync_every_bytes(2)
        .with_delete_chunk(3);
    assert_eq!(
        (set.batch_bytes, set.sync_every_bytes, set.delete_chunk),
        (1, 2, 3)
    );
}

#[test]
fn a_bound_of_zero_is_refused_before_the_engine_or_the_directory_is_touched() {
    for (options, field) in [
        (KvOptions::default().with_batch_bytes(0), "batch_bytes"),
        (KvOptions::default().with_sync_every_bytes(0), "sync_every_bytes"),
        (KvOptions::default().with_delete_chunk(0), "delete_chunk"),
    ] {
        let typed = options.validate().unwrap_err();
        assert!(
            matches!(typed, OptionsError::Zero { options: "KvOptions", field: f } if f == field),
            "{typed:?}"
        );

        let root = tempfile::tempdir().unwrap();
        let snapshots = root.path().join("snapshots");
        let engine = Arc::new(MemEngine::new());
        let refused = KvStateMachine::<Config, _>::open_with(engine.clone(), &snapshots, options.clone())
            .err()
            .expect("a bound of zero is refused");
        assert!(refused.to_string().contains(&typed.to_string()), "{refused}");
        assert_eq!(engine.last_key(Space::Meta).unwrap(), None, "no format record");
        assert!(!snapshots.exists(), "no snapshot directory");

        let stats = Arc::new(raft_store_core::StoreStats::default());
        let refused =
            KvStateMachine::<Config, _>::open_with_options_and_stats(engine, &snapshots, options, stats);
        assert!(refused.is_err());
    }
}

#[test]
fn an_apply_writes_a_batch_each_time_it_holds_batch_bytes() {
    let writes_for = |options: KvOptions| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Recording::default());
        let mut sm: KvStateMachine<Config, _> =
            KvStateMachine::open_with(engine.clone(), dir.path(), options).unwrap();
        engine.take();
        let replies = sm.apply_entries(&[set(1), set(2), set(3)]).unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(sm.reader().get("key3").unwrap(), Some(vec![7; 10]));
        engine
            .take()
            .iter()
            .filter(|(batch, durability)| puts_data(batch) && *durability == Durability::Buffered)
            .count()
    };
    assert_eq!(
        writes_for(KvOptions::default()),
        1,
        "one batch for the whole call"
    );
    assert_eq!(
        writes_for(KvOptions::default().with_batch_bytes(1)),
        3,
        "every entry fills a batch of one byte"
    );
}

#[test]
fn an_old_generation_is_deleted_delete_chunk_keys_at_a_time() {
    let deletes_for = |options: KvOptions| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Recording::default());
        drop(KvStateMachine::<Config, _>::open(engine.clone(), dir.path()).unwrap());
        // Five keys of generation 1 while generation 0 is current: what an install that
        // never finished leaves, removed by the next open.
        let mut stale = Batch::new();
        for i in 0..5u8 {
            let mut key = 1u64.to_be_bytes().to_vec();
            key.extend_from_slice(format!("stale{i}").as_bytes());
            stale.put(Space::Data, key, vec![i]);
        }
        engine.write(&stale, Durability::Durable).unwrap();
        engine.take();
        let sm = KvStateMachine::<Config, _>::open_with(engine.clone(), dir.path(), options).unwrap();
        assert_eq!(
            engine.last_key(Space::Data).unwrap(),
            None,
            "every stale key is gone"
        );
        drop(sm);
        engine
            .take()
            .iter()
            .filter(|(batch, _)| deletes_data(batch))
            .count()
    };
    assert_eq!(deletes_for(KvOptions::default()), 1);
    assert_eq!(
        deletes_for(KvOptions::default().with_delete_chunk(2)),
        3,
        "2 + 2 + 1 keys"
    );
}

#[tokio::test]
async fn an_install_syncs_every_sync_every_bytes() {
    let source_dir = tempfile::tempdir().unwrap();
    let mut source: KvStateMachine<Config, MemEngine> =
        KvStateMachine::open(MemEngine::new(), source_dir.path()).unwrap();
    source
        .apply_entries(&(1..=10).map(set).collect::<Vec<_>>())
        .unwrap();
    let mut builder = source.get_snapshot_builder().await;

    // One record per batch (a batch of one byte is full at once); the records are synced
    // only once `sync_every_bytes` were written since the last sync.
    let mut durable_data_writes = Vec::new();
    for options in [
        KvOptions::default().with_batch_bytes(1),
        KvOptions::default().with_batch_bytes(1).with_sync_every_bytes(1),
    ] {
        let built = builder.build_snapshot().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Recording::default());
        let mut sm: KvStateMachine<Config, _> =
            KvStateMachine::open_with(engine.clone(), dir.path(), options).unwrap();
        engine.take();
        sm.install_snapshot(&built.meta, built.snapshot).await.unwrap();
        assert_eq!(sm.reader().get("key10").unwrap(), Some(vec![7; 10]));
        let writes = engine.take();
        assert_eq!(
            writes.iter().filter(|(batch, _)| puts_data(batch)).count(),
            10,
            "a batch per record"
        );
        durable_data_writes.push(
            writes
                .iter()
                .filter(|(batch, durability)| puts_data(batch) && *durability == Durability::Durable)
                .count(),
        );
    }
    assert_eq!(
        durable_data_writes,
        [0, 10],
        "64 MiB is never reached; 1 byte is, by every record"
    );
}

mod openraft09 {
    use openraft_09 as openraft;

    use raft_store_core::MemEngine;
    use raft_store_core::kv::KvOptions;
    use raft_store_core::kv::KvRequest;
    use raft_store_core::kv::KvResponse;
    use raft_store_core::kv::SnapshotFile;
    use raft_store_core::openraft09::kv::KvStateMachine;

    openraft::declare_raft_types!(
        /// The openraft 0.9 type config of these tests.
        pub Config09: D = KvRequest, R = KvResponse, SnapshotData = SnapshotFile
    );

    #[test]
    fn open_with_takes_the_options_on_openraft_0_9() {
        let dir = tempfile::tempdir().unwrap();
        let options = KvOptions::default().with_delete_chunk(5);
        let sm: KvStateMachine<Config09, MemEngine> =
            KvStateMachine::open_with(MemEngine::new(), dir.path(), options.clone()).unwrap();
        assert_eq!(sm.options(), &options);
        let zero = KvOptions::default().with_batch_bytes(0);
        assert!(
            KvStateMachine::<Config09, MemEngine>::open_with(MemEngine::new(), dir.path(), zero).is_err()
        );
    }
}

#[cfg(feature = "serde")]
mod serde_form {
    use raft_store_core::kv::KvOptions;

    #[test]
    fn every_field_may_be_left_out_and_an_unknown_one_is_refused() {
        let options: KvOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(options, KvOptions::default());
        let options: KvOptions = serde_json::from_str(r#"{"delete_chunk": 500}"#).unwrap();
        assert_eq!(options, KvOptions::default().with_delete_chunk(500));
        assert_eq!(
            serde_json::to_value(&options).unwrap(),
            serde_json::json!({
                "batch_bytes": 4 << 20,
                "sync_every_bytes": 64 << 20,
                "delete_chunk": 500,
            })
        );
        let err = serde_json::from_str::<KvOptions>(r#"{"batch_size": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
