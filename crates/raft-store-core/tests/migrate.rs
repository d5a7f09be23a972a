//! `migrate::openraft_0_9_to_0_10`: a store written through the openraft 0.9 glue, with a log
//! (some of it purged), a vote, a committed id, a key-value state machine and a snapshot, reads
//! the same through the 0.10 glue after the migration; what the migration refuses.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;
use openraft_09 as openraft09;
use openraft09::RaftSnapshotBuilder;
use raft_store_core::Engine;
use raft_store_core::FormatError;
use raft_store_core::MemEngine;
use raft_store_core::MessagePack;
use raft_store_core::StoreError;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvResponse;
use raft_store_core::migrate::openraft_0_9_to_0_10;
use raft_store_testkit::openraft09::TestConfig09;
use raft_store_testkit::run;

openraft::declare_raft_types!(Kv10: D = KvRequest, R = KvResponse);

fn log_id09(term: u64, index: u64) -> openraft09::LogId<u64> {
    openraft09::LogId::new(openraft09::CommittedLeaderId::new(term, 1), index)
}

fn set(i: u64) -> KvRequest {
    KvRequest::Set {
        key: format!("key-{i:03}"),
        value: vec![u8::try_from(i % 251).expect("below 251"); 3],
    }
}

fn entries09() -> Vec<openraft09::Entry<TestConfig09>> {
    let nodes: BTreeMap<u64, openraft09::BasicNode> = (1..=3)
        .map(|n| (n, openraft09::BasicNode::new(format!("10.0.0.{n}:7000"))))
        .collect();
    let membership = openraft09::Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes);
    let mut out = vec![
        openraft09::Entry {
            log_id: log_id09(1, 1),
            payload: openraft09::EntryPayload::Blank,
        },
        openraft09::Entry {
            log_id: log_id09(1, 2),
            payload: openraft09::EntryPayload::Membership(membership),
        },
    ];
    out.extend((3..=30).map(|i| openraft09::Entry {
        log_id: log_id09(if i > 20 { 2 } else { 1 }, i),
        payload: openraft09::EntryPayload::Normal(set(i)),
    }));
    out
}

/// A 0.9 store in `engine` (snapshots in `snapshots`): 30 entries, 1..=5 purged, a vote, the
/// committed id 30, every entry applied and a snapshot of the first 20.
fn write_09_store(engine: &Arc<MemEngine>, snapshots: &std::path::Path) {
    use openraft09::storage::RaftLogStorage as _;
    use openraft09::storage::RaftStateMachine as _;
    run(async {
        let mut log: raft_store_core::openraft09::LogStore<TestConfig09, _> =
            raft_store_core::openraft09::LogStore::open(engine.clone()).expect("writing the 0.9 store");
        let mut sm: raft_store_core::openraft09::kv::KvStateMachine<TestConfig09, _> =
            raft_store_core::openraft09::kv::KvStateMachine::open(engine.clone(), snapshots)
                .expect("writing the 0.9 store");
        let all = entries09();
        log.append_and_wait(all.clone())
            .await
            .expect("writing the 0.9 store");
        sm.apply(all[..20].to_vec()).await.expect("writing the 0.9 store");
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("writing the 0.9 store");
        sm.apply(all[20..].to_vec()).await.expect("writing the 0.9 store");
        log.purge(log_id09(1, 5)).await.expect("writing the 0.9 store");
        log.save_vote(&openraft09::Vote::new_committed(2, 1))
            .await
            .expect("writing the 0.9 store");
        log.save_committed(Some(log_id09(2, 30)))
            .await
            .expect("writing the 0.9 store");
        log.flush().await.expect("writing the 0.9 store");
        sm.sync().expect("writing the 0.9 store");
    });
}

