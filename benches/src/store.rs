//! A raft-store backend as a benchmark target: a `LogStore` over an engine, driven through the
//! `RaftLogStorage` methods openraft calls.

use std::io;
use std::path::Path;
use std::path::PathBuf;

use openraft::RaftLogReader;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use raft_store_core::Engine;
use raft_store_core::LogStore;

use crate::BenchConfig;
use crate::Target;
use crate::entry;
use crate::log_id;

type Reopen<E> = Box<dyn Fn(&Path) -> io::Result<E>>;

/// A [`LogStore`] over an engine, driven from a current-thread runtime.
pub struct StoreTarget<E: Engine> {
    name: String,
    /// `None` only while reopening.
    store: Option<LogStore<BenchConfig, E>>,
    /// The engine's directory and how to open it again from its files; `None` for an engine
    /// that has no files.
    files: Option<(PathBuf, Reopen<E>)>,
    next: u64,
    rt: tokio::runtime::Runtime,
}

impl<E: Engine> StoreTarget<E> {
    /// Wrap an opened engine; the target cannot be reopened.
    pub fn new(name: impl Into<String>, engine: E) -> io::Result<Self> {
        Self::build(name.into(), engine, None)
    }

    /// Open the engine in `dir` with `open`, which the target calls again to reopen the store.
    pub fn reopenable(
        name: impl Into<String>,
        dir: &Path,
        open: impl Fn(&Path) -> io::Result<E> + 'static,
    ) -> io::Result<Self> {
        let engine = open(dir)?;
        Self::build(name.into(), engine, Some((dir.to_path_buf(), Box::new(open))))
    }

    fn build(name: String, engine: E, files: Option<(PathBuf, Reopen<E>)>) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut target = Self {
            name,
            store: Some(LogStore::open(engine)?),
            files,
            next: 1,
            rt,
        };
        target.next = target.read_next()?;
        Ok(target)
    }

    /// The index after the store's last entry, as the store reports it.
    fn read_next(&mut self) -> io::Result<u64> {
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        let state = rt.block_on(store.get_log_state())?;
        Ok(state.last_log_id.map_or(1, |id| id.index + 1))
    }
}

/// The store, or an error naming the target if an earlier reopen failed and left none.
fn open_store<'a, E: Engine>(
    store: Option<&'a mut LogStore<BenchConfig, E>>,
    name: &str,
) -> io::Result<&'a mut LogStore<BenchConfig, E>> {
    store.ok_or_else(|| io::Error::other(format!("{name}: the store failed to reopen")))
}

impl<E: Engine> Target for StoreTarget<E> {
    fn name(&self) -> &str {
        &self.name
    }

    fn supports(&self, op: &crate::Op) -> bool {
        !matches!(op, crate::Op::Reopen { .. }) || self.files.is_some()
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        let entries: Vec<_> = (self.next..self.next + n).map(|i| entry(i, size)).collect();
        self.next += n;
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async {
            let (tx, rx) = BenchConfig::oneshot();
            store.append(entries, IOFlushed::signal(tx)).await?;
            rx.await.map_err(|_| io::Error::other("flush callback dropped"))?
        })
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        self.pipelined(n, 1, size)
    }

    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize> {
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async { Ok(store.try_get_log_entries(from..to).await?.len()) })
    }

    fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        self.next = index + 1;
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async {
            store.truncate_after(Some(log_id(index))).await?;
            Ok(store.flush().await?)
        })
    }

    fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async {
            store.purge(log_id(index)).await?;
            Ok(store.flush().await?)
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        let Some((dir, open)) = self.files.as_ref() else {
            return Err(crate::unsupported(&self.name, "reopen"));
        };
        // Close first: the engine's files are locked while the store is open.
        self.store = None;
        let engine = open(dir)?;
        self.store = Some(LogStore::open(engine)?);
        self.next = self.read_next()?;
        Ok(())
    }

    fn last_index(&self) -> u64 {
        self.next - 1
    }

    fn fill(&mut self, n: u64, size: usize) -> io::Result<()> {
        self.pipelined(n, 1000, size)
    }

    fn disk_bytes(&self) -> io::Result<Option<u64>> {
        match &self.files {
            Some((dir, _)) => crate::allocated_bytes(dir).map(Some),
            None => Ok(None),
        }
    }
}

impl<E: Engine> StoreTarget<E> {
    /// Append `n` entries in calls of `per_call` entries without waiting between them, then
    /// wait for the last callback.
    fn pipelined(&mut self, n: u64, per_call: u64, size: usize) -> io::Result<()> {
        let first = self.next;
        self.next += n;
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async {
            let mut last = None;
            let mut i = first;
            while i < first + n {
                let end = (i + per_call).min(first + n);
                let (tx, rx) = BenchConfig::oneshot();
                store
                    .append((i..end).map(|j| entry(j, size)), IOFlushed::signal(tx))
                    .await?;
                last = Some(rx);
                i = end;
            }
            match last {
                Some(rx) => rx.await.map_err(|_| io::Error::other("flush callback dropped"))?,
                None => Ok(()),
            }
        })
    }
}
