//! Proof that the suite can fail: deliberately broken engines must fail the cases that guard
//! against their defect, while the same cases pass on the sound engine beside them.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;

use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::MemEngine;
use raft_store_core::Op;
use raft_store_core::Space;
use raft_store_core::Visitor;
use raft_store_engine::format::meta_key;
use raft_store_testkit::CaseResult;
use raft_store_testkit::EngineHarness;
use raft_store_testkit::EngineStores;
use raft_store_testkit::MemHarness;
use raft_store_testkit::engine_cases;
use raft_store_testkit::engine_log_cases;
use raft_store_testkit::log_cases;
use raft_store_testkit::run;

/// What a broken engine does wrong.
#[derive(Clone, Copy)]
enum Defect {
    /// Reports durable writes as durable without syncing them.
    SkipsSync,
    /// Never stores the vote, so it is gone after reopen.
    LosesVote,
    /// A range delete to the end keeps the range's last key, leaving a hole after a truncate.
    HoleAfterTruncate,
    /// Keeps its own index of each keyspace's last key and leaves it alone on range deletes.
    LastKeyIgnoresRangeDeletes,
    /// Its last-key index takes every range delete for a tail delete: the greatest key before
    /// the range's start, even when keys after the range stay.
    LastKeyTreatsRangesAsTails,
    /// Its last-key index steps to the key numerically before a range that covers the last key,
    /// whether or not that key exists (right for a dense keyspace only).
    LastKeyOneBeforeRange,
}

impl Defect {
    fn keeps_last_key_index(self) -> bool {
        matches!(
            self,
            Self::LastKeyIgnoresRangeDeletes | Self::LastKeyTreatsRangesAsTails | Self::LastKeyOneBeforeRange
        )
    }
}

/// A last-key index per keyspace; shared by the reopens of one directory, as an engine's index
/// kept on disk would be.
type LastKeys = Arc<Mutex<[Option<Vec<u8>>; 4]>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Broken {
    inner: MemEngine,
    defect: Defect,
    last: LastKeys,
}

