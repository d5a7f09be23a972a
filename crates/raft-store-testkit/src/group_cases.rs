//! Cases of a multi-group store ([`GroupStore`]) over the engine under test: isolation of
//! neighbouring groups (ids 0 and `u64::MAX` among them), one sync for many groups, fail-stop
//! across groups, a crash at every write of a drop, and the layouts refusing each other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::EntryOf;
use raft_store_core::Engine;
use raft_store_core::FormatError;
use raft_store_core::Group;
use raft_store_core::GroupStore;
use raft_store_core::LogStore;
use raft_store_core::StoreError;

use super::CaseResult;
use super::EngineHarness;
use super::Fault;
use super::FaultEngine;
use super::TestConfig;
use super::util::Flushed;
use super::util::append;
use super::util::append_nowait;
use super::util::entries;
use super::util::entry_with;
use super::util::has_fired;
use super::util::log_id;
use super::util::same_entries;
use super::util::tempdir;
use super::util::vote;
use super::util::wait_flushed;
use crate::engine_log_cases::wait_for_held;
use crate::ensure;
use crate::power_cut::model::LogOp;
use crate::power_cut::model::Model;
use crate::power_cut::model::Workload;
use crate::power_cut::model::check;
use crate::power_cut::model::issue;
use crate::power_cut::model::observe;
use crate::rng::Rng;

/// The multi-group cases, for every engine.
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __group_case_list {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            groups_keep_to_their_own_keys,
            one_sync_serves_many_groups,
            failed_sync_fails_every_group,
            drop_is_whole_or_gone_after_a_crash,
            layouts_refuse_each_other,
            groups_are_listed_and_guarded,
            many_groups_survive_a_power_cut,
            interleaved_groups_match_their_models,
        );
    };
}

/// Group ids at the edges of the id space and neighbours of each other.
pub const EDGE_IDS: [u64; 7] = [0, 1, 2, u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX - 1, u64::MAX];

type GroupLog<E> = LogStore<TestConfig, Group<E>>;

/// The entries group number `n` (its position in a list) holds: terms and payloads differ
/// between groups, so one group's entry read from another is seen.
fn group_entries(n: u64, from: u64, to: u64) -> Vec<EntryOf<TestConfig>> {
    (from..to)
        .map(|i| entry_with(n + 1, i, format!("group {n} entry {i}")))
        .collect()
}

/// Open the store in `dir` over a fault engine, with groups `ids` created.
fn open_groups<H: EngineHarness>(
    h: &H,
    dir: &std::path::Path,
    ids: &[u64],
) -> Result<GroupStore<FaultEngine<H::Engine>>, super::CaseError> {
    let store = GroupStore::open(FaultEngine::new(h.open(dir)?))?;
    store.create_groups(ids.iter().copied())?;
    Ok(store)
}

/// Truncating, purging and dropping one group, and appending and voting in others, changes no
/// key of any other group, for neighbouring ids and ids 0 and `u64::MAX`; all of it survives a
/// reopen.
pub async fn groups_keep_to_their_own_keys<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    {
        let store = open_groups(h, dir.path(), &EDGE_IDS)?;
        let mut logs = Vec::new();
        for (n, &id) in EDGE_IDS.iter().enumerate() {
            let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
            append(&mut log, group_entries(n as u64, 1, 21)).await?;
            log.save_vote(&vote(n as u64 + 1, n as u64)).await?;
            logs.push(log);
        }
        // Group 1 truncates after 10, group 2 purges up to 10, group 3 is dropped.
        RaftLogStorage::truncate_after(&mut logs[1], Some(log_id(2, 10))).await?;
        RaftLogStorage::purge(&mut logs[2], log_id(3, 10)).await?;
        let dropped = logs.remove(3);
        drop(dropped);
        ensure!(
            store.drop_group(EDGE_IDS[3])?,
            "group {} was not there to drop",
            EDGE_IDS[3]
        );
        for log in &mut logs {
            log.flush().await?;
        }
    }
    let store = GroupStore::open(FaultEngine::new(h.open(dir.path())?))?;
    let want_ids: Vec<u64> = EDGE_IDS.iter().copied().filter(|&id| id != EDGE_IDS[3]).collect();
    ensure!(
        store.groups() == want_ids,
        "after a reopen the store lists groups {:?}, expected {want_ids:?}",
        store.groups()
    );
    for (n, &id) in EDGE_IDS.iter().enumerate() {
        if n == 3 {
            continue;
        }
        let n = n as u64;
        let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
        let (from, to) = match n {
            1 => (1, 11),
            2 => (11, 21),
            _ => (1, 21),
        };
        let got = log.get_log_reader().await.try_get_log_entries(0..100).await?;
        same_entries(&got, &group_entries(n, from, to)).map_err(|e| format!("group {id}: {e}"))?;
        let v = log.get_log_reader().await.read_vote().await?;
        ensure!(v == Some(vote(n + 1, n)), "group {id}: vote {v:?} after a reopen");
    }
    // The dropped group left nothing: made again, it is empty.
    let dropped = EDGE_IDS[3];
    ensure!(
        matches!(store.group(dropped), Err(StoreError::NoSuchGroup { group, .. }) if group == dropped),
        "a dropped group still opens"
    );
    store.create_group(dropped)?;
    let mut log: GroupLog<_> = LogStore::open(store.group(dropped)?)?;
    let state = log.get_log_state().await?;
    ensure!(
        state.last_log_id.is_none() && log.get_log_reader().await.read_vote().await?.is_none(),
        "group {dropped}, dropped and made again, holds {state:?}"
    );
    Ok(())
}

