//! Cases for the key-value state machine ([`KvStateMachine`]) over any engine, next to a
//! [`LogStore`] in the same engine, as a server runs them: openraft's suite with this state
//! machine ([`run_openraft_case`]) and our own cases below.
//!
//! Every case is an `async fn` (the macro runs them all the same way), some without an await.
#![allow(clippy::unused_async)]

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::io;
use std::io::Read;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use openraft::Membership;
use openraft::StorageError;
use openraft::entry::RaftEntry;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use tempfile::TempDir;

use super::CaseError;
use super::CaseResult;
use super::EngineHarness;
use super::Fault;
use super::FaultEngine;
use super::util::run;
use super::util::tempdir;
use crate::ensure;
use raft_store_core::Engine;
use raft_store_core::EngineLimits;
use raft_store_core::KeyRange;
use raft_store_core::LogStore;
use raft_store_core::Space;
use raft_store_core::StoreError;
use raft_store_core::kv::KvRequest;
use raft_store_core::kv::KvResponse;
use raft_store_core::kv::KvStateMachine;

/// The key-value state machine cases, for every engine.
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __kv_case_list {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            apply_responses,
            reopen_keeps_data_and_applied,
            large_apply_call,
            snapshot_replaces_other_data,
            damaged_snapshot_is_refused,
            failed_install_keeps_old_state,
            failed_apply_is_fatal_and_typed,
            power_loss_mid_apply_is_consistent,
            snapshot_during_applies_is_consistent,
            build_behind_current_snapshot,
            keys_of_any_length_apply_and_snapshot,
            oversized_request_is_refused_not_fatal,
        );
    };
}

openraft::declare_raft_types!(
    /// The type config of the state machine cases: the key-value requests and responses.
    pub KvTestConfig:
        D = KvRequest,
        R = KvResponse,
);

/// The engine of the state machine cases: the harness's engine with fault injection, shared by
/// the log store and the state machine.
pub type KvEngine<H> = Arc<FaultEngine<<H as EngineHarness>::Engine>>;
/// The log store of the state machine cases.
pub type KvLog<H> = LogStore<KvTestConfig, KvEngine<H>>;
/// The state machine of the cases.
pub type KvSm<H> = KvStateMachine<KvTestConfig, KvEngine<H>>;

/// Open the log store and the state machine kept under `root` (`root/store` for the engine,
/// `root/snapshots` for the snapshot files), as a server does: log store first.
pub fn open_kv<H: EngineHarness>(h: &H, root: &Path) -> Result<(KvLog<H>, KvSm<H>), io::Error> {
    open_kv_with_limits(h, root, None)
}

/// [`open_kv`] with the engine stating (and holding writes to) `limits` instead of its own, if
/// given (see [`Faults::set_limits`](super::Faults::set_limits)).
pub fn open_kv_with_limits<H: EngineHarness>(
    h: &H,
    root: &Path,
    limits: Option<EngineLimits>,
) -> Result<(KvLog<H>, KvSm<H>), io::Error> {
    let store = root.join("store");
    fs::create_dir_all(&store)?;
    let engine = Arc::new(FaultEngine::new(
        h.open(&store).map_err(|e| io::Error::new(e.kind(), e))?,
    ));
    if let Some(limits) = limits {
        engine.faults().set_limits(limits);
    }
    let log = LogStore::open(engine.clone())?;
    let sm = KvStateMachine::open(engine, root.join("snapshots"))?;
    Ok((log, sm))
}

/// Builds a fresh log store and state machine in a new temporary directory for each openraft
/// case.
pub struct KvBuilder<H>(pub H);

impl<H: EngineHarness> StoreBuilder<KvTestConfig, KvLog<H>, KvSm<H>, TempDir> for KvBuilder<H> {
    async fn build(&self) -> Result<(TempDir, KvLog<H>, KvSm<H>), StorageError<KvTestConfig>> {
        let dir = tempdir();
        let (log, sm) =
            open_kv(&self.0, dir.path()).map_err(|e| StorageError::read(KvTestConfig::err_from_error(&e)))?;
        Ok((dir, log, sm))
    }
}

/// openraft's suite instantiated with this state machine over the engines of `H`.
pub type KvSuiteOf<H> = openraft::testing::log::Suite<KvTestConfig, KvLog<H>, KvSm<H>, KvBuilder<H>, TempDir>;

/// Run one openraft case `(store, sm) -> Result` on a fresh log store and state machine.
pub fn run_openraft_case<H, F, Fut>(harness: H, case: F)
where
    H: EngineHarness,
    F: FnOnce(KvLog<H>, KvSm<H>) -> Fut,
    Fut: Future<Output = Result<(), io::Error>>,
{
    run(async move {
        let builder = KvBuilder(harness);
        let (_dir, log, sm) = builder.build().await.expect("open a store for the openraft case");
        case(log, sm).await.expect("openraft suite case");
    });
}

/// Run openraft's snapshot transfer case (it builds two stores itself).
pub fn run_transfer_snapshot<H: EngineHarness>(harness: H) {
    run(async move {
        let builder = KvBuilder(harness);
        KvSuiteOf::<H>::transfer_snapshot(&builder)
            .await
            .expect("openraft suite case");
    });
}