#[test]
fn a_migrated_store_reads_the_same_through_the_0_10_glue() {
    let dirs = tempfile::tempdir().unwrap();
    let (old_snaps, new_snaps) = (dirs.path().join("old"), dirs.path().join("new"));
    let old = Arc::new(MemEngine::new());
    write_09_store(&old, &old_snaps);

    let new = Arc::new(MemEngine::new());
    let done =
        openraft_0_9_to_0_10::<TestConfig09, Kv10, MessagePack, _, _>(&old, &old_snaps, &new, &new_snaps)
            .unwrap();
    assert_eq!(
        (done.entries, done.records, done.snapshots),
        (25, 28, 1),
        "{done:?}"
    );

    run(async {
        let mut log: raft_store_core::LogStore<Kv10, _> =
            raft_store_core::LogStore::open(new.clone()).unwrap();
        let state = log.get_log_state().await.unwrap();
        let purged = state.last_purged_log_id.unwrap();
        let last = state.last_log_id.unwrap();
        assert_eq!((purged.leader_id.term, purged.index), (1, 5));
        assert_eq!((last.leader_id.term, last.index), (2, 30));
        let read = log.try_get_log_entries(0..100).await.unwrap();
        assert_eq!(read.len(), 25);
        for (entry, want) in read.iter().zip(&entries09()[5..]) {
            assert_eq!(entry.log_id.index, want.log_id.index);
            assert_eq!(entry.log_id.leader_id.term, want.log_id.leader_id.term);
            assert_eq!(entry.log_id.leader_id.node_id, 1);
            match (&entry.payload, &want.payload) {
                (openraft::EntryPayload::Normal(a), openraft09::EntryPayload::Normal(b)) => assert_eq!(a, b),
                (a, b) => panic!("entry {}: {a:?} for {b:?}", want.log_id.index),
            }
        }
        let vote = log.read_vote().await.unwrap().unwrap();
        assert!(vote.is_committed());
        assert_eq!((vote.leader_id.term, vote.leader_id.node_id), (2, 1));
        let committed = log.read_committed().await.unwrap().unwrap();
        assert_eq!(committed.index, 30);

        let mut sm: raft_store_core::kv::KvStateMachine<Kv10, _> =
            raft_store_core::kv::KvStateMachine::open(new.clone(), &new_snaps).unwrap();
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|a| a.index), Some(30));
        assert_eq!(membership.log_id().map(|l| l.index), Some(2));
        let voters: Vec<u64> = membership.membership().voter_ids().collect();
        assert_eq!(voters, vec![1, 2, 3]);
        let addr = membership.membership().get_node(&2).map(|n| n.addr.clone());
        assert_eq!(addr.as_deref(), Some("10.0.0.2:7000"));
        assert_eq!(sm.reader().get("key-017").unwrap(), Some(vec![17; 3]));
        let snapshot = sm
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("the converted snapshot");
        assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(20));
        // The converted snapshot installs: the state machine goes back to entry 20.
        sm.install_snapshot(&snapshot.meta.clone(), snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(sm.reader().get("key-025").unwrap(), None);
        assert_eq!(sm.reader().get("key-020").unwrap(), Some(vec![20; 3]));
        let replies = sm.apply_entries(&[]).unwrap();
        assert_eq!(replies, Vec::<KvResponse>::new());
    });

    // With openraft's default types (term and node id in the leader id, u64 ids, BasicNode) the
    // two lines encode the log the same, byte for byte: the migration only rewrites the format
    // record for them. (Other type configs can differ; the store names its line either way.)
    for space in [raft_store_core::Space::Log, raft_store_core::Space::Meta] {
        let mut old_values = Vec::new();
        let mut new_values = Vec::new();
        for (engine, values) in [(&old, &mut old_values), (&new, &mut new_values)] {
            engine
                .scan(space, raft_store_core::KeyRange::ALL, &mut |k, v| {
                    if k != b"format" {
                        values.push((k.to_vec(), v.to_vec()));
                    }
                    std::ops::ControlFlow::Continue(())
                })
                .unwrap();
        }
        assert_eq!(
            old_values, new_values,
            "keyspace {space}: the default types encode alike on both lines"
        );
    }

    // The new store is a 0.10 store: the 0.9 glue refuses it.
    let refused = raft_store_core::openraft09::LogStore::<TestConfig09, _>::open(new.clone());
    assert!(matches!(
        refused,
        Err(StoreError::Format(FormatError::WrongOpenraftLine { .. }))
    ));
}

