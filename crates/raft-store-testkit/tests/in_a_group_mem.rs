//! The conformance suite on one group of a multi-group store over the in-memory engine, with
//! two neighbouring groups writing through the store's shared flusher beside it (see
//! `GroupHarness`).

raft_store_testkit::conformance_suite!(in_a_group in_memory: raft_store_testkit::MemHarness::new());
