//! The comparative report: results as data (serialized to JSON as they are), rendered to Markdown
//! with every latency also as a ratio to the floor measured in the same run, and two SVG charts.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::Kind;
use crate::Op;
use crate::OpenraftLine;
use crate::Samples;
use crate::TargetSpec;

/// The single durable append every other figure is compared with.
pub const HEADLINE: Op = Op::Append { batch: 1, size: 256 };
/// The pipelined append of the throughput targets.
pub const PIPELINED: Op = Op::Pipelined {
    appends: 1000,
    size: 256,
};

/// Percentiles of one measured operation, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How many runs were timed.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest run.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarize samples.
    pub fn of(s: &Samples) -> Self {
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        Self {
            samples: s.0.len(),
            p50_us: us(s.percentile(50.0)),
            p90_us: us(s.percentile(90.0)),
            p99_us: us(s.percentile(99.0)),
            max_us: us(s.percentile(100.0)),
            mean_us: us(s.mean()),
        }
    }
}

/// One operation measured on one target.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Target name.
    pub target: String,
    /// The operation.
    pub op: Op,
    /// Its label.
    pub label: String,
    /// Percentiles.
    pub latency: Summary,
    /// Entries per second at the mean latency.
    pub entries_per_s: f64,
    /// Payload MiB per second at the mean latency (0 for operations that write nothing).
    pub payload_mib_per_s: f64,
    /// Every sample, in microseconds, sorted.
    pub raw_us: Vec<f64>,
}

impl Measurement {
    /// A measurement from samples.
    pub fn new(target: &str, op: Op, samples: &Samples) -> Self {
        let latency = Summary::of(samples);
        let mean_s = (latency.mean_us / 1e6).max(f64::MIN_POSITIVE);
        Self {
            target: target.to_string(),
            op,
            label: op.label(),
            entries_per_s: op.entries() as f64 / mean_s,
            payload_mib_per_s: op.payload_bytes() as f64 / mean_s / f64::from(1u32 << 20),
            raw_us: samples
                .0
                .iter()
                .map(|d| (d.as_secs_f64() * 1e7).round() / 10.0)
                .collect(),
            latency,
        }
    }
}

/// Bytes a target's files take after appending a number of entries.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUse {
    /// Target name.
    pub target: String,
    /// Entries appended (256 B payload each).
    pub entries: u64,
    /// Allocated bytes of the target's files.
    pub bytes: u64,
    /// `bytes` scaled to 1,000,000 entries.
    pub bytes_per_million: f64,
    /// Entries per second while filling (batches of 1,000, pipelined).
    pub fill_entries_per_s: f64,
}

/// Durable single appends on a fresh store against a store that appended and purged many entries,
/// interleaved so both see the same disk.
#[derive(Debug, Clone, Serialize)]
pub struct AfterPurge {
    /// Target name.
    pub target: String,
    /// Entries appended then purged before measuring.
    pub purged_entries: u64,
    /// The fresh store.
    pub fresh: Summary,
    /// The purged store.
    pub purged: Summary,
}

/// An operation a target does not have.
#[derive(Debug, Clone, Serialize)]
pub struct NotApplicable {
    /// Target name.
    pub target: String,
    /// Operation label.
    pub label: String,
}

/// A target as the report describes it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// Name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// The crate doing the storage, with its version.
    pub engine: String,
    /// How a durable write reaches the disk.
    pub fsync: String,
}

impl From<&TargetSpec> for TargetInfo {
    fn from(t: &TargetSpec) -> Self {
        Self {
            name: t.name.into(),
            kind: t.kind,
            engine: t.engine.into(),
            fsync: t.fsync.into(),
        }
    }
}

/// Where the report was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Cores available to the process.
    pub cores: usize,
    /// Total memory.
    pub memory: String,
    /// Operating system.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// Filesystem of the directory the stores were in: type, mount point, device, options.
    pub filesystem: String,
    /// Compiler.
    pub rustc: String,
    /// The version of openraft the log stores were driven through (of the report's line).
    pub openraft: String,
}

