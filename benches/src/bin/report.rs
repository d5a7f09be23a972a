//! Runs the fixed benchmark matrix on every target and writes the comparative report:
//! `REPORT.md`, `latency.svg`, `throughput.svg` and `report.json` (every raw sample).
//!
//! ```sh
//! cargo run --release -p raft-store-bench --bin report -- [--quick] [--out DIR] [--only a,b] [--openraft 0.9]
//! ```
//!
//! `--openraft 0.9` drives the backends' log stores through openraft 0.9's storage traits (the
//! glue of feature `openraft-0-9`) instead of 0.10's, for the figures a 0.9 application gets.
//!
//! `--quick` (17-27 s on the project machine, the limit is 2 minutes) runs every operation with
//! fewer runs and a 100,000-entry store for the large-store figures; the full mode (under 4
//! minutes there, the limit is 20) uses 1,000,000 entries.

#![forbid(unsafe_code)]
// Statistics over sample counts: the counts are far below 2^52, so float casts are exact enough.
#![allow(clippy::cast_precision_loss)]

use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use raft_store_bench::Kind;
use raft_store_bench::Op;
use raft_store_bench::Samples;
use raft_store_bench::Target;
use raft_store_bench::TargetSpec;
use raft_store_bench::report;
use raft_store_bench::report::AfterPurge;
use raft_store_bench::report::DiskUse;
use raft_store_bench::report::Measurement;
use raft_store_bench::report::NotApplicable;
use raft_store_bench::report::Report;
use raft_store_bench::report::Summary;

/// How many runs of what: the two modes differ only here.
struct Plan {
    mode: &'static str,
    headline_runs: usize,
    /// Runs of an append cell writing under 1 MiB per call; heavier cells get a quarter.
    append_runs: usize,
    pipelined_runs: usize,
    get_runs: usize,
    truncate_runs: usize,
    purge_runs: [(u64, usize); 2],
    big: u64,
    reopen_runs: usize,
    after_purge_runs: usize,
}

const QUICK: Plan = Plan {
    mode: "quick",
    headline_runs: 300,
    append_runs: 20,
    pipelined_runs: 3,
    get_runs: 200,
    truncate_runs: 5,
    purge_runs: [(10_000, 3), (100_000, 1)],
    big: 100_000,
    reopen_runs: 3,
    after_purge_runs: 300,
};

const FULL: Plan = Plan {
    mode: "full",
    headline_runs: 3000,
    append_runs: 200,
    pipelined_runs: 20,
    get_runs: 2000,
    truncate_runs: 30,
    purge_runs: [(10_000, 10), (100_000, 3)],
    big: 1_000_000,
    reopen_runs: 5,
    after_purge_runs: 3000,
};

struct Runner {
    plan: &'static Plan,
    started: Instant,
    report: Report,
}

impl Runner {
    fn progress(&self, what: &str) {
        let s = self.started.elapsed().as_secs();
        eprintln!("[{:02}:{:02}] {what}", s / 60, s % 60);
    }

    /// Measure `op` `runs` times on `target` and record it, or record that it does not apply.
    fn measure(&mut self, target: &mut dyn Target, op: Op, runs: usize) -> io::Result<()> {
        let name = target.name().to_string();
        self.progress(&format!("{name}: {} x{runs}", op.label()));
        let result = op
            .prepare(target)
            .and_then(|()| Samples::collect(runs, || op.run(target)));
        match result {
            Ok(samples) => self
                .report
                .measurements
                .push(Measurement::new(&name, op, &samples)),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.report.not_applicable.push(NotApplicable {
                    target: name,
                    label: op.label(),
                });
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{name}: {}: {e}", op.label()))),
        }
        Ok(())
    }

