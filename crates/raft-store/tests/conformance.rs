//! The conformance suite through `Store<C>`'s engine (the facade's `AnyEngine`, each backend
//! chosen by its name at run time).
//!
//! Each adapter crate runs the whole suite (both openraft lines) on its own engine; what is
//! new here is `AnyEngine`, which only forwards each call to the engine of the backend picked.
//! So every compiled backend gets the engine cases through it (each forwarded method, limits
//! and store directory included), and the two backends with the most to forward (redb, the
//! default, and LMDB, whose key limit the state machine depends on) get the whole suite and the
//! openraft 0.9 suite through it too. Running the whole suite a second time on RocksDB and sled
//! cost CI about three minutes and checked the same forwarding the engine cases check.

macro_rules! whole_suite_through_store {
    ($($module:ident = $feature:literal),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            mod $module {
                use std::path::Path;

                use raft_store::StoreConfig;

                raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
                    StoreConfig::new($feature.parse().expect("compiled in"), dir).open_engine()
                }));

                /// The openraft 0.9 glue over the same `AnyEngine`.
                mod openraft_0_9 {
                    use std::path::Path;

                    use raft_store::StoreConfig;

                    raft_store_testkit::openraft09_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
                        StoreConfig::new($feature.parse().expect("compiled in"), dir).open_engine()
                    }));
                }
            }
        )*
    };
}

macro_rules! engine_cases_through_store {
    ($($module:ident = $feature:literal),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            mod $module {
                use std::path::Path;

                use raft_store::StoreConfig;

                raft_store_testkit::engine_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
                    StoreConfig::new($feature.parse().expect("compiled in"), dir).open_engine()
                }));
            }
        )*
    };
}

whole_suite_through_store!(redb = "redb", lmdb = "lmdb");
engine_cases_through_store!(rocksdb = "rocksdb", sled = "sled");
