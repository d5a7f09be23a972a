//! Helpers of the mount tests: a mount in fresh directories, a watchdog, small file helpers.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use raft_store_faultfs::{FaultFs, MountOptions};
use tempfile::TempDir;

/// A mounted file system over fresh directories, with a watchdog that ends the process if
/// the test hangs (a stuck FUSE request would otherwise hang it forever).
pub struct Mount {
    pub fs: FaultFs,
    pub mnt: PathBuf,
    pub backing: PathBuf,
    pub dirs: (TempDir, TempDir),
    _watchdog: mpsc::Sender<()>,
}

impl Mount {
    /// The path of `name` in the mount.
    pub fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    /// The path of `name` in the backing directory.
    pub fn backing(&self, name: &str) -> PathBuf {
        self.backing.join(name)
    }

    /// Cuts the power.
    pub fn cut(&self) {
        self.fs.control().cut_power().expect("cut");
    }
}

/// Mounts, or `None` when the tests are opted out of FUSE (the gate fails the test when FUSE
/// is missing without the opt-out).
pub fn mount(test: &str) -> Option<Mount> {
    mount_with(test, &MountOptions::default())
}

pub fn mount_with(test: &str, options: &MountOptions) -> Option<Mount> {
    if !raft_store_faultfs::fuse_or_skip(test) {
        return None;
    }
    let watchdog = watchdog(test, Duration::from_secs(120));
    let backing = tempfile::tempdir().expect("backing dir");
    let mnt = tempfile::tempdir().expect("mount dir");
    let fs = FaultFs::mount_with(backing.path(), mnt.path(), options).expect("mount");
    Some(Mount {
        mnt: fs.mountpoint().to_path_buf(),
        backing: fs.backing().to_path_buf(),
        fs,
        dirs: (mnt, backing),
        _watchdog: watchdog,
    })
}

/// Ends the process if the returned sender lives longer than `limit`.
pub fn watchdog(test: &str, limit: Duration) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let test = test.to_string();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("{test}: still running after {limit:?}: a FUSE request is stuck; aborting");
            std::process::exit(101);
        }
    });
    tx
}

/// fsync of a directory.
pub fn sync_dir(path: &Path) {
    File::open(path).expect("open dir").sync_all().expect("fsync dir");
}

/// Opens for reading and writing.
pub fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open")
}

/// Creates `path` with `contents`, the data fsynced, and its directory synced.
pub fn durable_file(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).expect("write");
    File::open(path).expect("open").sync_all().expect("fsync");
    sync_dir(path.parent().expect("parent"));
}
