//! [`GroupHarness`]: any suite against one group of a multi-group store, with its neighbours
//! writing beside it.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::EngineLimits;
use raft_store_core::Group;
use raft_store_core::GroupStore;
use raft_store_core::KeyRange;
use raft_store_core::LogStore;
use raft_store_core::Space;
use raft_store_core::StoreDir;
use raft_store_core::StoreError;
use raft_store_core::Visitor;

use super::EngineHarness;
use super::TestConfig;
use super::util::entry_with;

/// Opens the engine under test as one group of a [`GroupStore`], so every case of a suite runs
/// on a group's keys, next to two neighbouring groups that keep appending, truncating their
/// start (purge) and voting through the store's shared flusher while the case runs.
///
/// The group's id comes from the directory (one of 0, 1, `u64::MAX / 2`, `u64::MAX - 1` and
/// `u64::MAX`), so a reopen finds the same group, and its neighbours are the ids next to it
/// (wrapping). When the case drops the engine, the neighbours stop and check their own logs:
/// contiguous, every entry the one written for its index, every acknowledged entry there. A
/// neighbour that finds its log changed fails the case.
///
/// ```
/// // The engine cases, on one group of a multi-group store over the in-memory engine;
/// // `conformance_suite!` takes the same harness for the whole suite.
/// raft_store_testkit::engine_suite!(raft_store_testkit::GroupHarness(
///     raft_store_testkit::MemHarness::new()
/// ));
/// # fn main() {}
/// ```
pub struct GroupHarness<H>(pub H);

/// The ids a directory's group is picked from.
const IDS: [u64; 5] = [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX];

fn group_id(dir: &Path) -> u64 {
    // FNV-1a of the path: stable across reopens of the same directory.
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    IDS[(hash % IDS.len() as u64) as usize]
}

fn engine_error(backend: &'static str, what: &'static str, e: impl std::fmt::Display) -> EngineError {
    EngineError::backend(backend, what, e.to_string())
}

impl<H: EngineHarness> EngineHarness for GroupHarness<H> {
    type Engine = InGroup<H::Engine>;

    fn open(&self, dir: &Path) -> Result<InGroup<H::Engine>, EngineError> {
        let engine = self.0.open(dir)?;
        let backend = engine.backend();
        let store =
            GroupStore::open(engine).map_err(|e| engine_error(backend, "opening a group store", e))?;
        let id = group_id(dir);
        let neighbours = [id.wrapping_sub(1), id.wrapping_add(1)];
        store
            .create_groups([neighbours[0], id, neighbours[1]])
            .map_err(|e| engine_error(backend, "creating groups", e))?;
        let group = store
            .group(id)
            .map_err(|e| engine_error(backend, "opening a group", e))?;
        let neighbours = Neighbours::start(&store, neighbours)
            .map_err(|e| engine_error(backend, "starting the neighbour groups", e))?;
        Ok(InGroup {
            group,
            _neighbours: neighbours,
        })
    }

    fn power_loss(&self, dir: &Path) {
        self.0.power_loss(dir);
    }
}

/// One group of a multi-group store, opened by [`GroupHarness`]: an engine whose keys are the
/// group's; dropping it stops and checks the neighbours.
pub struct InGroup<E: Engine> {
    group: Group<E>,
    _neighbours: Neighbours,
}

impl<E: Engine> InGroup<E> {
    /// The group's id.
    pub fn id(&self) -> u64 {
        self.group.id()
    }
}

impl<E: Engine> Engine for InGroup<E> {
    fn backend(&self) -> &'static str {
        self.group.backend()
    }
    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        self.group.write(batch, durability)
    }
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.group.get(space, key)
    }
    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        self.group.scan(space, range, visit)
    }
    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        self.group.last_key(space)
    }
    fn last_key_in(&self, space: Space, range: KeyRange<'_>) -> Result<Option<Vec<u8>>, EngineError> {
        self.group.last_key_in(space, range)
    }
    fn limits(&self) -> EngineLimits {
        self.group.limits()
    }
    fn store_dir(&self) -> Option<&StoreDir> {
        self.group.store_dir()
    }
    fn compact(&self) -> Result<(), EngineError> {
        self.group.compact()
    }
    fn group_writer(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.group.group_writer()
    }
}

/// The neighbour groups' writer thread.
struct Neighbours {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Neighbours {
    fn start<E: Engine>(store: &GroupStore<E>, ids: [u64; 2]) -> Result<Self, StoreError> {
        let mut logs = Vec::new();
        let mut views = Vec::new();
        for id in ids {
            let view = store.group(id)?;
            // Keys of the state machine's keyspaces too, which the case's state machine writes,
            // snapshots and deletes in its own group.
            let mut batch = Batch::new();
            for (space, key, value) in state_keys(id) {
                batch.put(space, key, value);
            }
            view.write(&batch, Durability::Durable)?;
            let log: LogStore<TestConfig, Group<E>> = LogStore::open(view.clone())?;
            logs.push((id, log));
            views.push(view);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, failure) = (stop.clone(), failure.clone());
            std::thread::Builder::new()
                .name("raft-store-neighbours".into())
                .spawn(move || {
                    let result = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("runtime: {e}"))
                        .and_then(|rt| rt.block_on(neighbours(logs, &stop)))
                        .and_then(|()| views.iter().try_for_each(check_state_keys));
                    if let Err(e) = result {
                        *failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    }
                })
                .map_err(|e| StoreError::Engine(EngineError::io(store.backend(), "spawning", e)))?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
            failure,
        })
    }
}

