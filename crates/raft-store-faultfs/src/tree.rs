//! The volatile namespace: every node of the mount, loaded from the backing tree, and the
//! operations that change names (which touch only memory and the staging area).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fuser::Errno;

use crate::data::FileData;
use crate::node::{Body, DirBody, FileBody, Id, Meta, Node, ROOT};

/// The hidden directory inside the backing root that holds nodes without a durable name.
/// Never visible through the mount; a cut removes it with everything in it.
pub(crate) const STAGING: &str = ".faultfs-staging";

/// What a create makes.
pub(crate) enum NewNode<'a> {
    File,
    Dir,
    Symlink(&'a Path),
}

/// All nodes, and where the backing tree and the staging area are.
pub(crate) struct Tree {
    pub(crate) root: PathBuf,
    pub(crate) staging: PathBuf,
    pub(crate) nodes: HashMap<Id, Node>,
    next_id: Id,
    staging_exists: bool,
    /// Whether making something durable also syncs it in the backing file system.
    pub(crate) sync_backing: bool,
}

impl Tree {
    /// Loads the backing tree at `root`, removing a staging area a previous run left behind
    /// (which is what a cut does to it).
    pub(crate) fn open(root: PathBuf, sync_backing: bool) -> io::Result<Tree> {
        let staging = root.join(STAGING);
        let mut tree = Tree {
            root,
            staging,
            nodes: HashMap::new(),
            staging_exists: false,
            next_id: ROOT + 1,
            sync_backing,
        };
        tree.reload()?;
        Ok(tree)
    }

    /// Forgets every node and loads the backing tree afresh under new numbers, with an empty
    /// staging area.
    pub(crate) fn reload(&mut self) -> io::Result<()> {
        self.nodes.clear();
        self.remove_staging()?;
        let md = fs::metadata(&self.root)?;
        self.nodes.insert(
            ROOT,
            Node::new(Body::Dir(DirBody::default()), Meta::from_metadata(&md)),
        );
        let root = self.root.clone();
        self.load_dir(ROOT, &root)
    }

