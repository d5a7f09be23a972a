//! Snapshot files: building one from a consistent view, installing one, and keeping the
//! newest in the snapshot directory.

use std::fs;
use std::io;
use std::io::Seek;
use std::ops::ControlFlow;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::KvLine;
use super::SnapshotFile;
use super::generations::delete_keys;
use super::snapshot::ReadError;
use super::snapshot::SnapshotReader;
use super::snapshot::SnapshotWriter;
use super::state::Current;
use super::state::Shared;
use super::state::SmState;
use super::state::gen_prefix;
use super::state::lock;
use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::codec::Codec;
use crate::codec::seal;
use crate::codec::unseal;
use crate::error::StoreError;

impl<C: KvLine, E: Engine, K: Codec> Shared<C, E, K> {
    pub(crate) fn file_name(&self, kind: &str, index: Option<u64>) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        match (kind, index) {
            ("snapshot", Some(i)) => self.dir.join(format!("snapshot-{i:020}-{n:06}.snap")),
            ("snapshot", None) => self.dir.join(format!("snapshot-none-{n:06}.snap")),
            (kind, _) => self.dir.join(format!("{kind}-{n:06}.tmp")),
        }
    }

    pub(crate) fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        SnapshotFile::create(self.file_name("receive", None))
    }

    /// Find the newest readable snapshot in the directory; remove temporary files and older
    /// snapshots. Returns it and the next free file number.
    pub(crate) fn load_snapshots(&self) -> Result<(Option<Current<C>>, u64), StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| snapshot_io(&self.dir, "listing snapshots", e))?;
        let mut best: Option<Current<C>> = None;
        let mut next = 0u64;
        for entry in entries {
            let path = entry
                .map_err(|e| snapshot_io(&self.dir, "listing snapshots", e))?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(n) = name
                .rsplit('-')
                .next()
                .and_then(|tail| tail.split('.').next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
            let extension = path.extension().and_then(|e| e.to_str());
            if extension == Some("tmp") {
                fs::remove_file(&path)
                    .map_err(|e| snapshot_io(&path, "removing a leftover snapshot file", e))?;
                continue;
            }
            if extension != Some("snap") {
                continue;
            }
            let meta = match Self::read_meta(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable snapshot file");
                    continue;
                }
            };
            let newer = best
                .as_ref()
                .is_none_or(|b| applied_index::<C>(&meta) > applied_index::<C>(&b.meta));
            if newer {
                if let Some(old) = best.replace(Current { meta, path }) {
                    remove_quietly(&old.path);
                }
            } else {
                remove_quietly(&path);
            }
        }
        Ok((best, next))
    }

    pub(crate) fn read_meta(path: &Path) -> Result<C::SnapshotMeta, StoreError> {
        let file = fs::File::open(path).map_err(|e| snapshot_io(path, "opening a snapshot", e))?;
        let (_, meta) = SnapshotReader::new(file).map_err(|e| snapshot_read(path, e))?;
        unseal::<K, C::SnapshotMeta>(&meta).map_err(|e| StoreError::SnapshotFile {
            path: path.to_path_buf(),
            reason: "its meta record".into(),
            source: Some(e),
        })
    }

    /// Make `path` (a finished, synced snapshot file in our directory) the current snapshot,
    /// unless a newer one is already current. Removes the one it replaces.
    pub(crate) fn set_current(&self, meta: C::SnapshotMeta, path: PathBuf) -> Result<(), StoreError> {
        sync_dir(&self.dir)?;
        let mut current = lock(&self.current);
        if let Some(c) = current.as_ref()
            && (applied_index::<C>(&c.meta) > applied_index::<C>(&meta) || c.path == path)
        {
            if c.path != path {
                remove_quietly(&path);
            }
            return Ok(());
        }
        if let Some(old) = current.replace(Current { meta, path }) {
            remove_quietly(&old.path);
        }
        Ok(())
    }

    /// Count and log a snapshot built or installed (`installed`), or its failure.
    pub(crate) fn count_snapshot<T>(
        &self,
        result: Result<(C::SnapshotMeta, T), io::Error>,
        installed: bool,
    ) -> Result<(C::SnapshotMeta, T), io::Error> {
        let what = if installed { "installed" } else { "built" };
        match &result {
            Ok((meta, _)) => {
                self.stats.record_snapshot(installed);
                tracing::info!(
                    target: "raft_store::snapshot",
                    backend = self.backend,
                    last_log_index = applied_index::<C>(meta),
                    "snapshot {what}"
                );
            }
            Err(e) => {
                self.stats.record_error("snapshot", format!("{:?}", e.kind()));
                tracing::error!(
                    target: "raft_store::snapshot",
                    backend = self.backend,
                    error = %e,
                    "a snapshot could not be {what}"
                );
            }
        }
        result
    }

    /// Build a snapshot file of the current state; blocking.
    pub(crate) fn build(&self) -> Result<(C::SnapshotMeta, SnapshotFile), StoreError> {
        let guard = lock(&self.state);
        let st = guard.clone();
        // Named before it is written: the file's name is the snapshot's id (openraft 0.9 keeps
        // one in the meta; 0.10 has none).
        let index = st.last_applied.as_ref().map(C::index);
        let path = self.file_name("snapshot", index);
        let snapshot_id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("snapshot")
            .to_string();
        let meta = C::snapshot_meta(st.last_applied.clone(), st.last_membership.clone(), snapshot_id);
        let encoded =
            seal::<K, _>(&meta).map_err(|e| StoreError::encode(self.backend, "snapshot meta", e))?;
        let tmp = self.file_name("build", None);
        let mut writer = SnapshotWriter::create(&tmp, &encoded)
            .map_err(|e| snapshot_io(&tmp, "creating a snapshot", e))?;
        // Applies wait until the scan has its consistent view (see `scan_in_order`). Records
        // go out in key order, long keys merged in, whatever the engine's key limit: a
        // snapshot's bytes do not depend on the engine that built it.
        let scanned = self.scan_in_order(guard, &mut |k, v| {
            writer
                .record(k.as_bytes(), v)
                .map(|()| ControlFlow::Continue(()))
                .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))
        });
        let finished = scanned.and_then(|()| {
            writer
                .finish()
                .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))
        });
        if let Err(e) = finished {
            remove_quietly(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(|e| {
            remove_quietly(&tmp);
            snapshot_io(&path, "naming a finished snapshot", e)
        })?;
        // Opened before it may become current: if a newer snapshot is current already (this
        // state machine restarted behind its last snapshot), the file is removed, and the open
        // handle is what still serves this build's caller.
        let file =
            SnapshotFile::open(&path).map_err(|e| snapshot_io(&path, "opening a finished snapshot", e))?;
        self.set_current(meta.clone(), path)?;
        Ok((meta, file))
    }

    /// Replace the data with the snapshot in `file`; blocking.
    pub(crate) fn install(&self, meta: &C::SnapshotMeta, file: SnapshotFile) -> Result<(), StoreError> {
        let (file, path) = file.into_parts();
        let result = self.install_file(meta, file, &path);
        if result.is_err()
            && path.extension().is_some_and(|e| e == "tmp")
            && path.parent().is_some_and(|p| same_dir(p, &self.dir))
        {
            // A received file that was refused is of no further use.
            remove_quietly(&path);
        }
        result
    }

    pub(crate) fn install_file(
        &self,
        meta: &C::SnapshotMeta,
        file: fs::File,
        path: &Path,
    ) -> Result<(), StoreError> {
        let path = path.to_path_buf();
        let (mut reader, encoded) = SnapshotReader::new(file).map_err(|e| snapshot_read(&path, e))?;
        let found: C::SnapshotMeta = unseal::<K, _>(&encoded).map_err(|e| StoreError::SnapshotFile {
            path: path.clone(),
            reason: "its meta record".into(),
            source: Some(e),
        })?;
        if &found != meta {
            return Err(StoreError::SnapshotFile {
                path,
                reason: format!("it holds the snapshot of {found}, but the install is for {meta}"),
                source: None,
            });
        }
        let old = lock(&self.state).clone();
        let generation = old
            .generation
            .checked_add(1)
            .ok_or_else(|| StoreError::SnapshotFile {
                path: path.clone(),
                reason: "no generation number left".into(),
                source: None,
            })?;
        let new_prefix = gen_prefix(generation).to_vec();
        if let Err(e) = self.load_generation(generation, &mut reader, &path) {
            // Nothing points at the partial generation: remove it (or the next open will).
            let _ = delete_keys(&self.engine, new_prefix, None, self.options.delete_chunk);
            return Err(e);
        }
        let st = SmState::<C> {
            generation,
            last_applied: C::meta_last_applied(meta).cloned(),
            last_membership: C::meta_membership(meta).clone(),
        };
        {
            let mut guard = lock(&self.state);
            let mut batch = Batch::new();
            self.put_state(&mut batch, &st)?;
            self.engine.write(&batch, Durability::Durable)?;
            *guard = st;
        }
        delete_keys(
            &self.engine,
            gen_prefix(old.generation).to_vec(),
            Some(new_prefix),
            self.options.delete_chunk,
        )?;
        self.keep_installed(meta, &path, reader.into_file())
    }

    /// Keep the installed file as the current snapshot: move (or copy) it into our directory.
    pub(crate) fn keep_installed(
        &self,
        meta: &C::SnapshotMeta,
        path: &Path,
        mut file: fs::File,
    ) -> Result<(), StoreError> {
        if lock(&self.current).as_ref().is_some_and(|c| c.path == path) {
            return Ok(());
        }
        let target = self.file_name("snapshot", applied_index::<C>(meta));
        // A received file in our directory is renamed; anything else (a file elsewhere, or one
        // already unlinked, readable only through its handle) is copied through the handle.
        let in_dir = path.parent().is_some_and(|p| same_dir(p, &self.dir)) && path.exists();
        if in_dir {
            file.sync_all()
                .map_err(|e| snapshot_io(path, "syncing a received snapshot", e))?;
            fs::rename(path, &target)
                .map_err(|e| snapshot_io(&target, "keeping an installed snapshot", e))?;
        } else {
            let tmp = self.file_name("copy", None);
            let copied = (|| {
                let mut out = fs::File::create(&tmp)?;
                file.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut file, &mut out)?;
                out.sync_all()
            })();
            if let Err(e) = copied {
                remove_quietly(&tmp);
                return Err(snapshot_io(&tmp, "copying an installed snapshot", e));
            }
            fs::rename(&tmp, &target)
                .map_err(|e| snapshot_io(&target, "keeping an installed snapshot", e))?;
        }
        self.set_current(meta.clone(), target)
    }
}

