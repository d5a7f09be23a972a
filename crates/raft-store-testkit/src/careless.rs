//! Careless payloads: entry types whose serde attributes make the encoding depend on the value
//! (`skip_serializing_if` on the first, a middle and the last field and in nested structs,
//! `skip_serializing` with `default`, `skip`, `flatten`, `untagged`, internally and adjacently
//! tagged enums, `default`, `rename_all`, `with = "serde_bytes"`, `serialize_with`,
//! `serde_json::Value`, hash maps and sets, NaNs), and the cases that prove a store returns
//! every entry it acknowledges as written.
//!
//! What must hold: under a self-describing codec every entry is accepted and read back equal,
//! also after a reopen; under any codec with a value comparison ([`EntryCheck::equal`]) every
//! entry is either refused (nothing written, the store goes on) or read back equal. Never is an
//! entry acknowledged and read back different.
//!
//! Fields that serde never writes (`skip`, `skip_serializing`) are generated at their default
//! value: the type's author chose not to store them, so no codec can give them back.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;
use std::path::Path;

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Deserialize;
use serde::Serialize;

use super::CaseResult;
use super::EngineHarness;
use super::generate::cases;
use super::generate::fail;
use super::generate::run_cases;
use super::util::tempdir;
use raft_store_core::Codec;
use raft_store_core::EntryCheck;
use raft_store_core::LogStore;
use raft_store_core::StoreError;
use raft_store_engine::codec::round_trip;

openraft::declare_raft_types!(
    /// The type config of the careless-payload cases: entries carry a [`Careless`].
    pub CarelessConfig:
        D = Careless,
        R = (),
);

/// An `f64` compared bit for bit, so a NaN equals itself: the cases ask whether the bits came
/// back, which `==` on floats cannot say.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bits(pub f64);

impl PartialEq for Bits {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

/// `skip_serializing_if` on the first field (the issue's `SkipShifted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SkipFirst {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub n: u64,
    pub data: Vec<u8>,
}

/// `skip_serializing_if = "Vec::is_empty"` on a middle field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SkipMiddle {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<u8>,
    pub n: u64,
    pub tail: Vec<u8>,
}

/// An inner struct whose last field may be skipped, with fields after it in the outer one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Inner {
    pub a: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
}

/// [`Inner`] followed by more fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SkipNested {
    pub inner: Inner,
    pub after: u64,
    pub more: String,
}

// serde hands `skip_serializing_if` and `serialize_with` functions a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `default, skip_serializing_if` on a first integer, a `skip_serializing` + `default` field and
/// a `skip` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing, default)]
    pub cached: u32,
    #[serde(skip)]
    pub scratch: u16,
    pub name: String,
    #[serde(default)]
    pub maybe: Option<i32>,
}

/// `flatten` of a map into a struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Flattened {
    pub id: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, u64>,
}

/// An untagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Untagged {
    Record { a: u64, b: bool },
    Text(String),
    Number(i64),
}

/// An internally tagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[allow(missing_docs)]
pub enum Internal {
    Put { key: String, value: u64 },
    Remove { key: String },
    Ping,
}

/// An adjacently tagged enum with `rename_all`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Adjacent {
    SetValue(u32),
    Pair { left: i16, right: i16 },
    Clear,
}

/// `rename_all`, `with = "serde_bytes"`, `serialize_with`/`deserialize_with`, a NaN-able float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Renamed {
    pub user_id: u64,
    #[serde(with = "serde_bytes")]
    pub raw_bytes: Vec<u8>,
    #[serde(serialize_with = "as_text", deserialize_with = "from_text")]
    pub counter: u64,
    pub ratio: Bits,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn as_text<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn from_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Hash maps and sets: they iterate in another order after a decode, so their bytes re-encode
/// differently although the value is equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Hashed {
    pub map: HashMap<u64, String>,
    pub set: HashSet<String>,
}

/// The payload of a careless entry: one of the shapes above, or `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Careless {
    SkipFirst(SkipFirst),
    SkipMiddle(SkipMiddle),
    SkipNested(SkipNested),
    Defaults(Defaults),
    Flattened(Flattened),
    Untagged(Untagged),
    Internal(Internal),
    Adjacent(Adjacent),
    Renamed(Renamed),
    Hashed(Hashed),
    Json(serde_json::Value),
    Floats(Vec<Bits>),
}

impl std::fmt::Display for Careless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn small_text() -> impl Strategy<Value = String> {
    // Short strings starting with a byte that also reads as a small integer or tag: the shifted
    // decodings of the issue start there.
    prop_oneof![Just(String::new()), "[\\x00-\\x05a-z]{1,6}", "\\PC{0,12}"]
}

