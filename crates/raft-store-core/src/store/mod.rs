//! The log store, written once for both openraft lines over [`Line`](crate::line::Line); each
//! line's module implements that line's storage traits on it.

mod check;
mod flusher;
mod log_store;
pub(crate) mod options;
mod reader;
mod recover;
mod shared;
mod writer;

pub use check::EntryCheck;
pub use log_store::LineLogStore;
pub use options::LogStoreOptions;
pub use options::OptionsError;
pub use reader::LineLogReader;

pub(crate) use flusher::Sink;
pub(crate) use flusher::poisoned;
pub(crate) use writer::SharedFlusher;
