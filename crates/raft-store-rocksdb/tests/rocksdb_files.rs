//! RocksDB-specific behaviour: purged space comes back, a user's own `rocksdb::Options` are
//! honoured, and a directory that is not a RocksDB database is refused.

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_rocksdb::ROCKS_DIR;
use raft_store_rocksdb::RocksEngine;
use raft_store_rocksdb::RocksOptions;
use raft_store_testkit::TestConfig;
use raft_store_testkit::append;
use raft_store_testkit::entries;
use raft_store_testkit::entry_with;
use raft_store_testkit::log_id;
use raft_store_testkit::run;
use raft_store_testkit::vote;

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
        let mut store = open_store(tmp.path(), &options).unwrap();
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
    assert!(
        text.contains("track_and_verify_wals_in_manifest=true"),
        "tracking closed WALs in the MANIFEST was not forced"
    );
}

/// Where each record of a RocksDB WAL file ends: 32 KiB blocks of records, each fragment a
/// header (checksum u32, length u16, type u8, and the log number u32 in the recyclable format
/// that WAL recycling uses) and its bytes; a block's last bytes too short for a header are
/// padding.
fn wal_record_ends(wal: &[u8]) -> Vec<usize> {
    const BLOCK: usize = 32 * 1024;
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos + 7 <= wal.len() {
        let left_in_block = BLOCK - pos % BLOCK;
        let kind = wal[pos + 6];
        let header = if (5..=8).contains(&kind) || (kind >= 10 && kind % 2 == 1) {
            11
        } else {
            7
        };
        if left_in_block < header {
            pos += left_in_block;
            continue;
        }
        let len = usize::from(u16::from_le_bytes([wal[pos + 4], wal[pos + 5]]));
        if kind == 0 || pos + header + len > wal.len() {
            break;
        }
        pos += header + len;
        ends.push(pos);
    }
    ends
}

/// A store whose log column family was flushed (a purge compacts it) while the vote and purge
/// records stay in the older WAL: that WAL cut short at any record boundary, where its
/// checksums see nothing wrong, must be refused, never opened as the flushed log beside an
/// older vote and no purge record. RocksDB refuses it because the engine has it track closed
/// WALs' sizes in the MANIFEST; without that the corruption tests once found such a mix.
#[test]
fn a_closed_wal_cut_at_a_record_boundary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = RocksOptions::default();
    run(async {
        let mut store = open_store(&dir, &options).unwrap();
        store.save_vote(&vote(1, 1)).await.unwrap();
        for first in (1..=200u64).step_by(10) {
            append(&mut store, entries(1, first, first + 10)).await.unwrap();
        }
        store.save_vote(&vote(2, 1)).await.unwrap();
        store.purge(log_id(1, 20)).await.unwrap();
        // The compaction after the purge flushes the log column family; wait for its SST.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while sst_bytes(&dir) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no SST 30 s after the purge"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let rocks = dir.join(ROCKS_DIR);
    let wals: Vec<_> = std::fs::read_dir(&rocks)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    assert!(!wals.is_empty(), "no WAL holds the vote and purge records");

    let (mut refused, mut whole) = (0, 0);
    for wal in &wals {
        let bytes = std::fs::read(wal).unwrap();
        let ends = wal_record_ends(&bytes);
        assert!(
            ends.len() > 20,
            "{}: only {} records found",
            wal.display(),
            ends.len()
        );
        for &end in ends.iter().filter(|&&e| e < bytes.len()) {
            let case = tmp.path().join(format!("cut-{end}"));
            std::fs::create_dir_all(case.join(ROCKS_DIR)).unwrap();
            let marker = raft_store_core::StoreDir::MARKER_FILE;
            std::fs::copy(dir.join(marker), case.join(marker)).unwrap();
            for e in std::fs::read_dir(&rocks).unwrap().filter_map(Result::ok) {
                std::fs::copy(e.path(), case.join(ROCKS_DIR).join(e.file_name())).unwrap();
            }
            let cut = case.join(ROCKS_DIR).join(wal.file_name().unwrap());
            std::fs::OpenOptions::new()
                .write(true)
                .open(&cut)
                .unwrap()
                .set_len(end as u64)
                .unwrap();
            match open_store(&case, &options) {
                Err(_) => refused += 1,
                Ok(mut store) => run(async {
                    // Opened: then it must be the whole state, never a mix.
                    let state = store.get_log_state().await.unwrap();
                    assert_eq!(
                        (
                            store.read_vote().await.unwrap(),
                            state.last_purged_log_id,
                            state.last_log_id
                        ),
                        (Some(vote(2, 1)), Some(log_id(1, 20)), Some(log_id(1, 200))),
                        "{} cut to {end} bytes opened as another state",
                        wal.display()
                    );
                    whole += 1;
                }),
            }
            std::fs::remove_dir_all(&case).unwrap();
        }
    }
    eprintln!("record-boundary cuts: {refused} refused, {whole} opened whole");
    assert!(refused > 0, "no cut was refused ({whole} opened whole)");
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

/// The log store of the openraft 0.10 line on this backend, as the facade's `open` builds it.
fn open_store(
    dir: impl AsRef<std::path::Path>,
    options: &RocksOptions,
) -> Result<raft_store_core::LogStore<TestConfig, RocksEngine>, raft_store_core::StoreError> {
    raft_store_core::LogStore::open(RocksEngine::open(dir, options)?)
}