impl Machine {
    /// Read the machine's description; `dir` is where the stores live, `line` the openraft line
    /// the log stores are driven through.
    pub fn describe(dir: &Path, line: OpenraftLine) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or_else(
                || "unknown".into(),
                |kb| format!("{:.1} GiB", kb as f64 / f64::from(1u32 << 20)),
            );
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            memory,
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            filesystem: filesystem_of(dir, &read("/proc/self/mounts")),
            rustc: env!("BENCH_RUSTC_VERSION").into(),
            openraft: openraft_version(line).into(),
        }
    }
}

/// The version of openraft's `line` this build was compiled against, from `Cargo.lock`.
pub fn openraft_version(line: OpenraftLine) -> &'static str {
    match line {
        OpenraftLine::V0_9 => env!("BENCH_VERSION_OPENRAFT_0_9"),
        OpenraftLine::V0_10 => env!("BENCH_VERSION_OPENRAFT_0_10"),
        // `OpenraftLine` is non-exhaustive: a line this build does not know has no version here.
        _ => "unknown",
    }
}

/// The mount holding `dir`, from the text of `/proc/self/mounts`: the longest mount point that
/// is a prefix of the directory's canonical path.
pub fn filesystem_of(dir: &Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, mount, fstype, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
            dir.starts_with(mount)
                .then(|| (mount.len(), format!("{fstype} on {mount} ({dev}, {opts})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// Everything one run of the report measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: String,
    /// The openraft line whose storage traits drove the log stores (`0.10` or `0.9`).
    pub openraft: String,
    /// The command that produced it.
    pub command: String,
    /// When it was produced (UTC).
    pub generated_utc: String,
    /// How long it took, in seconds.
    pub elapsed_s: f64,
    /// Where.
    pub machine: Machine,
    /// What was measured.
    pub targets: Vec<TargetInfo>,
    /// Every operation measured on every target.
    pub measurements: Vec<Measurement>,
    /// Operations a target does not have.
    pub not_applicable: Vec<NotApplicable>,
    /// Bytes on disk after the large fill.
    pub disk: Vec<DiskUse>,
    /// Appends after the large fill and a purge, against a fresh store.
    pub after_purge: Vec<AfterPurge>,
}

/// One line of the targets check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The target to reach.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Whether it was reached.
    pub met: bool,
    /// How far off it is when missed.
    pub verdict: String,
}

impl Report {
    /// The measurement of `op` on `target`, if taken.
    pub fn find(&self, target: &str, op: Op) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.target == target && m.op == op)
    }

    fn kind_of(&self, target: &str) -> Option<Kind> {
        self.targets.iter().find(|t| t.name == target).map(|t| t.kind)
    }

    fn names(&self, kind: Kind) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// What an operation's latency is divided by: the floor's figure for the same operation, or
    /// (marked) the floor's single durable append, the cost of one `fdatasync`.
    fn floor_for(&self, op: Op) -> Option<(&Measurement, bool)> {
        let floor = self.names(Kind::Floor).first().copied()?;
        self.find(floor, op)
            .map(|m| (m, true))
            .or_else(|| self.find(floor, HEADLINE).map(|m| (m, false)))
    }

    /// The issue's targets, read off the measurements.
    pub fn checks(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let backends = self.names(Kind::Backend);
        if let Some((floor, _)) = self.floor_for(HEADLINE) {
            let ratios: Vec<(&str, f64)> = backends
                .iter()
                .filter_map(|b| {
                    self.find(b, HEADLINE)
                        .map(|m| (*b, m.latency.p50_us / floor.latency.p50_us))
                })
                .collect();
            if let Some((best, r)) = ratios.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)) {
                out.push(limit(
                    "best backend's single durable append p50 within 1.3x the floor",
                    &format!("{best}: {r:.2}x"),
                    r,
                    1.3,
                    "x",
                ));
            }
            for (b, r) in ratios {
                let max = if b == "sled" { 3.0 } else { 2.5 };
                out.push(limit(
                    &format!("{b}: single durable append p50 within {max}x the floor"),
                    &format!("{r:.2}x"),
                    r,
                    max,
                    "x",
                ));
            }
        }
        // Against the faster configuration of the peer.
        let peer = self
            .names(Kind::Peer)
            .iter()
            .filter_map(|p| self.find(p, PIPELINED))
            .max_by(|a, b| a.entries_per_s.total_cmp(&b.entries_per_s))
            .map(|m| (m.target.clone(), m.entries_per_s));
        let best = backends
            .iter()
            .filter_map(|b| self.find(b, PIPELINED))
            .max_by(|a, b| a.entries_per_s.total_cmp(&b.entries_per_s));
        if let Some(best) = best {
            let eps = best.entries_per_s;
            out.push(at_least(
                "best backend's pipelined durable 256 B appends: at least 100,000 entries/s",
                &format!("{}: {:.0}/s", best.target, eps),
                eps,
                100_000.0,
            ));
            if let Some((name, peer_eps)) = peer {
                out.push(at_least(
                    &format!(
                        "best backend's pipelined throughput at least the peer's ({name}: {peer_eps:.0}/s)"
                    ),
                    &format!("{}: {eps:.0}/s", best.target),
                    eps,
                    peer_eps,
                ));
            }
        }
        let get = Op::GetLog { entries: 64 };
        for b in &backends {
            if let Some(m) = self.find(b, get) {
                let per_entry = m.latency.p50_us / 64.0;
                out.push(limit(
                    &format!("{b}: get_log of 64 entries under 1 us per entry"),
                    &format!("{per_entry:.3} us/entry (p50 {:.1} us)", m.latency.p50_us),
                    per_entry,
                    1.0,
                    " us",
                ));
            }
        }
        for mem in self.names(Kind::Memory) {
            if let Some(m) = self.find(mem, PIPELINED) {
                let per_append = m.latency.p50_us / 1000.0;
                out.push(limit(&format!("LogStore over MemEngine ({mem}): under 2 us per appended entry (1,000 pipelined single-entry appends)"), &format!("{per_append:.2} us/entry"), per_append, 2.0, " us"));
            }
        }
        // The default codec's price: MessagePack (named fields, decode check) against bincode
        // with the value comparison it is only taken with, both in memory, in this run.
        if let (Some(msgpack), Some(bincode)) =
            (self.find("mem", PIPELINED), self.find("mem-bincode", PIPELINED))
        {
            let ratio = msgpack.latency.p50_us / bincode.latency.p50_us;
            out.push(limit(
                "default codec MessagePack: at most 2x bincode's cost per pipelined entry (mem against mem-bincode, p50)",
                &format!(
                    "{:.2} us against {:.2} us per entry: {ratio:.2}x",
                    msgpack.latency.p50_us / 1000.0,
                    bincode.latency.p50_us / 1000.0
                ),
                ratio,
                2.0,
                "x",
            ));
        }
        out
    }
}