/// The log id of `index` written by the leader of `term`.
pub fn kv_log_id(term: u64, index: u64) -> LogIdOf<KvTestConfig> {
    let leader = openraft::impls::leader_id_adv::LeaderId { term, node_id: 0 };
    LogIdOf::<KvTestConfig>::new(leader, index)
}

/// A normal entry carrying `request`.
pub fn kv_entry(index: u64, request: KvRequest) -> EntryOf<KvTestConfig> {
    EntryOf::<KvTestConfig>::new_normal(kv_log_id(1, index), request)
}

/// The data a sequence of requests leaves, computed without the state machine.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvModel(pub BTreeMap<String, Vec<u8>>);

impl KvModel {
    /// The data after applying `requests` in order to an empty map.
    pub fn after(requests: &[KvRequest]) -> Self {
        let mut model = Self::default();
        for r in requests {
            model.apply(r);
        }
        model
    }

    /// Apply one request; returns the response the state machine must give.
    pub fn apply(&mut self, request: &KvRequest) -> KvResponse {
        match request {
            KvRequest::Set { key, value } => KvResponse::Set {
                previous: self.0.insert(key.clone(), value.clone()),
            },
            KvRequest::SetMany { pairs } => KvResponse::SetMany {
                previous: pairs
                    .iter()
                    .map(|(k, v)| self.0.insert(k.clone(), v.clone()))
                    .collect(),
            },
            KvRequest::Delete { key } => KvResponse::Delete {
                previous: self.0.remove(key),
            },
            KvRequest::UpdateIfExists { key, value } => {
                let previous = self.0.get(key).cloned();
                if previous.is_some() {
                    self.0.insert(key.clone(), value.clone());
                }
                KvResponse::UpdateIfExists { previous }
            }
        }
    }
}

/// A deterministic mixed workload of `n` requests over `keys` keys (seeded by `seed`), with
/// values of 0 bytes to 2 KiB and now and then 64 KiB.
pub fn workload(seed: u64, n: usize, keys: u64) -> Vec<KvRequest> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let key = format!("key/{:05}", r % keys);
            let len = if r % 97 == 0 {
                64 << 10
            } else {
                (r >> 20) as usize % 2048
            };
            let mut value = (format!("{i}:") + &"v".repeat(len)).into_bytes();
            // Values are bytes, not text: some end in bytes that are no UTF-8.
            if r % 5 == 0 {
                value.extend_from_slice(&[0xFF, 0x00, 0xC3]);
            }
            match (r >> 8) % 10 {
                0..=4 => KvRequest::Set { key, value },
                5 | 6 => KvRequest::SetMany {
                    pairs: (0..=((r >> 40) % 8))
                        .map(|j| {
                            (
                                format!("key/{:05}", (r >> 3).wrapping_add(j * 7) % keys),
                                format!("{i}.{j}").into_bytes(),
                            )
                        })
                        .collect(),
                },
                7 | 8 => KvRequest::Delete { key },
                _ => KvRequest::UpdateIfExists { key, value },
            }
        })
        .collect()
}

