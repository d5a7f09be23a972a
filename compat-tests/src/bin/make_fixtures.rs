//! Writes the on-disk format fixtures: one small store per backend holding
//! `compat_tests::model::sample_ops()`, under `<out>/v<format version>-<codec>/<backend>/`
//! (the default codec; sets written before it was MessagePack are `v<format version>/`).
//!
//! With `--groups`, the multi-group set instead: one multi-group store per backend whose groups
//! 0, 42 and `u64::MAX` each hold the same sample, under `<out>/v<format version>-groups-<codec>/`.
//!
//! ```sh
//! cargo run -p compat-tests --bin make-fixtures -- compat-tests/fixtures
//! cargo run -p compat-tests --bin make-fixtures -- --groups compat-tests/fixtures
//! cargo run -p compat-tests --bin make-fixtures -- --fuzz-seeds compat-tests/fuzz/corpus/decode
//! ```
//!
//! Run it when the store format version or the default codec changes, and commit the new
//! directory next to the old ones: every version ever released stays a fixture that the tests
//! open (`tests/fixtures.rs` lists the sets).

#![forbid(unsafe_code)]

use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

use compat_tests::model;
use raft_store_engine::format::SINGLE_GROUP_FORMAT_VERSION;
use raft_store_engine::format::STORE_FORMAT_VERSION;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--fuzz-seeds"
    {
        return write_seeds(Path::new(dir));
    }
    let groups = args.first().is_some_and(|a| a == "--groups");
    let args = if groups { &args[1..] } else { &args[..] };
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: make-fixtures <fixtures dir> | make-fixtures --fuzz-seeds <corpus dir>");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("make-fixtures: runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let codec = <raft_store_core::MessagePack as raft_store_core::Codec>::NAME;
    for backend in compat_tests::DISK_BACKENDS {
        let set = if groups {
            format!("v{STORE_FORMAT_VERSION}-groups-{codec}")
        } else {
            format!("v{SINGLE_GROUP_FORMAT_VERSION}-{codec}")
        };
        let dir = out.join(set).join(backend.name());
        let written = if groups {
            rt.block_on(write_groups(backend, &dir))
        } else {
            rt.block_on(write(backend, &dir))
        };
        if let Err(e) = written {
            eprintln!("make-fixtures: {backend}: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote {}", dir.display());
    }
    ExitCode::SUCCESS
}

/// The fuzz target's seed corpus: one file per valid envelope the store writes.
fn write_seeds(dir: &Path) -> ExitCode {
    for (i, seed) in raft_store_testkit::decode::seeds().iter().enumerate() {
        let path = dir.join(format!("seed-{i:02}"));
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, seed)) {
            eprintln!("make-fixtures: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "wrote {} seeds to {}",
        raft_store_testkit::decode::seeds().len(),
        dir.display()
    );
    ExitCode::SUCCESS
}

async fn write(backend: raft_store::Backend, dir: &Path) -> Result<(), String> {
    if dir.exists() {
        return Err(format!(
            "{} exists: a fixture is never rewritten in place; remove it first if it is new",
            dir.display()
        ));
    }
    {
        let mut store = compat_tests::open_store(backend, dir).map_err(|e| e.to_string())?;
        for op in model::sample_ops() {
            if let Some(flushed) = model::issue(&mut store, &op).await.map_err(|e| e.to_string())? {
                raft_store_testkit::util::wait_flushed(flushed)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        store.flush().await.map_err(|e| e.to_string())?;
    }
    // Files that carry no data: lock files and RocksDB's text logs.
    remove_noise(dir).map_err(|e| e.to_string())
}

/// The groups of the multi-group fixture set.
const FIXTURE_GROUPS: [u64; 3] = compat_tests::FIXTURE_GROUPS;

async fn write_groups(backend: raft_store::Backend, dir: &Path) -> Result<(), String> {
    if dir.exists() {
        return Err(format!(
            "{} exists: a fixture is never rewritten in place; remove it first if it is new",
            dir.display()
        ));
    }
    {
        let store = raft_store::open_groups(&raft_store::StoreConfig::new(backend, dir))
            .map_err(|e| e.to_string())?;
        store.create_groups(FIXTURE_GROUPS).map_err(|e| e.to_string())?;
        for group in FIXTURE_GROUPS {
            let view = store.group(group).map_err(|e| e.to_string())?;
            let mut log: compat_tests::GroupTestStore =
                raft_store::LogStore::open(view).map_err(|e| e.to_string())?;
            for op in model::sample_ops() {
                if let Some(flushed) = model::issue(&mut log, &op).await.map_err(|e| e.to_string())? {
                    raft_store_testkit::util::wait_flushed(flushed)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            log.flush().await.map_err(|e| e.to_string())?;
        }
    }
    remove_noise(dir).map_err(|e| e.to_string())
}

fn remove_noise(dir: &Path) -> std::io::Result<()> {
    for item in std::fs::read_dir(dir)? {
        let path = item?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            remove_noise(&path)?;
        } else if name == "RAFT_STORE.lock" || name == "lock.mdb" || name.starts_with("LOG") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
