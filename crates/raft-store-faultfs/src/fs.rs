//! The FUSE side: each kernel request becomes one call on the locked [`State`].

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::data::PAGE;
use crate::node::{Body, Id, Meta, Node};
use crate::state::{State, kind};
use crate::tree::NewNode;

/// Attributes and names are never cached by the kernel: a cut renumbers every node, and the
/// kernel must ask again rather than trust what it saw before.
const TTL: Duration = Duration::ZERO;

/// fallocate mode that allocates without changing the size.
const FALLOC_FL_KEEP_SIZE: i32 = 1;

/// The file system handed to fuser; the mount handle shares its state.
pub(crate) struct FaultFilesystem {
    pub(crate) state: Arc<Mutex<State>>,
}

/// Locks the state; a panic while holding it cannot leave it worse than a cut would, so a
/// poisoned lock is used as it is.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn attr(state: &State, id: Id) -> Result<FileAttr, Errno> {
    let node = state.tree.node(id)?;
    let (size, nlink) = match &node.body {
        Body::File(f) => (f.data.size(), node.links.len()),
        Body::Symlink(target) => (target.as_os_str().len() as u64, node.links.len()),
        Body::Dir(d) => {
            let subdirs = d
                .children
                .values()
                .filter(|c| state.tree.nodes.get(c).is_some_and(Node::is_dir))
                .count();
            (PAGE, 2 + subdirs)
        }
    };
    let Meta {
        perm,
        uid,
        gid,
        atime,
        mtime,
        ctime,
    } = node.meta;
    Ok(FileAttr {
        ino: INodeNo(id),
        size,
        blocks: size.div_ceil(512),
        atime,
        mtime,
        ctime,
        crtime: ctime,
        kind: kind(node),
        perm,
        nlink: u32::try_from(nlink).unwrap_or(u32::MAX),
        uid,
        gid,
        rdev: 0,
        blksize: PAGE as u32,
        flags: 0,
    })
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl FaultFilesystem {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Replies with the entry of a node the kernel now holds one more reference to.
    fn entry(state: &mut State, id: Id, reply: ReplyEntry) {
        match attr(state, id) {
            Ok(a) => {
                state.tree.looked_up(id);
                reply.entry(&TTL, &a, Generation(0));
            }
            Err(e) => reply.error(e),
        }
    }

    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new: &NewNode<'_>,
        perm: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let meta = Meta::new((perm & 0o7777) as u16, req.uid(), req.gid());
        match state.tree.create(parent.0, name, new, meta) {
            Ok(id) => Self::entry(&mut state, id, reply),
            Err(e) => reply.error(e),
        }
    }
}

fn done(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for FaultFilesystem {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        match state.tree.lookup(parent.0, name) {
            Ok(id) => Self::entry(&mut state, id, reply),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.state().tree.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match attr(&self.state(), ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let result = (|| {
            if let Some(size) = size {
                state.set_size(ino.0, size)?;
            }
            let node = state.tree.node_mut(ino.0)?;
            let now = SystemTime::now();
            if let Some(mode) = mode {
                node.meta.perm = (mode & 0o7777) as u16;
                if let Some(f) = node.file_mut() {
                    f.mode_dirty = true;
                }
            }
            if let Some(uid) = uid {
                node.meta.uid = uid;
            }
            if let Some(gid) = gid {
                node.meta.gid = gid;
            }
            if let Some(t) = atime {
                node.meta.atime = time(t);
            }
            if let Some(t) = mtime {
                node.meta.mtime = time(t);
            } else if size.is_some() {
                node.meta.mtime = now;
            }
            node.meta.ctime = now;
            attr(&state, ino.0)
        })();
        match result {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let state = self.state();
        match state.tree.readlink(ino.0) {
            Ok(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Only regular files: devices, fifos and sockets are not part of the model.
        const S_IFMT: u32 = 0o170_000;
        const S_IFREG: u32 = 0o100_000;
        if mode & S_IFMT != S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        self.make(req, parent, name, &NewNode::File, mode & !umask, reply);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        self.make(req, parent, name, &NewNode::Dir, mode & !umask, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(reply, self.state().tree.unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        done(reply, self.state().tree.rmdir(parent.0, name));
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        self.make(req, parent, link_name, &NewNode::Symlink(target), 0o777, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        done(
            reply,
            self.state()
                .tree
                .rename(parent.0, name, newparent.0, newname, no_replace),
        );
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        match state.tree.link(ino.0, newparent.0, newname) {
            Ok(()) => Self::entry(&mut state, ino.0, reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No FOPEN_DIRECT_IO, so mmap works; no FOPEN_KEEP_CACHE, so every open drops the
        // kernel's cached pages and reads come here again.
        match self.state().open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().close(fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = state.handle_node(fh.0).and_then(|id| state.fsync(id));
        done(reply, result);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().open(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let state = self.state();
        match state.listing(fh.0) {
            Ok(entries) => {
                let skip = usize::try_from(offset).unwrap_or(usize::MAX);
                for (i, (id, kind, name)) in entries.iter().enumerate().skip(skip) {
                    if reply.add(INodeNo(*id), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().close(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = state.handle_node(fh.0).and_then(|id| state.fsyncdir(id));
        done(reply, result);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room, so that engines that check free space before writing go ahead;
        // the space budget fault is how a test makes the device full.
        let blocks = 1 << 30;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            1 << 20,
            1 << 20,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let meta = Meta::new(((mode & !umask) & 0o7777) as u16, req.uid(), req.gid());
        let result = state
            .tree
            .create(parent.0, name, &NewNode::File, meta)
            .and_then(|id| {
                let fh = state.open(id)?;
                let a = attr(&state, id)?;
                state.tree.looked_up(id);
                Ok((a, fh))
            });
        match result {
            Ok((a, fh)) => reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let result = (|| {
            let id = state.handle_node(fh.0)?;
            match mode {
                // Allocation is not modelled: only the size change is visible (and volatile).
                0 => {
                    let size = state.tree.node(id)?.dir().map_or(Ok(()), |_| Err(Errno::EISDIR));
                    size?;
                    let end = offset.saturating_add(length);
                    let current = attr(&state, id)?.size;
                    if end > current {
                        state.set_size(id, end)?;
                    }
                    Ok(())
                }
                FALLOC_FL_KEEP_SIZE => Ok(()),
                _ => Err(Errno::EOPNOTSUPP),
            }
        })();
        done(reply, result);
    }
}