#[test]
fn the_migration_refuses_a_0_10_source_and_a_target_that_is_not_empty() {
    let dirs = tempfile::tempdir().unwrap();
    let snaps = dirs.path().join("s");
    let ten = Arc::new(MemEngine::new());
    drop(raft_store_core::LogStore::<Kv10, _>::open(ten.clone()).unwrap());
    let err = openraft_0_9_to_0_10::<TestConfig09, Kv10, MessagePack, _, _>(
        &ten,
        &snaps,
        &MemEngine::new(),
        &snaps,
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Format(FormatError::WrongOpenraftLine { .. })),
        "{err}"
    );

    let nine = Arc::new(MemEngine::new());
    write_09_store(&nine, &snaps);
    let used = Arc::new(MemEngine::new());
    drop(raft_store_core::LogStore::<Kv10, _>::open(used.clone()).unwrap());
    let err = openraft_0_9_to_0_10::<TestConfig09, Kv10, MessagePack, _, _>(
        &nine,
        &snaps,
        &used,
        &dirs.path().join("t"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// Migrate a 0.9 store holding keys of 1, 100 and 5000 bytes from an engine with
/// `from_limits` to one with `to_limits`, and read every key back through the 0.10 glue.
fn migrate_long_keys(from_limits: raft_store_core::EngineLimits, to_limits: raft_store_core::EngineLimits) {
    use raft_store_testkit::FaultEngine;
    let dirs = tempfile::tempdir().expect("migrating long keys");
    let (old_snaps, new_snaps) = (dirs.path().join("old"), dirs.path().join("new"));
    let keys = ["a".to_string(), "m".repeat(100), "z".repeat(5000)];
    let old = Arc::new(FaultEngine::new(MemEngine::new()));
    old.faults().set_limits(from_limits);
    {
        drop(
            raft_store_core::openraft09::LogStore::<TestConfig09, _>::open(old.clone())
                .expect("migrating long keys"),
        );
        let mut sm: raft_store_core::openraft09::kv::KvStateMachine<TestConfig09, _> =
            raft_store_core::openraft09::kv::KvStateMachine::open(old.clone(), &old_snaps)
                .expect("migrating long keys");
        let entries: Vec<openraft09::Entry<TestConfig09>> = keys
            .iter()
            .zip(1..)
            .map(|(key, i)| openraft09::Entry {
                log_id: log_id09(1, i),
                payload: openraft09::EntryPayload::Normal(KvRequest::Set {
                    key: key.clone(),
                    value: key.len().to_string().into_bytes(),
                }),
            })
            .collect();
        sm.apply_entries(&entries).expect("migrating long keys");
        sm.sync().expect("migrating long keys");
    }
    let new = Arc::new(FaultEngine::new(MemEngine::new()));
    new.faults().set_limits(to_limits);
    let done =
        openraft_0_9_to_0_10::<TestConfig09, Kv10, MessagePack, _, _>(&old, &old_snaps, &new, &new_snaps)
            .expect("migrating long keys");
    assert_eq!(done.records, 3, "{done:?}");
    let sm: raft_store_core::kv::KvStateMachine<Kv10, _> =
        raft_store_core::kv::KvStateMachine::open(new.clone(), &new_snaps).expect("migrating long keys");
    for key in &keys {
        assert_eq!(
            sm.reader().get(key).expect("migrating long keys"),
            Some(key.len().to_string().into_bytes()),
            "the key of {} bytes after the migration",
            key.len()
        );
    }
    let mut seen = Vec::new();
    sm.reader()
        .scan(&mut |k, _| {
            seen.push(k.to_string());
            std::ops::ControlFlow::Continue(())
        })
        .expect("migrating long keys");
    assert_eq!(seen, keys, "the keys a scan finds after the migration");
}

#[test]
fn the_migration_lays_long_keys_out_for_the_target_engine() {
    let small = raft_store_core::EngineLimits {
        max_key: 64,
        ..raft_store_core::EngineLimits::NONE
    };
    let lmdb_like = raft_store_core::EngineLimits {
        max_key: 511,
        ..raft_store_core::EngineLimits::NONE
    };
    let none = raft_store_core::EngineLimits::NONE;
    // Hashed on the source, whole on the target; whole on the source, hashed on the target
    // (a write of the 5000-byte key whole would be refused); and one key of each on both.
    migrate_long_keys(small, none);
    migrate_long_keys(none, small);
    migrate_long_keys(small, lmdb_like);
}
