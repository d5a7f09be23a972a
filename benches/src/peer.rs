//! The peer: the `raft-log` crate, the write-ahead log openraft's own examples store their log in,
//! driven the way an openraft adapter over it does (append, then a synced flush whose callback is
//! the append's callback).

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::sync::mpsc::SyncSender;
use std::sync::mpsc::sync_channel;

use raft_log::RaftLog;
use raft_log::api::raft_log_writer::RaftLogWriter;
use raft_log::api::types::Types;

/// The peer's types: the same entries as the other targets (term 1, a string payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerTypes;

impl Types for PeerTypes {
    /// `(term, index)`.
    type LogId = (u64, u64);
    type LogPayload = String;
    /// `(term, voted_for)`.
    type Vote = (u64, u64);
    type UserData = String;
    type Callback = SyncSender<io::Result<()>>;

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.1
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

/// A `raft-log` log in a directory.
pub struct RaftLogPeer {
    name: &'static str,
    dir: PathBuf,
    /// The flush worker's wait for more requests before it syncs (`None`: raft-log's default,
    /// 1 ms).
    batch_wait: Option<std::time::Duration>,
    /// `None` only while reopening.
    log: Option<RaftLog<PeerTypes>>,
    next: u64,
}

impl RaftLogPeer {
    /// Open (creating) a log in `dir` with raft-log's default configuration.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::with_batch_wait("raft-log", dir, None)
    }

    /// Open (creating) a log in `dir` whose flush worker waits `batch_wait` for more requests
    /// before it syncs (raft-log's default is 1 ms).
    pub fn with_batch_wait(
        name: &'static str,
        dir: &Path,
        batch_wait: Option<std::time::Duration>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut peer = Self {
            name,
            batch_wait,
            dir: dir.to_path_buf(),
            log: None,
            next: 1,
        };
        peer.open_log()?;
        Ok(peer)
    }

    fn open_log(&mut self) -> io::Result<()> {
        let dir = self
            .dir
            .to_str()
            .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", self.dir.display())))?;
        let mut config = raft_log::Config::new(dir);
        config.wal.flush_batch_wait = self.batch_wait;
        let log = RaftLog::<PeerTypes>::open(Arc::new(config))?;
        self.next = log.log_state().last().map_or(1, |id| id.1 + 1);
        self.log = Some(log);
        Ok(())
    }

    fn log(&mut self) -> io::Result<&mut RaftLog<PeerTypes>> {
        self.log
            .as_mut()
            .ok_or_else(|| io::Error::other("raft-log: the log failed to reopen"))
    }

    /// Ask for a synced flush; the receiver reports when it is done.
    fn flush(&mut self) -> io::Result<Receiver<io::Result<()>>> {
        let (tx, rx) = sync_channel(1);
        self.log()?.flush(true, Some(tx))?;
        Ok(rx)
    }
}

/// Wait for a flush callback.
fn wait(rx: &Receiver<io::Result<()>>) -> io::Result<()> {
    rx.recv()
        .map_err(|_| io::Error::other("raft-log dropped the flush callback"))?
}

impl crate::Target for RaftLogPeer {
    fn name(&self) -> &'static str {
        self.name
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        let first = self.next;
        self.next += n;
        let payload = crate::payload(size);
        self.log()?
            .append((first..first + n).map(|i| ((1, i), payload.clone())))?;
        wait(&self.flush()?)
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        self.submit(n, 1, size)
    }

    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize> {
        let mut count = 0;
        for item in self.log()?.read(from, to) {
            item?;
            count += 1;
        }
        Ok(count)
    }

    fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        // raft-log's `truncate(i)` keeps the entries before `i`.
        self.log()?.truncate(index + 1)?;
        self.next = index + 1;
        wait(&self.flush()?)
    }

    fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        self.log()?.purge((1, index))?;
        wait(&self.flush()?)
    }

    fn reopen(&mut self) -> io::Result<()> {
        // Close first: raft-log locks its directory.
        self.log = None;
        self.open_log()
    }

    fn last_index(&self) -> u64 {
        self.next - 1
    }

    fn fill(&mut self, n: u64, size: usize) -> io::Result<()> {
        self.submit(n, 1000, size)
    }

    fn disk_bytes(&self) -> io::Result<Option<u64>> {
        crate::allocated_bytes(&self.dir).map(Some)
    }
}

impl RaftLogPeer {
    /// Append `n` entries in calls of `per_call`, each followed by a synced flush request, and
    /// wait for the last flush only: what an openraft adapter does with pipelined appends.
    fn submit(&mut self, n: u64, per_call: u64, size: usize) -> io::Result<()> {
        let first = self.next;
        self.next += n;
        let payload = crate::payload(size);
        let mut last = None;
        let mut i = first;
        while i < first + n {
            let end = (i + per_call).min(first + n);
            self.log()?.append((i..end).map(|j| ((1, j), payload.clone())))?;
            last = Some(self.flush()?);
            i = end;
        }
        match last {
            Some(rx) => wait(&rx),
            None => Ok(()),
        }
    }
}
