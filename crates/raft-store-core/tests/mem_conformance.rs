//! The whole conformance suite against the in-memory reference engine.

raft_store_core::conformance_suite!(raft_store_core::testing::MemHarness::new());
