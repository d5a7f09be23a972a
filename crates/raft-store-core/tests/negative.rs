//! Proof that the suite can fail: deliberately broken engines must fail the cases that guard
//! against their defect, while the same cases pass on the sound engine beside them.

use std::ops::ControlFlow;
use std::path::Path;

use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::MemEngine;
use raft_store_core::Op;
use raft_store_core::Space;
use raft_store_core::engine::Visitor;
use raft_store_core::format::meta_key;
use raft_store_core::testing::CaseResult;
use raft_store_core::testing::EngineHarness;
use raft_store_core::testing::EngineStores;
use raft_store_core::testing::MemHarness;
use raft_store_core::testing::engine_log_cases;
use raft_store_core::testing::log_cases;
use raft_store_core::testing::run;

/// What a broken engine does wrong.
#[derive(Clone, Copy)]
enum Defect {
    /// Reports durable writes as durable without syncing them.
    SkipsSync,
    /// Never stores the vote, so it is gone after reopen.
    LosesVote,
    /// A range delete to the end keeps the range's last key, leaving a hole after a truncate.
    HoleAfterTruncate,
}

struct Broken {
    inner: MemEngine,
    defect: Defect,
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
        self.inner.write(&out, durability)
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(space, key)
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        self.inner.scan(space, range, visit)
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.last_key(space)
    }
}

struct BrokenHarness {
    mem: MemHarness,
    defect: Defect,
}

impl EngineHarness for BrokenHarness {
    type Engine = Broken;

    fn open(&self, dir: &Path) -> Result<Broken, EngineError> {
        Ok(Broken {
            inner: self.mem.open(dir)?,
            defect: self.defect,
        })
    }

    fn power_loss(&self, dir: &Path) {
        self.mem.power_loss(dir);
    }
}

fn broken(defect: Defect) -> EngineStores<BrokenHarness> {
    EngineStores(BrokenHarness {
        mem: MemHarness::new(),
        defect,
    })
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
