//! sled-specific behaviour: blob files of large values are synced, and a directory that does
//! not hold a sled database is refused without a panic.

use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_sled::SLED_DIR;
use raft_store_sled::SledEngine;
use raft_store_sled::SledOptions;
use raft_store_testkit::TestConfig;
use raft_store_testkit::append;
use raft_store_testkit::entry_with;
use raft_store_testkit::run;

#[test]
fn blob_files_of_large_entries_are_synced_before_the_callback() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut store = open_store(tmp.path(), SledOptions::default()).unwrap();
        assert_eq!(store.engine().synced_blob_files(), 0);
        let big = "b".repeat(1 << 20);
        append(
            &mut store,
            vec![entry_with(1, 1, big.clone()), entry_with(1, 2, big)],
        )
        .await
        .unwrap();
        let blobs = std::fs::read_dir(tmp.path().join(SLED_DIR).join("blobs"))
            .unwrap()
            .count();
        assert!(blobs >= 2, "sled wrote {blobs} blob files for two 1 MiB entries");
        assert!(
            store.engine().synced_blob_files() >= 2,
            "only {} blob files were synced when the append was acknowledged",
            store.engine().synced_blob_files()
        );
    });
}

#[test]
fn a_directory_that_is_not_a_sled_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(StoreDir::open("sled", tmp.path()).unwrap());
    let sled_dir = tmp.path().join(SLED_DIR);
    std::fs::create_dir(&sled_dir).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(sled_dir.join("conf"), b"segment_size: banana\n").unwrap();
    std::fs::write(sled_dir.join("db"), &garbage).unwrap();
    let result = std::panic::catch_unwind(|| SledEngine::open(tmp.path(), &SledOptions::default()));
    let err = result
        .expect("opening garbage panicked")
        .err()
        .expect("opened garbage as sled");
    let matched = matches!(err, EngineError::NotAStore { .. } | EngineError::Backend { .. });
    assert!(matched, "{err}");
    assert_eq!(
        std::fs::read(sled_dir.join("db")).unwrap(),
        garbage,
        "the file was changed"
    );
}

/// The log store of the openraft 0.10 line on this backend, as the facade's `open` builds it.
fn open_store(
    dir: impl AsRef<std::path::Path>,
    options: SledOptions,
) -> Result<raft_store_core::LogStore<TestConfig, SledEngine>, raft_store_core::StoreError> {
    raft_store_core::LogStore::open(SledEngine::open(dir, &options)?)
}
