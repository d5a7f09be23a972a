//! The group cap (`LogStoreOptions::max_group_bytes`) counts every job of a group, the first
//! one included: a job at or over the cap alone is written without the jobs queued behind it,
//! and jobs under the cap still share one sync.
//!
//! The jobs are queued while the flusher is held inside an earlier write, so which jobs it
//! finds queued together does not depend on timing.

use std::sync::Arc;
use std::sync::Condvar;
use std::sync::Mutex;
use std::sync::PoisonError;

use openraft::entry::RaftEntry;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::LogStore;
use raft_store_core::LogStoreOptions;
use raft_store_core::MemEngine;
use raft_store_core::Op;
use raft_store_core::Space;
use raft_store_core::Visitor;
use raft_store_engine::codec::log_index;

openraft::declare_raft_types!(
    /// The openraft 0.10 type config of these tests.
    pub Config: D = String, R = String
);

/// Where the gate of a [`Gated`] engine is.
#[derive(Default)]
struct Gate {
    /// The next durable write waits until this is cleared.
    closed: bool,
    /// A durable write is waiting at the gate.
    waiting: bool,
}

/// An in-memory engine that can hold its next durable write, and records which log entries
/// each durable write carried.
#[derive(Default)]
struct Gated {
    inner: MemEngine,
    gate: Mutex<Gate>,
    changed: Condvar,
    /// The log indexes of each durable write with log entries, in order.
    groups: Mutex<Vec<Vec<u64>>>,
}

impl Gated {
    /// Hold the next durable write until [`open`](Self::open).
    fn close(&self) {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
    }

    /// Wait until a durable write is held at the gate.
    fn wait_held(&self) {
        let gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        drop(
            self.changed
                .wait_while(gate, |g| !g.waiting)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Let the held write (and every later one) through.
    fn open(&self) {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner).closed = false;
        self.changed.notify_all();
    }

    fn groups(&self) -> Vec<Vec<u64>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Engine for Gated {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        if durability == Durability::Durable {
            let mut gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            gate.waiting = gate.closed;
            self.changed.notify_all();
            gate = self
                .changed
                .wait_while(gate, |g| g.closed)
                .unwrap_or_else(PoisonError::into_inner);
            gate.waiting = false;
            drop(gate);
            let indexes: Vec<u64> = batch
                .ops()
                .iter()
                .filter_map(|op| match op {
                    Op::Put {
                        space: Space::Log,
                        key,
                        ..
                    } => log_index(key),
                    _ => None,
                })
                .collect();
            if !indexes.is_empty() {
                self.groups
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(indexes);
            }
        }
        self.inner.write(batch, durability)
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

/// A normal entry of term 1 at `index` whose payload is `len` bytes.
fn entry(index: u64, len: usize) -> EntryOf<Config> {
    let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 };
    EntryOf::<Config>::new_normal(LogIdOf::<Config>::new(leader, index), "x".repeat(len))
}

/// The payload of the large job: well over the small entries, so the cap can sit between.
const LARGE: usize = 4000;
/// The payload of the small jobs.
const SMALL: usize = 10;

/// The bytes (keys and values) the flusher counts for the job appending `entry(index, len)`.
fn job_bytes(index: u64, len: usize) -> usize {
    let engine = Arc::new(Gated::default());
    let mut store: LogStore<Config, _> = LogStore::open(engine.clone()).expect("open");
    futures::executor::block_on(store.append_and_wait(vec![entry(index, len)])).expect("append");
    store.stats().snapshot().bytes_written as usize
}

/// Open a store with a group cap of `max_group_bytes`; hold the flusher inside the write of
/// entry 1; queue a job appending the large entry 2, then jobs appending small entries 3 and
/// 4; let the flusher go. Returns the log indexes of each durable write, and the number of
/// jobs of each sync from the store's stats.
fn groups_with_cap(max_group_bytes: usize) -> (Vec<Vec<u64>>, Vec<(f64, u64)>) {
    let engine = Arc::new(Gated::default());
    let options = LogStoreOptions::default().with_max_group_bytes(max_group_bytes);
    let mut store: LogStore<Config, _> = LogStore::open_with(engine.clone(), options).expect("open");
    engine.close();
    let first = store.append_queued(vec![entry(1, SMALL)]).expect("queue");
    engine.wait_held();
    let queued = [
        store.append_queued(vec![entry(2, LARGE)]).expect("queue"),
        store.append_queued(vec![entry(3, SMALL)]).expect("queue"),
        store.append_queued(vec![entry(4, SMALL)]).expect("queue"),
    ];
    engine.open();
    futures::executor::block_on(first).expect("durable");
    for job in queued {
        futures::executor::block_on(job).expect("durable");
    }
    let buckets = store.stats().snapshot().group_jobs.buckets;
    (engine.groups(), buckets)
}

/// The syncs of at most `jobs` jobs, from the cumulative `group_jobs` buckets.
fn syncs_of_at_most(buckets: &[(f64, u64)], jobs: f64) -> u64 {
    buckets
        .iter()
        .find(|(bound, _)| (*bound - jobs).abs() < f64::EPSILON)
        .map(|(_, count)| *count)
        .expect("a bucket of that bound")
}

#[test]
fn a_first_job_over_the_cap_is_written_alone() {
    let large = job_bytes(2, LARGE);
    let small = job_bytes(3, SMALL);
    assert!(large > 2 * small, "{large} against {small}");
    // The cap lies between one small job and the large one: the large job alone is over it.
    let cap = 2 * small;
    let (groups, buckets) = groups_with_cap(cap);
    assert_eq!(
        groups,
        [vec![1], vec![2], vec![3, 4]],
        "the large job fills its group by itself; the small ones behind it share the next"
    );
    assert_eq!(syncs_of_at_most(&buckets, 1.0), 2, "{buckets:?}");
    assert_eq!(syncs_of_at_most(&buckets, 2.0), 3, "{buckets:?}");
}

#[test]
fn a_first_job_at_the_cap_is_written_alone_and_one_byte_under_it_is_not() {
    let large = job_bytes(2, LARGE);
    let (at, _) = groups_with_cap(large);
    assert_eq!(
        at,
        [vec![1], vec![2], vec![3, 4]],
        "a job of exactly the cap fills it"
    );
    let (under, _) = groups_with_cap(large + 1);
    assert_eq!(
        under,
        [vec![1], vec![2, 3], vec![4]],
        "one byte under the cap, the next job joins and takes the group over it"
    );
}

#[test]
fn jobs_under_the_default_cap_share_one_sync() {
    let (groups, buckets) = groups_with_cap(LogStoreOptions::default().max_group_bytes);
    assert_eq!(groups, [vec![1], vec![2, 3, 4]]);
    assert_eq!(syncs_of_at_most(&buckets, 1.0), 1, "{buckets:?}");
    assert_eq!(syncs_of_at_most(&buckets, 4.0), 2, "{buckets:?}");
}
