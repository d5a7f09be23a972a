//! Log cases that look under the store: a [`LogStore`](raft_store_core::LogStore) over the engine under
//! test wrapped in a [`FaultEngine`](super::FaultEngine), to hold and count syncs, inject
//! failures, flip stored bytes and cut the power.

use std::io;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;

use super::CaseResult;
use super::EngineHarness;
use super::EngineStores;
use super::Fault;
use super::util::Flushed;
use super::util::append;
use super::util::append_nowait;
use super::util::entries;
use super::util::entry;
use super::util::has_fired;
use super::util::indexes;
use super::util::log_id;
use super::util::same_entries;
use super::util::tempdir;
use super::util::vote;
use super::util::wait_flushed;
use crate::ensure;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::Space;
use raft_store_engine::codec::log_key;
use raft_store_engine::format::meta_key;

/// The cases under a `LogStore` over the fault-injecting engine, for every engine.
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __engine_log_case_list {
    // Faults injected above the engine: an engine on disk meets them in the file system under it
    // instead (`fs_faults`), which an engine kept in memory has no files for.
    (in_memory $mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            failed_sync_reaches_callback_then_refused,
            no_space_left_reaches_callback,
        );
    };
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            readable_before_flush,
            no_callback_before_sync,
            save_vote_durable_when_it_returns,
            group_commit_shares_syncs,
            flipped_byte_names_the_index,
            failed_write_reaches_callback_then_refused,
            power_loss_keeps_acknowledged_entries,
            reader_does_not_keep_the_store_open,
            purge_after_compaction_keeps_the_next_entry,
        );
    };
}

/// Wait (bounded) until `n` durable writes are held at the fault engine's gate.
pub(crate) async fn wait_for_held(faults: &super::Faults, n: u64) -> CaseResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    while faults.waiting_syncs() < n {
        ensure!(
            Instant::now() < deadline,
            "no sync reached the engine within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Entries held back by a sync that has not finished are already readable.
pub async fn readable_before_flush<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    let mut store = s.open_store(dir.path())?;
    append(&mut store, entries(1, 1, 4)).await?;
    let faults = store.engine().faults().clone();
    faults.hold_syncs();
    let rx = append_nowait(&mut store, entries(1, 4, 8)).await?;
    wait_for_held(&faults, 1).await?;
    let got = store.get_log_reader().await.try_get_log_entries(0..100).await;
    faults.release_syncs();
    same_entries(&got?, &entries(1, 1, 8))?;
    ensure!(
        store.get_log_state().await?.last_log_id == Some(log_id(1, 7)),
        "log state lags the append"
    );
    wait_flushed(rx).await
}

/// While the sync covering an append has not finished, its callback has not fired.
pub async fn no_callback_before_sync<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    let mut store = s.open_store(dir.path())?;
    let faults = store.engine().faults().clone();
    faults.hold_syncs();
    let rx = append_nowait(&mut store, entries(1, 1, 3)).await?;
    wait_for_held(&faults, 1).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let early = has_fired(&rx);
    faults.release_syncs();
    ensure!(!early, "the flush callback fired while its sync was still held");
    wait_flushed(rx).await
}

/// Once `save_vote` returns, the vote survives an immediate power cut.
pub async fn save_vote_durable_when_it_returns<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    {
        let mut store = s.open_store(dir.path())?;
        append(&mut store, entries(1, 1, 3)).await?;
        store.save_vote(&vote(5, 2)).await?;
        store.engine().faults().cut_power();
    }
    s.harness().power_loss(dir.path());
    let mut store = s.open_store(dir.path())?;
    let v = store.get_log_reader().await.read_vote().await?;
    ensure!(
        v == Some(vote(5, 2)),
        "after a power cut right after save_vote returned, the vote is {v:?}"
    );
    Ok(())
}