/// Everything the state machine serves, through its reader.
pub fn contents<H: EngineHarness>(sm: &KvSm<H>) -> Result<BTreeMap<String, Vec<u8>>, io::Error> {
    let mut out = BTreeMap::new();
    sm.reader().scan(&mut |k, v| {
        out.insert(k.to_string(), v.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Keys in the engine's data keyspace, of every generation (leftovers included).
fn raw_data_keys<E: Engine>(engine: &E) -> Result<usize, io::Error> {
    let mut n = 0;
    engine
        .scan(Space::Data, KeyRange::ALL, &mut |_, _| {
            n += 1;
            ControlFlow::Continue(())
        })
        .map_err(|e| io::Error::new(e.kind(), e))?;
    Ok(n)
}

/// Apply `requests` as entries `first..` in chunks of `chunk` entries per apply call.
fn apply_all<H: EngineHarness>(
    sm: &mut KvSm<H>,
    first: u64,
    requests: &[KvRequest],
    chunk: usize,
) -> Result<Vec<KvResponse>, io::Error> {
    let mut out = Vec::with_capacity(requests.len());
    for (c, part) in requests.chunks(chunk.max(1)).enumerate() {
        let base = first + (c * chunk.max(1)) as u64;
        let entries: Vec<_> = part
            .iter()
            .enumerate()
            .map(|(i, r)| kv_entry(base + i as u64, r.clone()))
            .collect();
        out.extend(sm.apply_entries(&entries)?);
    }
    Ok(out)
}

/// Build a snapshot of `sm` now, as openraft's snapshot task does.
async fn build_snapshot<H: EngineHarness>(
    sm: &mut KvSm<H>,
) -> Result<
    openraft::type_config::alias::SnapshotOf<KvTestConfig, raft_store_core::kv::SnapshotFile>,
    CaseError,
> {
    let mut builder = sm
        .try_create_snapshot_builder(true)
        .await
        .ok_or("no snapshot builder")?;
    Ok(openraft::RaftSnapshotBuilder::build_snapshot(&mut builder).await?)
}

/// Apply `requests[..synced]` and sync, then apply the rest with the engine remembering how to
/// undo them (for a simulated power cut: [`FaultEngine::drop_unsynced`]). Returns the engine.
fn apply_synced_then_unsynced<H: EngineHarness>(
    sm: &mut KvSm<H>,
    requests: &[KvRequest],
    synced: usize,
    chunk: usize,
) -> Result<KvEngine<H>, CaseError> {
    let engine = sm.engine().clone();
    apply_all::<H>(sm, 1, &requests[..synced], chunk)?;
    sm.sync()?;
    engine.track_unsynced(true);
    apply_all::<H>(sm, synced as u64 + 1, &requests[synced..], chunk)?;
    Ok(engine)
}

/// Every request gets the response the model gives (previous value, whether the key existed),
/// and the data afterwards equals the model's.
pub async fn apply_responses<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let (_log, mut sm) = open_kv(h, dir.path())?;
    let requests = workload(1, 600, 50);
    let mut model = KvModel::default();
    let expected: Vec<_> = requests.iter().map(|r| model.apply(r)).collect();
    let got = apply_all::<H>(&mut sm, 1, &requests, 37)?;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        ensure!(
            g == e,
            "request {i} ({}): response {g:?}, expected {e:?}",
            requests[i]
        );
    }
    ensure!(
        contents::<H>(&sm)? == model.0,
        "data after 600 requests differs from the model"
    );
    let (applied, _) = sm.applied();
    ensure!(
        applied == Some(kv_log_id(1, 600)),
        "applied id {applied:?}, expected index 600"
    );
    // A key set twice in one SetMany ends with its last value and reports both previous values.
    let twice = KvRequest::SetMany {
        pairs: vec![("dup".into(), "a".into()), ("dup".into(), "b".into())],
    };
    let r = sm.apply_entries(&[kv_entry(601, twice)])?;
    ensure!(
        r == vec![KvResponse::SetMany {
            previous: vec![None, Some("a".into())]
        }],
        "SetMany naming a key twice: {r:?}"
    );
    ensure!(
        sm.reader().get("dup")?.as_deref() == Some(&b"b"[..]),
        "dup must end as b"
    );
    Ok(())
}

/// After a reopen the data, the applied id and the membership are the ones applied.
pub async fn reopen_keeps_data_and_applied<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let requests = workload(2, 400, 80);
    let model = KvModel::after(&requests);
    let membership = Membership::<u64, openraft::BasicNode>::new_with_defaults(vec![[1, 2, 3].into()], []);
    {
        let (_log, mut sm) = open_kv(h, dir.path())?;
        apply_all::<H>(&mut sm, 1, &requests, 50)?;
        let m = EntryOf::<KvTestConfig>::new_membership(kv_log_id(1, 401), membership.clone());
        sm.apply_entries(&[m])?;
    }
    let (log, sm) = open_kv(h, dir.path())?;
    ensure!(
        contents::<H>(&sm)? == model.0,
        "data after reopen differs from what was applied"
    );
    let (applied, stored) = sm.applied();
    ensure!(
        applied == Some(kv_log_id(1, 401)),
        "applied id after reopen: {applied:?}"
    );
    ensure!(
        stored.log_id() == &Some(kv_log_id(1, 401)) && stored.membership() == &membership,
        "membership after reopen: {stored:?}"
    );
    drop((log, sm));
    // The state record under a damaged key (engines without checksums of their own hand such
    // a key back as it is): refused, and nothing deleted on the way.
    let rename = |from: &[u8], to: &[u8]| -> CaseResult {
        let engine = h.open(&dir.path().join("store"))?;
        let record = engine
            .get(Space::DataMeta, from)?
            .ok_or("the state record is missing")?;
        let mut batch = raft_store_core::Batch::new();
        batch.delete(Space::DataMeta, from);
        batch.put(Space::DataMeta, to, record);
        engine.write(&batch, raft_store_core::Durability::Durable)?;
        Ok(())
    };
    rename(b"state", b"stbte")?;
    let err = match open_kv(h, dir.path()) {
        Ok(_) => return Err("opened a state machine whose state record is under a damaged key".into()),
        Err(e) => e.to_string(),
    };
    ensure!(
        err.contains("\"stbte\""),
        "opening with the state record under a damaged key: {err}"
    );
    rename(b"stbte", b"state")?;
    let (_log, sm) = open_kv(h, dir.path())?;
    ensure!(
        contents::<H>(&sm)? == model.0,
        "data changed after an open refused for a damaged state key"
    );
    Ok(())
}

/// One apply call larger than the state machine's batch limit is applied whole, and a reopen
/// finds it all.
pub async fn large_apply_call<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let big = "x".repeat(512 << 10);
    let requests: Vec<_> = (0..24)
        .map(|i| KvRequest::SetMany {
            pairs: vec![
                (format!("big/{i:02}"), format!("{i}{big}").into_bytes()),
                (format!("small/{i:02}"), i.to_string().into_bytes()),
            ],
        })
        .collect();
    {
        let (_log, mut sm) = open_kv(h, dir.path())?;
        apply_all::<H>(&mut sm, 1, &requests, requests.len())?;
    }
    let (_log, sm) = open_kv(h, dir.path())?;
    let data = contents::<H>(&sm)?;
    ensure!(data.len() == 48, "{} keys after reopen, expected 48", data.len());
    ensure!(
        data.get("big/23").is_some_and(|v| v.len() == big.len() + 2),
        "the last large value is wrong"
    );
    ensure!(
        sm.applied().0 == Some(kv_log_id(1, 24)),
        "applied id {:?}",
        sm.applied().0
    );
    Ok(())
}