/// 64 groups each appending one entry while a sync runs share a handful of syncs: the store's
/// one flusher writes every group's job in one batch.
pub async fn one_sync_serves_many_groups<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let ids: Vec<u64> = (0..64).map(|i| i * 1_000_003).collect();
    let store = open_groups(h, dir.path(), &ids)?;
    let faults = store.engine().faults().clone();
    let mut logs = Vec::new();
    for &id in &ids {
        let log: GroupLog<_> = LogStore::open(store.group(id)?)?;
        logs.push(log);
    }
    let before = faults.syncs();
    faults.hold_syncs();
    let mut pending: Vec<Flushed> = vec![append_nowait(&mut logs[0], group_entries(0, 1, 2)).await?];
    wait_for_held(&faults, 1).await?;
    for (n, log) in logs.iter_mut().enumerate().skip(1) {
        pending.push(append_nowait(log, group_entries(n as u64, 1, 2)).await?);
    }
    let early = pending.iter().filter(|rx| has_fired(rx)).count();
    faults.release_syncs();
    ensure!(early == 0, "{early} callbacks fired while the sync was held");
    for rx in pending {
        wait_flushed(rx).await?;
    }
    let syncs = faults.syncs() - before;
    ensure!(
        syncs <= 4,
        "64 groups appending at once cost {syncs} syncs; one flusher should need at most 4"
    );
    let jobs = store.stats().snapshot().group_jobs;
    ensure!(
        jobs.count <= syncs && jobs.sum >= 64.0,
        "the shared flusher counted {} rounds of {} jobs for 64 appends in {syncs} syncs",
        jobs.count,
        jobs.sum
    );
    for (n, log) in logs.iter_mut().enumerate() {
        let got = log.get_log_reader().await.try_get_log_entries(0..10).await?;
        same_entries(&got, &group_entries(n as u64, 1, 2))?;
    }
    Ok(())
}

/// A failed sync of the shared flusher fails the callbacks of every group in its round and
/// poisons every group, including ones that were not writing: each later write is refused
/// with the first failure, and nothing panics.
pub async fn failed_sync_fails_every_group<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let ids = [3u64, 4, 5];
    let store = open_groups(h, dir.path(), &ids)?;
    let faults = store.engine().faults().clone();
    let mut logs = Vec::new();
    for &id in &ids {
        let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
        append(&mut log, group_entries(id, 1, 3)).await?;
        logs.push(log);
    }
    faults.hold_syncs();
    faults.fail_nth_sync(1, Fault::Io);
    let first = append_nowait(&mut logs[0], group_entries(3, 3, 4)).await?;
    wait_for_held(&faults, 1).await?;
    let second = append_nowait(&mut logs[1], group_entries(4, 3, 4)).await?;
    faults.release_syncs();
    for (id, rx) in [(3, first), (4, second)] {
        ensure!(
            wait_flushed(rx).await.is_err(),
            "group {id}: its append was acknowledged although the sync failed"
        );
    }
    ensure!(
        store.poisoned().is_some(),
        "the store does not say it is poisoned"
    );
    for (log, id) in logs.iter_mut().zip(ids) {
        let refused = match log.save_vote(&vote(9, 9)).await {
            Err(e) => StoreError::find(&e).is_some_and(|e| matches!(e, StoreError::Poisoned { .. })),
            Ok(()) => false,
        };
        ensure!(
            refused,
            "group {id}: a write after the failed sync was not refused as poisoned"
        );
    }
    Ok(())
}

