//! redb-specific bad files: a file that is not a redb database, and a damaged database.

use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_redb::FILE_NAME;
use raft_store_redb::RedbEngine;
use raft_store_redb::RedbOptions;
use raft_store_testkit::TestConfig;
use raft_store_testkit::entries;
use raft_store_testkit::run;

#[test]
fn a_file_that_is_not_a_redb_database_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    drop(StoreDir::open("redb", tmp.path()).unwrap());
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = tmp.path().join(FILE_NAME);
    std::fs::write(&file, &garbage).unwrap();
    let err = RedbEngine::open(tmp.path(), &RedbOptions::default())
        .err()
        .expect("opened garbage as redb");
    let matched = matches!(
        err,
        EngineError::NotAStore { .. } | EngineError::Backend { .. } | EngineError::Io { .. }
    );
    assert!(matched, "{err}");
    assert!(err.to_string().contains("redb"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), garbage, "the file was changed");
}

#[test]
fn a_truncated_database_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let mut store = open_store(tmp.path(), RedbOptions::default()).unwrap();
        raft_store_testkit::append(&mut store, entries(1, 1, 200))
            .await
            .unwrap();
    });
    let file = tmp.path().join(FILE_NAME);
    let len = std::fs::metadata(&file).unwrap().len();
    for cut in [len / 2, 4096, 100] {
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let result = std::panic::catch_unwind(|| open_store(tmp.path(), RedbOptions::default()));
        let opened = result.unwrap_or_else(|_| panic!("opening a database cut to {cut} bytes panicked"));
        assert!(opened.is_err(), "a database cut to {cut} bytes opened");
    }
}

/// The log store of the openraft 0.10 line on this backend, as the facade's `open` builds it.
fn open_store(
    dir: impl AsRef<std::path::Path>,
    options: RedbOptions,
) -> Result<raft_store_core::LogStore<TestConfig, RedbEngine>, raft_store_core::StoreError> {
    raft_store_core::LogStore::open(RedbEngine::open(dir, &options)?)
}