fn bits() -> impl Strategy<Value = Bits> {
    prop_oneof![
        any::<f64>().prop_map(Bits),
        Just(Bits(f64::NAN)),
        Just(Bits(f64::from_bits(0x7ff8_0000_0000_1234))),
        Just(Bits(-0.0)),
        Just(Bits(f64::INFINITY)),
    ]
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        small_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values of every careless shape, with the values that shift a non-self-describing decoder
/// (a `None`, an empty vector, a zero) weighted up.
pub fn careless() -> impl Strategy<Value = Careless> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..6);
    prop_oneof![
        (prop::option::of(small_text()), 0u64..300, bytes())
            .prop_map(|(note, n, data)| Careless::SkipFirst(SkipFirst { note, n, data })),
        (
            any::<u64>(),
            prop::collection::vec(0u8..8, 0..3),
            0u64..9,
            bytes()
        )
            .prop_map(|(id, tags, n, tail)| Careless::SkipMiddle(SkipMiddle { id, tags, n, tail })),
        (any::<u8>(), prop::option::of(0u32..300), 0u64..300, small_text()).prop_map(
            |(a, last, after, more)| {
                Careless::SkipNested(SkipNested {
                    inner: Inner { a, last },
                    after,
                    more,
                })
            }
        ),
        (
            prop_oneof![Just(0u64), any::<u64>()],
            small_text(),
            prop::option::of(any::<i32>())
        )
            .prop_map(|(seq, name, maybe)| Careless::Defaults(Defaults {
                seq,
                cached: 0,
                scratch: 0,
                name,
                maybe,
            })),
        (
            any::<u64>(),
            prop::collection::btree_map("[a-z]{1,4}", any::<u64>(), 0..4)
        )
            .prop_map(|(id, extra)| Careless::Flattened(Flattened { id, extra })),
        prop_oneof![
            (any::<u64>(), any::<bool>()).prop_map(|(a, b)| Untagged::Record { a, b }),
            small_text().prop_map(Untagged::Text),
            any::<i64>().prop_map(Untagged::Number),
        ]
        .prop_map(Careless::Untagged),
        prop_oneof![
            (small_text(), any::<u64>()).prop_map(|(key, value)| Internal::Put { key, value }),
            small_text().prop_map(|key| Internal::Remove { key }),
            Just(Internal::Ping),
        ]
        .prop_map(Careless::Internal),
        prop_oneof![
            any::<u32>().prop_map(Adjacent::SetValue),
            (any::<i16>(), any::<i16>()).prop_map(|(left, right)| Adjacent::Pair { left, right }),
            Just(Adjacent::Clear),
        ]
        .prop_map(Careless::Adjacent),
        (any::<u64>(), bytes(), any::<u64>(), bits()).prop_map(|(user_id, raw_bytes, counter, ratio)| {
            Careless::Renamed(Renamed {
                user_id,
                raw_bytes,
                counter,
                ratio,
            })
        }),
        (
            prop::collection::hash_map(any::<u64>(), small_text(), 0..40),
            prop::collection::hash_set("[a-z0-9]{1,6}", 0..40)
        )
            .prop_map(|(map, set)| Careless::Hashed(Hashed { map, set })),
        json().prop_map(Careless::Json),
        prop::collection::vec(bits(), 0..4).prop_map(Careless::Floats),
    ]
}

/// The issue's own examples and 200-entry hash maps and sets: always among the inputs.
pub fn known_cases() -> Vec<Careless> {
    vec![
        Careless::SkipFirst(SkipFirst {
            note: None,
            n: 0,
            data: vec![1, 9],
        }),
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
        Careless::Hashed(Hashed {
            map: (0..200).map(|i| (i, format!("value {i}"))).collect(),
            set: (0..200).map(|i| format!("member {i}")).collect(),
        }),
    ]
}

fn log_id(index: u64) -> LogIdOf<CarelessConfig> {
    LogIdOf::<CarelessConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    )
}

/// A normal entry at `index` carrying `payload`.
pub fn careless_entry(index: u64, payload: Careless) -> EntryOf<CarelessConfig> {
    EntryOf::<CarelessConfig>::new_normal(log_id(index), payload)
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// Codec `K` on careless values, checked by value (never by re-encoded bytes): a
/// self-describing codec gives every value back; any codec gives a value back equal or says
/// why not. Also checks that the value comparison refuses what bincode reads back different
/// (the first example) when `K` is not self-describing.
pub fn careless_values_round_trip<K: Codec>() -> CaseResult {
    for value in known_cases() {
        let entry = careless_entry(1, value.clone());
        let got = round_trip::<K, _>(&entry, |a, b| a == b);
        if K::SELF_DESCRIBING && got.is_err() {
            return Err(format!(
                "{}: a known careless entry does not come back: {got:?} ({value:?})",
                K::NAME
            )
            .into());
        }
    }
    run_cases(
        &format!("careless_values_round_trip::<{}>", K::NAME),
        cases(512),
        &careless(),
        |value| {
            let entry = careless_entry(3, value);
            match round_trip::<K, _>(&entry, |a, b| a == b) {
                Ok(_) => Ok(()),
                Err(e) => ensure(!K::SELF_DESCRIBING, || {
                    format!(
                        "{} is self-describing but does not give the entry back: {e}",
                        K::NAME
                    )
                }),
            }
        },
    )
}

/// What one codec must do with careless entries in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every entry accepted and read back equal (a self-describing codec).
    AllBack,
    /// Each entry refused or read back equal (a value comparison).
    RefusedOrEqual,
}

