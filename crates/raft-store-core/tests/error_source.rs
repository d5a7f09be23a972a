//! The store's errors keep the engine's error as their `source`, and `StoreError::find` gets the
//! store's error back out of the `io::Error` openraft 0.10's storage traits return.

use std::error::Error as _;
use std::io;

use openraft::storage::RaftLogStorage;
use raft_store_core::EngineError;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::StoreError;
use raft_store_testkit::Fault;
use raft_store_testkit::FaultEngine;
use raft_store_testkit::TestConfig;
use raft_store_testkit::append;
use raft_store_testkit::append_nowait;
use raft_store_testkit::entries;
use raft_store_testkit::run;
use raft_store_testkit::wait_flushed;

#[test]
fn a_failed_write_keeps_the_engine_error_as_its_source_and_can_be_found_again() {
    run(async {
        let engine = FaultEngine::new(MemEngine::new());
        let faults = engine.faults().clone();
        let mut store: LogStore<TestConfig, _> = LogStore::open(engine).unwrap();
        append(&mut store, entries(1, 1, 3)).await.unwrap();

        faults.fail_nth_write(1, Fault::NoSpace);
        let rx = append_nowait(&mut store, entries(1, 4, 4)).await.unwrap();
        let err = wait_flushed(rx)
            .await
            .expect_err("the failed write reached the callback");
        let io = err
            .downcast_ref::<io::Error>()
            .expect("openraft 0.10's callbacks carry an io::Error");
        assert_eq!(io.kind(), io::ErrorKind::StorageFull);
        let found = StoreError::find(io).expect("the store's error inside the io::Error");
        let StoreError::WriteFailed { kind, source, .. } = found else {
            panic!("expected WriteFailed, found {found}");
        };
        assert_eq!(*kind, io::ErrorKind::StorageFull);
        assert!(matches!(**source, EngineError::Io { .. }), "{source}");
        let chained = found.source().expect("WriteFailed has a source");
        assert!(chained.to_string().contains("ENOSPC"), "{chained}");

        // Later writes are refused, naming the first failure as their source.
        let refused = store
            .save_vote(&raft_store_testkit::vote(2, 1))
            .await
            .unwrap_err();
        let found = StoreError::find(&refused).expect("the store's error inside the refusal");
        let StoreError::Poisoned { source, .. } = found else {
            panic!("expected Poisoned, found {found}");
        };
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        let first = store.poisoned().expect("the store is poisoned");
        assert!(
            std::sync::Arc::ptr_eq(&first, source),
            "the refusal's source is the first failure"
        );
    });
}

/// An application's error around a store's error.
#[derive(Debug, thiserror::Error)]
#[error("wrapped")]
struct Wrapper(#[source] StoreError);

#[test]
fn find_walks_a_chain_and_finds_nothing_where_there_is_no_store_error() {
    let plain = io::Error::other("not from a store");
    assert!(StoreError::find(&plain).is_none());
    let wrapped = Wrapper(StoreError::Closed { backend: "mem" });
    assert!(matches!(
        StoreError::find(&wrapped),
        Some(StoreError::Closed { .. })
    ));
}
