//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What can go wrong mounting, controlling or unmounting a fault file system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This machine cannot mount FUSE file systems; the message says what is missing and how
    /// to install it.
    #[error("FUSE is not available: {reason}")]
    FuseUnavailable {
        /// What is missing, and how to get it.
        reason: String,
    },
    /// A path given to the crate cannot be used.
    #[error("{}: {reason}", path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// The backing directory could not be read or prepared.
    #[error("backing directory {}", path.display())]
    Backing {
        /// The backing directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Mounting or unmounting failed.
    #[error("FUSE mount at {}", mountpoint.display())]
    Mount {
        /// The mount point.
        mountpoint: PathBuf,
        /// The error from the mount.
        #[source]
        source: io::Error,
    },
    /// The control socket could not be bound, reached or read.
    #[error("control socket {}", path.display())]
    Control {
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file system refused or failed a control command.
    #[error("control command `{command}` failed: {message}")]
    Command {
        /// The command, as sent on the control socket.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// The control socket answered something this client does not understand.
    #[error("unexpected reply on the control socket: {reply:?}")]
    Protocol {
        /// The reply.
        reply: String,
    },
}
