//! Everything behind the mount's one lock: the tree, open handles, armed faults, counters, and
//! the operations where they meet (data I/O, syncs, the cut).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io;
use std::time::SystemTime;

use fuser::{Errno, FileType};

use crate::faults::{CutMode, Faults, Stats, choose_torn};
use crate::node::{Body, Id, Node};
use crate::tree::Tree;

/// An open file or directory. Handles are numbered without reuse, so one from before a cut is
/// recognised as stale.
pub(crate) enum Handle {
    File(Id),
    /// A directory, with its listing as it was when opened (so that paging through it is stable).
    Dir(Id, Vec<(Id, FileType, OsString)>),
}

/// The whole mutable state of a mount.
pub(crate) struct State {
    pub(crate) tree: Tree,
    pub(crate) faults: Faults,
    stats: Stats,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Orders writes, for torn prefixes.
    seq: u64,
}

/// The FUSE file type of a node.
pub(crate) fn kind(node: &Node) -> FileType {
    match node.body {
        Body::File(_) => FileType::RegularFile,
        Body::Dir(_) => FileType::Directory,
        Body::Symlink(_) => FileType::Symlink,
    }
}

impl State {
    pub(crate) fn new(tree: Tree) -> Self {
        State {
            tree,
            faults: Faults::default(),
            stats: Stats::default(),
            handles: HashMap::new(),
            next_fh: 1,
            seq: 0,
        }
    }

