//! Injected I/O faults on every backend, through `FaultEngine` wrapped around the real engine:
//! a failed write, a failed sync, and no space left (`ENOSPC`), each during an append, a truncate,
//! a purge and a vote save. Each fault reaches the caller as an error (`StorageFull` for a full
//! disk), the store then refuses every write, and a reopen of the real engine holds every
//! acknowledged operation and accepts appends.

use std::io;

use compat_tests::LogOp;
use compat_tests::Model;
use compat_tests::model;
use openraft::storage::RaftLogStorage;
use raft_store::AnyEngine;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_core::LogStore;
use raft_store_testkit::Fault;
use raft_store_testkit::FaultEngine;
use raft_store_testkit::TestConfig;
use raft_store_testkit::util;

type FaultStore = LogStore<TestConfig, FaultEngine<AnyEngine>>;

/// Run `op` on a store whose next write (or sync) fails; return the error it reported.
async fn failing(store: &mut FaultStore, op: &LogOp) -> Option<io::Error> {
    match model::issue(store, op).await {
        Err(e) => Some(e),
        Ok(Some(flushed)) => util::wait_flushed(flushed).await.err().map(|e| {
            e.downcast::<io::Error>()
                .map_or_else(|e| io::Error::other(e.to_string()), |e| *e)
        }),
        Ok(None) if matches!(op, LogOp::Vote { .. }) => None,
        Ok(None) => store.flush().await.err().map(io::Error::from),
    }
}

fn fault_case(backend: Backend, op: LogOp, sync: bool, fault: Fault) -> Result<(), String> {
    let dir = util::tempdir();
    let open = || {
        StoreConfig::new(backend, dir.path())
            .open_engine()
            .map_err(|e| e.to_string())
    };
    let what = format!(
        "{backend}: {} failing at its {}, {fault:?}",
        op.kind(),
        if sync { "sync" } else { "write" }
    );
    let setup = [
        LogOp::Vote { term: 1, node: 1 },
        LogOp::Append {
            term: 1,
            first: 1,
            last: 30,
        },
        LogOp::Committed { term: 1, index: 20 },
    ];
    let mut acked = Model::default();
    util::run(async {
        let mut store: FaultStore = LogStore::open(FaultEngine::new(open()?)).map_err(|e| e.to_string())?;
        for s in &setup {
            if let Some(flushed) = model::issue(&mut store, s).await.map_err(|e| e.to_string())? {
                util::wait_flushed(flushed).await.map_err(|e| e.to_string())?;
            }
            acked.apply(s);
        }
        store.flush().await.map_err(|e| e.to_string())?;

        let faults = store.engine().faults().clone();
        if sync {
            store.engine().track_unsynced(true);
            faults.fail_nth_sync(1, fault);
        } else {
            faults.fail_nth_write(1, fault);
        }
        let err = failing(&mut store, &op)
            .await
            .ok_or_else(|| format!("{what}: the operation was reported done"))?;
        if fault == Fault::NoSpace && err.kind() != io::ErrorKind::StorageFull {
            return Err(format!(
                "{what}: a full disk was reported as {:?}: {err}",
                err.kind()
            ));
        }
        // Fail-stop: nothing more is accepted.
        let next = LogOp::Append {
            term: 1,
            first: 31,
            last: 31,
        };
        if failing(&mut store, &next).await.is_none() {
            return Err(format!("{what}: an append after the fault was accepted"));
        }
        if store.save_vote(&util::vote(2, 1)).await.is_ok() {
            return Err(format!("{what}: a vote after the fault was accepted"));
        }
        if sync {
            // What a crash would lose: the writes whose sync failed.
            store.engine().drop_unsynced().map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })?;

    util::run(async {
        let mut store =
            LogStore::<TestConfig, AnyEngine>::open(open()?).map_err(|e| format!("{what}: reopen: {e}"))?;
        let observed = model::observe(&mut store)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        // The failed operation may or may not have reached the disk; everything before it must.
        model::check(&acked, &[op], 0, &observed).map_err(|e| format!("{what}: {e}"))?;
        let last = observed.last_index();
        let again = LogOp::Append {
            term: 2,
            first: last + 1,
            last: last + 1,
        };
        let flushed = model::issue(&mut store, &again)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(flushed) = flushed {
            util::wait_flushed(flushed)
                .await
                .map_err(|e| format!("{what}: append after reopen: {e}"))?;
        }
        Ok(())
    })
}

fn fault_matrix(backend: Backend) {
    let ops = [
        LogOp::Append {
            term: 1,
            first: 31,
            last: 35,
        },
        LogOp::Truncate { term: 1, after: 25 },
        LogOp::Purge { term: 1, upto: 10 },
        LogOp::Vote { term: 2, node: 2 },
    ];
    let mut failures = Vec::new();
    let mut cases = 0;
    for op in ops {
        for sync in [false, true] {
            for fault in [Fault::Io, Fault::NoSpace] {
                cases += 1;
                if let Err(e) = fault_case(backend, op, sync, fault) {
                    failures.push(e);
                }
            }
        }
    }
    eprintln!("{backend}: {cases} fault cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn faults_redb() {
    fault_matrix(Backend::Redb);
}

#[test]
fn faults_lmdb() {
    fault_matrix(Backend::Lmdb);
}

#[test]
fn faults_rocksdb() {
    fault_matrix(Backend::Rocksdb);
}

#[test]
fn faults_sled() {
    fault_matrix(Backend::Sled);
}