/// A snapshot of thousands of keys built on one store and installed on another that holds
/// other data leaves exactly the snapshot's data, its applied id and membership, and makes it
/// the current snapshot there.
pub async fn snapshot_replaces_other_data<H: EngineHarness>(h: &H) -> CaseResult {
    let (a, b) = (tempdir(), tempdir());
    let (_la, mut sa) = open_kv(h, a.path())?;
    let (lb, mut sb) = open_kv(h, b.path())?;
    apply_all::<H>(&mut sa, 1, &workload(3, 3000, 2500), 100)?;
    // B holds keys A lacks, keys A has with other values, and a later applied id.
    apply_all::<H>(&mut sb, 1, &workload(4, 700, 4000), 100)?;
    let before = raw_data_keys(&**sa.engine())?;
    let built = build_snapshot::<H>(&mut sa).await?;
    ensure!(
        built.meta.last_log_id == Some(kv_log_id(1, 3000)),
        "snapshot meta {:?}",
        built.meta.last_log_id
    );
    // Ship it as a network layer would: stream the bytes into a file the follower made.
    let mut received = sb.receive_snapshot()?;
    let mut source = built.snapshot;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        received.write_all(&buf[..n])?;
    }
    sb.install_snapshot(&built.meta, received).await?;
    let expected = contents::<H>(&sa)?;
    ensure!(
        expected.len() > 1000,
        "the workload left only {} keys",
        expected.len()
    );
    let got = contents::<H>(&sb)?;
    ensure!(
        got == expected,
        "after install: {} keys, expected {} (first difference at {:?})",
        got.len(),
        expected.len(),
        got.iter()
            .zip(&expected)
            .find(|(x, y)| x != y)
            .map(|(x, _)| x.0.clone())
    );
    ensure!(
        raw_data_keys(&**sb.engine())? == expected.len(),
        "the old generation's keys are still in the engine"
    );
    ensure!(
        raw_data_keys(&**sa.engine())? == before,
        "building changed the leader's keys"
    );
    ensure!(
        sb.applied().0 == built.meta.last_log_id,
        "applied id after install"
    );
    let current = sb.get_current_snapshot().await?;
    ensure!(
        current.as_ref().map(|c| &c.meta) == Some(&built.meta),
        "the installed snapshot is not current"
    );
    // And it stays so across a reopen.
    drop((sb, lb));
    let (_lb, mut sb) = open_kv(h, b.path())?;
    ensure!(
        contents::<H>(&sb)? == expected,
        "data after reopen of the follower"
    );
    let current = sb.get_current_snapshot().await?;
    ensure!(
        current.map(|c| c.meta) == Some(built.meta),
        "current snapshot after reopen"
    );
    Ok(())
}

/// A damaged snapshot file (one flipped byte, or cut short) is refused with an error naming
/// the file, and the state machine keeps its data, applied id and nothing else.
pub async fn damaged_snapshot_is_refused<H: EngineHarness>(h: &H) -> CaseResult {
    let (dir_a, dir_b) = (tempdir(), tempdir());
    let (_la, mut sa) = open_kv(h, dir_a.path())?;
    let (_lb, mut sb) = open_kv(h, dir_b.path())?;
    apply_all::<H>(&mut sa, 1, &workload(5, 500, 300), 100)?;
    apply_all::<H>(&mut sb, 1, &workload(6, 200, 300), 100)?;
    let built = build_snapshot::<H>(&mut sa).await?;
    let bytes = fs::read(built.snapshot.path())?;
    let before = contents::<H>(&sb)?;
    let applied = sb.applied().0;
    let keys = raw_data_keys(&**sb.engine())?;
    for (what, damaged) in [
        ("a flipped byte in the middle", {
            let mut d = bytes.clone();
            let mid = d.len() / 2;
            d[mid] ^= 0x04;
            d
        }),
        ("the file cut at 3/4", bytes[..bytes.len() * 3 / 4].to_vec()),
    ] {
        let mut file = sb.receive_snapshot()?;
        file.write_all(&damaged)?;
        let path = file.path().to_path_buf();
        let err = match sb.install_snapshot(&built.meta, file).await {
            Ok(()) => return Err(format!("{what}: the damaged snapshot was installed").into()),
            Err(e) => e,
        };
        ensure!(
            err.kind() == io::ErrorKind::InvalidData,
            "{what}: error kind {:?}: {err}",
            err.kind()
        );
        ensure!(
            err.to_string().contains(&path.display().to_string()),
            "{what}: the error does not name the file: {err}"
        );
        ensure!(contents::<H>(&sb)? == before, "{what}: the data changed");
        ensure!(sb.applied().0 == applied, "{what}: the applied id changed");
        ensure!(
            raw_data_keys(&**sb.engine())? == keys,
            "{what}: keys of the refused snapshot stayed in the engine"
        );
    }
    Ok(())
}

