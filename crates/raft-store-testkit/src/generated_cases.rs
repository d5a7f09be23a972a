//! Property cases: generated inputs ([`super::generate`]) through a codec, a log store and the
//! key-value state machine, each checked against what was sent or against a model.
//!
//! Each case is a plain function running its own seeded proptest runner and tokio runtime; the
//! macros expand it into one `#[test]` like every other case.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Read;
use std::io::Write;
use std::path::Path;

use openraft::EntryPayload;
use openraft::Membership;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftStateMachine;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::CaseResult;
use super::EngineHarness;
use super::EngineStores;
use super::StoreOpener;
use super::TestConfig;
use super::generate::ShapeConfig;
use super::generate::any_shape;
use super::generate::cases;
use super::generate::fail;
use super::generate::filler;
use super::generate::run_cases;
use super::generate::text;
use super::kv_cases::KvModel;
use super::kv_cases::contents;
use super::kv_cases::kv_entry;
use super::kv_cases::open_kv;
use super::util;
use super::util::tempdir;
use raft_store_core::Codec;
use raft_store_core::Engine;
use raft_store_core::LogStore;
use raft_store_core::kv::KvRequest;
use raft_store_engine::codec::seal;
use raft_store_engine::codec::unseal;

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// `Ok` if `cond`, else a failed input saying `msg`.
fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// A log id of [`ShapeConfig`] (node 0 leads every term).
fn shape_log_id(term: u64, index: u64) -> LogIdOf<ShapeConfig> {
    LogIdOf::<ShapeConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term, node_id: 0 },
        index,
    )
}

/// The payload of an entry of [`ShapeConfig`].
type ShapePayload = EntryPayload<super::generate::Shape, u64, openraft::BasicNode>;

/// The payload of a generated entry: mostly a generated value, now and then a blank or a
/// membership entry.
fn shape_payload() -> impl Strategy<Value = ShapePayload> {
    prop_oneof![
        14 => any_shape().prop_map(EntryPayload::Normal),
        1 => Just(EntryPayload::Blank),
        1 => prop::collection::btree_set(0u64..9, 1..5)
            .prop_map(|ids| EntryPayload::Membership(Membership::new_with_defaults(vec![ids], []))),
    ]
}

/// Every generated value, and every entry carrying one, decodes with codec `K` to what was
/// encoded: the codec never refuses (or changes) what it wrote, whatever its shape and size.
pub fn codec_round_trips<K: Codec>() -> CaseResult {
    let strategy = (shape_payload(), 0u64..u64::MAX / 2, 0u64..u64::MAX / 2);
    run_cases(K::NAME, cases(256), &strategy, |(payload, term, index)| {
        if let EntryPayload::Normal(value) = &payload {
            let sealed = seal::<K, _>(value).map_err(fail)?;
            let back: super::generate::Shape = unseal::<K, _>(&sealed).map_err(|e| {
                fail(format!(
                    "{} refused {} bytes it wrote: {e}",
                    K::NAME,
                    sealed.len()
                ))
            })?;
            check(&back == value, || {
                format!("{} changed the value on the way", K::NAME)
            })?;
        }
        let entry = EntryOf::<ShapeConfig>::new(shape_log_id(term, index), payload);
        let sealed = seal::<K, _>(&entry).map_err(fail)?;
        let back: EntryOf<ShapeConfig> = unseal::<K, _>(&sealed).map_err(|e| {
            fail(format!(
                "{} refused a {}-byte entry it wrote: {e}",
                K::NAME,
                sealed.len()
            ))
        })?;
        check(back == entry, || {
            format!("{} changed the entry on the way", K::NAME)
        })
    })
}

