//! The suite of the openraft 0.9 glue on the in-memory engine, whose simulated power loss
//! drops what was never synced.

raft_store_testkit::openraft09_suite!(raft_store_testkit::MemHarness::new());
