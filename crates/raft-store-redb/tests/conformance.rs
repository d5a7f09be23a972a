//! Every case of the raft-store conformance suite, for both openraft lines, on redb.

use std::path::Path;

use raft_store_redb::RedbEngine;
use raft_store_redb::RedbOptions;

raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    RedbEngine::open(dir, &RedbOptions::default())
}));

raft_store_testkit::bad_input_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    RedbEngine::open(dir, &RedbOptions::default())
}));

/// openraft 0.9's suite and raft-store's 0.9 cases, on the same engine.
mod openraft_0_9 {
    use std::path::Path;

    use super::*;

    raft_store_testkit::openraft09_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
        RedbEngine::open(dir, &RedbOptions::default())
    }));
}
