//! Every case of the raft-store conformance suite, and the bad-input cases, on sled.

use std::path::Path;

use raft_store_sled::SledEngine;
use raft_store_sled::SledOptions;

raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    SledEngine::open(dir, &SledOptions::default())
}));

raft_store_testkit::bad_input_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
    SledEngine::open(dir, &SledOptions::default())
}));

/// openraft 0.9's suite and raft-store's 0.9 cases, on the same engine.
mod openraft_0_9 {
    use std::path::Path;

    use super::*;

    raft_store_testkit::openraft09_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
        SledEngine::open(dir, &SledOptions::default())
    }));
}

/// The suite (all but its generated and multi-group modules, which run above) and the 0.9
/// suite on one group of a multi-group store on the same engine, with two neighbouring groups
/// writing beside it (`GroupHarness`).
mod in_a_group {
    use std::path::Path;

    use super::*;

    raft_store_testkit::conformance_suite!(in_a_group: raft_store_testkit::FnHarness(
        |dir: &Path| { SledEngine::open(dir, &SledOptions::default()) }
    ));

    mod openraft_0_9 {
        use std::path::Path;

        use super::*;

        raft_store_testkit::openraft09_suite!(raft_store_testkit::GroupHarness(
            raft_store_testkit::FnHarness(|dir: &Path| { SledEngine::open(dir, &SledOptions::default()) })
        ));
    }
}
