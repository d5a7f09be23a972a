//! The whole conformance suite against the in-memory reference engine, through `LogStore`.
//! Every adapter's `tests/conformance.rs` expands the same macro, so the sets of cases match.

raft_store_testkit::conformance_suite!(in_memory: raft_store_testkit::MemHarness::new());
