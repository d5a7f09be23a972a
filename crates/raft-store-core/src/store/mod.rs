//! The openraft glue: [`LogStore`] and [`LogReader`].

mod flusher;
mod log_store;
mod reader;
mod shared;

pub use log_store::LogStore;
pub use reader::LogReader;
