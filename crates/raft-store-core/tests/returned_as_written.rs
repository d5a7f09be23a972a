//! Acknowledged means returned as written: the careless payloads through a real store
//! (redb is not a dependency of the core: an on-disk engine is stood in for by `MemEngine`
//! clones, which share one store across reopens; the conformance suite runs the same payloads on
//! every backend's files).
//!
//! Each test here fails on the release before this one: bincode was the default codec, `append`
//! only checked that an entry decodes, and these entries were acknowledged and read back as
//! other values.

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use raft_store_core::Bincode;
use raft_store_core::EntryCheck;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;
use raft_store_core::MessagePack;
use raft_store_core::StoreError;
use raft_store_engine::codec::RoundTripError;
use raft_store_engine::codec::check_round_trip;
use raft_store_testkit::careless::Careless;
use raft_store_testkit::careless::CarelessConfig;
use raft_store_testkit::careless::Defaults;
use raft_store_testkit::careless::Flattened;
use raft_store_testkit::careless::SkipFirst;
use raft_store_testkit::careless::SkipMiddle;
use raft_store_testkit::careless::careless_entry;
use raft_store_testkit::careless::known_cases;

fn skip_shifted() -> Careless {
    Careless::SkipFirst(SkipFirst {
        note: None,
        n: 0,
        data: vec![1, 9],
    })
}

async fn append(
    store: &mut LogStore<CarelessConfig, MemEngine, impl raft_store_core::Codec>,
    entry: EntryOf<CarelessConfig>,
) -> Result<(), std::io::Error> {
    let (tx, rx) = CarelessConfig::oneshot();
    store.append([entry], IOFlushed::signal(tx)).await?;
    rx.await.expect("flush callback")
}

async fn read_all<K: raft_store_core::Codec>(
    engine: &MemEngine,
    check: EntryCheck<EntryOf<CarelessConfig>>,
) -> Vec<EntryOf<CarelessConfig>> {
    let mut store = LogStore::<CarelessConfig, _, K>::open_checked(engine.clone(), check).expect("reopen");
    store.try_get_log_entries(0..u64::MAX).await.expect("read back")
}

#[tokio::test]
async fn the_default_codec_returns_every_careless_entry_as_written_after_a_reopen() {
    let engine = MemEngine::new();
    let mut written = Vec::new();
    {
        let mut store = LogStore::<CarelessConfig, _>::open(engine.clone()).expect("open");
        let mut payloads = known_cases();
        payloads.push(Careless::Flattened(Flattened {
            id: 3,
            extra: [("a".to_string(), 1), ("b".to_string(), 2)].into(),
        }));
        payloads.push(Careless::Json(
            serde_json::json!({"k": [1, "two", null, {"x": 2.5}]}),
        ));
        for (i, payload) in payloads.into_iter().enumerate() {
            let entry = careless_entry(i as u64 + 1, payload);
            append(&mut store, entry.clone()).await.expect("accepted");
            written.push(entry);
        }
    }
    let got = read_all::<MessagePack>(&engine, EntryCheck::equal()).await;
    assert_eq!(got, written);
}