/// Careless entries appended one by one to a [`LogStore`] with codec `K` over the engine: what
/// is accepted is read back equal at once and after a reopen; what is refused leaves nothing
/// behind and the store goes on.
fn careless_in_store<H, K>(
    h: &H,
    // `None`: the store's own check, `LogStore::open` (a self-describing codec only).
    check: Option<fn() -> EntryCheck<EntryOf<CarelessConfig>>>,
    expect: Expect,
) -> CaseResult
where
    H: EngineHarness,
    K: Codec,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let dir = tempdir();
    let open = |dir: &Path| -> Result<LogStore<CarelessConfig, H::Engine, K>, TestCaseError> {
        let engine = h.open(dir).map_err(fail)?;
        match check {
            Some(check) => LogStore::open_checked(engine, check()),
            None => LogStore::open(engine),
        }
        .map_err(fail)
    };
    let written = std::cell::RefCell::new(Vec::<EntryOf<CarelessConfig>>::new());
    let refused = std::cell::Cell::new(0u32);
    let one = |payload: Careless| -> Result<(), TestCaseError> {
        let mut written = written.borrow_mut();
        rt.block_on(async {
            let mut store = open(dir.path())?;
            let index = written.len() as u64 + 1;
            let entry = careless_entry(index, payload);
            let (tx, rx) = CarelessConfig::oneshot();
            match store.append([entry.clone()], IOFlushed::signal(tx)).await {
                Ok(()) => {
                    rx.await
                        .map_err(|_| fail("the flush callback was dropped"))?
                        .map_err(|e| fail(format!("append failed: {e}")))?;
                    written.push(entry);
                }
                Err(e) => {
                    ensure(expect == Expect::RefusedOrEqual, || {
                        format!("{} refused entry {index}, which must be accepted: {e}", K::NAME)
                    })?;
                    ensure(
                        matches!(StoreError::find(&e), Some(StoreError::EntryRefused { index: i, .. }) if *i == index),
                        || format!("a refusal that does not name the entry: {e}"),
                    )?;
                    ensure(!store.is_poisoned(), || "a refused entry poisoned the store".into())?;
                    refused.set(refused.get() + 1);
                }
            }
            let state = store.get_log_state().await.map_err(fail)?;
            ensure(
                state.last_log_id.map(|l| l.index()) == written.last().map(RaftEntry::index),
                || format!("log state after entry {index} does not end at the last accepted entry"),
            )?;
            drop(store);
            let mut store = open(dir.path())?;
            let last = written.len() as u64 + 1;
            let got = store
                .get_log_reader()
                .await
                .try_get_log_entries(1..last)
                .await
                .map_err(fail)?;
            let at = got.iter().zip(written.iter()).position(|(g, w)| g != w);
            ensure(got.len() == written.len() && at.is_none(), || {
                let shown = at.map(|i| format!("wrote {:?}, read {:?}", written[i], got[i]));
                format!(
                    "{}: after reopen read {} entries, {} acknowledged; first difference: {shown:?}",
                    K::NAME,
                    got.len(),
                    written.len()
                )
            })
        })
    };
    for value in known_cases() {
        one(value).map_err(|e| format!("{}: known careless case: {e}", K::NAME))?;
    }
    run_cases(
        &format!("careless_entries::<{}>", K::NAME),
        cases(48),
        &careless(),
        one,
    )?;
    if expect == Expect::RefusedOrEqual && refused.get() == 0 {
        return Err(format!(
            "{} with a value comparison refused none of the careless entries: the check did not run",
            K::NAME
        )
        .into());
    }
    Ok(())
}

/// Careless entries through a [`LogStore`] over the engine, with every codec: the default
/// (MessagePack) gives each back as written after a reopen; bincode and postcard, opened with
/// [`EntryCheck::equal`], refuse each one they would read back different (the issue's
/// `SkipShifted` among them) and give the rest back as written.
pub fn careless_entries<H: EngineHarness>(h: &H) -> CaseResult {
    careless_in_store::<H, raft_store_core::MessagePack>(h, None, Expect::AllBack)?;
    careless_in_store::<H, raft_store_core::Bincode>(h, Some(EntryCheck::equal), Expect::RefusedOrEqual)?;
    careless_in_store::<H, raft_store_core::Postcard>(h, Some(EntryCheck::equal), Expect::RefusedOrEqual)
}
