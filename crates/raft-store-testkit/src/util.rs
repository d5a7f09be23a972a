//! Helpers shared by the cases: entries, votes, appends that wait, a runtime.

use std::future::Future;
use std::io;

use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::OneshotReceiverOf;
use openraft::type_config::alias::VoteOf;

use super::CaseError;
use super::CaseResult;
use super::TestConfig;

/// The log id of `index` written by the leader of `term` (node 0).
pub fn log_id(term: u64, index: u64) -> LogIdOf<TestConfig> {
    let leader = openraft::impls::leader_id_adv::LeaderId { term, node_id: 0 };
    LogIdOf::<TestConfig>::new(leader, index)
}

/// A normal entry whose payload names its term and index, so a wrong entry is easy to spot.
pub fn entry(term: u64, index: u64) -> EntryOf<TestConfig> {
    EntryOf::<TestConfig>::new_normal(log_id(term, index), format!("t{term}-i{index}"))
}

/// A normal entry with the given payload.
pub fn entry_with(term: u64, index: u64, data: String) -> EntryOf<TestConfig> {
    EntryOf::<TestConfig>::new_normal(log_id(term, index), data)
}

/// Entries `from..to` of `term`.
pub fn entries(term: u64, from: u64, to: u64) -> Vec<EntryOf<TestConfig>> {
    (from..to).map(|i| entry(term, i)).collect()
}

/// A committed vote for `node` in `term`.
pub fn vote(term: u64, node: u64) -> VoteOf<TestConfig> {
    VoteOf::<TestConfig>::new_committed(term, node)
}

/// Waits for one append's flush callback.
pub type Flushed = OneshotReceiverOf<TestConfig, Result<(), io::Error>>;

/// Append without waiting for durability; the receiver resolves when the callback fires.
pub async fn append_nowait<S: RaftLogStorage<TestConfig>>(
    store: &mut S,
    entries: Vec<EntryOf<TestConfig>>,
) -> Result<Flushed, io::Error> {
    let (tx, rx) = TestConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    Ok(rx)
}

/// Append and wait until the callback reports the entries durable.
pub async fn append<S: RaftLogStorage<TestConfig>>(
    store: &mut S,
    entries: Vec<EntryOf<TestConfig>>,
) -> Result<(), CaseError> {
    let rx = append_nowait(store, entries).await?;
    wait_flushed(rx).await
}

/// Wait for a flush callback; a dropped callback is an error too.
pub async fn wait_flushed(rx: Flushed) -> Result<(), CaseError> {
    match rx.await {
        Ok(result) => Ok(result?),
        Err(_) => Err("the flush callback was dropped without being called".into()),
    }
}

/// Whether the callback has fired yet (without waiting or taking its result).
pub fn has_fired(rx: &Flushed) -> bool {
    !rx.is_empty()
}

/// The indexes of `entries`, to compare reads compactly.
pub fn indexes(entries: &[EntryOf<TestConfig>]) -> Vec<u64> {
    entries.iter().map(RaftEntry::index).collect()
}

/// Check that `got` holds exactly the entries `want`, payloads included.
pub fn same_entries(got: &[EntryOf<TestConfig>], want: &[EntryOf<TestConfig>]) -> CaseResult {
    if got.len() != want.len() {
        return Err(format!(
            "read {} entries {:?}, expected {} {:?}",
            got.len(),
            brief(got),
            want.len(),
            brief(want)
        )
        .into());
    }
    for (g, w) in got.iter().zip(want) {
        if g.log_id != w.log_id || g.payload != w.payload {
            return Err(format!("read entry {g}, expected {w}").into());
        }
    }
    Ok(())
}

fn brief(entries: &[EntryOf<TestConfig>]) -> String {
    match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => format!("[{}..={}]", a.log_id, b.log_id),
        _ => "[]".into(),
    }
}

/// Run a case's future on a fresh two-thread tokio runtime.
pub fn run<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime for a conformance case");
    rt.block_on(fut)
}

/// A fresh temporary directory for one store.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("raft-store-case-")
        .tempdir()
        .expect("temporary directory for a case")
}

/// A directory this process may not write to, for the "directory without permission" cases;
/// the permission comes back on drop.
///
/// An unprivileged process gets mode `000`. Root ignores modes, so as root the directory is made
/// immutable with `chattr +i` (which needs a filesystem like ext4, xfs or btrfs).
pub struct UnwritableDir {
    dir: tempfile::TempDir,
    immutable: bool,
}

impl UnwritableDir {
    /// Make one.
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false);
        if root {
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir.path())
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "as root, `chattr +i` must work on the temp directory to test permission errors"
            );
        } else {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o000))
                .expect("chmod 000 on a temporary directory");
        }
        Self { dir, immutable: root }
    }

    /// The directory itself (exists, not writable).
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for UnwritableDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for UnwritableDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.dir.path())
                .status();
        } else {
            let _ = std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
}
