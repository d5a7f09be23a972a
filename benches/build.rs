//! Records, at build time, the versions a report names: the engines' crates from `Cargo.lock` and
//! the compiler. A report measured by one build then says exactly what it measured.

use std::process::Command;

fn main() {
    let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    println!("cargo:rerun-if-changed={lock_path}");
    let lock = std::fs::read_to_string(lock_path).unwrap_or_default();
    for (var, name) in [
        ("REDB", "redb"),
        ("HEED", "heed"),
        ("LMDB_SYS", "lmdb-master-sys"),
        ("ROCKSDB", "rocksdb"),
        ("ROCKSDB_SYS", "librocksdb-sys"),
        ("SLED", "sled"),
        ("RAFT_LOG", "raft-log"),
    ] {
        println!(
            "cargo:rustc-env=BENCH_VERSION_{var}={}",
            locked_version(&lock, name)
        );
    }
    // The lock holds one openraft per line the workspace builds (0.9 and 0.10): a report names
    // the one its log stores were driven through, so each line gets its own variable.
    for (var, prefix) in [("OPENRAFT_0_9", "0.9."), ("OPENRAFT_0_10", "0.10.")] {
        let version = locked_versions(&lock, "openraft")
            .into_iter()
            .find(|v| v.starts_with(prefix))
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env=BENCH_VERSION_{var}={version}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |v| v.trim().to_string());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={version}");
}

/// The version of package `name` in a `Cargo.lock` (the first, if it holds several), or
/// "unknown".
fn locked_version(lock: &str, name: &str) -> String {
    locked_versions(lock, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| "unknown".into())
}

/// Every version of package `name` in a `Cargo.lock`, in the lock's order.
fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let wanted = format!("name = \"{name}\"");
    let mut found = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted
            && let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = "))
        {
            found.push(v.trim_matches('"').to_string());
        }
    }
    found
}