/// A write that fails in the middle of an install (a full disk) leaves the old state; after a
/// reopen no key of the unfinished install is left.
pub async fn failed_install_keeps_old_state<H: EngineHarness>(h: &H) -> CaseResult {
    let (a, b) = (tempdir(), tempdir());
    let (_la, mut sa) = open_kv(h, a.path())?;
    let (lb, mut sb) = open_kv(h, b.path())?;
    // Large enough for several install batches.
    let big = "y".repeat(16 << 10);
    let requests: Vec<_> = (0..1200)
        .map(|i| KvRequest::Set {
            key: format!("k{i:05}"),
            value: format!("{i}{big}").into_bytes(),
        })
        .collect();
    apply_all::<H>(&mut sa, 1, &requests, 200)?;
    apply_all::<H>(&mut sb, 1, &workload(7, 300, 200), 100)?;
    let before = contents::<H>(&sb)?;
    let applied = sb.applied().0;
    let built = build_snapshot::<H>(&mut sa).await?;
    let engine = sb.engine().clone();
    engine.faults().fail_nth_write(3, Fault::NoSpace);
    let err = sb
        .install_snapshot(
            &built.meta,
            raft_store_core::kv::SnapshotFile::open(built.snapshot.path())?,
        )
        .await
        .err()
        .ok_or("an install whose third write failed reported success")?;
    ensure!(
        err.kind() == io::ErrorKind::StorageFull,
        "error kind {:?}: {err}",
        err.kind()
    );
    ensure!(
        contents::<H>(&sb)? == before,
        "the data changed after a failed install"
    );
    ensure!(
        sb.applied().0 == applied,
        "the applied id changed after a failed install"
    );
    drop((sb, lb, engine));
    let (_lb, sb) = open_kv(h, b.path())?;
    ensure!(
        contents::<H>(&sb)? == before,
        "the data changed across the reopen"
    );
    ensure!(
        raw_data_keys(&**sb.engine())? == before.len(),
        "keys of the failed install are left after reopen"
    );
    Ok(())
}

/// A state machine write that fails (a full disk) fails its apply call with
/// [`StoreError::ApplyFailed`] around the engine's error; the stats keep that same error, typed
/// (openraft keeps only its message), and the state of before is what reads see.
pub async fn failed_apply_is_fatal_and_typed<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let (_log, mut sm) = open_kv(h, dir.path())?;
    apply_all::<H>(&mut sm, 1, &workload(9, 50, 20), 10)?;
    let before = contents::<H>(&sm)?;
    let applied = sm.applied().0;
    let stats = sm.stats();
    ensure!(stats.fatal_error().is_none(), "a fatal error before any fault");
    sm.engine().faults().fail_nth_write(1, Fault::NoSpace);
    let entries: Vec<_> = workload(10, 5, 20)
        .into_iter()
        .zip(51..)
        .map(|(r, index)| kv_entry(index, r))
        .collect();
    let Err(err) = sm.apply_entries(&entries) else {
        return Err("an apply whose write failed reported success".into());
    };
    ensure!(
        err.kind() == io::ErrorKind::StorageFull,
        "a full disk failed the apply as {:?}: {err}",
        err.kind()
    );
    let StoreError::ApplyFailed { source, .. } = &err else {
        return Err(format!("a failed apply returned {err:?}, not ApplyFailed").into());
    };
    ensure!(
        matches!(**source, StoreError::Engine(_)),
        "the failed apply wraps {source:?}, not the engine's error"
    );
    match stats.fatal_error() {
        Some(StoreError::ApplyFailed { source: kept, .. }) => ensure!(
            Arc::ptr_eq(kept, source),
            "the stats keep another error than the one the apply returned"
        ),
        other => return Err(format!("after a failed apply the stats' fatal error is {other:?}").into()),
    }
    ensure!(
        stats
            .fatal()
            .is_some_and(|m| m.contains("applying committed entries failed") && m.contains("ENOSPC")),
        "the fatal message names neither the apply nor the full disk: {:?}",
        stats.fatal()
    );
    ensure!(
        contents::<H>(&sm)? == before,
        "reads changed after a failed apply"
    );
    ensure!(
        sm.applied().0 == applied,
        "the applied id moved after a failed apply"
    );
    Ok(())
}

/// Writes not yet synced are lost at a power cut, whole apply calls at a time: after the cut
/// the data equals the model at the applied id the state machine kept, never a part of an
/// apply.
pub async fn power_loss_mid_apply_is_consistent<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let requests = workload(8, 900, 150);
    let (log, mut sm) = open_kv(h, dir.path())?;
    let engine = apply_synced_then_unsynced::<H>(&mut sm, &requests, 300, 60)?;
    engine.drop_unsynced()?;
    drop((sm, log, engine));
    let (_log, sm) = open_kv(h, dir.path())?;
    let applied = sm.applied().0.map_or(0, |id| id.index);
    ensure!(
        applied == 300,
        "after the cut the state machine says it applied {applied}, expected 300"
    );
    let model = KvModel::after(&requests[..300]);
    ensure!(
        contents::<H>(&sm)? == model.0,
        "data after the cut differs from the model at index 300"
    );
    Ok(())
}