/// Append `batch`es of entries to the store kept in `dir` (opened by `open`), read each batch
/// back at once, reopen, and read everything written so far back again.
fn batches_round_trip<C, S, P, G>(
    name: &str,
    n: u32,
    open: impl Fn(&Path) -> Result<S, std::io::Error>,
    batch: G,
    make: impl Fn(u64, P) -> C::Entry,
) -> CaseResult
where
    C: RaftTypeConfig,
    C::Entry: Clone + PartialEq,
    S: RaftLogStorage<C>,
    P: Debug,
    G: Strategy<Value = Vec<P>>,
{
    let rt = runtime()?;
    let dir = tempdir();
    // Every entry appended so far; the runner's closure is `Fn`, and each input runs to the end
    // on this thread before the next, so the cell is never borrowed twice.
    let written = std::cell::RefCell::new(Vec::<C::Entry>::new());
    run_cases(name, n, &batch, |payloads| {
        let mut written = written.borrow_mut();
        rt.block_on(async {
            let mut store = open(dir.path()).map_err(fail)?;
            let first = written.len() as u64 + 1;
            let entries: Vec<C::Entry> = payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| make(first + i as u64, p))
                .collect();
            let last = first + entries.len() as u64;
            let (tx, rx) = C::oneshot();
            let callback = openraft::storage::IOFlushed::<C>::signal(tx);
            store.append(entries.clone(), callback).await.map_err(fail)?;
            rx.await
                .map_err(|_| fail("the flush callback was dropped"))?
                .map_err(|e| fail(format!("append failed: {e}")))?;
            let got = store
                .get_log_reader()
                .await
                .try_get_log_entries(first..last)
                .await
                .map_err(fail)?;
            check(got == entries, || {
                format!("entries {first}..{last} read back differ from those appended")
            })?;
            written.extend(entries);
            drop(store);
            let mut store = open(dir.path()).map_err(fail)?;
            let got = store
                .get_log_reader()
                .await
                .try_get_log_entries(1..last)
                .await
                .map_err(|e| fail(format!("reading 1..{last} after reopen: {e}")))?;
            check(got == *written, || {
                let at = got.iter().zip(written.iter()).position(|(g, w)| g != w);
                format!(
                    "after reopen read {} entries, appended {} (first difference at {at:?})",
                    got.len(),
                    written.len()
                )
            })
        })
    })
}

/// Generated entries (values of every shape up to several MiB, blanks, memberships) appended
/// in batches to a [`LogStore`] over the engine, read back at once and after a reopen.
pub fn entries_round_trip<H: EngineHarness>(h: &H) -> CaseResult {
    let open = |dir: &Path| -> Result<LogStore<ShapeConfig, H::Engine>, std::io::Error> {
        let engine = h.open(dir).map_err(|e| std::io::Error::new(e.kind(), e))?;
        Ok(LogStore::open(engine)?)
    };
    batches_round_trip(
        "entries_round_trip",
        cases(24),
        open,
        prop::collection::vec(shape_payload(), 1..6),
        |index, payload| EntryOf::<ShapeConfig>::new(shape_log_id(1, index), payload),
    )
}

/// Entries with generated text payloads (empty, unicode, up to 4 MiB) appended to any store
/// (the store-level form of [`entries_round_trip`], for a store of the test config).
pub fn text_entries_round_trip<O: StoreOpener>(o: &O) -> CaseResult {
    let payload = prop_oneof![
        12 => text().prop_map(EntryPayload::<String, u64, openraft::BasicNode>::Normal),
        1 => (any::<u64>(), 1usize << 20..4 << 20)
            .prop_map(|(seed, len)| EntryPayload::Normal(filler(seed, len).iter().map(|b| char::from(b'a' + b % 26)).collect())),
        1 => Just(EntryPayload::Blank),
    ];
    batches_round_trip(
        "text_entries_round_trip",
        cases(24),
        |dir| o.open(dir),
        prop::collection::vec(payload, 1..8),
        |index, payload| EntryOf::<TestConfig>::new(util::log_id(1, index), payload),
    )
}

/// One step of [`log_ops_match_model`].
#[derive(Debug, Clone)]
pub enum LogStep {
    /// Append `n` entries in the current term (a new term first if `new_term`).
    Append {
        /// How many entries.
        n: u8,
        /// Start a new term first.
        new_term: bool,
    },
    /// Truncate after the entry at this fraction (of 256) of the way through the log.
    Truncate(u8),
    /// Purge up to the entry at this fraction of the way through the log.
    Purge(u8),
    /// Save a vote of this term.
    Vote(u8),
    /// Save the last log id as committed.
    Commit,
    /// Close and reopen the store.
    Reopen,
    /// Reshape the engine's files (`Engine::compact`), where the suite can.
    Compact,
}

