use super::*;
use crate::MemEngine;

fn record(version: u32) -> FormatRecord {
    FormatRecord {
        version,
        backend: "mem".into(),
        codec: "bincode2".into(),
    }
}

#[test]
fn record_round_trips() {
    let r = record(1);
    assert_eq!(FormatRecord::decode("mem", &r.encode()).unwrap(), r);
}

#[test]
fn newer_version_is_reported_even_if_the_rest_is_unreadable() {
    let mut bytes = record(STORE_FORMAT_VERSION + 1).encode();
    bytes.truncate(MAGIC.len() + 4);
    let err = FormatRecord::decode("mem", &bytes).unwrap_err();
    let matched = matches!(
        err,
        StoreError::FormatTooNew {
            found: 2,
            supported: 1,
            ..
        }
    );
    assert!(matched, "{err}");
}

#[test]
fn damaged_record_is_corrupt_not_a_panic() {
    let good = record(1).encode();
    for cut in 0..good.len() {
        assert!(
            FormatRecord::decode("mem", &good[..cut]).is_err(),
            "truncated at {cut} accepted"
        );
    }
    for i in MAGIC.len() + 4..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(FormatRecord::decode("mem", &bad).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn first_open_writes_and_later_opens_check() {
    let engine = MemEngine::new();
    check_or_init(&engine, "bincode2").unwrap();
    assert!(engine.get(Space::Meta, meta_key::FORMAT).unwrap().is_some());
    check_or_init(&engine, "bincode2").unwrap();
    let err = check_or_init(&engine, "postcard1").unwrap_err();
    assert!(matches!(err, StoreError::WrongCodec { .. }), "{err}");
}

#[test]
fn foreign_backend_record_is_refused() {
    let engine = MemEngine::new();
    let mut batch = Batch::new();
    let foreign = FormatRecord {
        version: 1,
        backend: "lmdb".into(),
        codec: "bincode2".into(),
    };
    batch.put(Space::Meta, meta_key::FORMAT, foreign.encode());
    engine.write(&batch, Durability::Durable).unwrap();
    let err = check_or_init(&engine, "bincode2").unwrap_err();
    assert!(err.to_string().contains("lmdb"), "{err}");
}

#[test]
fn data_without_record_is_refused() {
    let engine = MemEngine::new();
    let mut batch = Batch::new();
    batch.put(Space::Log, 1u64.to_be_bytes(), b"x".to_vec());
    engine.write(&batch, Durability::Durable).unwrap();
    let err = check_or_init(&engine, "bincode2").unwrap_err();
    assert!(matches!(err, StoreError::NoFormatRecord { .. }), "{err}");
}
