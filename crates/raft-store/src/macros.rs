//! The per-line backend modules, written once.

/// A module per compiled backend for one openraft line: the adapter crate's items, and `open`
/// for that line's log store on the backend's engine. `$bounds` are the line's bounds on `C`.
macro_rules! backend_modules {
    ({ $($bounds:tt)* }) => {
        /// redb (feature `redb`): the adapter's items, and `open` for this line's log store.
        #[cfg(feature = "redb")]
        pub mod redb {
            pub use raft_store_redb::*;

            /// Open (or create) the raft log store in directory `dir` on redb.
            pub fn open<C>(
                dir: impl AsRef<std::path::Path>,
                options: RedbOptions,
            ) -> Result<super::LogStore<C, RedbEngine>, crate::StoreError>
            where
                $($bounds)*
            {
                super::LogStore::open(RedbEngine::open(dir, &options)?)
            }
        }

        /// LMDB (feature `lmdb`): the adapter's items, and `open` for this line's log store.
        #[cfg(feature = "lmdb")]
        pub mod lmdb {
            pub use raft_store_lmdb::*;

            /// Open (or create) the raft log store in directory `dir` on LMDB.
            pub fn open<C>(
                dir: impl AsRef<std::path::Path>,
                options: LmdbOptions,
            ) -> Result<super::LogStore<C, LmdbEngine>, crate::StoreError>
            where
                $($bounds)*
            {
                super::LogStore::open(LmdbEngine::open(dir, &options)?)
            }
        }

        /// RocksDB (feature `rocksdb`): the adapter's items, and `open` for this line's log store.
        #[cfg(feature = "rocksdb")]
        pub mod rocksdb {
            pub use raft_store_rocksdb::*;

            /// Open (or create) the raft log store in directory `dir` on RocksDB.
            pub fn open<C>(
                dir: impl AsRef<std::path::Path>,
                options: RocksOptions,
            ) -> Result<super::LogStore<C, RocksEngine>, crate::StoreError>
            where
                $($bounds)*
            {
                super::LogStore::open(RocksEngine::open(dir, &options)?)
            }
        }

        /// sled, experimental (feature `sled`): the adapter's items, and `open` for this line's
        /// log store.
        #[cfg(feature = "sled")]
        pub mod sled {
            pub use raft_store_sled::*;

            /// Open (or create) the raft log store in directory `dir` on sled.
            pub fn open<C>(
                dir: impl AsRef<std::path::Path>,
                options: SledOptions,
            ) -> Result<super::LogStore<C, SledEngine>, crate::StoreError>
            where
                $($bounds)*
            {
                super::LogStore::open(SledEngine::open(dir, &options)?)
            }
        }
    };
}
pub(crate) use backend_modules;
