//! Whether this machine can mount FUSE, and the gate tests use to fail or skip loudly.

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::error::Error;

/// Setting this environment variable to `1` makes [`fuse_or_skip`] skip instead of fail on a
/// machine without FUSE.
pub const NO_FUSE_ENV: &str = "RAFT_STORE_NO_FUSE";

const INSTALL: &str = "install it with `apt-get install fuse3` (scripts/deps.sh does), \
                       or set RAFT_STORE_NO_FUSE=1 to skip the tests that need FUSE";

/// Checks that a mount can work here: `/dev/fuse` can be opened, and either this process is
/// root (fuser mounts directly) or `fusermount3` is installed.
pub fn check_fuse() -> Result<(), Error> {
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        let reason = format!(
            "cannot open /dev/fuse ({e}): load the fuse kernel module, or give the container the \
             device (docker run --device /dev/fuse --cap-add SYS_ADMIN); {INSTALL}"
        );
        return Err(Error::FuseUnavailable { reason });
    }
    if !is_root() && fusermount_path().is_none() {
        let reason = format!("not root and fusermount3 is not installed: {INSTALL}");
        return Err(Error::FuseUnavailable { reason });
    }
    Ok(())
}

/// When set to a file path, every test skipped by [`NO_FUSE_ENV`] appends its name there, so a
/// run can say how many it skipped (`scripts/test.sh` prints the count).
pub const SKIP_LOG_ENV: &str = "RAFT_STORE_SKIP_LOG";

/// The gate for a test that needs a real mount: `Ok(true)` to go on; `Ok(false)` when
/// [`NO_FUSE_ENV`] is `1` (after printing that the test skipped, and recording it in the file
/// [`SKIP_LOG_ENV`] names); an error naming what is missing and how to get it otherwise.
pub fn fuse_gate(test: &str) -> Result<bool, Error> {
    if std::env::var(NO_FUSE_ENV).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: {NO_FUSE_ENV}=1");
        if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
            // Best effort: the count is a report, the skip itself was asked for.
            // The binary too: the same case name runs in many test binaries.
            let binary = std::env::current_exe().ok();
            let binary = binary.as_deref().and_then(|p| p.file_name()).unwrap_or_default();
            let line = format!("{} {test}\n", binary.to_string_lossy());
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        }
        return Ok(false);
    }
    check_fuse().map(|()| true)
}

/// [`fuse_gate`] for a test function: true to go on, false when skipped on request.
///
/// # Panics
///
/// When FUSE is unavailable and the skip was not asked for, with what is missing and how to
/// install it: a test that cannot run must not pass silently.
pub fn fuse_or_skip(test: &str) -> bool {
    match fuse_gate(test) {
        Ok(go) => go,
        Err(e) => panic!("{test} needs FUSE: {e}"),
    }
}

/// Whether this process runs as root (the owner of its /proc entry is its effective user).
pub(crate) fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// fusermount3 (or fusermount) on the PATH.
pub(crate) fn fusermount_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["fusermount3", "fusermount"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}
