//! The conformance suite through `Store<C>` (the facade's one store type, over `AnyEngine`) on
//! every compiled backend, each chosen by its name at run time; and the openraft 0.9 glue's
//! suite over the same engines.

macro_rules! through_store {
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

through_store!(redb = "redb", lmdb = "lmdb", rocksdb = "rocksdb", sled = "sled");
