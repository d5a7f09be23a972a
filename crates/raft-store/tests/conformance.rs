//! The conformance suite through `Store<C>` (the facade's one store type, over `AnyEngine`) on
//! every compiled backend, each chosen by its name at run time.

macro_rules! through_store {
    ($($module:ident = $feature:literal),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            mod $module {
                use std::path::Path;

                use raft_store::StoreConfig;

                raft_store_core::conformance_suite!(raft_store_core::testing::FnHarness(|dir: &Path| {
                    StoreConfig::new($feature.parse().expect("compiled in"), dir).open_engine()
                }));
            }
        )*
    };
}

through_store!(redb = "redb", lmdb = "lmdb", rocksdb = "rocksdb", sled = "sled");
