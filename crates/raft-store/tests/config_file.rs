//! `StoreConfig` from a config file (feature `serde`): a backend option written in TOML reaches
//! the engine that `open_engine` opens.
#![cfg(all(feature = "serde", feature = "rocksdb", feature = "lmdb", feature = "redb"))]

use raft_store::Backend;
use raft_store::Engine;
use raft_store::StoreConfig;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Space;

fn config(toml_text: &str) -> StoreConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("config did not parse: {e}\n{toml_text}"))
}

/// The `OPTIONS-*` file RocksDB writes into its directory in the store: every option it runs
/// with.
fn rocksdb_options_file(dir: &std::path::Path) -> String {
    let file = std::fs::read_dir(dir.join(raft_store::rocksdb::ROCKS_DIR))
        .expect("list the store directory")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .expect("RocksDB writes an OPTIONS file");
    std::fs::read_to_string(file.path()).expect("read the OPTIONS file")
}

#[test]
fn a_rocksdb_option_in_toml_reaches_rocksdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let parsed = config(&format!(
        "backend = \"rocksdb\"\npath = {path:?}\n\n[rocksdb]\nwrite_buffer_size = 12345678\n"
    ));
    assert_eq!(parsed.backend, Backend::Rocksdb);
    assert_eq!(parsed.rocksdb.write_buffer_size, 12_345_678);
    let engine = parsed.open_engine().expect("open RocksDB");
    drop(engine);
    let options = rocksdb_options_file(&path);
    assert!(
        options.contains("write_buffer_size=12345678"),
        "the configured write_buffer_size is not in RocksDB's OPTIONS file"
    );
}

#[test]
fn an_lmdb_map_limit_in_toml_bounds_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let value = vec![7u8; 4 << 20];
    let write = |config: &StoreConfig| {
        let engine = config.open_engine().expect("open LMDB");
        let mut batch = Batch::new();
        batch.put(Space::Data, b"big".to_vec(), value.clone());
        engine.write(&batch, Durability::Durable)
    };
    // The default map grows to 1 TiB: 4 MiB fits.
    let default = config(&format!(
        "backend = \"lmdb\"\npath = {:?}\n",
        dir.path().join("default")
    ));
    write(&default).expect("4 MiB fits the default map");
    // A map limited to 1 MiB in the file refuses it, naming the limit.
    let limited = config(&format!(
        "backend = \"lmdb\"\npath = {:?}\n\n[lmdb]\nmap_size = 65536\nmax_map_size = 1048576\n",
        dir.path().join("limited")
    ));
    let err = write(&limited).expect_err("4 MiB does not fit a 1 MiB map");
    assert!(err.to_string().contains("max_map_size = 1048576"), "{err}");
}

#[test]
fn unknown_options_and_backends_are_refused_by_name() {
    let err = toml::from_str::<StoreConfig>("backend = \"redb\"\npath = \"x\"\n\n[redb]\ncache_sise = 1\n")
        .expect_err("a misspelt option is refused");
    assert!(err.to_string().contains("cache_sise"), "{err}");
    let err = toml::from_str::<StoreConfig>("backend = \"oracle\"\npath = \"x\"\n")
        .expect_err("an unknown backend is refused");
    assert!(err.to_string().contains("oracle"), "{err}");
    let err = toml::from_str::<StoreConfig>("backend = \"redb\"\npath = \"x\"\nredb_cache = 1\n")
        .expect_err("an unknown key is refused");
    assert!(err.to_string().contains("redb_cache"), "{err}");
}

#[test]
fn options_left_out_keep_their_defaults() {
    let parsed = config("backend = \"redb\"\npath = \"x\"\n\n[redb]\nverify_on_open = false\n");
    let defaults = StoreConfig::new(Backend::Redb, "x");
    assert!(!parsed.redb.verify_on_open);
    assert_eq!(parsed.redb.cache_size, defaults.redb.cache_size);
    assert_eq!(parsed.lmdb, defaults.lmdb);
    assert_eq!(
        parsed.rocksdb.write_buffer_size,
        defaults.rocksdb.write_buffer_size
    );
}
