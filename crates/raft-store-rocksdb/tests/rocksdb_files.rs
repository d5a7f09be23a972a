//! RocksDB-specific behaviour: purged space comes back, a user's own `rocksdb::Options` are
//! honoured, and a directory that is not a RocksDB database is refused.

use openraft::storage::RaftLogStorage;
use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_core::testing::TestConfig;
use raft_store_core::testing::append;
use raft_store_core::testing::entry_with;
use raft_store_core::testing::log_id;
use raft_store_core::testing::run;
use raft_store_rocksdb::ROCKS_DIR;
use raft_store_rocksdb::RocksEngine;
use raft_store_rocksdb::RocksOptions;

fn sst_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join(ROCKS_DIR))
        .expect("listing the RocksDB directory")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn space_comes_back_after_a_large_purge() {
    let tmp = tempfile::tempdir().unwrap();
    // A small memtable so the entries reach SST files.
    let options = RocksOptions::default().write_buffer_size(1 << 20);
    let payload = "r".repeat(1024);
    run(async {
        let mut store = raft_store_rocksdb::open::<TestConfig>(tmp.path(), &options).unwrap();
        for batch in 0..40u64 {
            let entries = (batch * 500 + 1..=batch * 500 + 500)
                .map(|i| entry_with(1, i, payload.clone()))
                .collect();
            append(&mut store, entries).await.unwrap();
        }
        let before = sst_bytes(tmp.path());
        assert!(
            before > 8 << 20,
            "expected the 20 MB of entries in SST files, found {before} bytes"
        );
        store.purge(log_id(1, 19_990)).await.unwrap();
        store.flush().await.unwrap();
        // The compaction runs in the background; wait for it, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let after = sst_bytes(tmp.path());
            if after < before / 4 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "SST bytes {before} -> {after} 30 s after the purge"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // And appends go on.
        append(&mut store, vec![entry_with(1, 20_001, payload.clone())])
            .await
            .unwrap();
    });
}

#[test]
fn a_users_own_rocksdb_options_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let mut own = rocksdb::Options::default();
    own.set_write_buffer_size(2 << 20);
    let engine = RocksEngine::open(tmp.path(), &RocksOptions::default().with_db_options(own)).unwrap();
    drop(engine);
    let options_file = std::fs::read_dir(tmp.path().join(ROCKS_DIR))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .expect("RocksDB writes an OPTIONS file");
    let text = std::fs::read_to_string(options_file.path()).unwrap();
    assert!(
        text.contains("write_buffer_size=2097152"),
        "the user's write_buffer_size is not in the OPTIONS file"
    );
    assert!(
        text.contains("wal_recovery_mode=kPointInTimeRecovery"),
        "point-in-time recovery was not forced"
    );
}

#[test]
fn a_directory_that_is_not_a_rocksdb_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(StoreDir::open("rocksdb", tmp.path()).unwrap());
    let rocks = tmp.path().join(ROCKS_DIR);
    std::fs::create_dir(&rocks).unwrap();
    std::fs::write(rocks.join("CURRENT"), b"MANIFEST-000099\n").unwrap();
    std::fs::write(rocks.join("MANIFEST-000099"), b"not a manifest at all").unwrap();
    let err = RocksEngine::open(tmp.path(), &RocksOptions::default())
        .err()
        .expect("opened garbage as RocksDB");
    let matched = matches!(
        err,
        EngineError::NotAStore { .. } | EngineError::Io { .. } | EngineError::Backend { .. }
    );
    assert!(matched, "{err}");
    assert!(err.to_string().contains("rocksdb"), "{err}");
    assert_eq!(
        std::fs::read(rocks.join("MANIFEST-000099")).unwrap(),
        b"not a manifest at all"
    );
}
