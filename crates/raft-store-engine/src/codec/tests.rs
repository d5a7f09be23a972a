use super::*;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Sample {
    a: u64,
    b: String,
    c: Vec<u8>,
}

fn sample() -> Sample {
    Sample {
        a: 7,
        b: "seven".into(),
        c: vec![1, 2, 3],
    }
}

#[test]
fn both_codecs_round_trip_through_the_envelope() {
    let v = seal::<Bincode, _>(&sample()).unwrap();
    assert_eq!(v[0], FORMAT_VERSION);
    assert_eq!(unseal::<Bincode, Sample>(&v).unwrap(), sample());
    let v = seal::<Postcard, _>(&sample()).unwrap();
    assert_eq!(unseal::<Postcard, Sample>(&v).unwrap(), sample());
}

#[test]
fn every_single_bit_flip_is_detected() {
    let v = seal::<Bincode, _>(&sample()).unwrap();
    for byte in 0..v.len() {
        for bit in 0..8 {
            let mut bad = v.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                unseal::<Bincode, Sample>(&bad).is_err(),
                "flip of bit {bit} in byte {byte} unnoticed"
            );
        }
    }
}

#[test]
fn short_and_empty_values_are_errors() {
    for len in 0..ENVELOPE_HEADER {
        let err = open_envelope(&vec![FORMAT_VERSION; len]).unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
    }
}

#[test]
fn newer_envelope_version_is_named() {
    let mut v = seal_bytes(b"abc");
    v[0] = FORMAT_VERSION + 1;
    let err = open_envelope(&v).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
}

#[test]
fn trailing_bytes_are_refused() {
    let mut payload = Vec::new();
    Bincode::encode_into(&5u64, &mut payload).unwrap();
    payload.push(0);
    assert!(
        Bincode::decode::<u64>(&payload)
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    let mut payload = postcard::to_allocvec(&5u64).unwrap();
    payload.push(0);
    assert!(
        Postcard::decode::<u64>(&payload)
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
}

#[test]
fn log_keys_sort_in_index_order() {
    let mut keys: Vec<[u8; 8]> = [0u64, 1, 255, 256, 65_536, u64::MAX - 1, u64::MAX]
        .map(log_key)
        .to_vec();
    let sorted = keys.clone();
    keys.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(log_index(&log_key(123_456)), Some(123_456));
    assert_eq!(log_index(b"short"), None);
}

#[test]
fn a_huge_length_is_an_error_not_an_allocation() {
    // A string claiming 2^63 bytes (varint marker 253: a u64 follows). Without a decode limit
    // bincode allocates the length first, and the failed allocation aborts the process.
    let bytes = [253, 255, 255, 255, 255, 255, 255, 255, 127];
    let err = Bincode::decode::<String>(&bytes).expect_err("a length beyond the input is refused");
    assert!(err.to_string().contains("claims more than"), "{err}");
    // The limit never refuses a valid value, small or large.
    for len in [0usize, 1, 1000, 5000, 300_000] {
        let s = "y".repeat(len);
        let mut out = Vec::new();
        Bincode::encode_into(&s, &mut out).expect("encode");
        assert_eq!(Bincode::decode::<String>(&out).expect("decode"), s);
    }
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Tag {
    A,
    B(u8),
}

#[test]
fn bincode_limit_accepts_the_worst_case() {
    // Each item below claims more of bincode's limit than the bytes it takes: one-byte varints
    // decoded as u128 (16 per byte), u64 (8), enum tags (4), lengths (8). The old limit (the
    // smallest power of four above the input) refused all of them.
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &T,
    ) {
        for codec in ["bincode", "postcard"] {
            let mut out = Vec::new();
            let back: T = if codec == "bincode" {
                Bincode::encode_into(value, &mut out).expect("encode");
                Bincode::decode(&out)
                    .unwrap_or_else(|e| panic!("{codec} refused {} bytes it wrote: {e}", out.len()))
            } else {
                Postcard::encode_into(value, &mut out).expect("encode");
                Postcard::decode(&out)
                    .unwrap_or_else(|e| panic!("{codec} refused {} bytes it wrote: {e}", out.len()))
            };
            assert_eq!(&back, value, "{codec}");
        }
    }
    for n in [0usize, 1, 2, 250, 251, 5000, 70_000] {
        round_trip(&vec![0u128; n]);
        round_trip(&vec![i128::from(1u8); n]);
        round_trip(&vec![7u64; n]);
        round_trip(&vec![Some(3u32); n]);
        round_trip(&vec![vec![0u16; 1]; n]);
        round_trip(&vec![String::new(); n]);
    }
    // The raft-kv request that made every node's log unreadable: 60 keys of one-letter values.
    let map: std::collections::BTreeMap<String, Vec<u8>> =
        (0..60).map(|i| (format!("k{i}"), b"v".to_vec())).collect();
    round_trip(&map);
    round_trip(
        &(0..10_000)
            .map(|i| if i % 2 == 0 { Tag::A } else { Tag::B(1) })
            .collect::<Vec<_>>(),
    );
}

#[test]
fn a_damaged_length_allocates_at_most_a_bounded_multiple_of_the_input() {
    // A string whose length claims 33x the input must be refused before it is allocated (it
    // would not fit in the input anyway), whatever the input size. (A `Vec<u8>` goes through
    // serde's sequence visitor, which never preallocates more than 1 MiB.)
    for input in [10usize, 1000, 100_000] {
        let claimed = (input * 33) as u64;
        let mut bytes = vec![253];
        bytes.extend_from_slice(&claimed.to_le_bytes());
        bytes.resize(input, 0);
        let err = Bincode::decode::<String>(&bytes).expect_err("a length beyond the input is refused");
        assert!(err.to_string().contains("claims more than"), "{err}");
        assert!(
            matches!(err, CodecError::LengthOverLimit { codec: "bincode2", len, .. } if len == input),
            "the error is typed: {err:?}"
        );
    }
}