    /// Opens a handle on a file, or on a directory with a snapshot of its listing.
    pub(crate) fn open(&mut self, id: Id) -> Result<u64, Errno> {
        if self.faults.powered_off {
            return Err(Errno::EIO);
        }
        let node = self.tree.node(id)?;
        let handle = match &node.body {
            Body::Dir(dir) => {
                let mut entries = vec![
                    (id, FileType::Directory, OsString::from(".")),
                    (self.tree.parent_of(id), FileType::Directory, OsString::from("..")),
                ];
                for (name, child) in &dir.children {
                    if let Some(c) = self.tree.nodes.get(child) {
                        entries.push((*child, kind(c), name.clone()));
                    }
                }
                Handle::Dir(id, entries)
            }
            Body::File(_) => Handle::File(id),
            Body::Symlink(_) => return Err(Errno::ELOOP),
        };
        self.tree.opened(id)?;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, handle);
        Ok(fh)
    }

    /// The node a handle is open on; EIO for a handle from before a cut (that process's world
    /// ended with the power).
    pub(crate) fn handle_node(&self, fh: u64) -> Result<Id, Errno> {
        match self.handles.get(&fh) {
            Some(Handle::File(id) | Handle::Dir(id, _)) => Ok(*id),
            None => Err(Errno::EIO),
        }
    }

    /// A directory handle's listing.
    pub(crate) fn listing(&self, fh: u64) -> Result<&[(Id, FileType, OsString)], Errno> {
        match self.handles.get(&fh) {
            Some(Handle::Dir(_, entries)) => Ok(entries),
            Some(Handle::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::EIO),
        }
    }

    pub(crate) fn close(&mut self, fh: u64) {
        if let Some(Handle::File(id) | Handle::Dir(id, _)) = self.handles.remove(&fh) {
            self.tree.released(id);
        }
    }

    /// A write into volatile pages; short (then ENOSPC) once the space budget is spent.
    pub(crate) fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let id = self.handle_node(fh)?;
        let granted = self.faults.take_space(data.len() as u64) as usize;
        if granted == 0 && !data.is_empty() {
            return Err(Errno::ENOSPC);
        }
        let data = data.get(..granted).unwrap_or(data);
        self.seq += 1;
        let seq = self.seq;
        let backing = self.tree.backing_file(id)?.try_clone()?;
        let node = self.tree.node_mut(id)?;
        let now = SystemTime::now();
        node.meta.mtime = now;
        node.meta.ctime = now;
        let body = node.file_mut().ok_or(Errno::EISDIR)?;
        body.data.write(&backing, offset, data, seq)?;
        self.stats.bytes_written += data.len() as u64;
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    /// A read of the current contents; EIO where a read fault covers the range.
    pub(crate) fn read(&mut self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let id = self.handle_node(fh)?;
        if !self.faults.bad_reads.is_empty()
            && let Some(path) = self.tree.mount_path(id)
        {
            let end = offset.saturating_add(u64::from(size));
            if self
                .faults
                .bad_reads
                .iter()
                .any(|(p, r)| *p == path && r.start < end && offset < r.end)
            {
                return Err(Errno::EIO);
            }
        }
        let backing = self.tree.backing_file(id)?.try_clone()?;
        let body = self.tree.node_mut(id)?.file_mut().ok_or(Errno::EISDIR)?;
        Ok(body.data.read(&backing, offset, u64::from(size))?)
    }

    /// Truncates or extends a file (volatile until its fsync).
    pub(crate) fn set_size(&mut self, id: Id, size: u64) -> Result<(), Errno> {
        let body = self.tree.node_mut(id)?.file_mut().ok_or(Errno::EISDIR)?;
        body.data.set_size(size);
        Ok(())
    }

    /// fsync or fdatasync of a file, or the armed EIO (which drops the file's dirty data).
    pub(crate) fn fsync(&mut self, id: Id) -> Result<(), Errno> {
        self.stats.fsyncs += 1;
        if self.faults.tear_at_fsync.is_some() && self.dirty_pages_of(id) >= 2 && self.faults.fsync_tears() {
            tracing::info!(path = ?self.tree.mount_path(id), "faultfs: the power goes at an fsync, as armed");
            self.stats.torn_fsyncs += 1;
            self.faults.powered_off = true;
            self.cut_tearing(id)?;
            return Err(Errno::EIO);
        }
        if self.faults.fsync_fails() {
            self.stats.failed_fsyncs += 1;
            tracing::info!(path = ?self.tree.mount_path(id), "faultfs: failing an fsync with EIO as armed");
            self.tree.discard_file(id)?;
            return Err(Errno::EIO);
        }
        self.tree.sync_file(id)
    }

    /// How many dirty pages the file `id` has (0 for anything else).
    fn dirty_pages_of(&self, id: Id) -> usize {
        match self.tree.nodes.get(&id).map(|n| &n.body) {
            Some(Body::File(f)) => f.data.dirty_pages().len(),
            _ => 0,
        }
    }

    /// fsync of a directory.
    pub(crate) fn fsyncdir(&mut self, id: Id) -> Result<(), Errno> {
        self.stats.dir_syncs += 1;
        self.tree.sync_dir(id)
    }

    /// The power cut: what `mode` keeps of the dirty pages reaches the backing files, every
    /// other volatile change is dropped, and the mount shows the backing tree afresh. Every
    /// handle open before it is stale.
    pub(crate) fn cut(&mut self, mode: CutMode) -> io::Result<()> {
        self.cut_keeping(&format!("{mode:?}"), |pages| choose_torn(mode, pages))
    }

    /// The power cut at an fsync of `id`: in write order, every dirty page written before the
    /// last page of `id` reaches the disk (the one before it included), that page and every
    /// later one do not. The write the fsync was to make durable is torn off at its end.
    fn cut_tearing(&mut self, id: Id) -> io::Result<()> {
        self.cut_keeping("TornAtFsync", |mut pages| {
            pages.sort_by_key(|&(_, page, seq)| (seq, page));
            let last = pages.iter().rposition(|&(owner, _, _)| owner == id);
            pages.truncate(last.unwrap_or(0));
            pages.into_iter().map(|(owner, page, _)| (owner, page)).collect()
        })
    }

    /// The power cut: the dirty pages `keep` picks from (owner, page, write sequence) reach the
    /// backing files, every other volatile change is dropped, and the mount shows the backing
    /// tree afresh. Every handle open before it is stale.
    fn cut_keeping(
        &mut self,
        mode: &str,
        keep: impl FnOnce(Vec<(Id, u64, u64)>) -> Vec<(Id, u64)>,
    ) -> io::Result<()> {
        self.stats.cuts += 1;
        let mut pages = Vec::new();
        for (id, node) in &self.tree.nodes {
            // Only a file with a durable name can show its pages after the cut.
            if let Body::File(f) = &node.body
                && !node.durable_links.is_empty()
            {
                pages.extend(
                    f.data
                        .dirty_pages()
                        .into_iter()
                        .map(|(page, seq)| (*id, page, seq)),
                );
            }
        }
        let mut kept: BTreeMap<Id, Vec<u64>> = BTreeMap::new();
        for (id, page) in keep(pages) {
            kept.entry(id).or_default().push(page);
        }
        let torn_pages: usize = kept.values().map(Vec::len).sum();
        for (id, pages) in kept {
            let backing = self
                .tree
                .backing_file(id)
                .map_err(|e| io::Error::from_raw_os_error(e.code()))?
                .try_clone()?;
            if let Some(body) = self.tree.nodes.get(&id).and_then(|n| match &n.body {
                Body::File(f) => Some(f),
                _ => None,
            }) {
                body.data.write_torn(&backing, &pages)?;
            }
            if self.tree.sync_backing {
                backing.sync_all()?;
            }
        }
        let lost = self.tree.volatile_bytes();
        self.handles.clear();
        self.tree.reload()?;
        tracing::info!(mode, lost_bytes = lost, torn_pages, "faultfs: power cut");
        Ok(())
    }

    /// The counters, with the volatile bytes as of now.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            volatile_bytes: self.tree.volatile_bytes(),
            ..self.stats
        }
    }
}
