//! The openraft line a store is glued to: what the log store needs of one line's types.
//!
//! The log store, its readers and its flusher are written once, over [`Line`]; each line's
//! module implements openraft's storage traits of that line on them. The two lines cannot share
//! one blanket impl over their `RaftTypeConfig` traits (a type could implement both), so a
//! store names its line through a marker: [`V0_10<C>`] or [`V0_9<C>`]. The public names
//! (`raft_store_core::LogStore<C, E>`, `raft_store_core::openraft09::LogStore<C, E>`) are
//! aliases that fill the marker in.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::OpenraftLine;

/// One openraft line's log types, as the line-neutral store uses them. Sealed: implemented by
/// [`V0_10`] and [`V0_9`] only.
pub trait Line: Send + Sync + 'static + sealed::Sealed {
    /// Which line; written to the store's format record.
    const LINE: OpenraftLine;
    /// The application's type config of that line.
    type Config;
    /// A log entry.
    type Entry: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// A log id.
    type LogId: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// A vote.
    type Vote: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// openraft's callback for an append, told once the entries are durable.
    type Flushed: Send + 'static;

    /// The index of an entry.
    fn entry_index(entry: &Self::Entry) -> u64;
    /// The log id of an entry.
    fn entry_log_id(entry: &Self::Entry) -> Self::LogId;
    /// The index of a log id.
    fn index(log_id: &Self::LogId) -> u64;
    /// Tell openraft how the append behind `callback` ended.
    fn flushed(callback: Self::Flushed, result: Result<(), io::Error>);
}

/// Marker of the openraft 0.10 line for the type config `C`.
pub struct V0_10<C>(PhantomData<fn() -> C>);

/// Marker of the openraft 0.9 line for the type config `C`.
pub struct V0_9<C>(PhantomData<fn() -> C>);

pub(crate) mod sealed {
    /// Keeps [`Line`](super::Line) to the markers of this crate.
    pub trait Sealed {}
    impl<C> Sealed for super::V0_10<C> {}
    impl<C> Sealed for super::V0_9<C> {}
}