/// A state machine that restarted behind its current snapshot (its applies after the last sync
/// were lost, the snapshot file was not) still builds a complete snapshot of its own state,
/// and keeps the newer one as current.
pub async fn build_behind_current_snapshot<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let requests = workload(10, 100, 60);
    {
        let (log, mut sm) = open_kv(h, dir.path())?;
        let engine = apply_synced_then_unsynced::<H>(&mut sm, &requests, 50, 25)?;
        build_snapshot::<H>(&mut sm).await?;
        engine.drop_unsynced()?;
        drop((sm, log, engine));
    }
    let (_log, mut sm) = open_kv(h, dir.path())?;
    ensure!(
        sm.applied().0 == Some(kv_log_id(1, 50)),
        "applied after the cut: {:?}",
        sm.applied().0
    );
    apply_all::<H>(&mut sm, 51, &requests[50..70], 10)?;
    let built = build_snapshot::<H>(&mut sm).await?;
    ensure!(
        built.meta.last_log_id == Some(kv_log_id(1, 70)),
        "built at {:?}",
        built.meta.last_log_id
    );
    let current = sm.get_current_snapshot().await?.ok_or("no current snapshot")?;
    ensure!(
        current.meta.last_log_id == Some(kv_log_id(1, 100)),
        "the newer snapshot must stay current, found {:?}",
        current.meta.last_log_id
    );
    let other = tempdir();
    let (_lo, mut so) = open_kv(h, other.path())?;
    so.install_snapshot(&built.meta, built.snapshot).await?;
    let model = KvModel::after(&requests[..70]);
    ensure!(
        contents::<H>(&so)? == model.0,
        "the snapshot built at 70 does not hold the state at 70"
    );
    Ok(())
}

/// A snapshot built while applies go on holds exactly the state at its own last log id.
pub async fn snapshot_during_applies_is_consistent<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let requests = workload(9, 3000, 400);
    let (_log, mut sm) = open_kv(h, dir.path())?;
    apply_all::<H>(&mut sm, 1, &requests[..1000], 100)?;
    let mut builder = sm
        .try_create_snapshot_builder(true)
        .await
        .ok_or("no snapshot builder")?;
    let task = tokio::spawn(async move { openraft::RaftSnapshotBuilder::build_snapshot(&mut builder).await });
    // Keep applying while the build runs.
    let mut next = 1000;
    while next < requests.len() && !task.is_finished() {
        let end = (next + 20).min(requests.len());
        apply_all::<H>(&mut sm, next as u64 + 1, &requests[next..end], 20)?;
        next = end;
        tokio::task::yield_now().await;
    }
    let built = task.await.map_err(|e| format!("build task: {e}"))??;
    let at = built.meta.last_log_id.map_or(0, |id| id.index) as usize;
    ensure!(
        at >= 1000,
        "snapshot at index {at}, before the applies it must contain"
    );
    // Read the snapshot back by installing it into a fresh state machine.
    let other = tempdir();
    let (_lo, mut so) = open_kv(h, other.path())?;
    so.install_snapshot(&built.meta, built.snapshot).await?;
    let model = KvModel::after(&requests[..at]);
    ensure!(
        contents::<H>(&so)? == model.0,
        "the snapshot at index {at} (built while {} requests were applied) differs from the model at {at}",
        next - 1000
    );
    Ok(())
}

/// A key of `len` bytes made of `fill`, ending in `tag` so that keys of one length differ.
/// Some carry multi-byte UTF-8 to check keys are kept byte for byte.
fn long_key(len: usize, fill: char, tag: &str) -> String {
    let mut key = String::with_capacity(len);
    while key.len() + fill.len_utf8() + tag.len() <= len {
        key.push(fill);
    }
    while key.len() + tag.len() < len {
        key.push('-');
    }
    key.push_str(tag);
    key
}

/// Keys of every length from 0 bytes to 64 KiB (across every engine's key limit, LMDB's 511
/// bytes included) and values up to 16 MiB: each request applies with the model's response,
/// reads, `UpdateIfExists`, deletes and the ordered scan see it, and a snapshot built from it
/// installs on another store (which held other long keys) and survives a reopen. A committed
/// request must apply on every engine: a key over an engine's limit that failed the apply
/// would stop the node on every start.
///
/// Run twice: with the engine's own limits and the largest value 16 MiB (once: slow engines
/// take seconds to write it), then with keys limited to 64 bytes and values to 1 MiB, so that
/// engines without a key limit of their own store long keys under their hash too.
pub async fn keys_of_any_length_apply_and_snapshot<H: EngineHarness>(h: &H) -> CaseResult {
    long_keys_round(h, None, 16 << 20).await?;
    let small_keys = EngineLimits {
        max_key: 64,
        ..EngineLimits::NONE
    };
    long_keys_round(h, Some(small_keys), 1 << 20).await
}