fn limit(goal: &str, measured: &str, value: f64, max: f64, unit: &str) -> Check {
    let met = value <= max;
    Check {
        goal: goal.into(),
        measured: measured.into(),
        met,
        verdict: if met {
            "met".into()
        } else {
            // Three decimals: a value just over the limit must not read as "missed by 0.00".
            format!(
                "missed by {:.3}{unit} ({:.1}% over)",
                value - max,
                (value / max - 1.0) * 100.0
            )
        },
    }
}

fn at_least(goal: &str, measured: &str, value: f64, min: f64) -> Check {
    let met = value >= min;
    Check {
        goal: goal.into(),
        measured: measured.into(),
        met,
        verdict: if met {
            "met".into()
        } else {
            format!(
                "missed by {:.0}/s ({:.0}% under)",
                min - value,
                (1.0 - value / min) * 100.0
            )
        },
    }
}

/// The Markdown report. Charts are referenced by file name, next to it.
// One section after another, in report order: splitting it would only scatter the layout.
#[allow(clippy::too_many_lines)]
pub fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "# raft-store benchmark report ({} mode, log stores on openraft {})\n",
        r.mode, r.openraft
    );
    let _ = writeln!(
        w,
        "Generated {} in {:.0} s by\n\n```sh\n{}\n```\n",
        r.generated_utc, r.elapsed_s, r.command
    );
    let _ = writeln!(
        w,
        "Every append, truncate and purge below is durable when its time stops, on every target. \
         Latencies are percentiles over the number of runs shown; `x floor` divides by the floor \
         measured in the same run: the same operation on a plain file where the floor can do it, \
         otherwise (marked *) the floor's single durable 256 B append, that is the cost of one \
         `fdatasync`. Throughput is entries (or payload MiB) per second at the mean latency. \
         The single durable append and the pipelined appends (the figures the targets compare) \
         run on every target in turn, a tenth of the runs at a time, so a drift of the disk's \
         fsync latency during the run falls on all targets alike; the other operations run one \
         target after the other.\n"
    );
    let m = &r.machine;
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (k, v) in [
        ("CPU", format!("{} ({} cores available)", m.cpu, m.cores)),
        ("memory", m.memory.clone()),
        ("OS", m.os.clone()),
        ("kernel", m.kernel.clone()),
        ("filesystem", m.filesystem.clone()),
        ("compiler", m.rustc.clone()),
        ("openraft", m.openraft.clone()),
    ] {
        let _ = writeln!(w, "| {k} | {} |", escape_cell(&v));
    }
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(
        w,
        "| target | kind | storage | how a durable write reaches the disk |\n|---|---|---|---|"
    );
    for t in &r.targets {
        let _ = writeln!(w, "| {} | {:?} | {} | {} |", t.name, t.kind, t.engine, t.fsync);
    }

    let _ = writeln!(w, "\n## Targets to reach\n");
    let _ = writeln!(w, "| goal | measured | verdict |\n|---|---|---|");
    for c in r.checks() {
        let _ = writeln!(w, "| {} | {} | {} |", c.goal, c.measured, c.verdict);
    }

    let _ = writeln!(w, "\n## Single durable append of one 256 B entry\n");
    let _ = writeln!(w, "![durable append latency by target](latency.svg)\n");
    op_table(w, r, HEADLINE);

    let _ = writeln!(w, "\n## Pipelined appends\n");
    let _ = writeln!(
        w,
        "1,000 single-entry appends of 256 B submitted without waiting, timed until the last one is \
         durable: what group commit buys. The floor has no group commit and syncs each one.\n"
    );
    op_table(w, r, PIPELINED);

    let _ = writeln!(w, "\n## Durable appends by batch and entry size\n");
    let _ = writeln!(w, "![append throughput by batch size](throughput.svg)\n");
    for op in distinct_ops(r, |op| matches!(op, Op::Append { .. }) && *op != HEADLINE) {
        let _ = writeln!(w, "### {}\n", op.label());
        op_table(w, r, op);
    }

    for (title, text, pick) in [
        (
            "Reads",
            "Warm reads (`try_get_log_entries`) of the last entries of a store, each 256 B, appended just before.",
            (|op: &Op| matches!(op, Op::GetLog { .. })) as fn(&Op) -> bool,
        ),
        (
            "Truncate",
            "Durably removing the last entries (appended untimed before each run).",
            |op| matches!(op, Op::TruncateLast { .. }),
        ),
        (
            "Purge",
            "Durably purging entries from the head (appended untimed before each run).",
            |op| matches!(op, Op::Purge { .. }),
        ),
        (
            "Reopen",
            "Closing a store and opening it again until it accepts appends.",
            |op| matches!(op, Op::Reopen { .. }),
        ),
    ] {
        let _ = writeln!(w, "\n## {title}\n\n{text}\n");
        for op in distinct_ops(r, pick) {
            let _ = writeln!(w, "### {}\n", op.label());
            op_table(w, r, op);
        }
    }

    let _ = writeln!(w, "\n## Bytes on disk\n");
    let _ = writeln!(
        w,
        "Allocated bytes of each target's files after appending entries of 256 B payload (as `du` \
         counts them), scaled to 1,000,000 entries where fewer were appended.\n"
    );
    let _ = writeln!(
        w,
        "| target | entries | bytes | bytes per 1,000,000 entries | bytes per entry | fill entries/s |\n|---|---:|---:|---:|---:|---:|"
    );
    for d in &r.disk {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {:.0} ({}) | {:.0} | {:.0} |",
            d.target,
            d.entries,
            d.bytes,
            d.bytes_per_million,
            human_bytes(d.bytes_per_million),
            d.bytes_per_million / 1e6,
            d.fill_entries_per_s
        );
    }

    if let Some(first) = r.after_purge.first() {
        let _ = writeln!(
            w,
            "\n## Appends after {} appends and a purge\n",
            first.purged_entries
        );
        let _ = writeln!(
            w,
            "Single durable 256 B appends, interleaved one by one between a fresh store and a store \
             that appended {} entries and then purged them all.\n",
            first.purged_entries
        );
        let _ = writeln!(
            w,
            "| target | runs | fresh p50 us | fresh p99 us | purged p50 us | purged p99 us | p50 purged/fresh | p99 purged/fresh |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for a in &r.after_purge {
            let _ = writeln!(
                w,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
                a.target,
                a.fresh.samples,
                a.fresh.p50_us,
                a.fresh.p99_us,
                a.purged.p50_us,
                a.purged.p99_us,
                a.purged.p50_us / a.fresh.p50_us.max(f64::MIN_POSITIVE),
                a.purged.p99_us / a.fresh.p99_us.max(f64::MIN_POSITIVE)
            );
        }
    }
    if !r.not_applicable.is_empty() {
        let _ = writeln!(w, "\n## Not applicable\n");
        for n in &r.not_applicable {
            let _ = writeln!(w, "- {}: {} (the target cannot do it)", n.target, n.label);
        }
    }
    let _ = writeln!(w, "\nRaw samples of every measurement: `report.json`.");
    md
}