fn log_step() -> impl Strategy<Value = LogStep> {
    prop_oneof![
        6 => (1u8..24, any::<bool>()).prop_map(|(n, new_term)| LogStep::Append { n, new_term }),
        2 => any::<u8>().prop_map(LogStep::Truncate),
        3 => any::<u8>().prop_map(LogStep::Purge),
        1 => any::<u8>().prop_map(LogStep::Vote),
        1 => Just(LogStep::Commit),
        3 => Just(LogStep::Reopen),
        3 => Just(LogStep::Compact),
    ]
}

/// What the log must hold.
#[derive(Default)]
struct LogModel {
    /// Index to term of every entry after the purged ones.
    entries: BTreeMap<u64, u64>,
    purged: Option<(u64, u64)>,
    term: u64,
    vote: Option<(u64, u64)>,
    committed: Option<(u64, u64)>,
}

impl LogModel {
    fn last(&self) -> Option<(u64, u64)> {
        self.entries
            .iter()
            .next_back()
            .map(|(i, t)| (*i, *t))
            .or(self.purged)
    }

    /// The entry (index, term) `frac`/256 of the way from the first kept entry to the last.
    fn pick(&self, frac: u8) -> Option<(u64, u64)> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let at = usize::from(frac) * n / 256;
        self.entries.iter().nth(at.min(n - 1)).map(|(i, t)| (*i, *t))
    }
}

fn payload_of(term: u64, index: u64) -> String {
    // Varied lengths, so entries straddle engine pages and blocks.
    let len = (index.wrapping_mul(2_654_435_761) % 3000) as usize;
    format!("t{term}-i{index}-{}", "p".repeat(len))
}

/// Check the store against the model: log state, every kept entry with its payload, nothing
/// before the first kept one, vote and committed id.
async fn matches_model<S: RaftLogStorage<TestConfig>>(
    s: &mut S,
    m: &LogModel,
    after: &str,
) -> Result<(), TestCaseError> {
    let state = s.get_log_state().await.map_err(fail)?;
    let purged = m.purged.map(|(i, t)| util::log_id(t, i));
    let last = m.last().map(|(i, t)| util::log_id(t, i));
    check(state.last_purged_log_id == purged, || {
        format!(
            "{after}: last purged {:?}, expected {purged:?}",
            state.last_purged_log_id
        )
    })?;
    check(state.last_log_id == last, || {
        format!("{after}: last log id {:?}, expected {last:?}", state.last_log_id)
    })?;
    let got = s
        .get_log_reader()
        .await
        .try_get_log_entries(0..u64::MAX)
        .await
        .map_err(|e| fail(format!("{after}: reading the whole log: {e}")))?;
    let want: Vec<_> = m
        .entries
        .iter()
        .map(|(i, t)| util::entry_with(*t, *i, payload_of(*t, *i)))
        .collect();
    util::same_entries(&got, &want).map_err(|e| fail(format!("{after}: {e}")))?;
    let vote = s.get_log_reader().await.read_vote().await.map_err(fail)?;
    let want_vote = m.vote.map(|(t, n)| util::vote(t, n));
    check(vote == want_vote, || {
        format!("{after}: vote {vote:?}, expected {want_vote:?}")
    })?;
    let committed = s.read_committed().await.map_err(fail)?;
    let want_committed = m.committed.map(|(i, t)| util::log_id(t, i));
    check(committed == want_committed, || {
        format!("{after}: committed {committed:?}, expected {want_committed:?}")
    })
}

