//! The store-level suite and openraft's suite with the second codec, postcard, through the
//! `log_store_suite!` macro that users run against stores of their own.

use std::io;
use std::path::Path;

use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::Postcard;
use raft_store_core::testing::EngineHarness;
use raft_store_core::testing::MemHarness;
use raft_store_core::testing::StoreOpener;
use raft_store_core::testing::TestConfig;

struct PostcardStores(MemHarness);

impl StoreOpener for PostcardStores {
    type Store = LogStore<TestConfig, MemEngine, Postcard>;

    fn open(&self, dir: &Path) -> Result<Self::Store, io::Error> {
        let engine = self.0.open(dir).map_err(|e| io::Error::new(e.kind(), e))?;
        Ok(LogStore::open(engine)?)
    }
}

raft_store_core::log_store_suite!(in_memory: PostcardStores(MemHarness::new()));

#[test]
fn a_bincode_store_refuses_to_open_with_postcard() {
    let engine = MemEngine::new();
    drop(LogStore::<TestConfig, _>::open(engine.clone()).unwrap());
    let err = LogStore::<TestConfig, _, Postcard>::open(engine)
        .err()
        .expect("opened with the wrong codec");
    let msg = err.to_string();
    assert!(msg.contains("bincode2") && msg.contains("postcard1"), "{msg}");
}

raft_store_core::codec_suite!(raft_store_core::Postcard);