/// A drop cut short at each of its writes, then the power cut (every unsynced write lost):
/// after the reopen the group is whole or gone, never half, and its neighbours are untouched.
pub async fn drop_is_whole_or_gone_after_a_crash<H: EngineHarness>(h: &H) -> CaseResult {
    // Over one drop batch of keys, so the drop takes several batches.
    const ENTRIES: u64 = 12_500;
    let ids = [4u64, 5, 6];
    let mut gone_at = None;
    let mut outcomes = Vec::new();
    for k in 1..=4u64 {
        let dir = tempdir();
        {
            let store = open_groups(h, dir.path(), &ids)?;
            for (n, &id) in ids.iter().enumerate() {
                let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
                let to = if id == 5 { ENTRIES + 1 } else { 11 };
                append(&mut log, group_entries(n as u64, 1, to)).await?;
            }
            let engine = store.engine();
            engine.track_unsynced(true);
            engine.faults().fail_nth_write(k, Fault::Io);
            if store.drop_group(5).is_ok() {
                gone_at.get_or_insert(k);
            }
            engine.drop_unsynced()?;
        }
        let store = GroupStore::open(FaultEngine::new(h.open(dir.path())?))?;
        let listed = store.groups();
        let mut counts = BTreeMap::new();
        for &id in &listed {
            let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
            let got = log
                .get_log_reader()
                .await
                .try_get_log_entries(0..ENTRIES + 10)
                .await?;
            counts.insert(id, got.len() as u64);
        }
        for (n, id) in [(0u64, 4u64), (2, 6)] {
            let mut log: GroupLog<_> = LogStore::open(store.group(id)?)?;
            let got = log.get_log_reader().await.try_get_log_entries(0..100).await?;
            same_entries(&got, &group_entries(n, 1, 11))
                .map_err(|e| format!("write {k} of the drop failed: neighbour {id}: {e}"))?;
        }
        outcomes.push(if counts.contains_key(&5) { "whole" } else { "gone" });
        match counts.get(&5) {
            None => {
                // Gone: nothing of it is left to find when it is made again.
                store.create_group(5)?;
                let mut log: GroupLog<_> = LogStore::open(store.group(5)?)?;
                let left = log
                    .get_log_reader()
                    .await
                    .try_get_log_entries(0..ENTRIES + 10)
                    .await?;
                ensure!(
                    left.is_empty(),
                    "write {k} of the drop failed: the group is gone but {} of its entries are left",
                    left.len()
                );
            }
            Some(&n) => ensure!(
                n == ENTRIES,
                "write {k} of the drop failed: after the reopen the group holds {n} of its {ENTRIES} entries"
            ),
        }
    }
    // The drop writes its mark, two batches of 10,000 keys and the rest, then forgets the group:
    // failing write 1 to 4 stops it at each step, and none of those may finish.
    ensure!(
        gone_at.is_none(),
        "a drop reported success although its write {gone_at:?} failed"
    );
    // Before the mark is durable the group stays; after it the next open finishes the drop.
    ensure!(
        outcomes == ["whole", "gone", "gone", "gone"],
        "a drop failing at its writes 1 to 4 left the group {outcomes:?} after a reopen, \
         expected whole once (the mark failed) and gone after"
    );
    Ok(())
}

/// A single-group store is not opened as a multi-group one, nor the other way round: each is
/// refused naming the layouts, and nothing is written.
pub async fn layouts_refuse_each_other<H: EngineHarness>(h: &H) -> CaseResult {
    let single = tempdir();
    {
        let mut log: LogStore<TestConfig, _> = LogStore::open(h.open(single.path())?)?;
        append(&mut log, entries(1, 1, 3)).await?;
    }
    match GroupStore::open(h.open(single.path())?) {
        Err(StoreError::Format(FormatError::WrongLayout { found, .. })) if found == "single" => {}
        Err(e) => return Err(format!("a single-group store opened as many groups gave: {e}").into()),
        Ok(_) => return Err("a single-group store opened as a multi-group store".into()),
    }
    let groups = tempdir();
    {
        let store = GroupStore::open(h.open(groups.path())?)?;
        store.create_group(1)?;
        let mut log: LogStore<TestConfig, _> = LogStore::open(store.group(1)?)?;
        append(&mut log, entries(1, 1, 3)).await?;
    }
    match LogStore::<TestConfig, _>::open(h.open(groups.path())?) {
        Err(StoreError::Format(FormatError::WrongLayout { found, .. })) if found == "groups" => {}
        Err(e) => return Err(format!("a multi-group store opened as one group gave: {e}").into()),
        Ok(_) => return Err("a multi-group store opened as a single-group store".into()),
    }
    // Both still open as what they are.
    let mut log: LogStore<TestConfig, _> = LogStore::open(h.open(single.path())?)?;
    same_entries(
        &log.get_log_reader().await.try_get_log_entries(0..10).await?,
        &entries(1, 1, 3),
    )?;
    drop(log);
    let store = GroupStore::open(h.open(groups.path())?)?;
    ensure!(
        store.groups() == vec![1],
        "groups after the refusals: {:?}",
        store.groups()
    );
    Ok(())
}

