//! The store-level suite and openraft's suite with postcard (with the value comparison it is
//! only taken with), through the `log_store_suite!` macro that users run against stores of
//! their own.

use std::io;
use std::path::Path;

use raft_store_core::EntryCheck;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::Postcard;
use raft_store_testkit::EngineHarness;
use raft_store_testkit::MemHarness;
use raft_store_testkit::StoreOpener;
use raft_store_testkit::TestConfig;

struct PostcardStores(MemHarness);

impl StoreOpener for PostcardStores {
    type Store = LogStore<TestConfig, MemEngine, Postcard>;

    fn open(&self, dir: &Path) -> Result<Self::Store, io::Error> {
        let engine = self.0.open(dir).map_err(|e| io::Error::new(e.kind(), e))?;
        Ok(LogStore::open_checked(engine, EntryCheck::equal())?)
    }
}

raft_store_testkit::log_store_suite!(in_memory: PostcardStores(MemHarness::new()));

#[test]
fn a_default_store_refuses_to_open_with_postcard() {
    let engine = MemEngine::new();
    drop(LogStore::<TestConfig, _>::open(engine.clone()).unwrap());
    let err = LogStore::<TestConfig, _, Postcard>::open_checked(engine, EntryCheck::equal())
        .err()
        .expect("opened with the wrong codec");
    let msg = err.to_string();
    assert!(
        msg.contains("msgpack-named1") && msg.contains("postcard1"),
        "{msg}"
    );
}

#[test]
fn postcard_without_a_check_is_refused_at_open() {
    let err = LogStore::<TestConfig, _, Postcard>::open(MemEngine::new())
        .err()
        .expect("postcard taken without a value check");
    assert!(
        matches!(
            err,
            raft_store_core::StoreError::UncheckedCodec {
                codec: "postcard1",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("EntryCheck::equal()"), "{err}");
}

raft_store_testkit::codec_suite!(raft_store_core::Postcard);
