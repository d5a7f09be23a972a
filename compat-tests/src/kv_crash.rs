//! The kill loop of the key-value state machine's crash tests: a child (`kv-writer`) applies
//! the deterministic workload ([`kv::request`]) through `KvStateMachine` beside a log store in
//! one engine, syncing, building and installing snapshots now and then; the loop kills it at a
//! random moment or just after a snapshot build or install began, crashes the store's
//! [`CrashSite`] (a kill alone, or a power cut), reopens the store and checks that the data is
//! exactly the workload's state at the applied id the state machine reports (never part of an
//! apply call), that nothing synced was lost, and that no key of an unfinished install is left.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use raft_store::Backend;

use crate::Rng;
use crate::crash_site;
use crate::crash_site::CrashSite;
use crate::crash_site::Crashes;
use crate::crash_site::Tally;
use crate::kv;
use crate::process::Child;

/// What each crash waits for: a random moment, or the start of a snapshot build or install.
const TARGETS: [&str; 3] = ["any", "B ", "N "];

/// What the child's lines of one run say.
#[derive(Debug, Default)]
struct Run {
    /// The applied index when the child was killed.
    last_applied: u64,
    /// Entries the child applied (an install rolls the count's mark back).
    applied: u64,
    /// Entries the child synced.
    synced: u64,
    in_build: bool,
    in_install: bool,
}

