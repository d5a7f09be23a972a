//! Every case of the raft-store conformance suite, on redb.

use std::path::Path;

use raft_store_redb::RedbEngine;
use raft_store_redb::RedbOptions;

raft_store_core::conformance_suite!(raft_store_core::testing::FnHarness(|dir: &Path| {
    RedbEngine::open(dir, &RedbOptions::default())
}));

raft_store_core::bad_input_suite!(raft_store_core::testing::FnHarness(|dir: &Path| {
    RedbEngine::open(dir, &RedbOptions::default())
}));