/// 64 appends submitted while one sync runs cost a handful of syncs, not 64.
pub async fn group_commit_shares_syncs<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    let mut store = s.open_store(dir.path())?;
    let faults = store.engine().faults().clone();
    faults.hold_syncs();
    let before = faults.syncs();
    let mut pending: Vec<Flushed> = vec![append_nowait(&mut store, vec![entry(1, 1)]).await?];
    wait_for_held(&faults, 1).await?;
    for i in 2..=64 {
        pending.push(append_nowait(&mut store, vec![entry(1, i)]).await?);
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
        "64 appends in flight cost {syncs} syncs; group commit should need at most 4"
    );
    Ok(())
}

/// A flipped bit in a stored entry is an error naming the keyspace and the log index, never a
/// wrong entry; the entries around it still read; a damaged last entry or vote fails the open.
pub async fn flipped_byte_names_the_index<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    {
        let mut store = s.open_store(dir.path())?;
        append(&mut store, entries(1, 1, 11)).await?;
        store.save_vote(&vote(1, 1)).await?;
        let mut reader = store.get_log_reader().await;
        // Byte 0 is the version, 1..5 the checksum, the rest the payload: damage each part.
        for (index, offset) in [(5u64, 9usize), (6, 0), (7, 2)] {
            let engine = store.engine();
            ensure!(
                engine.flip_byte(Space::Log, &log_key(index), offset, 3)?,
                "entry {index} has no byte {offset}"
            );
            let err = match reader.try_get_log_entries(1..11).await {
                Ok(got) => {
                    return Err(format!("read a log with damaged entry {index}: {:?}", indexes(&got)).into());
                }
                Err(e) => e,
            };
            let msg = err.to_string();
            ensure!(
                err.kind() == io::ErrorKind::InvalidData,
                "damaged entry gave error kind {:?}: {msg}",
                err.kind()
            );
            ensure!(
                msg.contains(&format!("index {index}")) && msg.contains("log"),
                "error does not name log index {index}: {msg}"
            );
            same_entries(
                &reader.try_get_log_entries(1..index).await?,
                &entries(1, 1, index),
            )?;
            engine.flip_byte(Space::Log, &log_key(index), offset, 3)?;
        }
        same_entries(&reader.try_get_log_entries(1..11).await?, &entries(1, 1, 11))?;
        store.engine().flip_byte(Space::Log, &log_key(10), 12, 0)?;
    }
    let err = match s.open_store(dir.path()) {
        Ok(_) => return Err("opened a store whose last entry is damaged".into()),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("index 10"),
        "opening with a damaged last entry: {err}"
    );
    let engine = s.harness().open(dir.path())?;
    let fixer = super::FaultEngine::new(engine);
    fixer.flip_byte(Space::Log, &log_key(10), 12, 0)?;
    fixer.flip_byte(Space::Meta, meta_key::VOTE, 6, 1)?;
    drop(fixer);
    let err = match s.open_store(dir.path()) {
        Ok(_) => return Err("opened a store whose vote is damaged".into()),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("meta") && err.contains("vote"),
        "opening with a damaged vote: {err}"
    );
    // A damaged key instead of a damaged value: the vote record under a key one bit off.
    // Engines without checksums of their own (LMDB) hand such a key back as it is.
    let engine = s.harness().open(dir.path())?;
    let fixer = super::FaultEngine::new(engine);
    fixer.flip_byte(Space::Meta, meta_key::VOTE, 6, 1)?;
    let vote = fixer
        .get(Space::Meta, meta_key::VOTE)?
        .ok_or("the vote record is gone")?;
    let mut moved = Batch::new();
    moved.delete(Space::Meta, meta_key::VOTE);
    moved.put(Space::Meta, b"vnte", vote);
    fixer.write(&moved, Durability::Durable)?;
    drop(fixer);
    let err = match s.open_store(dir.path()) {
        Ok(_) => return Err("opened a store whose vote record is under a damaged key".into()),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("meta") && err.contains("\"vnte\""),
        "opening with the vote under a damaged key: {err}"
    );
    Ok(())
}