/// Groups are made explicitly, listed after a reopen (1,000 of them), refused when unknown,
/// and not dropped while a view of them is open.
// Async like every case of the list, which the suite's macro runs alike.
#[allow(clippy::unused_async)]
pub async fn groups_are_listed_and_guarded<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let ids: Vec<u64> = (0..1_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    {
        let store = GroupStore::open(h.open(dir.path())?)?;
        ensure!(
            store.create_groups(ids.iter().copied())? == ids.len(),
            "not every group was made"
        );
        ensure!(!store.create_group(ids[5])?, "an existing group was made again");
    }
    let store = GroupStore::open(h.open(dir.path())?)?;
    let mut want = ids.clone();
    want.sort_unstable();
    ensure!(
        store.groups() == want,
        "after a reopen {} groups are listed, expected 1,000",
        store.groups().len()
    );
    let unknown = 12_345u64;
    ensure!(!ids.contains(&unknown), "the unknown id is a group");
    ensure!(
        matches!(store.group(unknown), Err(StoreError::NoSuchGroup { group, .. }) if group == unknown),
        "an unknown group opened"
    );
    let view = store.group(ids[0])?;
    ensure!(
        matches!(store.drop_group(ids[0]), Err(StoreError::GroupInUse { .. })),
        "a group was dropped while a view of it was open"
    );
    drop(view);
    ensure!(
        store.drop_group(ids[0])?,
        "the group was not dropped once its view was gone"
    );
    ensure!(!store.drop_group(ids[0])?, "a dropped group was dropped again");
    ensure!(
        !store.contains(ids[0]) && store.contains(ids[1]),
        "the wrong group is gone"
    );
    Ok(())
}

/// One group's run up to a power cut: the operations it issued and how many of them were
/// acknowledged (every operation before an acknowledged one is durable too: a group's writes
/// are written in the order issued).
struct GroupRun {
    id: u64,
    ops: Vec<LogOp>,
    acked: usize,
}

/// Drive one group with random operations until the power is cut (or `max_ops`), waiting for
/// each append's callback before the next operation.
async fn drive(
    id: u64,
    mut log: GroupLog<FaultEngine<impl Engine>>,
    seed: u64,
    max_ops: usize,
    issued: &AtomicUsize,
    cut_at: usize,
    faults: &super::Faults,
) -> GroupRun {
    let mut rng = Rng::new(seed);
    let mut workload = Workload::resume(&Model::default());
    let mut run = GroupRun {
        id,
        ops: Vec::new(),
        acked: 0,
    };
    for _ in 0..max_ops {
        if faults.power_is_cut() {
            break;
        }
        let op = workload.next_op(&mut rng);
        run.ops.push(op);
        if issued.fetch_add(1, Ordering::SeqCst) + 1 == cut_at {
            faults.cut_power();
        }
        let durable = match issue(&mut log, &op).await {
            Ok(Some(flushed)) => wait_flushed(flushed).await.is_ok(),
            // A vote is durable when it returns; truncate, purge and committed are queued and
            // become durable with the next acknowledged write.
            Ok(None) => matches!(op, LogOp::Vote { .. }),
            Err(_) => break,
        };
        if durable {
            run.acked = run.ops.len();
        }
        // Let the other groups' tasks queue beside this one.
        tokio::task::yield_now().await;
    }
    run
}