/// Random sequences of appends, truncates, purges, votes, commits, reopens and (where `compact`
/// can) reshapes of the engine's files, on a fresh store each; after every step the store holds
/// exactly what a model of the log holds. `compact` returns `false` where it cannot reshape.
pub fn log_ops_match_model<O: StoreOpener>(
    opener: &O,
    compact: impl Fn(&O::Store) -> Result<bool, String>,
) -> CaseResult {
    let rt = runtime()?;
    run_cases(
        "log_ops_match_model",
        cases(24),
        &prop::collection::vec(log_step(), 1..40),
        |steps| {
            rt.block_on(async {
                let dir = tempdir();
                let mut store = opener.open(dir.path()).map_err(fail)?;
                let mut model = LogModel {
                    term: 1,
                    ..LogModel::default()
                };
                for (at, step) in steps.iter().enumerate() {
                    match step {
                        LogStep::Append { n, new_term } => {
                            if *new_term {
                                model.term += 1;
                            }
                            let first = model.last().map_or(1, |(i, _)| i + 1);
                            let batch: Vec<_> = (first..first + u64::from(*n))
                                .map(|i| util::entry_with(model.term, i, payload_of(model.term, i)))
                                .collect();
                            util::append(&mut store, batch).await.map_err(fail)?;
                            for i in first..first + u64::from(*n) {
                                model.entries.insert(i, model.term);
                            }
                        }
                        LogStep::Truncate(frac) => {
                            // Remove the picked entry and all after it, keeping the purged prefix
                            // (openraft never truncates into it).
                            let Some((i, _)) = model.pick(*frac) else { continue };
                            let after = if model.purged.is_some_and(|(p, _)| i - 1 <= p) {
                                model.purged
                            } else {
                                model.entries.get(&(i - 1)).map(|t| (i - 1, *t))
                            };
                            store
                                .truncate_after(after.map(|(i, t)| util::log_id(t, i)))
                                .await
                                .map_err(fail)?;
                            model.entries.retain(|k, _| *k < i);
                        }
                        LogStep::Purge(frac) => {
                            let Some((i, t)) = model.pick(*frac) else { continue };
                            store.purge(util::log_id(t, i)).await.map_err(fail)?;
                            model.entries.retain(|k, _| *k > i);
                            model.purged = Some((i, t));
                        }
                        LogStep::Vote(term) => {
                            let term = u64::from(*term).max(model.vote.map_or(0, |(t, _)| t));
                            store.save_vote(&util::vote(term, 1)).await.map_err(fail)?;
                            model.vote = Some((term, 1));
                        }
                        LogStep::Commit => {
                            let last = model.last();
                            store
                                .save_committed(last.map(|(i, t)| util::log_id(t, i)))
                                .await
                                .map_err(fail)?;
                            model.committed = last;
                        }
                        LogStep::Reopen => {
                            drop(store);
                            store = opener
                                .open(dir.path())
                                .map_err(|e| fail(format!("reopen after step {at}: {e}")))?;
                        }
                        LogStep::Compact => {
                            compact(&store).map_err(|e| fail(format!("compacting after step {at}: {e}")))?;
                        }
                    }
                    matches_model(&mut store, &model, &format!("after step {at} ({step:?})")).await?;
                }
                // And all of it once more from the files.
                drop(store);
                let mut store = opener.open(dir.path()).map_err(fail)?;
                matches_model(&mut store, &model, "after the final reopen").await
            })
        },
    )
}

/// [`log_ops_match_model`] over a [`LogStore`] on the engine, with the engine's own
/// `compact` between steps.
pub fn engine_log_ops_match_model<H: EngineHarness>(stores: &EngineStores<H>) -> CaseResult {
    log_ops_match_model(stores, |s| {
        s.engine().compact().map(|()| true).map_err(|e| e.to_string())
    })
}

fn kv_request() -> impl Strategy<Value = KvRequest> {
    // A few fixed keys, so requests meet keys set before them; and long keys (over LMDB's
    // 511-byte limit, stored under their hash there), fixed ones among them for the same
    // reason, two sharing all but their last byte.
    let key = || {
        prop_oneof![
            6 => text(),
            4 => prop::sample::select(vec!["a", "b", "key/1", "é"]).prop_map(String::from),
            1 => prop::sample::select(vec![600usize, 601, 4000]).prop_map(|n| "L".repeat(n)),
            1 => (text(), 504usize..3000).prop_map(|(tail, n)| "x".repeat(n) + &tail),
        ]
    };
    let value = || {
        prop_oneof![
            10 => prop::collection::vec(any::<u8>(), 0..64),
            2 => prop::collection::vec(any::<u8>(), 0..20_000),
            1 => (any::<u64>(), 1usize << 20..3 << 20).prop_map(|(seed, len)| filler(seed, len)),
        ]
    };
    prop_oneof![
        4 => (key(), value()).prop_map(|(key, value)| KvRequest::Set { key, value }),
        // Many small pairs: the request shape that made a raft-kv log unreadable.
        3 => prop::collection::vec((key(), prop::collection::vec(any::<u8>(), 0..3)), 0..300)
            .prop_map(|pairs| KvRequest::SetMany { pairs }),
        2 => key().prop_map(|key| KvRequest::Delete { key }),
        2 => (key(), value()).prop_map(|(key, value)| KvRequest::UpdateIfExists { key, value }),
    ]
}

