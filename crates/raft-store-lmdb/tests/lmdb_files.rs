//! LMDB-specific behaviour: map growth, and a file that is not an LMDB environment.

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_core::testing::TestConfig;
use raft_store_core::testing::append;
use raft_store_core::testing::entry_with;
use raft_store_core::testing::run;
use raft_store_lmdb::LmdbEngine;
use raft_store_lmdb::LmdbOptions;

#[test]
fn a_store_outgrowing_its_map_grows_it_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let options = LmdbOptions::default().map_size(1 << 20);
    let payload = "p".repeat(4096);
    run(async {
        let mut store = raft_store_lmdb::open::<TestConfig>(tmp.path(), options).unwrap();
        let initial = store.engine().map_size();
        assert_eq!(initial, 1 << 20);
        // About 12 MiB of entries into a 1 MiB map, in batches of 50.
        for batch in 0..60u64 {
            let entries = (batch * 50 + 1..=batch * 50 + 50)
                .map(|i| entry_with(1, i, payload.clone()))
                .collect();
            append(&mut store, entries).await.unwrap();
        }
        let grown = store.engine().map_size();
        assert!(
            grown > 8 * initial,
            "map size went from {initial} to only {grown}"
        );
        let got = store
            .get_log_reader()
            .await
            .try_get_log_entries(1..3001)
            .await
            .unwrap();
        assert_eq!(got.len(), 3000);
        assert!(
            got.iter()
                .all(|e| matches!(&e.payload, openraft::EntryPayload::Normal(d) if *d == payload))
        );
    });
    // Reopened with the small initial size: the store keeps its data and keeps growing.
    run(async {
        let mut store = raft_store_lmdb::open::<TestConfig>(tmp.path(), options).unwrap();
        assert_eq!(
            store.get_log_state().await.unwrap().last_log_id.map(|l| l.index),
            Some(3000)
        );
        let entries = (3001..=3500).map(|i| entry_with(1, i, payload.clone())).collect();
        append(&mut store, entries).await.unwrap();
        let got = store
            .get_log_reader()
            .await
            .try_get_log_entries(2990..)
            .await
            .unwrap();
        assert_eq!(got.len(), 511);
    });
}

#[test]
fn growth_stops_at_the_limit_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let options = LmdbOptions::default().map_size(1 << 20).max_map_size(4 << 20);
    let engine = LmdbEngine::open(tmp.path(), &options).unwrap();
    let mut batch = raft_store_core::Batch::new();
    batch.put(raft_store_core::Space::Data, b"big".to_vec(), vec![7u8; 8 << 20]);
    let err =
        raft_store_core::Engine::write(&engine, &batch, raft_store_core::Durability::Durable).unwrap_err();
    assert!(err.to_string().contains("max_map_size"), "{err}");
    // The engine still works after refusing the oversized write.
    let mut small = raft_store_core::Batch::new();
    small.put(raft_store_core::Space::Data, b"k".to_vec(), b"v".to_vec());
    raft_store_core::Engine::write(&engine, &small, raft_store_core::Durability::Durable).unwrap();
}

#[test]
fn a_file_that_is_not_an_lmdb_environment_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    drop(StoreDir::open("lmdb", tmp.path()).unwrap());
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = tmp.path().join("data.mdb");
    std::fs::write(&file, &garbage).unwrap();
    let err = LmdbEngine::open(tmp.path(), &LmdbOptions::default())
        .err()
        .expect("opened garbage as LMDB");
    assert!(matches!(err, EngineError::NotAStore { .. }), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), garbage, "the file was changed");
}

/// Damage to LMDB's page structure (page headers, node offsets, child page numbers) is
/// refused with an error when the store is opened, never followed into a crash: LMDB itself
/// would fault on most of these. Sweeps every byte of the header and the first node offsets
/// of every page, and a sample of the rest of the file, one bit flip at a time; each damaged
/// copy is opened and, if it opens, read whole.
#[test]
fn damaged_page_structure_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let small = "s".repeat(200);
    let big = "b".repeat(10_000);
    run(async {
        let mut store = raft_store_lmdb::open::<TestConfig>(&dir, LmdbOptions::default()).unwrap();
        // Enough entries for branch pages, and a few large ones on overflow pages.
        let entries = (1..=400u64)
            .map(|i| entry_with(1, i, if i % 100 == 0 { big.clone() } else { small.clone() }))
            .collect();
        append(&mut store, entries).await.unwrap();
        store
            .purge(openraft::testing::log_id::<TestConfig>(1, 0, 50))
            .await
            .unwrap();
    });
    let original = std::fs::read(dir.join("data.mdb")).unwrap();
    let page = 4096;
    let pages = original.len() / page;
    assert!(
        pages > 20,
        "only {pages} pages: the store is too small to have branch pages"
    );
    let offsets: Vec<usize> = (0..pages)
        .flat_map(|p| (0..48).map(move |o| p * page + o))
        .chain((0..original.len()).step_by(97))
        .collect();
    let (mut refused_by_check, mut other_errors, mut read_whole) = (0, 0, 0);
    for (n, &offset) in offsets.iter().enumerate() {
        let mut bytes = original.clone();
        bytes[offset] ^= 1 << (n % 8);
        std::fs::write(dir.join("data.mdb"), &bytes).unwrap();
        match LmdbEngine::open(&dir, &LmdbOptions::default()) {
            Err(EngineError::NotAStore { detail, .. }) if detail.contains("page") => refused_by_check += 1,
            Err(_) => other_errors += 1,
            Ok(engine) => {
                let read = run(async {
                    let mut store = raft_store_core::LogStore::<TestConfig, _>::open(engine)?;
                    store.get_log_reader().await.try_get_log_entries(51..401).await?;
                    Ok::<_, Box<dyn std::error::Error>>(())
                });
                if read.is_ok() {
                    read_whole += 1;
                } else {
                    other_errors += 1;
                }
            }
        }
    }
    eprintln!(
        "{} flips: {refused_by_check} refused by the page check, {other_errors} other errors, {read_whole} read whole",
        offsets.len()
    );
    // Every page's own page number is among the swept bytes, so each page reachable from the
    // meta page yields at least one refusal.
    assert!(
        refused_by_check >= 20,
        "only {refused_by_check} flips refused by the page check"
    );
}