fn distinct_ops(r: &Report, pick: impl Fn(&Op) -> bool) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    for m in &r.measurements {
        if pick(&m.op) && !ops.contains(&m.op) {
            ops.push(m.op);
        }
    }
    ops
}

fn op_table(w: &mut String, r: &Report, op: Op) {
    let floor = r.floor_for(op);
    let mark = if floor.is_some_and(|(_, same)| !same) {
        "*"
    } else {
        ""
    };
    let _ = writeln!(
        w,
        "| target | runs | p50 us | p99 us | p50 x floor{mark} | p99 x floor{mark} | entries/s | payload MiB/s |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for t in &r.targets {
        let Some(m) = r.find(&t.name, op) else { continue };
        let (r50, r99) = floor.map_or((String::from("-"), String::from("-")), |(f, _)| {
            (
                format!(
                    "{:.2}",
                    m.latency.p50_us / f.latency.p50_us.max(f64::MIN_POSITIVE)
                ),
                format!(
                    "{:.2}",
                    m.latency.p99_us / f.latency.p99_us.max(f64::MIN_POSITIVE)
                ),
            )
        });
        let mib = if op.payload_bytes() > 0 {
            format!("{:.1}", m.payload_mib_per_s)
        } else {
            "-".into()
        };
        let _ = writeln!(
            w,
            "| {}{} | {} | {:.1} | {:.1} | {r50} | {r99} | {:.0} | {mib} |",
            t.name,
            if r.kind_of(&t.name) == Some(Kind::Floor) {
                " (floor)"
            } else {
                ""
            },
            m.latency.samples,
            m.latency.p50_us,
            m.latency.p99_us,
            m.entries_per_s
        );
    }
    let _ = writeln!(w);
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn human_bytes(b: f64) -> String {
    if b >= f64::from(1u32 << 30) {
        format!("{:.2} GiB", b / f64::from(1u32 << 30))
    } else {
        format!("{:.1} MiB", b / f64::from(1u32 << 20))
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Horizontal bars of p50 and p99 of the headline append per target, with the floor's p50 as a
/// dashed line.
pub fn latency_svg(r: &Report) -> String {
    let rows: Vec<&Measurement> = r
        .targets
        .iter()
        .filter_map(|t| r.find(&t.name, HEADLINE))
        .collect();
    let max = rows.iter().map(|m| m.latency.p99_us).fold(1.0, f64::max);
    let (left, width, row_h) = (110.0, 520.0, 34.0);
    let height = 60.0 + row_h * rows.len() as f64;
    let xpos = |v: f64| left + v / max * width;
    let mut s = svg_head(
        left + width + 120.0,
        height,
        "Durable append of one 256 B entry: p50 and p99 (us)",
    );
    for (i, m) in rows.iter().enumerate() {
        let y = 40.0 + row_h * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 16.0,
            xml(&m.target)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y:.0}" width="{:.1}" height="12" fill="#3b6ea5"/>"##,
            xpos(m.latency.p50_us) - left
        );
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{:.0}" width="{:.1}" height="12" fill="#e0a030"/>"##,
            y + 14.0,
            xpos(m.latency.p99_us) - left
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.0}">{:.0} / {:.0}</text>"#,
            xpos(m.latency.p99_us) + 6.0,
            y + 20.0,
            m.latency.p50_us,
            m.latency.p99_us
        );
    }
    if let Some((floor, _)) = r.floor_for(HEADLINE) {
        let fx = xpos(floor.latency.p50_us);
        let _ = writeln!(
            s,
            r##"<line x1="{fx:.1}" y1="32" x2="{fx:.1}" y2="{:.0}" stroke="#c03030" stroke-dasharray="4 3"/>"##,
            height - 14.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{:.0}" font-size="11"><tspan fill="#3b6ea5">p50</tspan>  <tspan fill="#e0a030">p99</tspan>  <tspan fill="#c03030">floor p50 (write + fdatasync)</tspan></text>"##,
        height - 2.0
    );
    s.push_str("</svg>\n");
    s
}

