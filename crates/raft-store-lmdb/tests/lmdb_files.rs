//! LMDB-specific behaviour: map growth, and a file that is not an LMDB environment.

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use raft_store_core::EngineError;
use raft_store_core::StoreDir;
use raft_store_lmdb::LmdbEngine;
use raft_store_lmdb::LmdbOptions;
use raft_store_testkit::TestConfig;
use raft_store_testkit::append;
use raft_store_testkit::entry_with;
use raft_store_testkit::run;

#[test]
fn a_store_outgrowing_its_map_grows_it_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let options = LmdbOptions::default().map_size(1 << 20);
    let payload = "p".repeat(4096);
    run(async {
        let mut store = open_store(tmp.path(), options).unwrap();
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
        let mut store = open_store(tmp.path(), options).unwrap();
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

/// A store of 400 entries, 50 of them purged: enough entries for branch pages, and a few large
/// ones on overflow pages. Returns its `data.mdb`.
fn write_sample_store(dir: &std::path::Path) -> Vec<u8> {
    let small = "s".repeat(200);
    let big = "b".repeat(10_000);
    run(async {
        let mut store = open_store(dir, LmdbOptions::default()).expect("open");
        let entries = (1..=400u64)
            .map(|i| entry_with(1, i, if i % 100 == 0 { big.clone() } else { small.clone() }))
            .collect();
        append(&mut store, entries).await.expect("append");
        store
            .purge(openraft::testing::log_id::<TestConfig>(1, 0, 50))
            .await
            .expect("purge");
    });
    std::fs::read(dir.join("data.mdb")).expect("read data.mdb")
}

/// Two damages the page walk alone let through, found by the corruption tests: a flipped bit
/// in a database's name (the engine then created an empty database under the right name, and
/// the store opened with an empty log) and in the current meta page's last page number (LMDB
/// sizes its map by it; the check sized a bitmap by it and aborted allocating 128 GiB). Every
/// bit of every name and of that number is flipped in turn: each copy must be refused.
#[test]
fn damaged_database_names_and_last_page_number_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let original = write_sample_store(&dir);
    let (last_page, _) = last_page_and_len(&dir);
    let u64_at = |at: usize| u64::from_le_bytes(original[at..at + 8].try_into().unwrap());
    let current_meta = (0..2).map(|m| m * 4096).max_by_key(|&m| u64_at(m + 144)).unwrap();
    assert_eq!(u64_at(current_meta + 136), last_page);
    // The main tree (root at 128 in the meta page) is one leaf page holding the four
    // database records. A record's node: flags F_SUBDATA (2) and the name's length just
    // before the name.
    let leaf = usize::try_from(u64_at(current_meta + 128)).unwrap() * 4096;
    let mut offsets = Vec::new();
    for name in raft_store_core::Space::ALL.map(raft_store_core::Space::name) {
        let name = name.as_bytes();
        let len = u16::try_from(name.len()).unwrap().to_le_bytes();
        let at: Vec<usize> = (leaf + 20..leaf + 4096 - name.len())
            .filter(|&p| {
                &original[p..p + name.len()] == name
                    && original[p - 2..p] == len
                    && original[p - 4..p - 2] == [2, 0]
            })
            .collect();
        assert_eq!(at.len(), 1, "the node of database {name:?} found at {at:?}");
        offsets.extend((at[0]..at[0] + name.len()).flat_map(|o| (0..8).map(move |b| (o, b))));
    }
    offsets.extend((0..64).map(|b| (current_meta + 136 + b / 8, b % 8)));
    for &(offset, bit) in &offsets {
        let mut bytes = original.clone();
        bytes[offset] ^= 1 << bit;
        std::fs::write(dir.join("data.mdb"), &bytes).unwrap();
        let opened = LmdbEngine::open(&dir, &LmdbOptions::default());
        assert!(
            matches!(opened, Err(EngineError::NotAStore { .. })),
            "bit {bit} of byte {offset} flipped: {:?}",
            opened.map(|_| "opened")
        );
    }
    std::fs::write(dir.join("data.mdb"), &original).unwrap();
    assert!(LmdbEngine::open(&dir, &LmdbOptions::default()).is_ok());
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
    let original = write_sample_store(&dir);
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

/// `mm_last_pg` and the file's length of the LMDB environment in `dir`, from the current
/// meta page (the one with the greater transaction id).
fn last_page_and_len(dir: &std::path::Path) -> (u64, u64) {
    let bytes = std::fs::read(dir.join("data.mdb")).expect("read data.mdb");
    let at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let page_size = u64::from(u32::from_le_bytes(bytes[40..44].try_into().expect("4 bytes")));
    let second = usize::try_from(page_size).expect("page size fits");
    let current = if at(second + 144) > at(144) { second } else { 0 };
    (at(current + 136), bytes.len() as u64 / page_size)
}

/// A write transaction that allocates pages and frees them again before it commits leaves
/// them unwritten (LMDB's "loose" pages), so the file may end before the last page the meta
/// page counts as used. Such a file is whole and must open; a crash test once found it
/// refused as "cut short". A file that really lost pages LMDB reads is still refused.
#[test]
fn a_file_ending_before_its_unwritten_free_pages_opens_and_a_cut_one_is_refused() {
    use raft_store_core::Batch;
    use raft_store_core::Durability;
    use raft_store_core::Engine;
    use raft_store_core::Space;

    let tmp = tempfile::tempdir().unwrap();
    let options = LmdbOptions::default();
    {
        let engine = LmdbEngine::open(tmp.path(), &options).unwrap();
        // A log appended in eleven transactions (a sequence a random search found to end
        // this way; LMDB's page reuse depends on the free pages earlier ones left).
        let appends: [(u64, u64, usize); 11] = [
            (1, 38, 714),
            (38, 73, 537),
            (73, 100, 803),
            (100, 130, 1894),
            (130, 134, 337),
            (134, 148, 2477),
            (148, 186, 616),
            (186, 210, 2848),
            (210, 220, 1196),
            (220, 232, 2100),
            (232, 242, 244),
        ];
        for (first, end, size) in appends {
            let mut batch = Batch::new();
            for i in first..end {
                batch.put(Space::Log, i.to_be_bytes().to_vec(), vec![7u8; size]);
            }
            engine.write(&batch, Durability::Durable).unwrap();
        }
        // A truncate of most of it: the pages on the way to the deleted entries are copied
        // to new page numbers (copy on write), emptied and freed in the same transaction.
        let mut batch = Batch::new();
        batch.delete_range(Space::Log, 27u64.to_be_bytes().to_vec(), None);
        engine.write(&batch, Durability::Durable).unwrap();
    }
    let (last_page, file_pages) = last_page_and_len(tmp.path());
    assert!(
        file_pages < last_page + 1,
        "the scenario did not happen: the file has {file_pages} pages, the last used is {last_page}"
    );
    for verify in [true, false] {
        let engine = LmdbEngine::open(tmp.path(), &options.verify_on_open(verify))
            .unwrap_or_else(|e| panic!("verify_on_open({verify}): {e}"));
        assert_eq!(
            engine.get(Space::Log, &26u64.to_be_bytes()).unwrap().as_deref(),
            Some(&[7u8; 714][..])
        );
        assert_eq!(engine.get(Space::Log, &27u64.to_be_bytes()).unwrap(), None);
    }

    // Cut to its two meta pages and one more: the trees' pages are gone.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(tmp.path().join("data.mdb"))
        .unwrap();
    file.set_len(3 * 4096).unwrap();
    let err = LmdbEngine::open(tmp.path(), &options)
        .err()
        .expect("opened a cut file");
    assert!(err.to_string().contains("cut short"), "{err}");
    file.set_len(2 * 4096).unwrap();
    let err = LmdbEngine::open(tmp.path(), &options.verify_on_open(false))
        .err()
        .expect("opened a file without its trees");
    assert!(err.to_string().contains("cut short"), "{err}");
}

/// The log store of the openraft 0.10 line on this backend, as the facade's `open` builds it.
fn open_store(
    dir: impl AsRef<std::path::Path>,
    options: LmdbOptions,
) -> Result<raft_store_core::LogStore<TestConfig, LmdbEngine>, raft_store_core::StoreError> {
    raft_store_core::LogStore::open(LmdbEngine::open(dir, &options)?)
}
