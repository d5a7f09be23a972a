//! A raft-store backend as a benchmark target: a log store over an engine, driven through the
//! `RaftLogStorage` methods openraft calls, of either openraft line ([`Glue`]).

use std::future::Future;
use std::io;
use std::path::Path;
use std::path::PathBuf;

use raft_store_core::Codec;
use raft_store_core::Engine;
use raft_store_core::OpenraftLine;

use crate::Target;

type Reopen<E> = Box<dyn Fn(&Path) -> io::Result<E>>;

/// One openraft line's log store as the benchmarks drive it: the storage trait methods openraft
/// calls on that line.
pub trait Glue: 'static {
    /// The line.
    const LINE: OpenraftLine;
    /// The log store over engine `E`.
    type Store<E: Engine>;
    /// Open the log store in `engine`.
    fn open<E: Engine>(engine: E) -> io::Result<Self::Store<E>>;
    /// The index of the last entry.
    fn last_index<E: Engine>(store: &mut Self::Store<E>) -> impl Future<Output = io::Result<Option<u64>>>;
    /// Append entries `from..to` of `size` payload bytes; the future resolves once they are
    /// durable.
    fn append<E: Engine>(
        store: &mut Self::Store<E>,
        from: u64,
        to: u64,
        size: usize,
    ) -> impl Future<Output = io::Result<impl Future<Output = io::Result<()>> + use<Self, E>>>;
    /// Read entries `from..to`; how many there were.
    fn read<E: Engine>(
        store: &mut Self::Store<E>,
        from: u64,
        to: u64,
    ) -> impl Future<Output = io::Result<usize>>;
    /// Keep the entries up to `index`, durably.
    fn truncate_after<E: Engine>(
        store: &mut Self::Store<E>,
        index: u64,
    ) -> impl Future<Output = io::Result<()>>;
    /// Remove the entries up to `index`, durably.
    fn purge<E: Engine>(store: &mut Self::Store<E>, index: u64) -> impl Future<Output = io::Result<()>>;
}

/// A log store over an engine, driven from a current-thread runtime through the storage traits
/// of openraft line `G`.
pub struct StoreTarget<G: Glue, E: Engine> {
    name: String,
    /// `None` only while reopening.
    store: Option<G::Store<E>>,
    /// The engine's directory and how to open it again from its files; `None` for an engine
    /// that has no files.
    files: Option<(PathBuf, Reopen<E>)>,
    next: u64,
    rt: tokio::runtime::Runtime,
}

impl<G: Glue, E: Engine> StoreTarget<G, E> {
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
            store: Some(G::open(engine)?),
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
        let last = rt.block_on(G::last_index(store))?;
        Ok(last.map_or(1, |index| index + 1))
    }
}

/// The store, or an error naming the target if an earlier reopen failed and left none.
fn open_store<'a, S>(store: Option<&'a mut S>, name: &str) -> io::Result<&'a mut S> {
    store.ok_or_else(|| io::Error::other(format!("{name}: the store failed to reopen")))
}

impl<G: Glue, E: Engine> Target for StoreTarget<G, E> {
    fn name(&self) -> &str {
        &self.name
    }

    fn supports(&self, op: &crate::Op) -> bool {
        !matches!(op, crate::Op::Reopen { .. }) || self.files.is_some()
    }

    fn append(&mut self, n: u64, size: usize) -> io::Result<()> {
        let from = self.next;
        self.next += n;
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(async { G::append(store, from, from + n, size).await?.await })
    }

    fn append_pipelined(&mut self, n: u64, size: usize) -> io::Result<()> {
        self.pipelined(n, 1, size)
    }

    fn get_log(&mut self, from: u64, to: u64) -> io::Result<usize> {
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(G::read(store, from, to))
    }

    fn truncate_after(&mut self, index: u64) -> io::Result<()> {
        self.next = index + 1;
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(G::truncate_after(store, index))
    }

    fn purge_upto(&mut self, index: u64) -> io::Result<()> {
        let Self { store, rt, name, .. } = self;
        let store = open_store(store.as_mut(), name)?;
        rt.block_on(G::purge(store, index))
    }

    fn reopen(&mut self) -> io::Result<()> {
        let Some((dir, open)) = self.files.as_ref() else {
            return Err(crate::unsupported(&self.name, "reopen"));
        };
        // Close first: the engine's files are locked while the store is open.
        self.store = None;
        let engine = open(dir)?;
        self.store = Some(G::open(engine)?);
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

impl<G: Glue, E: Engine> StoreTarget<G, E> {
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
                last = Some(G::append(store, i, end, size).await?);
                i = end;
            }
            match last {
                Some(durable) => durable.await,
                None => Ok(()),
            }
        })
    }
}

/// openraft 0.10 with codec `K`: its `RaftLogStorage`, with `IOFlushed` callbacks as openraft
/// makes them.
pub struct Line10Codec<K>(std::marker::PhantomData<K>);