/// Grouped bars of durable append throughput (entries/s, log scale) by batch size, per target,
/// at the given entry size.
// Short names for coordinates and loop counters read like the geometry they compute.
#[allow(clippy::many_single_char_names)]
pub fn throughput_svg(r: &Report, size: usize) -> String {
    let batches = [1u64, 16, 256];
    let colors = ["#3b6ea5", "#e0a030", "#4a9a5a"];
    let rows: Vec<(&str, Vec<Option<f64>>)> = r
        .targets
        .iter()
        .map(|t| {
            let v = batches
                .iter()
                .map(|&batch| {
                    r.find(&t.name, Op::Append { batch, size })
                        .map(|m| m.entries_per_s)
                })
                .collect();
            (t.name.as_str(), v)
        })
        .filter(|(_, v): &(&str, Vec<Option<f64>>)| v.iter().any(Option::is_some))
        .collect();
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .fold(10.0, f64::max);
    let (left, width, row_h) = (110.0, 520.0, 44.0);
    let decades = max.log10().ceil().max(1.0);
    let xpos = |v: f64| left + (v.max(1.0).log10() / decades) * width;
    let height = 70.0 + row_h * rows.len() as f64;
    let title = format!(
        "Durable appends of {} entries: entries/s by batch size (log scale)",
        crate::ops::size_label(size)
    );
    let mut s = svg_head(left + width + 90.0, height, &title);
    for d in 0..=decades as u32 {
        let gx = xpos(10f64.powi(d.cast_signed()));
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="30" x2="{gx:.1}" y2="{:.0}" stroke="#dddddd"/><text x="{gx:.1}" y="{:.0}" font-size="10" text-anchor="middle">1e{d}</text>"##,
            height - 28.0,
            height - 16.0
        );
    }
    for (i, (name, values)) in rows.iter().enumerate() {
        let y = 36.0 + row_h * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 20.0,
            xml(name)
        );
        for (j, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let by = y + 12.0 * j as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{by:.0}" width="{:.1}" height="10" fill="{}"/>"#,
                xpos(*v) - left,
                colors[j]
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.0}" font-size="10">{v:.0}</text>"#,
                xpos(*v) + 4.0,
                by + 9.0
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{:.0}" font-size="11">batch <tspan fill="{}">1</tspan>  <tspan fill="{}">16</tspan>  <tspan fill="{}">256</tspan></text>"#,
        height - 2.0,
        colors[0],
        colors[1],
        colors[2]
    );
    s.push_str("</svg>\n");
    s
}

