//! Writes a comparative Markdown report: every backend's durable append latency (p50, p99, and
//! the ratio to the fsync floor measured in the same run), pipelined throughput, and append
//! latency after a large purge against a fresh store.
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
use raft_store_bench::Target;
use raft_store_bench::backends;

struct Row {
    name: String,
    p50_us: f64,
    p99_us: f64,
    pipelined_per_s: f64,
}

struct PurgeRow {
    name: String,
    fresh: Samples,
    purged: Samples,
}

fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Single durable appends, then pipelined ones, on one target.
fn appends(name: &str, target: &mut dyn Target, samples: usize, pipelined: u64) -> std::io::Result<Row> {
    let lat = Samples::measure(samples, || target.append(1, 256))?;
    let t = Instant::now();
    target.append_pipelined(pipelined, 256)?;
    Ok(Row {
        name: name.to_string(),
        p50_us: micros(lat.percentile(50.0)),
        p99_us: micros(lat.percentile(99.0)),
        pipelined_per_s: pipelined as f64 / t.elapsed().as_secs_f64(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("target/report"), PathBuf::from);
    let (samples, pipelined, purge_n) = if quick {
        (300, 1000, 20_000)
    } else {
        (3000, 10_000, 100_000)
    };
    std::fs::create_dir_all(&out)?;
    let scratch = tempfile::tempdir_in(&out)?;

    let mut rows = Vec::new();
    let mut floor = Floor::new(scratch.path())?;
    eprintln!("[1/3] floor: write + fdatasync ...");
    rows.push(appends(&floor.name(), &mut floor, samples, pipelined)?);

    let mut purge_rows = Vec::new();
    for (i, (name, open)) in backends().into_iter().enumerate() {
        eprintln!("[2/3] {name}: single durable appends and {pipelined} pipelined appends ...");
        let dir = scratch.path().join(format!("{i}-{name}"));
        let mut target = open(&dir)?;
        rows.push(appends(name, &mut *target, samples, pipelined)?);
        drop(target);

        eprintln!("[3/3] {name}: appends on a fresh store and after purging {purge_n} entries ...");
        let mut fresh = open(&scratch.path().join(format!("{i}-{name}-fresh")))?;
        let mut purged = open(&scratch.path().join(format!("{i}-{name}-purged")))?;
        purged.fill(purge_n, 256)?;
        let last = purged.last_index();
        purged.purge(last)?;
        // Interleaved, so both see the same disk conditions.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            a.extend(Samples::measure(1, || fresh.append(1, 256))?.0);
            b.extend(Samples::measure(1, || purged.append(1, 256))?.0);
        }
        a.sort_unstable();
        b.sort_unstable();
        purge_rows.push(PurgeRow {
            name: name.to_string(),
            fresh: Samples(a),
            purged: Samples(b),
        });
    }

    let md = render(&rows, &purge_rows, samples, pipelined, purge_n, quick);
    let path = out.join("REPORT.md");
    std::fs::write(&path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn render(
    rows: &[Row],
    purge_rows: &[PurgeRow],
    samples: usize,
    pipelined: u64,
    purge_n: u64,
    quick: bool,
) -> String {
    let floor = rows.first().map_or(1.0, |r| r.p50_us.max(f64::MIN_POSITIVE));
    let mut md = String::new();
    let mode = if quick { "quick" } else { "full" };
    let _ = writeln!(md, "# raft-store benchmark report ({mode})\n");
    let _ = writeln!(
        md,
        "Every append below is durable when timed. Single durable append of one 256 B entry ({samples} samples); {pipelined} appends of one 256 B entry submitted without waiting, timed until the last callback.\n"
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
    let _ = writeln!(
        md,
        "\n## Appends after a purge\n\nOne 256 B durable append at a time, interleaved between a fresh store and a store that appended and then purged {purge_n} entries ({samples} samples each).\n"
    );
    let _ = writeln!(
        md,
        "| target | fresh p50 µs | fresh p99 µs | purged p50 µs | purged p99 µs | p50 ratio | p99 ratio |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for r in purge_rows {
        let (f50, f99) = (micros(r.fresh.percentile(50.0)), micros(r.fresh.percentile(99.0)));
        let (p50, p99) = (
            micros(r.purged.percentile(50.0)),
            micros(r.purged.percentile(99.0)),
        );
        let _ = writeln!(
            md,
            "| {} | {f50:.1} | {f99:.1} | {p50:.1} | {p99:.1} | {:.2} | {:.2} |",
            r.name,
            p50 / f50.max(f64::MIN_POSITIVE),
            p99 / f99.max(f64::MIN_POSITIVE)
        );
    }
    md
}
