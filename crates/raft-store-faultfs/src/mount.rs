//! The mount handle: mounting, the control socket beside it, and unmounting.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption};

use crate::control::{Control, Server};
use crate::error::Error;
use crate::fs::{FaultFilesystem, lock};
use crate::gate::fusermount_path;
use crate::state::State;
use crate::tree::Tree;

/// How long an unmount may wait for the kernel to end the session before it detaches.
const UNMOUNT_WAIT: Duration = Duration::from_secs(10);

/// How to mount; [`MountOptions::default`] suits tests.
#[derive(Clone, Debug)]
pub struct MountOptions {
    sync_backing: bool,
    control_socket: Option<PathBuf>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            sync_backing: true,
            control_socket: None,
        }
    }
}

impl MountOptions {
    /// Whether an fsync through the mount also fsyncs the backing file system (default true).
    /// Off makes tests faster; the backing tree then survives a cut of this file system, but
    /// not a real power cut of the machine.
    #[must_use]
    pub fn sync_backing(mut self, yes: bool) -> Self {
        self.sync_backing = yes;
        self
    }

    /// Where the control socket goes (default: a fresh name in the temporary directory).
    #[must_use]
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }
}

/// A mounted fault file system. Dropping it cuts the power (the backing directory keeps only
/// what was durable) and unmounts; [`FaultFs::unmount`] is the clean shutdown instead.
pub struct FaultFs {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
    server: Option<Server>,
    backing: PathBuf,
    mountpoint: PathBuf,
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFs")
            .field("backing", &self.backing)
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

impl FaultFs {
    /// Mounts at `mountpoint` (an existing directory) a file system whose durable state is the
    /// directory `backing`, with the default options.
    pub fn mount(backing: impl AsRef<Path>, mountpoint: impl AsRef<Path>) -> Result<FaultFs, Error> {
        Self::mount_with(backing, mountpoint, &MountOptions::default())
    }

    /// Mounts with the given options.
    pub fn mount_with(
        backing: impl AsRef<Path>,
        mountpoint: impl AsRef<Path>,
        options: &MountOptions,
    ) -> Result<FaultFs, Error> {
        let backing = canonical_dir(backing.as_ref())?;
        let mountpoint = canonical_dir(mountpoint.as_ref())?;
        if backing.starts_with(&mountpoint) || mountpoint.starts_with(&backing) {
            return Err(Error::BadPath {
                path: mountpoint,
                reason: "the mount point and the backing directory must not contain each other",
            });
        }
        let tree = Tree::open(backing.clone(), options.sync_backing).map_err(|source| Error::Backing {
            path: backing.clone(),
            source,
        })?;
        let state = Arc::new(Mutex::new(State::new(tree)));
        let socket = options.control_socket.clone().unwrap_or_else(default_socket);
        let server = Server::start(socket, state.clone())?;

        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("raft-store-faultfs".into()),
            MountOption::Subtype("faultfs".into()),
            // The kernel checks permissions from the attributes, as on a disk file system.
            MountOption::DefaultPermissions,
        ];
        // No auto_unmount: through fuser 0.18 the fusermount3 watcher exits at once, and an
        // unmount then waits for nothing. A process killed while mounted leaves a disconnected
        // mount behind (`fusermount3 -u -z DIR` removes it).
        let filesystem = FaultFilesystem { state: state.clone() };
        let session =
            fuser::spawn_mount(filesystem, &mountpoint, &config).map_err(|source| Error::Mount {
                mountpoint: mountpoint.clone(),
                source,
            })?;
        tracing::info!(backing = %backing.display(), mountpoint = %mountpoint.display(), "faultfs: mounted");
        Ok(FaultFs {
            session: Some(session),
            state,
            server: Some(server),
            backing,
            mountpoint,
        })
    }

    /// Where the file system is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The backing directory: the durable image, a plain directory tree.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The control socket, for [`Control::connect`] in another process.
    pub fn control_socket(&self) -> &Path {
        self.server.as_ref().map_or(Path::new(""), Server::path)
    }

    /// Control of this mount from this process (no socket involved).
    pub fn control(&self) -> Control {
        Control::local(self.state.clone())
    }

    /// The clean shutdown: makes everything durable, then unmounts.
    pub fn unmount(mut self) -> Result<(), Error> {
        let synced = {
            let mut state = lock(&self.state);
            // What is left in the staging area after a full sync is unlinked files still open:
            // gone at a clean shutdown too.
            state
                .tree
                .sync_all()
                .and_then(|()| Ok(state.tree.remove_staging()?))
        };
        let unmounted = self.unmount_session();
        synced.map_err(|e| Error::Command {
            command: "sync".into(),
            message: format!("errno {}", e.code()),
        })?;
        unmounted
    }

    fn unmount_session(&mut self) -> Result<(), Error> {
        self.server = None;
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        // The kernel ends the session only once nobody uses the mount: wait a bounded time.
        let (done, wait) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(session.umount_and_join());
        });
        match wait.recv_timeout(UNMOUNT_WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                detach(&self.mountpoint);
                Err(Error::Mount {
                    mountpoint: self.mountpoint.clone(),
                    source,
                })
            }
            Err(_) => {
                detach(&self.mountpoint);
                Err(Error::Mount {
                    mountpoint: self.mountpoint.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the mount is still busy; detached it",
                    ),
                })
            }
        }
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        if self.session.is_none() {
            return;
        }
        if let Err(e) = lock(&self.state).cut(crate::CutMode::DropAll) {
            tracing::warn!(error = %e, "faultfs: the cut at drop failed");
        }
        if let Err(e) = self.unmount_session() {
            tracing::warn!(error = %e, "faultfs: unmount at drop failed");
        }
    }
}

/// Lazily unmounts a mount that a normal unmount could not remove.
fn detach(mountpoint: &Path) {
    let program = fusermount_path().unwrap_or_else(|| PathBuf::from("umount"));
    let args: &[&str] = if program.ends_with("umount") {
        &["-l"]
    } else {
        &["-u", "-z"]
    };
    let status = std::process::Command::new(&program)
        .args(args)
        .arg(mountpoint)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(mountpoint = %mountpoint.display(), "faultfs: could not detach the mount");
    }
}

fn canonical_dir(path: &Path) -> Result<PathBuf, Error> {
    let canonical = path.canonicalize().map_err(|_| Error::BadPath {
        path: path.to_path_buf(),
        reason: "does not exist",
    })?;
    if !canonical.is_dir() {
        return Err(Error::BadPath {
            path: path.to_path_buf(),
            reason: "not a directory",
        });
    }
    Ok(canonical)
}

fn default_socket() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("raft-store-faultfs-{}-{n}.sock", std::process::id()))
}
