//! One inode of the mount: its volatile names and contents, and what of it is durable.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::data::FileData;

/// Inode number as the kernel sees it. Numbers are never reused, so a cut (which renumbers
/// everything) leaves every handle from before it stale.
pub(crate) type Id = u64;

/// The root directory's number, fixed by FUSE.
pub(crate) const ROOT: Id = 1;

/// A directory entry: (directory, name).
pub(crate) type Link = (Id, OsString);

/// What kind of node, with its kind's own state.
pub(crate) enum Body {
    /// A regular file.
    File(FileBody),
    /// A directory.
    Dir(DirBody),
    /// A symbolic link and its target (which a symlink never changes).
    Symlink(PathBuf),
}

/// A regular file's contents and its open backing file.
pub(crate) struct FileBody {
    pub(crate) data: FileData,
    /// The backing inode, opened while the file is open through the mount. It stays the same
    /// inode whatever its backing names become, since names move only by link and rename.
    pub(crate) backing: Option<File>,
    /// The mode changed since the last fsync.
    pub(crate) mode_dirty: bool,
}

/// A directory's entries as the mount shows them, and as they are in the backing tree.
#[derive(Default)]
pub(crate) struct DirBody {
    pub(crate) children: BTreeMap<OsString, Id>,
    pub(crate) durable: BTreeMap<OsString, Id>,
}

/// The attributes kept in memory (the size lives in [`FileData`]).
#[derive(Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) atime: SystemTime,
    pub(crate) mtime: SystemTime,
    pub(crate) ctime: SystemTime,
}

impl Meta {
    /// Attributes of a node created now.
    pub(crate) fn new(perm: u16, uid: u32, gid: u32) -> Self {
        let now = SystemTime::now();
        Meta {
            perm,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    /// Attributes of a node loaded from the backing tree.
    pub(crate) fn from_metadata(md: &Metadata) -> Self {
        Meta {
            perm: (md.mode() & 0o7777) as u16,
            uid: md.uid(),
            gid: md.gid(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
        }
    }
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nanos = u32::try_from(nanos).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999))
}

/// One inode.
pub(crate) struct Node {
    pub(crate) body: Body,
    pub(crate) meta: Meta,
    /// Its names in the mount (a directory has one, the root none).
    pub(crate) links: Vec<Link>,
    /// Its names in the backing tree (a directory has at most one).
    pub(crate) durable_links: Vec<Link>,
    /// It has an entry in the staging area (created, or unlinked while open), which a cut removes.
    pub(crate) staged: bool,
    /// Lookups the kernel holds (released by forget).
    pub(crate) lookups: u64,
    /// Open handles (files and directories).
    pub(crate) open: u32,
}

impl Node {
    /// A node with no names yet.
    pub(crate) fn new(body: Body, meta: Meta) -> Self {
        Node {
            body,
            meta,
            links: Vec::new(),
            durable_links: Vec::new(),
            staged: false,
            lookups: 0,
            open: 0,
        }
    }

    /// Still reachable through the mount: named, or open.
    pub(crate) fn alive(&self) -> bool {
        !self.links.is_empty() || self.open > 0
    }

    /// Nothing refers to it any more: neither the mount, the kernel nor the backing tree.
    pub(crate) fn collectable(&self) -> bool {
        !self.alive() && self.lookups == 0 && self.durable_links.is_empty()
    }

    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    pub(crate) fn dir(&self) -> Option<&DirBody> {
        match &self.body {
            Body::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    pub(crate) fn dir_mut(&mut self) -> Option<&mut DirBody> {
        match &mut self.body {
            Body::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    pub(crate) fn file_mut(&mut self) -> Option<&mut FileBody> {
        match &mut self.body {
            Body::File(file) => Some(file),
            _ => None,
        }
    }
}
