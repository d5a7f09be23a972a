//! Every case of the raft-store conformance suite, and the bad-input cases, on LMDB.

use std::path::Path;

use raft_store_lmdb::LmdbEngine;
use raft_store_lmdb::LmdbOptions;

raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    LmdbEngine::open(dir, &LmdbOptions::default())
}));

raft_store_testkit::bad_input_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    LmdbEngine::open(dir, &LmdbOptions::default())
}));

/// openraft 0.9's suite and raft-store's 0.9 cases, on the same engine.
mod openraft_0_9 {
    use std::path::Path;

    use super::*;

    raft_store_testkit::openraft09_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
        LmdbEngine::open(dir, &LmdbOptions::default())
    }));
}