    /// The headline operations (single durable append, pipelined appends), which the targets
    /// to reach compare as ratios: every target in turn, a slice of the runs at a time, so a
    /// change of the disk's speed during the run (fsync latency here moves by tens of percent
    /// from minute to minute) falls on all targets alike instead of on whichever ran then.
    fn interleaved(&mut self, specs: &[TargetSpec], dir: &Path) -> io::Result<()> {
        const ROUNDS: usize = 10;
        let plan = self.plan;
        let mut targets = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            targets.push((spec.open)(&dir.join(format!("{i}-{}", spec.name)))?);
        }
        for (op, runs) in [
            (report::HEADLINE, plan.headline_runs),
            (report::PIPELINED, plan.pipelined_runs),
        ] {
            self.progress(&format!(
                "every target in turn, {ROUNDS} rounds: {} x{runs}",
                op.label()
            ));
            let mut samples: Vec<Option<Vec<Duration>>> = Vec::with_capacity(targets.len());
            for t in &mut targets {
                samples.push(match op.prepare(&mut **t) {
                    Ok(()) => Some(Vec::with_capacity(runs)),
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => None,
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("{}: {}: {e}", t.name(), op.label()),
                        ));
                    }
                });
            }
            for round in 0..ROUNDS {
                let chunk = runs / ROUNDS + usize::from(round < runs % ROUNDS);
                for (t, s) in targets.iter_mut().zip(&mut samples) {
                    if let Some(s) = s {
                        for _ in 0..chunk {
                            s.push(op.run(&mut **t).map_err(|e| {
                                io::Error::new(e.kind(), format!("{}: {}: {e}", t.name(), op.label()))
                            })?);
                        }
                    }
                }
            }
            for (t, s) in targets.iter().zip(samples) {
                match s {
                    Some(s) => self.report.measurements.push(Measurement::new(
                        t.name(),
                        op,
                        &Samples::from_unsorted(s),
                    )),
                    None => self.report.not_applicable.push(NotApplicable {
                        target: t.name().to_string(),
                        label: op.label(),
                    }),
                }
            }
        }
        Ok(())
    }

    /// Every other operation of the matrix on one fresh target.
    fn matrix(&mut self, spec: &TargetSpec, dir: &Path) -> io::Result<()> {
        let plan = self.plan;
        let mut t = (spec.open)(&dir.join("matrix"))?;
        for size in [64, 1024, 16 * 1024] {
            for batch in [1u64, 16, 256] {
                let heavy = batch * size as u64 >= 1 << 20;
                let runs = if heavy {
                    (plan.append_runs / 4).max(3)
                } else {
                    plan.append_runs
                };
                self.measure(&mut *t, Op::Append { batch, size }, runs)?;
            }
        }
        for entries in [1, 64, 1024] {
            self.measure(&mut *t, Op::GetLog { entries }, plan.get_runs)?;
        }
        for entries in [10, 1000] {
            self.measure(&mut *t, Op::TruncateLast { entries }, plan.truncate_runs)?;
        }
        for (entries, runs) in plan.purge_runs {
            self.measure(&mut *t, Op::Purge { entries }, runs)?;
        }
        Ok(())
    }

    /// The large store: fill, bytes on disk, reopen, then purge everything and compare appends
    /// with a fresh store.
    fn big_store(&mut self, spec: &TargetSpec, dir: &Path) -> io::Result<()> {
        let plan = self.plan;
        if spec.kind == Kind::Floor {
            return Ok(());
        }
        let mut big = (spec.open)(&dir.join("big"))?;
        self.progress(&format!("{}: filling {} entries", spec.name, plan.big));
        let t = Instant::now();
        big.fill(plan.big, 256)?;
        let fill_s = t.elapsed().as_secs_f64();
        if let Some(bytes) = big.disk_bytes()? {
            self.report.disk.push(DiskUse {
                target: spec.name.into(),
                entries: plan.big,
                bytes,
                bytes_per_million: bytes as f64 * 1e6 / plan.big as f64,
                fill_entries_per_s: plan.big as f64 / fill_s,
            });
        }
        self.measure(&mut *big, Op::Reopen { entries: plan.big }, plan.reopen_runs)?;

        self.progress(&format!(
            "{}: purging {} entries, then appending beside a fresh store",
            spec.name, plan.big
        ));
        let last = big.last_index();
        big.purge_upto(last)?;
        let mut fresh = (spec.open)(&dir.join("fresh"))?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..plan.after_purge_runs {
            a.push(timed(|| fresh.append(1, 256))?);
            b.push(timed(|| big.append(1, 256))?);
        }
        self.report.after_purge.push(AfterPurge {
            target: spec.name.into(),
            purged_entries: plan.big,
            fresh: Summary::of(&Samples::from_unsorted(a)),
            purged: Summary::of(&Samples::from_unsorted(b)),
        });
        Ok(())
    }
}