    fn load_dir(&mut self, dir: Id, path: &Path) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            if dir == ROOT && name == STAGING {
                continue;
            }
            let md = fs::symlink_metadata(entry.path())?;
            let body = if md.is_dir() {
                Body::Dir(DirBody::default())
            } else if md.is_file() {
                Body::File(FileBody {
                    data: FileData::new(md.len()),
                    backing: None,
                    mode_dirty: false,
                })
            } else if md.file_type().is_symlink() {
                Body::Symlink(fs::read_link(entry.path())?)
            } else {
                // Devices, fifos and sockets are not part of the model: hidden.
                continue;
            };
            let id = self.alloc();
            let mut node = Node::new(body, Meta::from_metadata(&md));
            node.links.push((dir, name.clone()));
            node.durable_links.push((dir, name.clone()));
            let is_dir = node.is_dir();
            self.nodes.insert(id, node);
            if let Some(parent) = self.nodes.get_mut(&dir).and_then(Node::dir_mut) {
                parent.children.insert(name.clone(), id);
                parent.durable.insert(name.clone(), id);
            }
            if is_dir {
                self.load_dir(id, &entry.path())?;
            }
        }
        Ok(())
    }

    fn alloc(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The node, or ESTALE for a number from before a cut (or one already forgotten).
    pub(crate) fn node(&self, id: Id) -> Result<&Node, Errno> {
        self.nodes.get(&id).ok_or(Errno::ESTALE)
    }

    pub(crate) fn node_mut(&mut self, id: Id) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&id).ok_or(Errno::ESTALE)
    }

    fn dir(&self, id: Id) -> Result<&DirBody, Errno> {
        self.node(id)?.dir().ok_or(Errno::ENOTDIR)
    }

    fn dir_mut(&mut self, id: Id) -> Result<&mut DirBody, Errno> {
        self.node_mut(id)?.dir_mut().ok_or(Errno::ENOTDIR)
    }

    /// The node's entry in the staging area.
    pub(crate) fn staging_path(&self, id: Id) -> PathBuf {
        self.staging.join(format!("n{id}"))
    }

    /// The node's entry in the staging area, which is created when first needed so that the
    /// backing directory holds nothing of ours while nothing is volatile.
    pub(crate) fn new_staging_path(&mut self, id: Id) -> io::Result<PathBuf> {
        if !self.staging_exists {
            match fs::create_dir(&self.staging) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => self.staging_exists = true,
            }
        }
        Ok(self.staging_path(id))
    }

    /// Removes the staging area with everything in it (what a cut does to it).
    pub(crate) fn remove_staging(&mut self) -> io::Result<()> {
        self.staging_exists = false;
        match fs::remove_dir_all(&self.staging) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A path in the backing file system that reaches the node's backing inode.
    pub(crate) fn backing_path(&self, id: Id) -> Result<PathBuf, Errno> {
        if id == ROOT {
            return Ok(self.root.clone());
        }
        let node = self.node(id)?;
        if node.staged {
            return Ok(self.staging_path(id));
        }
        let (parent, name) = node.durable_links.first().ok_or(Errno::EIO)?;
        Ok(self.backing_path(*parent)?.join(name))
    }

    /// The node's path in the mount, relative to its root (for read faults).
    pub(crate) fn mount_path(&self, id: Id) -> Option<PathBuf> {
        let mut parts = Vec::new();
        let mut at = id;
        while at != ROOT {
            let (parent, name) = self.nodes.get(&at)?.links.first()?;
            parts.push(name.clone());
            at = *parent;
        }
        Some(parts.iter().rev().collect())
    }

    /// The open backing file of a regular file, opened on first use.
    pub(crate) fn backing_file(&mut self, id: Id) -> Result<&File, Errno> {
        let opened = match self.node_mut(id)?.file_mut() {
            None => return Err(Errno::EISDIR),
            Some(file) => file.backing.is_some(),
        };
        if !opened {
            let path = self.backing_path(id)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                // A read-only backing file (without root) can still be read.
                .or_else(|_| File::open(&path))?;
            if let Some(body) = self.node_mut(id)?.file_mut() {
                body.backing = Some(file);
            }
        }
        match self.node_mut(id)?.file_mut() {
            Some(FileBody {
                backing: Some(file), ..
            }) => Ok(file),
            _ => Err(Errno::EIO),
        }
    }

    /// The child named `name` of directory `parent`.
    pub(crate) fn lookup(&self, parent: Id, name: &OsStr) -> Result<Id, Errno> {
        if parent == ROOT && name == STAGING {
            return Err(Errno::ENOENT);
        }
        self.dir(parent)?.children.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn check_new_name(&self, parent: Id, name: &OsStr) -> Result<(), Errno> {
        if parent == ROOT && name == STAGING {
            return Err(Errno::EACCES);
        }
        if self.dir(parent)?.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    /// Creates a node named `name` in `parent`; its backing inode starts in the staging area.
    pub(crate) fn create(
        &mut self,
        parent: Id,
        name: &OsStr,
        new: &NewNode<'_>,
        meta: Meta,
    ) -> Result<Id, Errno> {
        self.check_new_name(parent, name)?;
        let id = self.alloc();
        let path = self.new_staging_path(id)?;
        let body = match new {
            NewNode::File => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(u32::from(meta.perm))
                    .open(&path)?;
                Body::File(FileBody {
                    data: FileData::new(0),
                    backing: Some(file),
                    mode_dirty: false,
                })
            }
            NewNode::Dir => {
                DirBuilder::new().mode(u32::from(meta.perm)).create(&path)?;
                Body::Dir(DirBody::default())
            }
            NewNode::Symlink(target) => {
                std::os::unix::fs::symlink(target, &path)?;
                Body::Symlink(target.to_path_buf())
            }
        };
        let mut node = Node::new(body, meta);
        node.staged = true;
        node.links.push((parent, name.to_os_string()));
        self.nodes.insert(id, node);
        self.dir_mut(parent)?.children.insert(name.to_os_string(), id);
        self.touch(parent);
        Ok(id)
    }

    /// Adds the name `name` in `parent` for the file `id` (a hard link).
    pub(crate) fn link(&mut self, id: Id, parent: Id, name: &OsStr) -> Result<(), Errno> {
        if self.node(id)?.is_dir() {
            return Err(Errno::EPERM);
        }
        self.check_new_name(parent, name)?;
        self.dir_mut(parent)?.children.insert(name.to_os_string(), id);
        let node = self.node_mut(id)?;
        node.links.push((parent, name.to_os_string()));
        node.meta.ctime = SystemTime::now();
        self.touch(parent);
        Ok(())
    }

    /// Removes a name that is not a directory.
    pub(crate) fn unlink(&mut self, parent: Id, name: &OsStr) -> Result<(), Errno> {
        let id = self.lookup(parent, name)?;
        if self.node(id)?.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.remove_name(id, parent, name)
    }

    /// Removes an empty directory.
    pub(crate) fn rmdir(&mut self, parent: Id, name: &OsStr) -> Result<(), Errno> {
        let id = self.lookup(parent, name)?;
        if !self.dir(id)?.children.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove_name(id, parent, name)
    }

    fn remove_name(&mut self, id: Id, parent: Id, name: &OsStr) -> Result<(), Errno> {
        self.dir_mut(parent)?.children.remove(name);
        let node = self.node_mut(id)?;
        node.links.retain(|(p, n)| !(*p == parent && n == name));
        node.meta.ctime = SystemTime::now();
        self.touch(parent);
        self.collect(id);
        Ok(())
    }

    /// Moves `name` in `parent` to `new_name` in `new_parent`, replacing what is there as
    /// rename(2) does.
    pub(crate) fn rename(
        &mut self,
        parent: Id,
        name: &OsStr,
        new_parent: Id,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let id = self.lookup(parent, name)?;
        if new_parent == ROOT && new_name == STAGING {
            return Err(Errno::EACCES);
        }
        let is_dir = self.node(id)?.is_dir();
        let existing = self.dir(new_parent)?.children.get(new_name).copied();
        if let Some(old) = existing {
            if no_replace {
                return Err(Errno::EEXIST);
            }
            if old == id {
                return Ok(());
            }
            match (is_dir, self.node(old)?.dir()) {
                (true, None) => return Err(Errno::ENOTDIR),
                (false, Some(_)) => return Err(Errno::EISDIR),
                (true, Some(dir)) if !dir.children.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if is_dir {
            // A directory cannot move into itself or below itself.
            let mut at = new_parent;
            while at != ROOT {
                if at == id {
                    return Err(Errno::EINVAL);
                }
                at = self.node(at)?.links.first().map_or(ROOT, |(p, _)| *p);
            }
        }
        if let Some(old) = existing {
            self.remove_name(old, new_parent, new_name)?;
        }
        self.dir_mut(parent)?.children.remove(name);
        self.dir_mut(new_parent)?
            .children
            .insert(new_name.to_os_string(), id);
        let node = self.node_mut(id)?;
        node.links.retain(|(p, n)| !(*p == parent && n == name));
        node.links.push((new_parent, new_name.to_os_string()));
        node.meta.ctime = SystemTime::now();
        self.touch(parent);
        self.touch(new_parent);
        Ok(())
    }

    fn touch(&mut self, dir: Id) {
        if let Some(node) = self.nodes.get_mut(&dir) {
            let now = SystemTime::now();
            node.meta.mtime = now;
            node.meta.ctime = now;
        }
    }

    /// One more open handle on the node.
    pub(crate) fn opened(&mut self, id: Id) -> Result<(), Errno> {
        if matches!(self.node(id)?.body, Body::File(_)) {
            self.backing_file(id)?;
        }
        self.node_mut(id)?.open += 1;
        Ok(())
    }

    /// One handle fewer; the backing file closes with the last one.
    pub(crate) fn released(&mut self, id: Id) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.open = node.open.saturating_sub(1);
            if node.open == 0
                && let Some(file) = node.file_mut()
            {
                file.backing = None;
            }
        }
        self.collect(id);
    }

    /// The kernel holds one more reference.
    pub(crate) fn looked_up(&mut self, id: Id) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.lookups += 1;
        }
    }

    /// The kernel dropped `n` references.
    pub(crate) fn forget(&mut self, id: Id, n: u64) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.collect(id);
    }

    /// Frees a node nothing refers to any more, with its staging entry.
    pub(crate) fn collect(&mut self, id: Id) {
        if id == ROOT || !self.nodes.get(&id).is_some_and(Node::collectable) {
            return;
        }
        let path = self.staging_path(id);
        let Some(node) = self.nodes.remove(&id) else {
            return;
        };
        if let Body::Dir(dir) = &node.body {
            // A staged directory may hold synced children: they go with it.
            for (name, child) in &dir.durable {
                if let Some(c) = self.nodes.get_mut(child) {
                    c.durable_links.retain(|(p, n)| !(*p == id && n == name));
                }
                self.collect(*child);
            }
        }
        if node.staged {
            let removed = if node.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = removed
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "faultfs: cannot remove a staged node");
            }
        }
    }

    /// Every directory reachable from the root, parents before children.
    pub(crate) fn dirs_top_down(&self) -> Vec<Id> {
        let mut out = vec![ROOT];
        let mut i = 0;
        while let Some(&id) = out.get(i) {
            if let Some(dir) = self.nodes.get(&id).and_then(Node::dir) {
                out.extend(
                    dir.children
                        .values()
                        .filter(|c| self.nodes.get(c).is_some_and(Node::is_dir)),
                );
            }
            i += 1;
        }
        out
    }

    /// Bytes a cut would lose now.
    pub(crate) fn volatile_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.body {
                Body::File(f) => f.data.volatile_bytes(),
                _ => 0,
            })
            .sum()
    }

    /// Reads a symlink's target.
    pub(crate) fn readlink(&self, id: Id) -> Result<&Path, Errno> {
        match &self.node(id)?.body {
            Body::Symlink(target) => Ok(target),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The directory `..` of `id` names.
    pub(crate) fn parent_of(&self, id: Id) -> Id {
        self.nodes
            .get(&id)
            .and_then(|n| n.links.first())
            .map_or(ROOT, |(p, _)| *p)
    }
}
