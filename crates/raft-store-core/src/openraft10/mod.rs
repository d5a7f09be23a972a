//! The glue for openraft 0.10: its `RaftLogStorage` and `RaftLogReader` on the log store.
//!
//! The crate root re-exports [`LogStore`] and [`LogReader`] from here, and
//! [`crate::kv`] re-exports this line's key-value state machine from [`kv`].

pub mod kv;

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;

use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::RaftTypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::alias::VoteOf;

use crate::Codec;
use crate::Engine;
use crate::MessagePack;
use crate::OpenraftLine;
use crate::line::Line;
use crate::line::V0_10;
use crate::store;

/// Durable raft log storage for openraft 0.10 over an [`Engine`], with group commit: see
/// [`LineLogStore`](store::LineLogStore) for what it guarantees.
pub type LogStore<C, E, K = MessagePack> = store::LineLogStore<V0_10<C>, E, K>;

/// A read handle to a [`LogStore`]'s log for openraft 0.10: see [`LineLogReader`](store::LineLogReader).
pub type LogReader<C, E, K = MessagePack> = store::LineLogReader<V0_10<C>, E, K>;

impl<C> Line for V0_10<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    const LINE: OpenraftLine = OpenraftLine::V0_10;
    type Config = C;
    type Entry = C::Entry;
    type LogId = LogIdOf<C>;
    type Vote = VoteOf<C>;
    type Flushed = IOFlushed<C>;

    fn entry_index(entry: &Self::Entry) -> u64 {
        entry.index()
    }

    fn entry_log_id(entry: &Self::Entry) -> Self::LogId {
        entry.log_id()
    }

    fn index(log_id: &Self::LogId) -> u64 {
        log_id.index()
    }

    fn flushed(callback: Self::Flushed, result: Result<(), io::Error>) {
        callback.io_completed(result);
    }
}

impl<C, E, K> RaftLogReader<C> for store::LineLogStore<V0_10<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.reader_ref().read_bounds(&range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.reader_ref().vote()?)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.reader_ref().read_limited(start, end)?)
    }
}

impl<C, E, K> RaftLogStorage<C> for store::LineLogStore<V0_10<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    type LogReader = LogReader<C, E, K>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let (last_purged_log_id, last_log_id) = self.log_state();
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader_ref().clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        Ok(self.save_vote_durable(vote).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        Ok(self.queue_committed(committed)?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.committed())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(self.append_with_callback(entries.into_iter().collect(), callback)?)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        Ok(self.truncate_after(last_log_id)?)
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        Ok(self.purge_upto(log_id)?)
    }
}

impl<C, E, K> RaftLogReader<C> for store::LineLogReader<V0_10<C>, E, K>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    E: Engine,
    K: Codec,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.read_bounds(&range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.vote()?)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<C::Entry>, io::Error> {
        Ok(self.read_limited(start, end)?)
    }
}