impl Broken {
    /// Update the last-key index after `batch` was applied to the inner engine.
    fn index(&self, batch: &Batch) -> Result<(), EngineError> {
        let mut last = lock(&self.last);
        for op in batch.ops() {
            let slot = &mut last[op.space() as usize];
            match op {
                Op::Put { key, .. } => {
                    if slot.as_ref().is_none_or(|l| key > l) {
                        *slot = Some(key.clone());
                    }
                }
                Op::Delete { space, key } => {
                    if slot.as_ref() == Some(key) {
                        *slot = self.inner.last_key(*space)?;
                    }
                }
                Op::DeleteRange { space, start, end } => {
                    let covers = slot
                        .as_ref()
                        .is_some_and(|l| l >= start && end.as_ref().is_none_or(|e| l < e));
                    match self.defect {
                        Defect::LastKeyTreatsRangesAsTails => {
                            let mut before = None;
                            self.inner.scan(
                                *space,
                                KeyRange {
                                    start: std::ops::Bound::Unbounded,
                                    end: std::ops::Bound::Excluded(start),
                                },
                                &mut |k, _| {
                                    before = Some(k.to_vec());
                                    ControlFlow::Continue(())
                                },
                            )?;
                            *slot = before;
                        }
                        Defect::LastKeyOneBeforeRange if covers => {
                            *slot = <[u8; 8]>::try_from(start.as_slice())
                                .ok()
                                .and_then(|b| u64::from_be_bytes(b).checked_sub(1))
                                .map(|k| k.to_be_bytes().to_vec());
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

impl Engine for Broken {
    fn backend(&self) -> &'static str {
        "mem"
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let mut out = Batch::new();
        for op in batch.ops() {
            match (self.defect, op) {
                (
                    Defect::LosesVote,
                    Op::Put {
                        space: Space::Meta,
                        key,
                        ..
                    },
                ) if key == meta_key::VOTE => {}
                (
                    Defect::HoleAfterTruncate,
                    Op::DeleteRange {
                        space,
                        start,
                        end: None,
                    },
                ) => {
                    let mut keys = Vec::new();
                    self.inner.scan(*space, KeyRange::from(start), &mut |k, _| {
                        keys.push(k.to_vec());
                        ControlFlow::Continue(())
                    })?;
                    keys.pop();
                    for k in keys {
                        out.delete(*space, k);
                    }
                }
                (_, Op::Put { space, key, value }) => out.put(*space, key.clone(), value.clone()),
                (_, Op::Delete { space, key }) => out.delete(*space, key.clone()),
                (_, Op::DeleteRange { space, start, end }) => {
                    out.delete_range(*space, start.clone(), end.clone());
                }
            }
        }
        let durability = match self.defect {
            Defect::SkipsSync => Durability::Buffered,
            _ => durability,
        };
        self.inner.write(&out, durability)?;
        if self.defect.keeps_last_key_index() {
            self.index(batch)?;
        }
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(space, key)
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        self.inner.scan(space, range, visit)
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        if self.defect.keeps_last_key_index() {
            return Ok(lock(&self.last)[space as usize].clone());
        }
        self.inner.last_key(space)
    }
}

struct BrokenHarness {
    mem: MemHarness,
    defect: Defect,
    last: Mutex<HashMap<PathBuf, LastKeys>>,
}

impl EngineHarness for BrokenHarness {
    type Engine = Broken;

    fn open(&self, dir: &Path) -> Result<Broken, EngineError> {
        Ok(Broken {
            inner: self.mem.open(dir)?,
            defect: self.defect,
            last: lock(&self.last).entry(dir.to_path_buf()).or_default().clone(),
        })
    }

    fn power_loss(&self, dir: &Path) {
        self.mem.power_loss(dir);
    }
}

fn broken_harness(defect: Defect) -> BrokenHarness {
    BrokenHarness {
        mem: MemHarness::new(),
        defect,
        last: Mutex::default(),
    }
}

fn broken(defect: Defect) -> EngineStores<BrokenHarness> {
    EngineStores(broken_harness(defect))
}

fn sound() -> EngineStores<MemHarness> {
    EngineStores(MemHarness::new())
}

fn assert_caught(name: &str, sound: CaseResult, broken: CaseResult) {
    if let Err(e) = sound {
        panic!("{name} fails on the sound engine: {e}");
    }
    match broken {
        Ok(()) => panic!("{name} did not catch the broken engine"),
        Err(e) => eprintln!("{name} caught it: {e}"),
    }
}

#[test]
fn engine_that_skips_the_sync_loses_acknowledged_entries() {
    let b = broken(Defect::SkipsSync);
    assert_caught(
        "power_loss_keeps_acknowledged_entries",
        run(engine_log_cases::power_loss_keeps_acknowledged_entries(&sound())),
        run(engine_log_cases::power_loss_keeps_acknowledged_entries(&b)),
    );
    assert_caught(
        "save_vote_durable_when_it_returns",
        run(engine_log_cases::save_vote_durable_when_it_returns(&sound())),
        run(engine_log_cases::save_vote_durable_when_it_returns(&b)),
    );
}

#[test]
fn store_that_loses_the_vote_on_reopen() {
    assert_caught(
        "reopen_keeps_vote_and_committed",
        run(log_cases::reopen_keeps_vote_and_committed(&sound())),
        run(log_cases::reopen_keeps_vote_and_committed(&broken(
            Defect::LosesVote,
        ))),
    );
}

#[test]
fn store_that_leaves_a_hole_after_truncate() {
    assert_caught(
        "truncate_then_append_overwrites_tail",
        run(log_cases::truncate_then_append_overwrites_tail(&sound())),
        run(log_cases::truncate_then_append_overwrites_tail(&broken(
            Defect::HoleAfterTruncate,
        ))),
    );
}

#[test]
fn engine_whose_last_key_misses_range_deletes() {
    for defect in [
        Defect::LastKeyIgnoresRangeDeletes,
        Defect::LastKeyTreatsRangesAsTails,
        Defect::LastKeyOneBeforeRange,
    ] {
        assert_caught(
            "last_key_after_inner_range_delete",
            engine_cases::last_key_after_inner_range_delete(&MemHarness::new()),
            engine_cases::last_key_after_inner_range_delete(&broken_harness(defect)),
        );
    }
    // The older case deletes only a tail of a dense keyspace: these two indexes pass it, which
    // is why the case above exists.
    for defect in [Defect::LastKeyTreatsRangesAsTails, Defect::LastKeyOneBeforeRange] {
        let result = engine_cases::last_key_per_space(&broken_harness(defect));
        assert!(result.is_ok(), "last_key_per_space now catches it: {result:?}");
    }
}