async fn fault_then_refused<H: EngineHarness>(s: &EngineStores<H>, sync: bool, fault: Fault) -> CaseResult {
    let dir = tempdir();
    {
        let mut store = s.open_store(dir.path())?;
        append(&mut store, entries(1, 1, 6)).await?;
        let counted = store.stats().snapshot();
        ensure!(
            counted.entries_appended == 5 && counted.sync_seconds.count >= 1 && counted.bytes_written > 0,
            "five durable appends counted as {counted:?}"
        );
        ensure!(store.stats().fatal().is_none(), "a fatal error before any fault");
        let faults = store.engine().faults().clone();
        if sync {
            store.engine().track_unsynced(true);
            faults.fail_nth_sync(1, fault);
        } else {
            faults.fail_nth_write(1, fault);
        }
        let rx = append_nowait(&mut store, vec![entry(1, 6)]).await?;
        let err = match wait_flushed(rx).await {
            Ok(()) => return Err("an append whose write failed was reported durable".into()),
            Err(e) => e,
        };
        if fault == Fault::NoSpace {
            let kind = err.downcast_ref::<io::Error>().map(io::Error::kind);
            ensure!(
                kind == Some(io::ErrorKind::StorageFull),
                "a full disk reached the callback as {kind:?}: {err}"
            );
        }
        // Fail-stop: every later write is refused, never retried.
        let later = append_nowait(&mut store, vec![entry(1, 7)]).await;
        let refused = match later {
            Err(_) => true,
            Ok(rx) => wait_flushed(rx).await.is_err(),
        };
        ensure!(refused, "an append after a failed write was accepted");
        ensure!(
            store.save_vote(&vote(1, 1)).await.is_err(),
            "save_vote after a failed write was accepted"
        );
        // A server learns of the fail-stop from the stats: the cause, and the errors counted.
        let stats = store.stats();
        ensure!(
            stats
                .fatal()
                .is_some_and(|cause| cause.contains("durable log write failed")),
            "a failed durable write left no fatal error in the stats: {:?}",
            stats.fatal()
        );
        // ... and the error itself, typed, for an application openraft told only the message.
        let first = store
            .poisoned()
            .ok_or("a failed durable write did not poison the store")?;
        match stats.fatal_error() {
            Some(raft_store_core::StoreError::WriteFailed { kind, source, .. }) => ensure!(
                *kind == first.kind() && Arc::ptr_eq(source, &first),
                "the stats' fatal error ({kind:?}) is not the write's failure ({first})"
            ),
            other => return Err(format!("after a failed write the stats' fatal error is {other:?}").into()),
        }
        let errors = stats.snapshot().errors;
        ensure!(
            errors.iter().any(|((op, _), n)| *op == "write" && *n == 1),
            "the failed write is not counted once: {errors:?}"
        );
        ensure!(
            errors
                .keys()
                .any(|(op, kind)| *op == "refused" && kind == "Poisoned"),
            "the refused writes are not counted: {errors:?}"
        );
        if sync {
            store.engine().drop_unsynced()?;
        }
    }
    s.harness().power_loss(dir.path());
    let mut store = s.open_store(dir.path())?;
    let got = store.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &entries(1, 1, 6))?;
    append(&mut store, vec![entry(1, 6)]).await?;
    Ok(())
}

/// A failed write reaches the append callback; the store then refuses writes; a reopen holds
/// every acknowledged entry and accepts appends.
///
/// Run for every engine, beside the file-system cases ([`fs_faults`](super::fs_faults)):
/// the fault file system fails a write only for want of space, never with `EIO`, and never
/// before the engine applied part of it. This case fails the engine's write call itself with
/// `EIO`, applying nothing.
pub async fn failed_write_reaches_callback_then_refused<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    fault_then_refused(s, false, Fault::Io).await
}

/// A failed sync reaches the append callback; the store then refuses writes; after losing the
/// unsynced data, a reopen holds every acknowledged entry.
///
/// Run only for engines kept in memory (`conformance_suite!(in_memory: ..)`): for an engine on
/// disk, [`fsync_eio_reaches_callback_then_refused`](super::fs_faults::fsync_eio_reaches_callback_then_refused)
/// fails a real fsync under it, which this wrapper above the engine only imitates.
pub async fn failed_sync_reaches_callback_then_refused<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    fault_then_refused(s, true, Fault::Io).await
}

