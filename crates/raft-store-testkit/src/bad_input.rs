//! Bad-input cases for engines that keep a store in a directory on disk: each must fail with a
//! clear error naming what is wrong, and lose nothing.

use std::io::BufRead;
use std::io::BufReader;
use std::path::Path;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use super::CaseResult;
use super::EngineHarness;
use super::TestConfig;
use super::util::UnwritableDir;
use super::util::tempdir;
use crate::ensure;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::FormatError;
use raft_store_core::LogStore;
use raft_store_core::Space;
use raft_store_core::StoreDir;
use raft_store_core::StoreError;
use raft_store_engine::format::FormatRecord;
use raft_store_engine::format::STORE_FORMAT_VERSION;
use raft_store_engine::format::meta_key;

/// The bad-input cases for an engine on disk (`locked_by_another_process`, which runs itself in a child process, is expanded by `bad_input_suite!` by hand).
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __bad_input_case_list {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            path_is_a_file,
            directory_without_permission,
            opened_twice_in_one_process,
            directory_of_another_backend,
            directory_of_other_files,
            format_record_of_another_backend,
            newer_format_version,
        );
    };
}

fn open_err<H: EngineHarness>(h: &H, dir: &Path) -> Result<EngineError, String> {
    match h.open(dir) {
        Ok(_) => Err(format!("opening {} succeeded", dir.display())),
        Err(e) => Ok(e),
    }
}

/// A path that is a file is refused as not a directory, and the file is left as it was.
pub fn path_is_a_file<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"precious")?;
    let err = open_err(h, &file)?;
    let matched = matches!(err, EngineError::NotADirectory { .. });
    ensure!(matched, "a file as the store path gave: {err}");
    ensure!(std::fs::read(&file)? == b"precious", "the file was changed");
    Ok(())
}

/// A directory the process may not write is a permission error naming the path.
pub fn directory_without_permission<H: EngineHarness>(h: &H) -> CaseResult {
    let locked = UnwritableDir::new();
    for dir in [locked.path().to_path_buf(), locked.path().join("store")] {
        let err = open_err(h, &dir)?;
        let matched = matches!(err, EngineError::PermissionDenied { .. });
        ensure!(
            matched && err.to_string().contains(&*dir.to_string_lossy()),
            "{}: {err}",
            dir.display()
        );
    }
    Ok(())
}

/// A store already open in this process cannot be opened a second time.
pub fn opened_twice_in_one_process<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    let first = h.open(tmp.path())?;
    let err = open_err(h, tmp.path())?;
    let matched = matches!(err, EngineError::Locked { .. });
    ensure!(matched, "second open in this process gave: {err}");
    drop(first);
    h.open(tmp.path())?;
    Ok(())
}

/// A directory marked as another backend's store is refused, naming that backend.
pub fn directory_of_another_backend<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    let other = if h.open(tempdir().path())?.backend() == "sled" {
        "lmdb"
    } else {
        "sled"
    };
    std::fs::write(
        tmp.path().join(StoreDir::MARKER_FILE),
        format!("raft-store backend={other}\n"),
    )?;
    let err = open_err(h, tmp.path())?;
    let matched = matches!(&err, EngineError::ForeignStore { found, .. } if found == other);
    ensure!(matched, "a {other} directory gave: {err}");
    Ok(())
}

/// A non-empty directory that is not a store is refused and its files are left alone.
pub fn directory_of_other_files<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    std::fs::write(tmp.path().join("thesis.tex"), b"years of work")?;
    let err = open_err(h, tmp.path())?;
    let matched = matches!(err, EngineError::NotAStore { .. });
    ensure!(matched, "a directory of other files gave: {err}");
    ensure!(
        std::fs::read(tmp.path().join("thesis.tex"))? == b"years of work",
        "a file was changed"
    );
    ensure!(
        std::fs::read_dir(tmp.path())?.count() == 1,
        "files were added to a directory that is not a store"
    );
    Ok(())
}

fn put_format(engine: &impl Engine, record: &FormatRecord) -> CaseResult {
    let mut b = Batch::new();
    b.put(Space::Meta, meta_key::FORMAT, record.encode());
    engine.write(&b, Durability::Durable)?;
    Ok(())
}

/// A format record naming another backend is refused by the log store.
pub fn format_record_of_another_backend<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    let engine = h.open(tmp.path())?;
    put_format(
        &engine,
        &FormatRecord {
            version: STORE_FORMAT_VERSION,
            backend: "other".into(),
            codec: "bincode2".into(),
            openraft: "0.10".into(),
            layout: "single".into(),
        },
    )?;
    match LogStore::<TestConfig, _>::open(engine) {
        Err(StoreError::Format(FormatError::WrongBackend { found, .. })) if found == "other" => Ok(()),
        Err(e) => Err(format!("a format record of another backend gave: {e}").into()),
        Ok(_) => Err("opened a store whose format record names another backend".into()),
    }
}

/// A format record of a newer version is refused, naming both versions.
pub fn newer_format_version<H: EngineHarness>(h: &H) -> CaseResult {
    let tmp = tempdir();
    let backend = {
        let engine = h.open(tmp.path())?;
        let backend = engine.backend().to_string();
        put_format(
            &engine,
            &FormatRecord {
                version: STORE_FORMAT_VERSION + 1,
                backend: backend.clone(),
                codec: "bincode2".into(),
                openraft: "0.10".into(),
                layout: "single".into(),
            },
        )?;
        backend
    };
    let engine = h.open(tmp.path())?;
    match LogStore::<TestConfig, _>::open(engine) {
        Err(StoreError::Format(FormatError::FormatTooNew { found, supported, .. })) => {
            ensure!(
                found == STORE_FORMAT_VERSION + 1 && supported == STORE_FORMAT_VERSION,
                "versions {found}/{supported}"
            );
            Ok(())
        }
        Err(e) => Err(format!("{backend}: a newer format version gave: {e}").into()),
        Ok(_) => Err("opened a store of a newer format version".into()),
    }
}

/// The environment variable telling a re-run test binary to hold a store open.
pub const HOLD_DIR_ENV: &str = "RAFT_STORE_TEST_HOLD_DIR";

/// A store held open by a child process, killed on drop.
pub struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A store held open by another process cannot be opened.
///
/// The test binary re-runs itself (only test `test_name`) as the child; in the child this
/// function opens the store, says so, and waits until it is killed.
pub fn locked_by_another_process<H: EngineHarness>(h: &H, test_name: &str) -> CaseResult {
    if let Ok(dir) = std::env::var(HOLD_DIR_ENV) {
        let _engine = h.open(Path::new(&dir))?;
        println!("holding");
        // Bounded: the parent kills us long before this.
        std::thread::sleep(Duration::from_secs(60));
        return Ok(());
    }
    let tmp = tempdir();
    drop(h.open(tmp.path())?);
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(HOLD_DIR_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout of the child")?;
    let holder = Holder(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        ensure!(
            Instant::now() < deadline,
            "the child did not open the store within 30 s"
        );
        match lines.next() {
            Some(Ok(line)) if line.contains("holding") => break,
            Some(Ok(_)) => {}
            _ => return Err("the child exited before holding the store".into()),
        }
    }
    let err = open_err(h, tmp.path())?;
    let matched = matches!(err, EngineError::Locked { .. });
    ensure!(matched, "a store held by another process gave: {err}");
    drop(holder);
    h.open(tmp.path())?;
    Ok(())
}