/// One round of [`keys_of_any_length_apply_and_snapshot`]: engines opened with `limits` (their
/// own if `None`), values up to `largest` bytes.
/// Every key of `keys` and of the model reads back as the model says, and the ordered scan
/// visits exactly the model's keys in key order.
fn check_long_keys<H: EngineHarness>(
    sm: &KvSm<H>,
    model: &KvModel,
    keys: &[String],
    when: &str,
) -> CaseResult {
    let reader = sm.reader();
    let named: std::collections::BTreeSet<&String> = model.0.keys().chain(keys).collect();
    for key in named {
        let got = reader.get(key)?;
        ensure!(
            got.as_ref() == model.0.get(key),
            "{when}: get of a key of {} bytes: {:?} bytes, expected {:?}",
            key.len(),
            got.map(|v| v.len()),
            model.0.get(key).map(Vec::len)
        );
    }
    let mut order = Vec::new();
    let mut data = BTreeMap::new();
    reader.scan(&mut |k, v| {
        order.push(k.to_string());
        data.insert(k.to_string(), v.to_vec());
        ControlFlow::Continue(())
    })?;
    ensure!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{when}: the scan visits keys out of order"
    );
    ensure!(
        data == model.0,
        "{when}: the scan finds {} keys, the model {} (lengths {:?} vs {:?})",
        data.len(),
        model.0.len(),
        data.keys().map(String::len).collect::<Vec<_>>(),
        model.0.keys().map(String::len).collect::<Vec<_>>()
    );
    Ok(())
}

/// The keys of [`long_keys_round`] (0 bytes to 64 KiB) and its requests: a `Set` of each key
/// first, then values up to `largest` bytes, `SetMany`, `UpdateIfExists` and `Delete` on long
/// keys.
fn long_key_requests(largest: usize) -> (Vec<String>, Vec<KvRequest>) {
    let lengths = [
        0, 1, 2, 100, 400, 495, 502, 503, 504, 505, 510, 511, 512, 600, 1000, 4096,
    ];
    let mut keys: Vec<String> = lengths
        .iter()
        .map(|&n| {
            if n == 0 {
                String::new()
            } else {
                long_key(n, 'k', &n.to_string())
            }
        })
        .collect();
    // Several long keys sharing a long prefix (they sort by their last bytes), one with
    // multi-byte characters, and the longest: 64 KiB.
    for tag in ["/a", "/b", "/ab", "/c"] {
        keys.push(long_key(3000, 'p', tag));
    }
    keys.push(long_key(2000, 'é', "/utf8"));
    keys.push(long_key(64 << 10, 'z', "/64k"));
    let mut requests: Vec<KvRequest> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| KvRequest::Set {
            key: k.clone(),
            value: format!("value {i} of a key of {} bytes", k.len()).into_bytes(),
        })
        .collect();
    let big =
        |seed: u8, len: usize| -> Vec<u8> { (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect() };
    requests.extend([
        // The largest value, once, under a long key; 1 MiB under the longest key.
        KvRequest::Set {
            key: keys[13].clone(),
            value: big(1, largest),
        },
        KvRequest::Set {
            key: keys[keys.len() - 1].clone(),
            value: big(2, 1 << 20),
        },
        KvRequest::SetMany {
            pairs: vec![
                (keys[16].clone(), b"many 1".to_vec()),
                (keys[17].clone(), b"many 2".to_vec()),
                (keys[16].clone(), b"many 1 again".to_vec()),
                (long_key(5000, 'm', "/new"), Vec::new()),
                ("short/new".into(), b"s".to_vec()),
            ],
        },
        KvRequest::UpdateIfExists {
            key: keys[18].clone(),
            value: b"updated".to_vec(),
        },
        KvRequest::UpdateIfExists {
            key: long_key(700, 'u', "/missing"),
            value: b"never".to_vec(),
        },
        KvRequest::Delete {
            key: keys[19].clone(),
        },
        KvRequest::Delete {
            key: long_key(800, 'd', "/missing"),
        },
        KvRequest::Set {
            key: keys[12].clone(),
            value: b"overwritten".to_vec(),
        },
    ]);
    (keys, requests)
}

