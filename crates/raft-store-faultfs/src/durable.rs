//! Making things durable: fsync of a file writes its pages to its backing inode, fsync of a
//! directory makes the backing directory's entries those the mount shows.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fuser::Errno;

use crate::node::{Body, Id, Node};
use crate::tree::Tree;

impl Tree {
    /// fsync or fdatasync of a regular file: its data and size become durable in its backing
    /// inode. Its names do not: they follow their directories.
    pub(crate) fn sync_file(&mut self, id: Id) -> Result<(), Errno> {
        let (dirty, mode_dirty, perm) = match &self.node(id)?.body {
            Body::File(f) => (f.data.is_dirty(), f.mode_dirty, self.node(id)?.meta.perm),
            // An fsync of a symlink has nothing of its own to sync.
            _ => return Ok(()),
        };
        if !dirty && !mode_dirty {
            return Ok(());
        }
        let was_open = self.node(id)?.open > 0;
        let file = self.backing_file(id)?.try_clone()?;
        let sync = self.sync_backing;
        let body = self.node_mut(id)?.file_mut().ok_or(Errno::EIO)?;
        body.data.flush(&file)?;
        if mode_dirty {
            file.set_permissions(Permissions::from_mode(u32::from(perm)))?;
            body.mode_dirty = false;
        }
        if !was_open {
            // A truncate by path opened it: do not hold it open past this call.
            body.backing = None;
        }
        if sync {
            file.sync_all()?;
        }
        Ok(())
    }

    /// Drops a file's volatile data, as Linux does after a failed writeback: the pages are
    /// gone and the next fsync has nothing to report.
    pub(crate) fn discard_file(&mut self, id: Id) -> Result<(), Errno> {
        if let Some(body) = self.node_mut(id)?.file_mut() {
            body.data.discard();
            body.mode_dirty = false;
        }
        Ok(())
    }

    /// fsync of a directory: its backing directory gets exactly the entries the mount shows,
    /// except names moved out of it to a directory not yet synced (see the crate docs).
    pub(crate) fn sync_dir(&mut self, dir: Id) -> Result<(), Errno> {
        let body = self.node(dir)?.dir().ok_or(Errno::ENOTDIR)?;
        let children = body.children.clone();
        let durable = body.durable.clone();
        for (name, old) in &durable {
            if children.contains_key(name) {
                continue; // the same node, or a replacement handled below
            }
            if self.node(*old)?.links.is_empty() {
                let path = self.backing_path(dir)?.join(name);
                self.drop_durable(*old, dir, name, &path)?;
            }
            // else: renamed away; the move becomes durable with its destination directory.
        }
        for (name, id) in &children {
            if durable.get(name) != Some(id) {
                self.add_durable(*id, dir, name)?;
            }
        }
        if self.sync_backing {
            File::open(self.backing_path(dir)?)?.sync_all()?;
        }
        Ok(())
    }

    /// What a clean shutdown does: every file and every directory synced.
    pub(crate) fn sync_all(&mut self) -> Result<(), Errno> {
        let files: Vec<Id> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n.body, Body::File(_)) && n.alive())
            .map(|(id, _)| *id)
            .collect();
        for id in files {
            self.sync_file(id)?;
        }
        for dir in self.dirs_top_down() {
            self.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Puts the name `name` of `dir` on node `id` in the backing tree, atomically replacing
    /// what the name held there.
    fn add_durable(&mut self, id: Id, dir: Id, name: &OsStr) -> Result<(), Errno> {
        let dst = self.backing_path(dir)?.join(name);
        let is_dir = self.node(id)?.is_dir();
        let mut replace = false;
        let old = self.node(dir)?.dir().and_then(|d| d.durable.get(name).copied());
        if let Some(old) = old {
            if is_dir || self.node(old)?.is_dir() {
                // rename(2) only replaces an empty directory: clear the old one out first.
                self.drop_durable(old, dir, name, &dst)?;
            } else {
                self.detach_for_replace(old, dir, name, &dst)?;
                replace = true;
            }
        }
        let src = self.backing_path(id)?;
        let link = (dir, name.to_os_string());
        if is_dir {
            fs::rename(&src, &dst)?;
            // A directory has one backing location: wherever it was, it is not there now.
            let stale: Vec<_> = self.node_mut(id)?.durable_links.drain(..).collect();
            for (p, n) in stale {
                if let Some(d) = self.nodes.get_mut(&p).and_then(Node::dir_mut) {
                    d.durable.remove(&n);
                }
            }
        } else if replace {
            let tmp = self.new_staging_path(0)?; // no node has number 0
            remove_if_exists(&tmp)?;
            fs::hard_link(&src, &tmp)?;
            fs::rename(&tmp, &dst)?;
        } else {
            fs::hard_link(&src, &dst)?;
        }
        let node = self.node_mut(id)?;
        node.durable_links.push(link.clone());
        let was_staged = std::mem::replace(&mut node.staged, false);
        if let Some(d) = self.node_mut(dir)?.dir_mut() {
            d.durable.insert(link.1.clone(), id);
        }
        if !is_dir {
            // A durable name the file no longer has is the source of a rename: it goes now,
            // so that the rename is atomic at its destination.
            let node = self.node(id)?;
            let stale: Vec<_> = node
                .durable_links
                .iter()
                .filter(|l| **l != link && !node.links.contains(l))
                .cloned()
                .collect();
            for (p, n) in stale {
                let path = self.backing_path(p)?.join(&n);
                self.drop_durable(id, p, &n, &path)?;
            }
            if was_staged {
                remove_if_exists(&self.staging_path(id))?;
            }
        }
        Ok(())
    }

    /// Forgets the durable name of `old`, about to be replaced by another file, keeping its
    /// inode reachable from the staging area if it lives on.
    fn detach_for_replace(&mut self, old: Id, dir: Id, name: &OsStr, path: &Path) -> Result<(), Errno> {
        self.forget_durable_link(old, dir, name);
        let node = self.node(old)?;
        if node.alive() && !node.staged && node.durable_links.is_empty() {
            fs::hard_link(path, self.new_staging_path(old)?)?;
            self.node_mut(old)?.staged = true;
        }
        self.collect(old);
        Ok(())
    }

    /// Removes the durable name `name` of `dir` (at `path`) from node `id`. A node still
    /// reachable through the mount keeps its inode in the staging area.
    fn drop_durable(&mut self, id: Id, dir: Id, name: &OsStr, path: &Path) -> Result<(), Errno> {
        self.forget_durable_link(id, dir, name);
        let node = self.node(id)?;
        let elsewhere = node.staged || !node.durable_links.is_empty();
        if node.alive() && !elsewhere {
            fs::rename(path, self.new_staging_path(id)?)?;
            self.node_mut(id)?.staged = true;
        } else if let Some(d) = node.dir() {
            // A removed directory: its durable entries go first (some may live on elsewhere).
            let entries: Vec<(OsString, Id)> = d.durable.iter().map(|(n, c)| (n.clone(), *c)).collect();
            for (child_name, child) in entries {
                self.drop_durable(child, id, &child_name, &path.join(&child_name))?;
            }
            fs::remove_dir_all(path)?;
        } else {
            fs::remove_file(path)?;
        }
        self.collect(id);
        Ok(())
    }

    fn forget_durable_link(&mut self, id: Id, dir: Id, name: &OsStr) {
        if let Some(d) = self.nodes.get_mut(&dir).and_then(Node::dir_mut) {
            d.durable.remove(name);
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.durable_links.retain(|(p, n)| !(*p == dir && n == name));
        }
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
