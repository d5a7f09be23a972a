//! The kill loop of the log store's crash tests: a child (`crash-writer`) issues random
//! appends, truncates, purges, vote and committed saves, printing each operation before issuing
//! it and each acknowledgement; the loop kills it while an operation of a chosen kind is in
//! flight (or at any moment), crashes the store's [`CrashSite`] (a kill alone, or a power cut),
//! reopens the store and checks with [`model::check`] that it holds exactly the state after some
//! prefix of the issued operations no shorter than the acknowledged one (every acknowledged
//! entry and vote there, the log contiguous, no wrong entry), then appends to it.

use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

use raft_store::Backend;
use raft_store_testkit::util;

use crate::LogOp;
use crate::Model;
use crate::Rng;
use crate::crash_site;
use crate::crash_site::CrashSite;
use crate::crash_site::Crashes;
use crate::crash_site::Tally;
use crate::model;
use crate::process::Child;

/// What each crash waits for: the kind of operation that must be in flight (`None`: any moment).
const TARGETS: [Option<&str>; 5] = [
    Some("append"),
    Some("truncate"),
    Some("purge"),
    Some("vote"),
    None,
];

/// Crash the log store of `backend` (on a new [`CrashSite`]) again and again (25 times by
/// default, the site's variable for more), checking it after each crash; panics with the seed
/// on the first store that breaks the contract, and prints a summary.
///
/// `test` names the test for the FUSE gate; `crash_writer` is the child binary's path.
pub fn run(backend: Backend, crashes: Crashes, test: &str, crash_writer: &str) {
    let Some(site) = CrashSite::new(crashes, test, backend, (25, 25)) else {
        return;
    };
    let (site, crashes, seed) = (&site, site.count(), site.seed());
    let mut rng = Rng::new(seed);
    let dir_arg = site.dir_arg();
    let mut base = Model::default();
    // Per targeted kind: crashes, and crashes where that operation was not yet acknowledged.
    let mut landed: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut tally = Tally::default();

    for k in 0..crashes {
        let target = TARGETS[k % TARGETS.len()];
        let child_seed = seed.wrapping_add(k as u64).to_string();
        let lines = kill_at(
            Child::spawn(crash_writer, &[backend.name(), &dir_arg, &child_seed]),
            target,
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{backend}: before crash {k} (seed {seed}): {e}"));
        let crash = site.crash(k, &mut rng);

        let (ops, acked) = parse(&lines);
        let targeted = match target {
            Some(kind) => ops.iter().rposition(|op| op.kind() == kind),
            None => ops.len().checked_sub(1),
        };
        let entry = landed.entry(target.unwrap_or("any")).or_default();
        entry.0 += 1;
        entry.1 += usize::from(targeted.is_some_and(|i| i >= acked));

        let at = |e: &dyn std::fmt::Display| -> String {
            format!("{backend}: after crash {k} ({crash}, RAFT_STORE_SEED={seed}): {e}")
        };
        let (next, prefix) = util::run(reopen_check_append(backend, site, &base, &ops, acked))
            .unwrap_or_else(|e| panic!("{}", at(&e)));
        base = next;
        tally.add(crash, ops.len() as u64, acked as u64, (prefix - acked) as u64);
    }
    let total = tally.total();
    eprintln!(
        "{backend}: {crashes} {} in {:.1?}, {} operations issued, {} acknowledged, \
         {} unacknowledged ones found durable; by crash: {tally}; \
         (crashes, with that operation unacknowledged) by targeted kind: {landed:?}",
        site.noun(),
        site.elapsed(),
        total.issued,
        total.acked,
        total.beyond_ack,
    );
    assert!(
        total.acked > 0,
        "{backend}: no operation was acknowledged in {crashes} runs"
    );
}

/// Reads the child's lines, lets a random number of operations of kind `target` pass, kills it
/// at the next one (or after a random time when `target` is `None`), and returns every line.
fn kill_at(
    child: std::io::Result<Child>,
    target: Option<&str>,
    rng: &mut Rng,
) -> Result<Vec<String>, String> {
    let child = child.map_err(|e| format!("spawn crash-writer: {e}"))?;
    let mut skip = rng.below(12);
    let any_after = Duration::from_millis(rng.between(2, 150));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut lines = Vec::new();
    while let Some(line) = child.line_before(deadline) {
        let kill_now = match (target, line.split_whitespace().nth(2)) {
            (Some(kind), Some(op)) if line.starts_with("I ") && op == kind => {
                if skip == 0 {
                    true
                } else {
                    skip -= 1;
                    false
                }
            }
            (None, _) => started.elapsed() >= any_after,
            _ => false,
        };
        lines.push(line);
        if kill_now {
            // Sometimes right away, sometimes a little later: inside the operation's sync.
            if rng.below(2) == 0 {
                std::thread::sleep(Duration::from_micros(rng.between(0, 400)));
            }
            break;
        }
    }
    crash_site::kill(child, "crash-writer", &mut lines)?;
    Ok(lines)
}

/// Reopens the store, checks it against `base` and the child's operations, and appends one
/// entry (which must be kept). Returns the new base and the prefix of `ops` the store held.
async fn reopen_check_append(
    backend: Backend,
    site: &CrashSite,
    base: &Model,
    ops: &[LogOp],
    acked: usize,
) -> Result<(Model, usize), String> {
    let mut store = crate::open_store(backend, site.dir()).map_err(|e| format!("reopen: {e}"))?;
    let observed = model::observe(&mut store).await?;
    let prefix = model::check(base, ops, acked, &observed)?;

    // The store still takes appends, and keeps them.
    let last = observed.last_index();
    let op = LogOp::Append {
        term: observed.max_term(),
        first: last + 1,
        last: last + 1,
    };
    let flushed = model::issue(&mut store, &op)
        .await
        .map_err(|e| format!("append after reopen: {e}"))?;
    if let Some(flushed) = flushed {
        util::wait_flushed(flushed)
            .await
            .map_err(|e| format!("append after reopen is not durable: {e}"))?;
    }
    let mut next = observed;
    next.apply(&op);
    let again = model::observe(&mut store)
        .await
        .map_err(|e| format!("read after append: {e}"))?;
    if again != next {
        return Err("the append after reopen is not there".to_string());
    }
    Ok((next, prefix))
}

/// The issued operations and the length of the acknowledged prefix, from the writer's output.
fn parse(lines: &[String]) -> (Vec<LogOp>, usize) {
    let mut ops = Vec::new();
    let mut acked = 0;
    for line in lines {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("I"), Some(n), Some(op)) => {
                assert_eq!(
                    n.parse::<usize>().ok(),
                    Some(ops.len()),
                    "operations are numbered in order: {line}"
                );
                ops.push(op.parse::<LogOp>().unwrap_or_else(|e| panic!("{e}")));
            }
            (Some("A"), Some(n), None) => {
                let n: usize = n.parse().unwrap_or_else(|_| panic!("bad ack line {line:?}"));
                acked = acked.max(n + 1);
            }
            (Some("R"), _, _) => {}
            _ => panic!("unexpected line from crash-writer: {line:?}"),
        }
    }
    (ops, acked)
}