/// Generated key-value requests (unicode, empty and long keys, `SetMany` of hundreds of small pairs,
/// values up to 3 MiB) go through the log (appended, read back decoded) into the state machine
/// beside it; responses, reads and the data match a model, and a snapshot of it installed into
/// a second store holds the same data. A reopen keeps it all.
pub fn kv_requests_round_trip<H: EngineHarness>(h: &H) -> CaseResult {
    let rt = runtime()?;
    run_cases(
        "kv_requests_round_trip",
        cases(16),
        &prop::collection::vec(kv_request(), 1..10),
        |requests| {
            rt.block_on(async {
                let (a, b) = (tempdir(), tempdir());
                let (mut log, mut sm) = open_kv(h, a.path()).map_err(fail)?;
                let entries: Vec<_> = requests
                    .iter()
                    .enumerate()
                    .map(|(i, r)| kv_entry(i as u64 + 1, r.clone()))
                    .collect();
                let last = entries.len() as u64 + 1;
                let (tx, rx) = super::kv_cases::KvTestConfig::oneshot();
                log.append(entries, openraft::storage::IOFlushed::signal(tx))
                    .await
                    .map_err(fail)?;
                rx.await
                    .map_err(|_| fail("the flush callback was dropped"))?
                    .map_err(fail)?;
                // Apply what the log returns, as openraft does: decoded from the engine.
                let logged = log
                    .get_log_reader()
                    .await
                    .try_get_log_entries(1..last)
                    .await
                    .map_err(fail)?;
                let responses = sm.apply_entries(&logged).map_err(fail)?;
                let mut model = KvModel::default();
                for (i, (r, got)) in requests.iter().zip(&responses).enumerate() {
                    let want = model.apply(r);
                    check(*got == want, || {
                        format!("request {i} ({r}): response {got:?}, expected {want:?}")
                    })?;
                }
                for (k, v) in &model.0 {
                    let got = sm.reader().get(k).map_err(fail)?;
                    check(got.as_ref() == Some(v), || {
                        format!("reading key {k:?}: wrong value")
                    })?;
                }
                check(contents::<H>(&sm).map_err(fail)? == model.0, || {
                    "the data differs from the model".into()
                })?;
                // Snapshot it and install the snapshot into a second store.
                let mut builder = sm
                    .try_create_snapshot_builder(true)
                    .await
                    .ok_or_else(|| fail("no snapshot builder"))?;
                let built = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
                    .await
                    .map_err(fail)?;
                let (_lb, mut sb) = open_kv(h, b.path()).map_err(fail)?;
                let mut received = sb.receive_snapshot().map_err(fail)?;
                let mut source = built.snapshot;
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = source.read(&mut buf).map_err(fail)?;
                    if n == 0 {
                        break;
                    }
                    received.write_all(&buf[..n]).map_err(fail)?;
                }
                sb.install_snapshot(&built.meta, received).await.map_err(fail)?;
                check(contents::<H>(&sb).map_err(fail)? == model.0, || {
                    "the installed snapshot differs from the model".into()
                })?;
                // The builder holds the engine too: the reopen needs every handle gone.
                drop((builder, log, sm));
                let (_log, sm) = open_kv(h, a.path()).map_err(fail)?;
                check(contents::<H>(&sm).map_err(fail)? == model.0, || {
                    "the data after a reopen differs from the model".into()
                })
            })
        },
    )
}
