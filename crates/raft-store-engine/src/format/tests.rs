use super::*;
use crate::MemEngine;

fn record(version: u32) -> FormatRecord {
    FormatRecord {
        version,
        backend: "mem".into(),
        codec: "bincode2".into(),
        openraft: "0.10".into(),
        layout: "single".into(),
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
        FormatError::FormatTooNew {
            found: 4,
            supported: 3,
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
    check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap();
    assert!(engine.get(Space::Meta, meta_key::FORMAT).unwrap().is_some());
    check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap();
    let err = check_or_init(&engine, "postcard1", OpenraftLine::V0_10).unwrap_err();
    assert!(matches!(err, FormatError::WrongCodec { .. }), "{err}");
}

#[test]
fn foreign_backend_record_is_refused() {
    let engine = MemEngine::new();
    let mut batch = Batch::new();
    let foreign = FormatRecord {
        openraft: "0.10".into(),
        layout: "single".into(),
        version: 1,
        backend: "lmdb".into(),
        codec: "bincode2".into(),
    };
    batch.put(Space::Meta, meta_key::FORMAT, foreign.encode());
    engine.write(&batch, Durability::Durable).unwrap();
    let err = check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap_err();
    assert!(err.to_string().contains("lmdb"), "{err}");
}

#[test]
fn data_without_record_is_refused() {
    let engine = MemEngine::new();
    let mut batch = Batch::new();
    batch.put(Space::Log, 1u64.to_be_bytes(), b"x".to_vec());
    engine.write(&batch, Durability::Durable).unwrap();
    let err = check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap_err();
    assert!(matches!(err, FormatError::NoFormatRecord { .. }), "{err}");
}

#[test]
fn a_version_1_record_is_read_as_openraft_0_10() {
    let v1 = record(1);
    let bytes = v1.encode();
    let decoded = FormatRecord::decode("mem", &bytes).unwrap();
    assert_eq!(decoded.openraft, "0.10");
    assert_eq!(decoded.version, 1);
    // A version 1 record has no third name: the bytes end after the codec.
    assert_eq!(bytes.len(), MAGIC.len() + 8 + 1 + 3 + 1 + 8);
    let engine = MemEngine::new();
    let mut batch = Batch::new();
    batch.put(Space::Meta, meta_key::FORMAT, bytes);
    engine.write(&batch, Durability::Durable).unwrap();
    check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap();
    let err = check_or_init(&engine, "bincode2", OpenraftLine::V0_9).unwrap_err();
    assert!(matches!(err, FormatError::WrongOpenraftLine { .. }), "{err}");
}

#[test]
fn the_other_line_is_refused_naming_both() {
    let engine = MemEngine::new();
    let written = check_or_init(&engine, "bincode2", OpenraftLine::V0_9).unwrap();
    assert_eq!((written.version, written.openraft.as_str()), (2, "0.9"));
    check_or_init(&engine, "bincode2", OpenraftLine::V0_9).unwrap();
    let err = check_or_init(&engine, "bincode2", OpenraftLine::V0_10).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FormatError::WrongOpenraftLine { .. }), "{msg}");
    assert!(
        msg.contains("openraft 0.9 types") && msg.contains("openraft 0.10 types"),
        "{msg}"
    );
}