impl Drop for Neighbours {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(e) = failure
            && !std::thread::panicking()
        {
            panic!("a neighbour of the group under test: {e}");
        }
    }
}

/// The keys a neighbour keeps in the state machine's keyspaces.
fn state_keys(id: u64) -> Vec<(Space, Vec<u8>, Vec<u8>)> {
    let mut keys = Vec::new();
    for space in [Space::Data, Space::DataMeta] {
        for i in 0..40u64 {
            keys.push((
                space,
                i.to_be_bytes().to_vec(),
                format!("{id}/{space}/{i}").into_bytes(),
            ));
        }
    }
    keys
}

/// The neighbour's state machine keys are exactly the ones it wrote.
fn check_state_keys<E: Engine>(view: &Group<E>) -> Result<(), String> {
    let id = view.id();
    for space in [Space::Data, Space::DataMeta] {
        let mut found = Vec::new();
        let scanned = view.scan(space, KeyRange::ALL, &mut |k, v| {
            found.push((space, k.to_vec(), v.to_vec()));
            std::ops::ControlFlow::Continue(())
        });
        if scanned.is_err() {
            // The case failed the disk under every group (LMDB stops its environment after a
            // failed sync, sled fails reads on a full disk): an engine error is not wrong data.
            return Ok(());
        }
        let want: Vec<_> = state_keys(id)
            .into_iter()
            .filter(|(s, _, _)| *s == space)
            .collect();
        if found != want {
            return Err(format!(
                "group {id}: keyspace {space} holds {} keys, not the {} it wrote, or other values",
                found.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

/// The payload of a neighbour's entry: a function of its group and index, so any entry read
/// back can be checked without a model.
fn payload(id: u64, index: u64) -> String {
    format!("neighbour {id} entry {index}")
}

/// Append, purge and vote in each neighbour until `stop`, then check each log.
async fn neighbours<E: Engine>(
    mut logs: Vec<(u64, LogStore<TestConfig, Group<E>>)>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut acked = vec![0u64; logs.len()];
    let mut round = 0u64;
    let mut poisoned = false;
    while !poisoned && !stop.load(Ordering::SeqCst) && round < 100_000 {
        round += 1;
        for ((id, log), acked) in logs.iter_mut().zip(&mut acked) {
            let state = log
                .get_log_state()
                .await
                .map_err(|e| format!("group {id}: {e}"))?;
            let next = state.last_log_id.map_or(1, |l| l.index + 1);
            let batch: Vec<_> = (next..next + 3)
                .map(|i| entry_with(1, i, payload(*id, i)))
                .collect();
            match log.append_and_wait(batch).await {
                Ok(()) => *acked = next + 2,
                // The case failed the engine under every group (a full disk, a failed fsync):
                // the shared flusher fails stop for all of them, as it must. Stop writing; what
                // was acknowledged is still checked below.
                Err(StoreError::WriteFailed { .. } | StoreError::Poisoned { .. }) => {
                    poisoned = true;
                    break;
                }
                Err(e) => return Err(format!("group {id}: append: {e}")),
            }
            if round.is_multiple_of(16) && next > 8 {
                RaftLogStorage::purge(log, super::util::log_id(1, next - 8))
                    .await
                    .map_err(|e| format!("group {id}: purge: {e}"))?;
                log.save_vote(&super::util::vote(round, *id % 7))
                    .await
                    .map_err(|e| format!("group {id}: vote: {e}"))?;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if poisoned {
        // Read back only once the case has let go of the engine: its faults may still fail
        // reads of the file system under it.
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for ((id, log), acked) in logs.iter_mut().zip(acked) {
        let state = match log.get_log_state().await {
            Ok(state) => state,
            Err(e) if poisoned || matches!(StoreError::find(&e), Some(StoreError::Engine(_))) => continue,
            Err(e) => return Err(format!("group {id}: {e}")),
        };
        let start = state.last_purged_log_id.map_or(1, |l| l.index + 1);
        let got = match log
            .get_log_reader()
            .await
            .try_get_log_entries(start..u64::MAX)
            .await
        {
            Ok(got) => got,
            // A case that fails the disk under every group may fail this read too (LMDB stops
            // its whole environment after a failed sync): the engine's error is not wrong data.
            // A corrupt or missing entry is.
            Err(e) if poisoned || matches!(StoreError::find(&e), Some(StoreError::Engine(_))) => continue,
            Err(e) => return Err(format!("group {id}: reading back: {e}")),
        };
        let mut want = start;
        for entry in &got {
            let ok = entry.log_id.index == want
                && matches!(&entry.payload, openraft::EntryPayload::Normal(p) if *p == payload(*id, want));
            if !ok {
                return Err(format!(
                    "group {id}: read {entry} where entry {want} of its own was written"
                ));
            }
            want += 1;
        }
        if want <= acked {
            return Err(format!(
                "group {id}: entries up to {acked} were acknowledged, the log ends at {}",
                want - 1
            ));
        }
    }
    Ok(())
}