async fn long_keys_round<H: EngineHarness>(
    h: &H,
    limits: Option<EngineLimits>,
    largest: usize,
) -> CaseResult {
    let (keys, requests) = long_key_requests(largest);
    let mut model = KvModel::default();
    let expected: Vec<KvResponse> = requests.iter().map(|r| model.apply(r)).collect();
    let (dir_a, dir_b) = (tempdir(), tempdir());
    let (la, mut sa) = open_kv_with_limits(h, dir_a.path(), limits)?;
    // The first `Set` of each key one per apply call, the rest in one call (requests of one
    // call read what earlier ones of the same call wrote).
    let got = apply_all::<H>(&mut sa, 1, &requests[..keys.len()], 1)?;
    let rest = apply_all::<H>(
        &mut sa,
        keys.len() as u64 + 1,
        &requests[keys.len()..],
        requests.len(),
    )?;
    for (i, (g, e)) in got.iter().chain(&rest).zip(&expected).enumerate() {
        ensure!(
            g == e,
            "request {i} ({:.60}): response {:.200}, expected {:.200}",
            requests[i].to_string(),
            format!("{g:?}"),
            format!("{e:?}")
        );
    }
    check_long_keys::<H>(&sa, &model, &keys, "after apply")?;
    // A scan that breaks early stops: the first two keys only.
    let mut seen = Vec::new();
    sa.reader().scan(&mut |k, _| {
        seen.push(k.to_string());
        if seen.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    ensure!(
        seen.iter().eq(model.0.keys().take(2)),
        "a scan that breaks after two keys saw {} keys",
        seen.len()
    );
    // The follower holds other long keys, which the install must remove.
    let (lb, mut sb) = open_kv_with_limits(h, dir_b.path(), limits)?;
    let other = vec![
        KvRequest::Set {
            key: long_key(3000, 'p', "/a"),
            value: b"stale".to_vec(),
        },
        KvRequest::Set {
            key: long_key(9000, 'o', "/other"),
            value: b"other".to_vec(),
        },
    ];
    apply_all::<H>(&mut sb, 1, &other, 1)?;
    let built = build_snapshot::<H>(&mut sa).await?;
    let mut received = sb.receive_snapshot()?;
    let mut source = built.snapshot;
    io::copy(&mut source, &mut received)?;
    sb.install_snapshot(&built.meta, received).await?;
    check_long_keys::<H>(&sb, &model, &keys, "after install")?;
    // The reopens check long keys are durable; the largest value has made its round trip, and
    // writing it out again at close would only slow the case, so it is overwritten first.
    let shrink = KvRequest::Set {
        key: keys[13].clone(),
        value: b"small again".to_vec(),
    };
    model.apply(&shrink);
    let next = requests.len() as u64 + 1;
    for sm in [&mut sa, &mut sb] {
        sm.apply_entries(&[kv_entry(next, shrink.clone())])?;
    }
    drop((sa, la, sb, lb));
    let (_la, sa) = open_kv_with_limits(h, dir_a.path(), limits)?;
    check_long_keys::<H>(&sa, &model, &keys, "after reopen")?;
    let (_lb, sb) = open_kv_with_limits(h, dir_b.path(), limits)?;
    check_long_keys::<H>(&sb, &model, &keys, "after reopen of the follower")?;
    Ok(())
}

/// A committed request that can never be stored on the engine (a value over its value limit)
/// is answered `Refused` and changes nothing (a `SetMany` with one such pair sets none), the
/// entries after it apply, the applied id moves past it, nothing is fatal, and a reopen finds
/// the same. Failing the apply instead would stop the node, and again on every start.
pub async fn oversized_request_is_refused_not_fatal<H: EngineHarness>(h: &H) -> CaseResult {
    let limits = EngineLimits {
        max_key: 64,
        max_value: 64 << 10,
        max_pair: usize::MAX,
    };
    let dir = tempdir();
    let (log, mut sm) = open_kv_with_limits(h, dir.path(), Some(limits))?;
    let long_name = "l".repeat(100);
    let too_big = vec![7u8; 65 << 10];
    let requests = [
        KvRequest::Set {
            key: "a".into(),
            value: b"1".to_vec(),
        },
        KvRequest::Set {
            key: "a".into(),
            value: too_big.clone(),
        },
        KvRequest::SetMany {
            pairs: vec![("b".into(), b"2".to_vec()), (long_name.clone(), too_big.clone())],
        },
        KvRequest::UpdateIfExists {
            key: "a".into(),
            value: too_big.clone(),
        },
        KvRequest::Set {
            key: long_name.clone(),
            value: b"3".to_vec(),
        },
        KvRequest::Set {
            key: "c".into(),
            value: vec![1u8; 60 << 10],
        },
    ];
    let got = apply_all::<H>(&mut sm, 1, &requests, requests.len())?;
    let refused: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, KvResponse::Refused { .. }))
        .map(|(i, _)| i)
        .collect();
    ensure!(
        refused == [1, 2, 3],
        "refused requests {refused:?}, expected 1, 2 and 3"
    );
    let KvResponse::Refused { reason } = &got[1] else {
        return Err("request 1 was not refused".into());
    };
    ensure!(
        reason.contains("66560") && reason.contains("65536"),
        "the refusal names neither the value's size nor the limit: {reason}"
    );
    let expected: BTreeMap<String, Vec<u8>> = [
        ("a".to_string(), b"1".to_vec()),
        (long_name.clone(), b"3".to_vec()),
        ("c".to_string(), vec![1u8; 60 << 10]),
    ]
    .into();
    ensure!(
        contents::<H>(&sm)? == expected,
        "refused requests changed the data"
    );
    ensure!(
        sm.applied().0 == Some(kv_log_id(1, 6)),
        "the applied id stopped at {:?}",
        sm.applied().0
    );
    ensure!(
        sm.stats().fatal().is_none(),
        "a refused request was fatal: {:?}",
        sm.stats().fatal()
    );
    drop((log, sm));
    let (_log, sm) = open_kv_with_limits(h, dir.path(), Some(limits))?;
    ensure!(contents::<H>(&sm)? == expected, "data after reopen");
    ensure!(sm.applied().0 == Some(kv_log_id(1, 6)), "applied id after reopen");
    Ok(())
}
