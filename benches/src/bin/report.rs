//! Writes a comparative Markdown report of every target's durable append latency and pipelined
//! throughput, with each latency as a ratio to the fsync floor measured in the same run.
//!
//! `cargo run --release -p raft-store-bench --bin report -- --quick [--out DIR]`

#![forbid(unsafe_code)]
// Statistics over sample counts: the counts are far below 2^52, so float casts are exact enough.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use raft_store_bench::Floor;
use raft_store_bench::Samples;
use raft_store_bench::StoreTarget;
use raft_store_bench::Target;
use raft_store_core::MemEngine;

struct Row {
    name: String,
    p50_us: f64,
    p99_us: f64,
    pipelined_per_s: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("target/report"), PathBuf::from);
    let (samples, pipelined) = if quick { (300, 1000) } else { (3000, 10_000) };
    std::fs::create_dir_all(&out)?;
    let scratch = tempfile::tempdir_in(&out)?;

    let mut targets: Vec<Box<dyn Target>> = vec![
        Box::new(Floor::new(scratch.path())?),
        Box::new(StoreTarget::new(
            "mem (LogStore over MemEngine, no fsync)",
            MemEngine::new(),
        )?),
    ];
    let mut rows = Vec::new();
    for target in &mut targets {
        eprintln!("measuring {} ...", target.name());
        let lat = Samples::measure(samples, || target.append(1, 256))?;
        let t = Instant::now();
        target.append_pipelined(pipelined, 256)?;
        let per_s = pipelined as f64 / t.elapsed().as_secs_f64();
        rows.push(Row {
            name: target.name(),
            p50_us: micros(lat.percentile(50.0)),
            p99_us: micros(lat.percentile(99.0)),
            pipelined_per_s: per_s,
        });
    }
    let md = render(&rows, samples, pipelined, quick);
    let path = out.join("REPORT.md");
    std::fs::write(&path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn render(rows: &[Row], samples: usize, pipelined: u64, quick: bool) -> String {
    let floor = rows.first().map_or(1.0, |r| r.p50_us.max(f64::MIN_POSITIVE));
    let mut md = String::new();
    let mode = if quick { "quick" } else { "full" };
    let _ = writeln!(md, "# raft-store benchmark report ({mode})\n");
    let _ = writeln!(
        md,
        "Single durable append of one 256 B entry ({samples} samples) and {pipelined} pipelined 256 B appends.\n"
    );
    let _ = writeln!(
        md,
        "| target | p50 µs | p99 µs | p50 / floor | pipelined entries/s |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.2} | {:.0} |",
            r.name,
            r.p50_us,
            r.p99_us,
            r.p50_us / floor,
            r.pipelined_per_s
        );
    }
    md
}
