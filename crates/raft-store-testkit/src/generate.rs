//! Generated inputs: proptest strategies for serde values of the shapes applications log, and
//! the runner the generated cases share.
//!
//! Hand-written examples only hold what their author thought of: an entry of 60 one-letter
//! values was acknowledged and then refused by the decoder on every node, because every example
//! was small and flat. [`shape`] generates nested maps and sequences of many small items, long
//! vectors of small integers (which claim far more of a decoder's budget than the bytes they
//! take), empty and large strings and byte strings, options, enums and unicode, up to several
//! MiB ([`big_shape`]).
//!
//! Each case runs a seeded proptest runner ([`run_cases`]): a failure names the seed
//! (`RAFT_STORE_SEED` replays it) and the smallest input proptest found; `RAFT_STORE_PROPTEST_CASES`
//! sets how many inputs each case tries.

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest::test_runner::RngAlgorithm;
use proptest::test_runner::TestCaseError;
use proptest::test_runner::TestError;
use proptest::test_runner::TestRng;
use proptest::test_runner::TestRunner;
use serde::Deserialize;
use serde::Serialize;

use super::CaseResult;

openraft::declare_raft_types!(
    /// The type config of the generated log cases: entries carry a [`Shape`].
    pub ShapeConfig:
        D = Shape,
        R = String,
);

/// A serde value of any of the shapes an application puts in a log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // The variants are the shapes their names say.
pub enum Shape {
    Unit,
    Bool(bool),
    I8(i8),
    U16(u16),
    I32(i32),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F32(f32),
    F64(f64),
    Char(char),
    Text(String),
    Bytes(ByteBuf),
    Opt(Option<Box<Shape>>),
    Seq(Vec<Shape>),
    Map(BTreeMap<String, Shape>),
    Ints(Vec<u64>),
    Wide(Vec<u128>),
    Signed(Vec<i16>),
    Pairs(Vec<(u16, Option<bool>)>),
    Tuple(u8, String, Vec<u32>),
    Record {
        id: u64,
        name: String,
        tags: Vec<String>,
        nested: Option<Box<Shape>>,
    },
    Marker(Marker),
    Wrapped(Wrapper),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Debug form of a generated value can be megabytes: name the variant only.
        let debug = format!("{self:?}");
        let name = debug.split(['(', ' ', '{']).next().unwrap_or("?");
        write!(f, "Shape::{name}")
    }
}

/// A unit struct (serialized as a unit struct, not as `()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker;

/// A newtype struct around a byte vector serialized as a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wrapper(pub Vec<u8>);

/// Bytes serialized with `serialize_bytes` (as `serde_bytes` does), not as a sequence of `u8`.
#[derive(Clone, PartialEq)]
pub struct ByteBuf(pub Vec<u8>);

impl fmt::Debug for ByteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteBuf({} bytes)", self.0.len())
    }
}

impl Serialize for ByteBuf {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(ByteBuf(out))
            }
        }
        deserializer.deserialize_byte_buf(Visit)
    }
}

/// `len` bytes from a seed, cheap to make at megabytes (proptest's byte vectors are not).
pub fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn floats32() -> impl Strategy<Value = f32> {
    // NaN is not equal to itself, so a round trip of it cannot be compared with `==`.
    prop::num::f32::NORMAL | prop::num::f32::SUBNORMAL | prop::num::f32::ZERO | prop::num::f32::INFINITE
}

fn floats64() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO | prop::num::f64::INFINITE
}

/// Short unicode text: empty, ASCII, and any char (control characters, surrogate-free planes).
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,3}",
        any::<String>(),
        prop::collection::vec(any::<char>(), 0..40).prop_map(|c| c.into_iter().collect()),
    ]
}

