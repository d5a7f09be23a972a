//! A FUSE file system for power-cut tests. It is mounted over a directory and passes through
//! to a backing directory, but everything not yet made durable stays volatile, and a test can
//! cut the power: what was not fsynced is gone, as after a real power loss (which `SIGKILL`
//! cannot show, since the page cache survives it).
//!
//! ```no_run
//! use std::io::Write;
//!
//! use raft_store_faultfs::FaultFs;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (backing, mnt) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let fs = FaultFs::mount(backing.path(), mnt.path())?;
//!
//! let mut file = std::fs::File::create(mnt.path().join("log"))?;
//! file.write_all(b"synced")?;
//! file.sync_all()?;
//! std::fs::File::open(mnt.path())?.sync_all()?; // the new name needs its directory synced
//! file.write_all(b" and lost")?;
//!
//! fs.control().cut_power()?;
//! assert_eq!(std::fs::read(mnt.path().join("log"))?, b"synced");
//! assert_eq!(std::fs::read(backing.path().join("log"))?, b"synced");
//! # Ok(())
//! # }
//! ```
//!
//! # The durability model
//!
//! The backing directory *is* the durable image: after a cut it holds exactly what a power cut
//! leaves, as a plain tree that a program can open directly. Volatile state lives in memory
//! (dirty 4 KiB pages, names) and in a hidden staging directory inside the backing directory
//! (`.faultfs-staging`, never visible through the mount, created when first needed, removed by
//! every cut, at mount and at unmount).
//! The rules are those POSIX and Linux promise, no more; ext4 and XFS may keep more, never
//! less, so a program that survives here survives there:
//!
//! - **File data** (write, pwrite, writev, truncate, fallocate that grows the file) is
//!   volatile until fsync or fdatasync of that file (both count; so does a sync of any handle
//!   on the same file). close makes nothing durable.
//! - **Names** (create, mknod, mkdir, symlink, link, unlink, rmdir, rename) are volatile until
//!   fsync of the directory that holds them. Syncing a directory makes its entries in the
//!   backing tree exactly those the mount shows. A file's fsync does not make its name
//!   durable: a new file whose directory was never synced is gone after a cut, with all its
//!   synced data. A new directory needs its parent synced, and its own entries need it synced.
//! - **rename** is atomic and becomes durable when the *destination* directory is synced:
//!   the new name appears and the old one goes in one step (so tmp→final then a sync of the
//!   directory is the safe pattern, and leaves "final" with the tmp file's synced data). A
//!   sync of only the source directory keeps the old name durable. One exception: if the old
//!   name is reused by a new file and the source directory is synced before the destination,
//!   the moved file is durable under neither name until the destination is synced.
//! - **Metadata**: the mode becomes durable with the file's fsync; owner and timestamps are
//!   not modelled (the backing files belong to the mounting user, with their own times).
//! - **Failed fsync** (armed with [`Control::fail_fsync`]): EIO, and the file's dirty data is
//!   dropped, as Linux drops the pages of a failed writeback; its next fsync succeeds with
//!   nothing to write. Reads then see the durable contents.
//!
//! A cut ([`Control::cut_power`]) drops every volatile change and the mount goes on showing
//! the durable state, renumbered: every handle open before the cut fails with EIO (the old
//! process's world ended), and names and attributes are never cached by the kernel, so a
//! fresh open sees the new state. [`CutMode`] can instead keep a seeded prefix or subset of
//! the dirty pages, whole 4 KiB pages at a time, of files with a durable name, as a disk may
//! have written some of them (a kept page past the durable end grows the file; lost pages
//! before it read as zeros).
//!
//! # Faults and control
//!
//! [`Control`] arms faults and cuts the power, through [`FaultFs::control`] in the mounting
//! process or through the control socket ([`FaultFs::control_socket`], [`Control::connect`])
//! from any other, so an engine can run in a child process while the parent cuts the power:
//! a cut, a failed N-th fsync, ENOSPC after a byte budget, EIO on reading a byte range of a
//! file, and counters ([`Stats`]).
//!
//! # What works and what does not
//!
//! - mmap: files open without `direct_io`, so mmap'd reads work (LMDB reads this way) and
//!   reach this file system through the kernel's page cache. Shared writable mappings work
//!   too; their pages count as written when the kernel writes them back (msync, fsync,
//!   munmap), which is as strict as a disk.
//! - Locks: `flock` and `fcntl` locks are handled by the kernel, locally (this file system does
//!   not implement them, so FUSE does not forward them), which is right for one machine.
//! - Not modelled: hard links of directories, devices, fifos and sockets (mknod makes regular
//!   files only; existing ones are hidden), extended attributes, `RENAME_EXCHANGE`,
//!   fallocate's punch-hole and zero-range modes.
//! - One request at a time: a test file system, not a fast one. A durable 4 KiB append costs
//!   a few FUSE round trips on top of the backing fsync.
//!
//! Mounting needs `/dev/fuse` and either root or `fusermount3` (Debian package `fuse3`);
//! [`fuse_or_skip`] is the gate tests use.

#![forbid(unsafe_code)]

mod control;
mod data;
mod durable;
mod error;
mod faults;
mod fs;
mod gate;
mod mount;
mod node;
mod state;
mod tree;

pub use control::Control;
pub use error::Error;
pub use faults::{CutMode, Stats};
pub use gate::{NO_FUSE_ENV, SKIP_LOG_ENV, check_fuse, fuse_gate, fuse_or_skip};
pub use mount::{FaultFs, MountOptions};