/// Crash the state machine of `backend` (on a new [`CrashSite`]) again and again (12 kills or
/// 25 power cuts by default, 10 on sled, the site's variable for more), checking it after each crash;
/// panics with the seed on the first store that breaks the contract, and prints a summary.
///
/// `test` names the test for the FUSE gate; `kv_writer` is the child binary's path.
pub fn run(backend: Backend, crashes: Crashes, test: &str, kv_writer: &str) {
    // sled (experimental) takes about 5 s a power cut here against redb's 0.8 s (120 s for 25
    // in one run), so it gets 10 by default; the variable still asks for more.
    let cuts = if backend.name() == "sled" { 10 } else { 25 };
    let Some(site) = CrashSite::new(crashes, test, backend, (12, cuts)) else {
        return;
    };
    let (site, crashes, seed) = (&site, site.count(), site.seed());
    let mut rng = Rng::new(seed);
    let dir_arg = site.dir_arg();
    let workload = seed.to_string();
    // The applied index every crash must keep: the last sync, lowered by a later install.
    let mut synced = 0u64;
    let (mut during_build, mut during_install, mut lost_unsynced) = (0usize, 0usize, 0u64);
    let mut tally = Tally::default();

    for k in 0..crashes {
        let child_seed = seed.wrapping_add(k as u64 + 1).to_string();
        let target = TARGETS[k % TARGETS.len()];
        let lines = kill_at(
            Child::spawn(kv_writer, &[backend.name(), &dir_arg, &workload, &child_seed]),
            target,
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{backend}: before crash {k} (seed {seed}): {e}"));
        let crash = site.crash(k, &mut rng);
        let run = parse(&lines, &mut synced);
        during_build += usize::from(run.in_build && !run.in_install);
        during_install += usize::from(run.in_install);

        let applied = check_reopen(backend, site.dir(), seed, synced)
            .unwrap_or_else(|e| panic!("{backend}: after crash {k} ({crash}, RAFT_STORE_SEED={seed}): {e}"));
        lost_unsynced += run.last_applied.saturating_sub(applied);
        tally.add(crash, run.applied, run.synced, applied.saturating_sub(synced));
    }
    let total = tally.total();
    eprintln!(
        "{backend}: {crashes} {} in {:.1?} ({during_build} inside a snapshot build, \
         {during_install} inside an install), {} entries applied, {} synced, {} unsynced \
         ones found durable, {lost_unsynced} applied but unsynced ones rolled back (allowed); \
         by crash: {tally}; every reopen consistent",
        site.noun(),
        site.elapsed(),
        total.issued,
        total.acked,
        total.beyond_ack,
    );
}

/// Reads the child's lines and kills it after a random time once it opened the store, or just
/// after a random one of the next few lines starting with `target`; returns every line.
fn kill_at(child: std::io::Result<Child>, target: &str, rng: &mut Rng) -> Result<Vec<String>, String> {
    let child = child.map_err(|e| format!("spawn kv-writer: {e}"))?;
    let wait = Duration::from_millis(rng.between(100, 900));
    let mut skip = rng.below(3);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let mut started = None;
    while let Some(line) = child.line_before(deadline) {
        if line.starts_with("R ") {
            started = Some(Instant::now());
        }
        let kill_now = if target == "any" {
            started.is_some_and(|s| s.elapsed() >= wait)
        } else if line.starts_with(target) {
            skip = skip.saturating_sub(1);
            skip == 0
        } else {
            false
        };
        lines.push(line);
        if kill_now {
            std::thread::sleep(Duration::from_micros(rng.between(0, 3000)));
            break;
        }
    }
    crash_site::kill(child, "kv-writer", &mut lines)?;
    Ok(lines)
}

/// What the child's `lines` say; `synced` (the index every crash must keep) moves up with each
/// sync and down with each install.
fn parse(lines: &[String], synced: &mut u64) -> Run {
    let mut run = Run::default();
    let (mut apply_mark, mut sync_mark) = (0u64, 0u64);
    for line in lines {
        let (tag, n) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line from kv-writer: {line:?}"));
        let n: u64 = n
            .parse()
            .unwrap_or_else(|_| panic!("bad line from kv-writer: {line:?}"));
        match tag {
            "R" => {
                run.last_applied = n;
                (apply_mark, sync_mark) = (n, n);
            }
            "A" => {
                run.last_applied = n;
                run.applied += n.saturating_sub(apply_mark);
                apply_mark = n;
                run.in_build = false;
                run.in_install = false;
            }
            "S" => {
                *synced = n;
                run.synced += n.saturating_sub(sync_mark);
                sync_mark = n;
            }
            "B" => run.in_build = true,
            "N" => {
                // An install rolls back to the snapshot: what was synced beyond it is gone on
                // purpose once the install is done.
                run.in_install = true;
                *synced = (*synced).min(n);
                apply_mark = n;
                sync_mark = sync_mark.min(n);
            }
            other => panic!("unexpected line from kv-writer: {other} {n}"),
        }
    }
    run
}

/// Reopen the store in `dir` and check it: the data is the workload's state at the applied id
/// the state machine reports, that id is not before `synced`, and no key of another generation
/// is left. Returns the applied index.
pub fn check_reopen(backend: Backend, dir: &Path, seed: u64, synced: u64) -> Result<u64, String> {
    let (_log, sm) = kv::open_kv(backend, dir).map_err(|e| format!("reopen: {e}"))?;
    let applied = sm.applied().0.map_or(0, |id| id.index);
    if applied < synced {
        return Err(format!(
            "the state machine is at {applied}, but {synced} was synced"
        ));
    }
    let mut data = BTreeMap::new();
    sm.reader()
        .scan(&mut |key, value| {
            data.insert(key.to_string(), value.to_vec());
            ControlFlow::Continue(())
        })
        .map_err(|e| format!("read: {e}"))?;
    let expected = kv::expected(seed, applied);
    if data != expected {
        return Err(format!(
            "the data is not the state at applied index {applied} (synced: {synced}): {} keys, \
             expected {}; {}",
            data.len(),
            expected.len(),
            differences(&data, &expected)
        ));
    }
    let mut raw = 0usize;
    raft_store_core::Engine::scan(
        &**sm.engine(),
        raft_store_core::Space::Data,
        raft_store_core::KeyRange::ALL,
        &mut |_, _| {
            raw += 1;
            ControlFlow::Continue(())
        },
    )
    .map_err(|e| format!("scan the data keyspace: {e}"))?;
    if raw != data.len() {
        return Err(format!(
            "{} keys of another generation are left",
            raw - data.len()
        ));
    }
    Ok(applied)
}

/// The first few keys whose values differ, each value shown by the request that wrote it (a
/// workload value starts with the index of its request).
fn differences(data: &BTreeMap<String, Vec<u8>>, expected: &BTreeMap<String, Vec<u8>>) -> String {
    let written_by = |v: Option<&Vec<u8>>| match v {
        None => "absent".to_string(),
        Some(v) => {
            let text = String::from_utf8_lossy(&v[..v.len().min(16)]).into_owned();
            let index = text.split([':', '.']).next().unwrap_or_default().to_string();
            format!("written by request {index}")
        }
    };
    let keys: std::collections::BTreeSet<&String> = data.keys().chain(expected.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| data.get(*k) != expected.get(*k))
        .map(|k| {
            format!(
                "{k}: {} (expected {})",
                written_by(data.get(k)),
                written_by(expected.get(k))
            )
        })
        .collect();
    let shown = diffs.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    format!("{} keys differ, e.g. {shown}", diffs.len())
}