#[tokio::test]
async fn bincode_with_the_value_check_refuses_the_shifted_entry_and_names_it() {
    let engine = MemEngine::new();
    let mut store = LogStore::<CarelessConfig, _, Bincode>::open_checked(engine.clone(), EntryCheck::equal())
        .expect("open");
    let fine = careless_entry(
        1,
        Careless::SkipFirst(SkipFirst {
            note: Some("n".into()),
            n: 5,
            data: vec![],
        }),
    );
    append(&mut store, fine.clone())
        .await
        .expect("an entry bincode gives back is accepted");

    // bincode writes `0, 2, 1, 9` and reads `n: 2, data: [9]`: decodable, and different.
    let err = append(&mut store, careless_entry(2, skip_shifted()))
        .await
        .expect_err("refused");
    let found = StoreError::find(&err).expect("a store error inside the io::Error");
    assert!(
        matches!(
            found,
            StoreError::EntryRefused { index: 2, source, .. }
                if matches!(**source, RoundTripError::Different { codec: "bincode2" })
        ),
        "{found}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("index 2") && msg.contains("different value") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert!(!store.is_poisoned(), "a refusal must not poison the store");

    // Nothing of it was kept; the next entry takes index 2.
    let middle = careless_entry(
        2,
        Careless::SkipMiddle(SkipMiddle {
            id: 7,
            tags: vec![4],
            n: 1,
            tail: vec![5, 0],
        }),
    );
    append(&mut store, middle.clone()).await.expect("accepted");
    drop(store);
    assert_eq!(
        read_all::<Bincode>(&engine, EntryCheck::equal()).await,
        vec![fine, middle]
    );
}

#[tokio::test]
async fn every_known_shift_is_refused_by_the_check_under_bincode() {
    // The examples: each decodes under bincode to another value.
    let shifted = [
        skip_shifted(),
        Careless::SkipMiddle(SkipMiddle {
            id: 7,
            tags: vec![],
            n: 1,
            tail: vec![5, 0],
        }),
        Careless::Defaults(Defaults {
            seq: 0,
            cached: 0,
            scratch: 0,
            name: "\u{2}ok".into(),
            maybe: None,
        }),
    ];
    for payload in shifted {
        let entry = careless_entry(1, payload.clone());
        let err = check_round_trip::<Bincode, _>(&entry).expect_err("bincode changes it");
        assert!(
            matches!(
                err,
                RoundTripError::Different { .. } | RoundTripError::Decode { .. }
            ),
            "{payload:?}: {err}"
        );
        let mut store =
            LogStore::<CarelessConfig, _, Bincode>::open_checked(MemEngine::new(), EntryCheck::equal())
                .expect("open");
        assert!(
            append(&mut store, entry.clone()).await.is_err(),
            "{payload:?} acknowledged under bincode"
        );
        assert_eq!(check_round_trip::<MessagePack, _>(&entry), Ok(()), "{payload:?}");
    }
}

#[tokio::test]
async fn hash_maps_and_sets_of_200_are_accepted_by_every_codec_with_the_check() {
    let Some(hashed) = known_cases()
        .into_iter()
        .find(|c| matches!(c, Careless::Hashed(_)))
    else {
        panic!("the known cases hold a hashed payload");
    };
    let entry = careless_entry(1, hashed);
    let engines = [MemEngine::new(), MemEngine::new(), MemEngine::new()];
    let mut a = LogStore::<CarelessConfig, _, Bincode>::open_checked(engines[0].clone(), EntryCheck::equal())
        .expect("open");
    append(&mut a, entry.clone()).await.expect("bincode");
    let mut b = LogStore::<CarelessConfig, _, raft_store_core::Postcard>::open_checked(
        engines[1].clone(),
        EntryCheck::equal(),
    )
    .expect("open");
    append(&mut b, entry.clone()).await.expect("postcard");
    let mut c =
        LogStore::<CarelessConfig, _, MessagePack>::open_checked(engines[2].clone(), EntryCheck::equal())
            .expect("open");
    append(&mut c, entry.clone()).await.expect("msgpack");
    drop((a, b, c));
    assert_eq!(
        read_all::<Bincode>(&engines[0], EntryCheck::equal()).await,
        vec![entry.clone()]
    );
    assert_eq!(
        read_all::<raft_store_core::Postcard>(&engines[1], EntryCheck::equal()).await,
        vec![entry.clone()]
    );
    assert_eq!(
        read_all::<MessagePack>(&engines[2], EntryCheck::equal()).await,
        vec![entry]
    );
}

#[test]
fn bincode_is_refused_without_a_check_and_named_what_to_do() {
    let err = LogStore::<CarelessConfig, _, Bincode>::open(MemEngine::new())
        .err()
        .expect("bincode taken without a check");
    assert!(
        matches!(
            err,
            StoreError::UncheckedCodec {
                codec: "bincode2",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("open_checked") && msg.contains("trust_payload_encoding"),
        "{msg}"
    );
}

#[tokio::test]
async fn trusting_the_payload_encoding_is_what_it_says() {
    // The explicit opt-out keeps the old behaviour, risk included: the shifted entry is
    // acknowledged and read back as another value. This is why it is opt-in and named so.
    let engine = MemEngine::new();
    let mut store = LogStore::<CarelessConfig, _, Bincode>::open_checked(
        engine.clone(),
        EntryCheck::trust_payload_encoding(),
    )
    .expect("open");
    let entry = careless_entry(1, skip_shifted());
    append(&mut store, entry.clone())
        .await
        .expect("trusted: accepted");
    drop(store);
    let got = read_all::<Bincode>(&engine, EntryCheck::trust_payload_encoding()).await;
    assert_eq!(got.len(), 1);
    assert_ne!(
        got[0], entry,
        "bincode shifts this entry; the opt-out does not see it"
    );
    assert_eq!(got[0].index(), 1);
}

#[tokio::test]
async fn the_flatten_refusal_names_the_entry() {
    // bincode cannot encode a flattened map at all (its length is unknown up front).
    let mut store =
        LogStore::<CarelessConfig, _, Bincode>::open_checked(MemEngine::new(), EntryCheck::equal())
            .expect("open");
    let entry = careless_entry(
        1,
        Careless::Flattened(Flattened {
            id: 1,
            extra: [("k".to_string(), 1)].into(),
        }),
    );
    let err = append(&mut store, entry).await.expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("index 1") && msg.contains("bincode2 cannot encode it"),
        "{msg}"
    );
}

#[tokio::test]
async fn check_entry_tells_before_append() {
    let store = LogStore::<CarelessConfig, _, Bincode>::open_checked(MemEngine::new(), EntryCheck::equal())
        .expect("open");
    let err = store
        .check_entry(&careless_entry(1, skip_shifted()))
        .expect_err("refused");
    assert!(matches!(err, StoreError::EntryRefused { index: 1, .. }), "{err}");
    let ok = careless_entry(
        1,
        Careless::SkipFirst(SkipFirst {
            note: Some(String::new()),
            n: 1,
            data: vec![2],
        }),
    );
    store.check_entry(&ok).expect("accepted");
}