fn leaf() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        any::<bool>().prop_map(Shape::Bool),
        any::<i8>().prop_map(Shape::I8),
        any::<u16>().prop_map(Shape::U16),
        any::<i32>().prop_map(Shape::I32),
        any::<u64>().prop_map(Shape::U64),
        any::<i64>().prop_map(Shape::I64),
        any::<u128>().prop_map(Shape::U128),
        any::<i128>().prop_map(Shape::I128),
        floats32().prop_map(Shape::F32),
        floats64().prop_map(Shape::F64),
        any::<char>().prop_map(Shape::Char),
        text().prop_map(Shape::Text),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Shape::Bytes(ByteBuf(b))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Shape::Wrapped(Wrapper(b))),
        // Small integers take one byte each but claim their full width in bincode's budget.
        prop::collection::vec(0u64..4, 0..3000).prop_map(Shape::Ints),
        prop::collection::vec(any::<u64>(), 0..200).prop_map(Shape::Ints),
        prop::collection::vec(0u128..2, 0..3000).prop_map(Shape::Wide),
        prop::collection::vec(-2i16..2, 0..3000).prop_map(Shape::Signed),
        prop::collection::vec((any::<u16>(), any::<Option<bool>>()), 0..500).prop_map(Shape::Pairs),
        (any::<u8>(), text(), prop::collection::vec(any::<u32>(), 0..20))
            .prop_map(|(a, b, c)| Shape::Tuple(a, b, c)),
        Just(Shape::Marker(Marker)),
        Just(Shape::Opt(None)),
    ]
}

/// Any [`Shape`] up to a few hundred KiB: leaves, and sequences, maps (up to hundreds of small
/// items), options and records nested up to four deep.
pub fn shape() -> impl Strategy<Value = Shape> {
    leaf().prop_recursive(4, 2048, 200, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..200).prop_map(Shape::Seq),
            prop::collection::btree_map(text(), inner.clone(), 0..200).prop_map(Shape::Map),
            inner.clone().prop_map(|s| Shape::Opt(Some(Box::new(s)))),
            (
                any::<u64>(),
                text(),
                prop::collection::vec(text(), 0..60),
                prop::option::of(inner)
            )
                .prop_map(|(id, name, tags, nested)| Shape::Record {
                    id,
                    name,
                    tags,
                    nested: nested.map(Box::new),
                }),
        ]
    })
}

/// A large [`Shape`], 1 to 4 MiB: text, bytes, a vector of 100,000s of small integers, or a map
/// of tens of thousands of one-letter values.
pub fn big_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (any::<u64>(), 1usize << 20..4 << 20).prop_map(|(seed, len)| {
            // Multi-byte characters, so the text is valid UTF-8 of varied widths.
            let chars = ['x', 'é', '€', '😀'];
            let bytes = filler(seed, len / 2);
            Shape::Text(bytes.iter().map(|b| chars[usize::from(*b) % 4]).collect())
        }),
        (any::<u64>(), 1usize << 20..4 << 20)
            .prop_map(|(seed, len)| Shape::Bytes(ByteBuf(filler(seed, len)))),
        (any::<u64>(), 100_000usize..600_000).prop_map(|(seed, n)| {
            Shape::Ints(filler(seed, n).into_iter().map(|b| u64::from(b % 3)).collect())
        }),
        (10_000usize..60_000)
            .prop_map(|n| { Shape::Map((0..n).map(|i| (format!("k{i}"), Shape::Char('v'))).collect()) }),
    ]
}

/// Mostly [`shape`], now and then [`big_shape`].
pub fn any_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![12 => shape(), 1 => big_shape()]
}

/// How many inputs a generated case tries: `RAFT_STORE_PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("RAFT_STORE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed of this run: `RAFT_STORE_SEED` if set (to replay a failure), else a fresh one.
pub fn seed() -> u64 {
    std::env::var("RAFT_STORE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ u64::from(std::process::id()).rotate_left(32)
        })
}

/// Run `test` on `n` inputs of `strategy` with a seeded runner. A failure (after shrinking)
/// names the case, the seed and the smallest failing input (its debug form cut to 2,000
/// characters).
pub fn run_cases<S: Strategy>(
    name: &str,
    n: u32,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> CaseResult
where
    S::Value: fmt::Debug,
{
    let seed = seed();
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.wrapping_add(i as u64).to_le_bytes());
    }
    let config = Config {
        cases: n,
        failure_persistence: None,
        // Each input may open stores and write megabytes: shrink, but not for ever.
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    match runner.run(strategy, test) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, input)) => {
            let mut shown = format!("{input:?}");
            if shown.len() > 2000 {
                let mut cut = 2000;
                while !shown.is_char_boundary(cut) {
                    cut -= 1;
                }
                shown.truncate(cut);
                shown.push_str("...");
            }
            Err(format!("{name} (RAFT_STORE_SEED={seed}): {reason}; smallest failing input: {shown}").into())
        }
        Err(TestError::Abort(reason)) => {
            Err(format!("{name} (RAFT_STORE_SEED={seed}): aborted: {reason}").into())
        }
    }
}

/// Turn any error into a failed input of a proptest case.
pub fn fail(e: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}