fn svg_head(width: f64, height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        xml(title)
    )
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let doe = shifted % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn samples(us: &[u64]) -> Samples {
        Samples::from_unsorted(us.iter().map(|&u| Duration::from_micros(u)).collect())
    }

    fn report(floor_us: u64, backend_us: u64) -> Report {
        let specs = crate::targets();
        let m = |t: &str, op, us| Measurement::new(t, op, &samples(&[us; 5]));
        Report {
            mode: "test".into(),
            openraft: "0.10".into(),
            command: "test".into(),
            generated_utc: utc_now(),
            elapsed_s: 0.0,
            machine: Machine::describe(Path::new("."), OpenraftLine::V0_10),
            targets: specs.iter().map(TargetInfo::from).collect(),
            measurements: vec![
                m("floor", HEADLINE, floor_us),
                m("redb", HEADLINE, backend_us),
                m("rocksdb", HEADLINE, floor_us),
                m("redb", PIPELINED, 20_000),
                m("raft-log", PIPELINED, 10_000),
                m("redb", Op::GetLog { entries: 64 }, 128),
            ],
            not_applicable: vec![],
            disk: vec![],
            after_purge: vec![],
        }
    }

    #[test]
    fn checks_compare_with_the_floor_and_the_peer() {
        let r = report(100, 300);
        let checks = r.checks();
        let find = |prefix: &str| checks.iter().find(|c| c.goal.starts_with(prefix)).cloned();
        let best = find("best backend's single").expect("best check");
        assert!(best.met, "{best:?}");
        assert!(best.measured.starts_with("rocksdb: 1.00x"), "{best:?}");
        let redb = find("redb: single").expect("redb check");
        assert!(!redb.met);
        assert!(redb.verdict.contains("missed by 0.500x (20.0% over)"), "{redb:?}");
        // 1,000 appends in 20 ms: 50,000/s, below 100,000 and below the peer's 100,000.
        assert!(!find("best backend's pipelined durable").expect("throughput").met);
        assert!(
            !find("best backend's pipelined throughput at least")
                .expect("peer")
                .met
        );
        let get = find("redb: get_log").expect("get_log check");
        assert!(!get.met, "2 us per entry is over 1 us: {get:?}");
    }

    #[test]
    fn the_machine_names_the_openraft_of_the_report_line() {
        // Cargo.lock holds both lines; a 0.9 report once named the 0.9 version in a 0.10 run.
        for (line, prefix) in [(OpenraftLine::V0_9, "0.9."), (OpenraftLine::V0_10, "0.10.")] {
            let m = Machine::describe(Path::new("."), line);
            assert!(m.openraft.starts_with(prefix), "{line:?}: {}", m.openraft);
            let mut r = report(100, 250);
            r.machine = m;
            let md = markdown(&r);
            assert!(md.contains(&format!("| openraft | {prefix}")), "{line:?}: {md}");
        }
    }

    #[test]
    fn markdown_shows_ratios_to_the_floor() {
        let md = markdown(&report(100, 250));
        assert!(md.contains("| redb | 5 | 250.0 | 250.0 | 2.50 | 2.50 |"), "{md}");
        assert!(
            md.contains("p50 x floor*"),
            "get_log is compared with one fdatasync: {md}"
        );
    }

    #[test]
    fn charts_are_svg_with_a_bar_per_target() {
        let r = report(100, 250);
        let svg = latency_svg(&r);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Three targets measured the headline append: two bars each.
        assert_eq!(svg.matches("<rect x=\"110\"").count(), 6, "{svg}");
        assert!(throughput_svg(&r, 1024).contains("</svg>"));
    }

    #[test]
    fn mount_of_a_directory_is_the_longest_prefix() {
        let mounts = "/dev/root / ext4 rw,relatime 0 0\n/dev/sdb /work xfs rw,noatime 0 0\n";
        assert_eq!(
            filesystem_of(Path::new("/work/x/y"), mounts),
            "xfs on /work (/dev/sdb, rw,noatime)"
        );
        assert_eq!(
            filesystem_of(Path::new("/tmp/z"), mounts),
            "ext4 on / (/dev/root, rw,relatime)"
        );
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
