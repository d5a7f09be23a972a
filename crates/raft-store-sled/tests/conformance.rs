//! Every case of the raft-store conformance suite, and the bad-input cases, on sled.

use std::path::Path;

use raft_store_sled::SledEngine;
use raft_store_sled::SledOptions;

raft_store_core::conformance_suite!(raft_store_core::testing::FnHarness(|dir: &Path| {
    SledEngine::open(dir, &SledOptions::default())
}));

raft_store_core::bad_input_suite!(raft_store_core::testing::FnHarness(|dir: &Path| {
    SledEngine::open(dir, &SledOptions::default())
}));