fn timed(op: impl FnOnce() -> io::Result<()>) -> io::Result<Duration> {
    let t = Instant::now();
    op()?;
    Ok(t.elapsed())
}

fn usage() -> ! {
    eprintln!("usage: report [--quick] [--out DIR] [--only target,target] [--openraft 0.10|0.9]");
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut plan = &FULL;
    let mut out = PathBuf::from("target/report");
    let mut only: Option<Vec<String>> = None;
    let mut line = raft_store_bench::OpenraftLine::V0_10;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => plan = &QUICK,
            "--out" => out = it.next().map_or_else(|| usage(), PathBuf::from),
            "--only" => {
                only = Some(
                    it.next()
                        .map_or_else(|| usage(), |v| v.split(',').map(String::from).collect()),
                );
            }
            "--openraft" => {
                line = match it.next().map(String::as_str) {
                    Some("0.10") => raft_store_bench::OpenraftLine::V0_10,
                    Some("0.9") => raft_store_bench::OpenraftLine::V0_9,
                    _ => usage(),
                };
            }
            _ => usage(),
        }
    }
    let mut specs = raft_store_bench::targets_on(line);
    if let Some(only) = &only {
        if let Some(unknown) = only.iter().find(|o| !specs.iter().any(|s| s.name == o.as_str())) {
            let known: Vec<_> = specs.iter().map(|s| s.name).collect();
            return Err(format!("unknown target {unknown:?}; known: {}", known.join(", ")).into());
        }
        specs.retain(|s| only.iter().any(|o| o == s.name));
    }
    std::fs::create_dir_all(&out)?;
    let scratch = tempfile::tempdir_in(&out)?;

    let mut runner = Runner {
        plan,
        started: Instant::now(),
        report: Report {
            mode: plan.mode.into(),
            openraft: line.name().into(),
            command: std::iter::once("cargo run --release -p raft-store-bench --bin report --".to_string())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            generated_utc: report::utc_now(),
            elapsed_s: 0.0,
            machine: report::Machine::describe(scratch.path(), line),
            targets: specs.iter().map(report::TargetInfo::from).collect(),
            measurements: Vec::new(),
            not_applicable: Vec::new(),
            disk: Vec::new(),
            after_purge: Vec::new(),
        },
    };
    runner.progress(&format!(
        "{} mode: {} targets, stores under {} ({})",
        plan.mode,
        specs.len(),
        scratch.path().display(),
        runner.report.machine.filesystem
    ));
    let headline_dir = scratch.path().join("interleaved");
    runner.interleaved(&specs, &headline_dir)?;
    match std::fs::remove_dir_all(&headline_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    for (i, spec) in specs.iter().enumerate() {
        let dir = scratch.path().join(format!("{i}-{}", spec.name));
        runner.progress(&format!("== {} ({}/{})", spec.name, i + 1, specs.len()));
        runner.matrix(spec, &dir)?;
        runner.big_store(spec, &dir)?;
        // Free the disk before the next target (a target in memory made no directory).
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    runner.report.elapsed_s = runner.started.elapsed().as_secs_f64();

    let r = &runner.report;
    std::fs::write(out.join("REPORT.md"), report::markdown(r))?;
    std::fs::write(out.join("latency.svg"), report::latency_svg(r))?;
    std::fs::write(out.join("throughput.svg"), report::throughput_svg(r, 1024))?;
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(r)?)?;
    for c in r.checks() {
        eprintln!("{}: {} ({})", c.goal, c.measured, c.verdict);
    }
    runner.progress(&format!(
        "wrote {}/REPORT.md, latency.svg, throughput.svg, report.json",
        out.display()
    ));
    Ok(())
}