/// The index of the last entry a snapshot covers, to order snapshots and name their files.
pub(crate) fn applied_index<C: KvLine>(meta: &C::SnapshotMeta) -> Option<u64> {
    C::meta_last_applied(meta).map(C::index)
}

pub(crate) fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an old snapshot file");
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| snapshot_io(dir, "syncing the snapshot directory", e))
}

pub(crate) fn snapshot_io(path: &Path, context: &'static str, source: io::Error) -> StoreError {
    StoreError::SnapshotIo {
        path: path.to_path_buf(),
        context,
        source,
    }
}

pub(super) fn snapshot_read(path: &Path, e: ReadError) -> StoreError {
    match e {
        ReadError::Io(source) => snapshot_io(path, "reading a snapshot", source),
        ReadError::Format(reason) => StoreError::SnapshotFile {
            path: path.to_path_buf(),
            reason,
            source: None,
        },
    }
}

/// Run blocking file and engine work off the async runtime's worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, io::Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(io::Error::from),
        Err(e) => Err(io::Error::other(format!("snapshot task failed: {e}"))),
    }
}

/// Copy the snapshot file `from` to `to` with its meta record replaced by what `convert` makes
/// of the old one (the sealed meta bytes in, the new sealed bytes out); the records and the
/// trailer's count are the same, the checksum is computed again. Written to a temporary file
/// beside `to`, synced, then renamed, so `to` is either absent or complete.
#[cfg(feature = "migrate")]
pub(crate) fn rewrite_meta(
    from: &Path,
    to: &Path,
    convert: impl FnOnce(&[u8]) -> Result<Vec<u8>, StoreError>,
) -> Result<(), StoreError> {
    let file = fs::File::open(from).map_err(|e| snapshot_io(from, "opening a snapshot", e))?;
    let (mut reader, meta) = SnapshotReader::new(file).map_err(|e| snapshot_read(from, e))?;
    let meta = convert(&meta)?;
    let tmp = to.with_extension("tmp");
    let copied = (|| {
        let mut writer =
            SnapshotWriter::create(&tmp, &meta).map_err(|e| snapshot_io(&tmp, "creating a snapshot", e))?;
        while let Some((key, value)) = reader.next_record().map_err(|e| snapshot_read(from, e))? {
            writer
                .record(&key, &value)
                .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))?;
        }
        writer
            .finish()
            .map_err(|e| snapshot_io(&tmp, "writing a snapshot", e))?;
        fs::rename(&tmp, to).map_err(|e| snapshot_io(to, "naming a converted snapshot", e))
    })();
    if copied.is_err() {
        remove_quietly(&tmp);
    }
    copied?;
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