/// A full disk (ENOSPC) reaches the callback as `StorageFull`, and the store fails stop.
///
/// Run only for engines kept in memory: for an engine on disk,
/// [`enospc_reaches_callback_then_refused`](super::fs_faults::enospc_reaches_callback_then_refused)
/// fills the file system under it, so the engine's own mapping of `ENOSPC` is what is checked.
pub async fn no_space_left_reaches_callback<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    fault_then_refused(s, true, Fault::NoSpace).await
}

/// Power cut in the middle of pipelined appends: after reopen every acknowledged entry is
/// there, the log is contiguous, and the store accepts the next append.
pub async fn power_loss_keeps_acknowledged_entries<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    let mut acked = 0u64;
    {
        let mut store = s.open_store(dir.path())?;
        let faults = store.engine().faults().clone();
        let mut pending = Vec::new();
        for i in 0..60u64 {
            // After the cut the store may refuse appends outright: those are simply not acked.
            match append_nowait(&mut store, entries(1, i * 4 + 1, i * 4 + 5)).await {
                Ok(rx) => pending.push((i * 4 + 4, rx)),
                Err(e) => ensure!(faults.power_is_cut(), "append refused before the power cut: {e}"),
            }
            if i == 40 {
                faults.cut_power();
            }
            if i % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        for (last, rx) in pending {
            if wait_flushed(rx).await.is_ok() {
                ensure!(
                    last == acked + 4,
                    "entry {last} was acknowledged after a failed one"
                );
                acked = last;
            }
        }
    }
    s.harness().power_loss(dir.path());
    let mut store = s.open_store(dir.path())?;
    let got = store
        .get_log_reader()
        .await
        .try_get_log_entries(0..u64::MAX)
        .await?;
    ensure!(
        got.len() as u64 >= acked,
        "{acked} entries were acknowledged, {} survived the power cut",
        got.len()
    );
    same_entries(&got, &entries(1, 1, got.len() as u64 + 1))?;
    let next = got.len() as u64 + 1;
    append(&mut store, vec![entry(2, next)]).await?;
    Ok(())
}

/// A reader still held after the store is dropped (openraft's tasks may hold one past
/// shutdown) neither keeps the store open nor reads stale data: the store reopens at once and
/// the old reader reports the store closed.
pub async fn reader_does_not_keep_the_store_open<H: EngineHarness>(s: &EngineStores<H>) -> CaseResult {
    let dir = tempdir();
    let mut store = s.open_store(dir.path())?;
    append(&mut store, entries(1, 1, 4)).await?;
    let mut old_reader = store.get_log_reader().await;
    drop(store);
    let mut store = s.open_store(dir.path())?;
    same_entries(
        &store.get_log_reader().await.try_get_log_entries(0..10).await?,
        &entries(1, 1, 4),
    )?;
    ensure!(
        old_reader.try_get_log_entries(0..10).await.is_err(),
        "a reader of a dropped store still read"
    );
    Ok(())
}

/// A purge up to an entry keeps the entry after it, however the engine laid out its files:
/// entries compacted into one file first (`Engine::compact`), then purged up to the one before
/// the file's last. A RocksDB engine lost entry 10 here: after `purge(9)` it dropped files "in
/// the range up to key 10", and RocksDB's file deletion includes its end key.
pub async fn purge_after_compaction_keeps_the_next_entry<H: EngineHarness>(
    s: &EngineStores<H>,
) -> CaseResult {
    let dir = tempdir();
    {
        let mut store = s.open_store(dir.path())?;
        append(&mut store, entries(1, 1, 11)).await?;
        store.engine().compact()?;
        store.purge(log_id(1, 9)).await?;
        store.flush().await?;
        // Wait for the engine's own work after the purge, then read.
        store.engine().compact()?;
        let got = store.get_log_reader().await.try_get_log_entries(0..100).await?;
        same_entries(&got, &entries(1, 10, 11))?;
    }
    let mut store = s.open_store(dir.path())?;
    let got = store.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &entries(1, 10, 11))?;
    append(&mut store, entries(1, 11, 21)).await?;
    store.engine().compact()?;
    store.purge(log_id(1, 19)).await?;
    drop(store);
    let mut store = s.open_store(dir.path())?;
    let got = store.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &entries(1, 20, 21))
}
