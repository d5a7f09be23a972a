use super::*;
use std::fs;

fn write(dir: &Path, records: &[(&[u8], &[u8])]) -> PathBuf {
    let path = dir.join("s.snap");
    let mut w = SnapshotWriter::create(&path, b"meta").unwrap();
    for (k, v) in records {
        w.record(k, v).unwrap();
    }
    w.finish().unwrap();
    path
}

fn read_all(path: &Path) -> Result<(Vec<u8>, Vec<Record>), String> {
    let file = File::open(path).unwrap();
    let fmt = |e: ReadError| match e {
        ReadError::Io(e) => format!("io: {e}"),
        ReadError::Format(s) => s,
    };
    let (mut r, meta) = SnapshotReader::new(file).map_err(fmt)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().map_err(fmt)? {
        out.push(rec);
    }
    Ok((meta, out))
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<(&[u8], &[u8])> = vec![
        (b"a", b"1"),
        (b"b", b""),
        (b"", b"empty key"),
        (b"k", &[7u8; 70_000]),
    ];
    let path = write(dir.path(), &recs);
    let (meta, got) = read_all(&path).unwrap();
    assert_eq!(meta, b"meta");
    assert_eq!(got.len(), 4);
    for ((k, v), (gk, gv)) in recs.iter().zip(&got) {
        assert_eq!(k, gk);
        assert_eq!(v, gv);
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &[(b"key", b"value"), (b"other", b"x")]);
    let good = fs::read(&path).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        assert!(
            read_all(&path).is_err(),
            "a flip at byte {i} of {} went unnoticed",
            good.len()
        );
    }
}

#[test]
fn every_cut_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &[(b"key", b"value"), (b"other", b"x")]);
    let good = fs::read(&path).unwrap();
    for len in 0..good.len() {
        fs::write(&path, &good[..len]).unwrap();
        let err = read_all(&path).expect_err("a cut file was accepted");
        assert!(!err.starts_with("io:"), "cut at {len}: {err}");
    }
}

#[test]
fn huge_length_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &[(b"key", b"value")]);
    let mut bad = fs::read(&path).unwrap();
    // The first record's value length sits after magic (8), meta length (4), meta (4), key length (4).
    let at = 8 + 4 + 4 + 4;
    bad[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    fs::write(&path, &bad).unwrap();
    let err = read_all(&path).unwrap_err();
    assert!(err.contains("left in the file"), "{err}");
}

#[test]
fn not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    fs::write(&path, b"hello world, this is not a snapshot").unwrap();
    let err = read_all(&path).unwrap_err();
    assert!(err.contains("magic"), "{err}");
}