/// openraft 0.10 with the default codec (MessagePack).
pub type Line10 = Line10Codec<raft_store_core::MessagePack>;

impl<K: Codec> Glue for Line10Codec<K> {
    const LINE: OpenraftLine = OpenraftLine::V0_10;
    type Store<E: Engine> = raft_store_core::LogStore<crate::BenchConfig, E, K>;

    fn open<E: Engine>(engine: E) -> io::Result<Self::Store<E>> {
        // What an application gets: the default check of a self-describing codec, and the value
        // comparison a codec that is not self-describing is only taken with.
        if K::SELF_DESCRIBING {
            Ok(raft_store_core::LogStore::open(engine)?)
        } else {
            Ok(raft_store_core::LogStore::open_checked(
                engine,
                raft_store_core::EntryCheck::equal(),
            )?)
        }
    }

    async fn last_index<E: Engine>(store: &mut Self::Store<E>) -> io::Result<Option<u64>> {
        use openraft::storage::RaftLogStorage;
        Ok(store.get_log_state().await?.last_log_id.map(|id| id.index))
    }

    async fn append<E: Engine>(
        store: &mut Self::Store<E>,
        from: u64,
        to: u64,
        size: usize,
    ) -> io::Result<impl Future<Output = io::Result<()>> + use<E, K>> {
        use openraft::storage::IOFlushed;
        use openraft::storage::RaftLogStorage;
        use openraft::type_config::TypeConfigExt;
        let (tx, rx) = crate::BenchConfig::oneshot();
        store
            .append((from..to).map(|i| crate::entry(i, size)), IOFlushed::signal(tx))
            .await?;
        Ok(async move { rx.await.map_err(|_| io::Error::other("flush callback dropped"))? })
    }

    async fn read<E: Engine>(store: &mut Self::Store<E>, from: u64, to: u64) -> io::Result<usize> {
        use openraft::RaftLogReader;
        Ok(store.try_get_log_entries(from..to).await?.len())
    }

    async fn truncate_after<E: Engine>(store: &mut Self::Store<E>, index: u64) -> io::Result<()> {
        use openraft::storage::RaftLogStorage;
        store.truncate_after(Some(crate::log_id(index))).await?;
        Ok(store.flush().await?)
    }

    async fn purge<E: Engine>(store: &mut Self::Store<E>, index: u64) -> io::Result<()> {
        use openraft::storage::RaftLogStorage;
        store.purge(crate::log_id(index)).await?;
        Ok(store.flush().await?)
    }
}

/// openraft 0.9: its `RaftLogStorage`, except for the append callback: 0.9's `LogFlushed` can
/// only be made inside openraft, so appends go through the store's own queued append, which is
/// the same path minus that callback object (it queues the same job and completes a oneshot).
pub struct Line09;

impl Glue for Line09 {
    const LINE: OpenraftLine = OpenraftLine::V0_9;
    type Store<E: Engine> = raft_store_core::openraft09::LogStore<crate::BenchConfig09, E>;

    fn open<E: Engine>(engine: E) -> io::Result<Self::Store<E>> {
        Ok(raft_store_core::openraft09::LogStore::open(engine)?)
    }

    async fn last_index<E: Engine>(store: &mut Self::Store<E>) -> io::Result<Option<u64>> {
        use openraft_09::storage::RaftLogStorage;
        let state = store.get_log_state().await.map_err(io::Error::other)?;
        Ok(state.last_log_id.map(|id| id.index))
    }

    async fn append<E: Engine>(
        store: &mut Self::Store<E>,
        from: u64,
        to: u64,
        size: usize,
    ) -> io::Result<impl Future<Output = io::Result<()>> + use<E>> {
        let durable = store.append_queued((from..to).map(|i| crate::entry09(i, size)).collect())?;
        Ok(async move { Ok(durable.await?) })
    }

    async fn read<E: Engine>(store: &mut Self::Store<E>, from: u64, to: u64) -> io::Result<usize> {
        use openraft_09::RaftLogReader;
        Ok(store
            .try_get_log_entries(from..to)
            .await
            .map_err(io::Error::other)?
            .len())
    }

    async fn truncate_after<E: Engine>(store: &mut Self::Store<E>, index: u64) -> io::Result<()> {
        use openraft_09::storage::RaftLogStorage;
        // 0.9 names the first entry to remove.
        store
            .truncate(crate::log_id09(index + 1))
            .await
            .map_err(io::Error::other)?;
        Ok(store.flush().await?)
    }

    async fn purge<E: Engine>(store: &mut Self::Store<E>, index: u64) -> io::Result<()> {
        use openraft_09::storage::RaftLogStorage;
        store
            .purge(crate::log_id09(index))
            .await
            .map_err(io::Error::other)?;
        Ok(store.flush().await?)
    }
}