/// 64 groups append, truncate, purge, vote and commit at once through the shared flusher; the
/// power is cut at a random operation (every unsynced write lost). After a reopen, each group
/// holds a state its own operations lead to, with every acknowledged one there.
pub async fn many_groups_survive_a_power_cut<H: EngineHarness>(h: &H) -> CaseResult {
    const GROUPS: u64 = 64;
    const MAX_OPS: usize = 40;
    let seed = crate::rng::seed();
    let dir = tempdir();
    let ids: Vec<u64> = (0..GROUPS)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let runs = {
        let store = open_groups(h, dir.path(), &ids)?;
        store.engine().track_unsynced(true);
        let faults = store.engine().faults().clone();
        let issued = Arc::new(AtomicUsize::new(0));
        let cut_at = Rng::new(seed).between(200, 1_500) as usize;
        // Every log store open (each writes its group's format record) before any task runs:
        // the cut may come as soon as the first task starts.
        let mut logs = Vec::new();
        for &id in &ids {
            let log: GroupLog<_> = LogStore::open(store.group(id)?)?;
            logs.push(log);
        }
        let mut tasks = Vec::new();
        for (n, (&id, log)) in ids.iter().zip(logs).enumerate() {
            let (issued, faults) = (issued.clone(), faults.clone());
            let group_seed = seed.wrapping_add(n as u64 + 1);
            tasks.push(tokio::spawn(async move {
                drive(id, log, group_seed, MAX_OPS, &issued, cut_at, &faults).await
            }));
        }
        let mut runs = Vec::new();
        for task in tasks {
            runs.push(task.await.map_err(|e| format!("a group's task failed: {e}"))?);
        }
        faults.cut_power();
        store.engine().drop_unsynced()?;
        runs
    };
    h.power_loss(dir.path());
    let store = GroupStore::open(h.open(dir.path())?)?;
    let mut acked_total = 0;
    for run in &runs {
        let mut log: LogStore<TestConfig, _> = LogStore::open(store.group(run.id)?)?;
        let observed = observe(&mut log)
            .await
            .map_err(|e| format!("group {}: {e}", run.id))?;
        check(&Model::default(), &run.ops, run.acked, &observed)
            .map_err(|e| format!("group {} after a power cut (RAFT_STORE_SEED={seed}): {e}", run.id))?;
        acked_total += run.acked;
    }
    ensure!(
        acked_total > 0,
        "no group had an operation acknowledged before the cut (RAFT_STORE_SEED={seed})"
    );
    Ok(())
}

/// Random operations on four neighbouring groups, interleaved, each checked against a model of
/// its own after every step and after a reopen: no operation of one group shows in another.
pub async fn interleaved_groups_match_their_models<H: EngineHarness>(h: &H) -> CaseResult {
    let cases = crate::rng::count_from_env("RAFT_STORE_PROPTEST_CASES", 8);
    let ids = [u64::MAX - 3, u64::MAX - 2, u64::MAX - 1, u64::MAX];
    for case in 0..cases {
        let seed = crate::rng::seed().wrapping_add(case as u64);
        let mut rng = Rng::new(seed);
        let dir = tempdir();
        let mut models: Vec<Model> = vec![Model::default(); ids.len()];
        {
            let store = GroupStore::open(h.open(dir.path())?)?;
            store.create_groups(ids)?;
            let mut logs = Vec::new();
            for id in ids {
                let log: LogStore<TestConfig, _> = LogStore::open(store.group(id)?)?;
                logs.push(log);
            }
            let mut workloads: Vec<Workload> = models.iter().map(Workload::resume).collect();
            for step in 0..60 {
                let g = rng.below(ids.len() as u64) as usize;
                let op = workloads[g].next_op(&mut rng);
                if let Some(flushed) = issue(&mut logs[g], &op).await? {
                    wait_flushed(flushed).await?;
                }
                models[g].apply(&op);
                for (n, log) in logs.iter_mut().enumerate() {
                    let observed = observe(log).await?;
                    ensure!(
                        observed == models[n],
                        "step {step} ({op:?} on group {}), group {}: {observed} where the model has {} \
                         (RAFT_STORE_SEED={seed})",
                        ids[g],
                        ids[n],
                        models[n]
                    );
                }
            }
            for log in &mut logs {
                log.flush().await?;
            }
        }
        let store = GroupStore::open(h.open(dir.path())?)?;
        for (n, id) in ids.into_iter().enumerate() {
            let mut log: LogStore<TestConfig, _> = LogStore::open(store.group(id)?)?;
            let observed = observe(&mut log).await?;
            ensure!(
                observed == models[n],
                "after a reopen, group {id}: {observed} where the model has {} (RAFT_STORE_SEED={seed})",
                models[n]
            );
        }
    }
    Ok(())
}
