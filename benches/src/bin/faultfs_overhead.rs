//! What the fault file system costs a durable append: each backend (and the plain-file floor)
//! appends one 256 B entry durably, first on a plain temporary directory, then on a
//! `raft-store-faultfs` mount over another one (backing fsync on, so both reach the disk), in one
//! run; prints the medians, the 99th percentiles and their ratio. The README quotes it.
//!
//! `faultfs_overhead [appends]` (default 300 per target and directory); needs FUSE.

#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use raft_store_bench::Kind;
use raft_store_bench::Samples;
use raft_store_bench::TargetSpec;
use raft_store_faultfs::FaultFs;

fn main() -> ExitCode {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300usize);
    if let Err(e) = raft_store_faultfs::check_fuse() {
        eprintln!("faultfs_overhead needs FUSE: {e}");
        return ExitCode::from(2);
    }
    println!("| target | plain dir p50 / p99 | on faultfs p50 / p99 | p50 ratio | p99 ratio |");
    println!("|---|---|---|---|---|");
    let specs = raft_store_bench::targets()
        .into_iter()
        .filter(|t| matches!(t.kind, Kind::Floor | Kind::Backend));
    for spec in specs {
        match compare(&spec, n) {
            Ok((plain, fuse)) => println!(
                "| {} | {} / {} | {} / {} | {:.2} | {:.2} |",
                spec.name,
                ms(plain.percentile(50.0)),
                ms(plain.percentile(99.0)),
                ms(fuse.percentile(50.0)),
                ms(fuse.percentile(99.0)),
                ratio(fuse.percentile(50.0), plain.percentile(50.0)),
                ratio(fuse.percentile(99.0), plain.percentile(99.0)),
            ),
            Err(e) => {
                eprintln!("{}: {e}", spec.name);
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\n{n} durable appends of one 256 B entry per target and directory, after 20 untimed.");
    ExitCode::SUCCESS
}

/// Samples of `n` durable appends on a plain directory and on the mount.
fn compare(spec: &TargetSpec, n: usize) -> io::Result<(Samples, Samples)> {
    let plain_dir = tempfile::tempdir()?;
    let plain = appends(spec, plain_dir.path(), n)?;
    let (backing, mnt) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let fs = FaultFs::mount(backing.path(), mnt.path()).map_err(io::Error::other)?;
    let store = fs.mountpoint().join("store");
    std::fs::create_dir(&store)?;
    let fuse = appends(spec, &store, n)?;
    fs.unmount().map_err(io::Error::other)?;
    Ok((plain, fuse))
}

fn appends(spec: &TargetSpec, dir: &Path, n: usize) -> io::Result<Samples> {
    let mut target = (spec.open)(dir)?;
    for _ in 0..20 {
        target.append(1, 256)?;
    }
    Samples::measure(n, || target.append(1, 256))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
