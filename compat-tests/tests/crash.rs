//! Crash tests on every backend: a child process (`crash-writer`) issues random appends,
//! truncates, purges, vote and committed saves through `LogStore`, printing each operation before
//! issuing it and each acknowledgement; this test kills it with `SIGKILL` while an operation of a
//! chosen kind is in flight, reopens the store and checks it holds exactly the state after some
//! prefix of the issued operations no shorter than the acknowledged one (every acknowledged entry
//! and vote there, the log contiguous, no wrong entry), then appends to it.
//!
//! 25 kills per backend by default; `RAFT_STORE_KILLS=500` for more, `RAFT_STORE_SEED` to replay.

use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

use compat_tests::LogOp;
use compat_tests::Model;
use compat_tests::Rng;
use compat_tests::model;
use compat_tests::process::Child;
use compat_tests::process::Ending;
use raft_store::Backend;
use raft_store_core::testing::util;

/// What each kill waits for: the kind of operation that must be in flight (`None`: any moment).
const TARGETS: [Option<&str>; 5] = [
    Some("append"),
    Some("truncate"),
    Some("purge"),
    Some("vote"),
    None,
];

// One kill cycle (spawn, choose the moment, kill, check, append) reads best in one place.
#[allow(clippy::too_many_lines)]
fn crash_test(backend: Backend) {
    let kills = compat_tests::count_from_env("RAFT_STORE_KILLS", 25);
    let seed = compat_tests::seed();
    eprintln!("{backend}: {kills} kills, RAFT_STORE_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = util::tempdir();
    let dir_arg = dir.path().to_str().expect("temp dir is UTF-8").to_string();
    let mut base = Model::default();
    // Per targeted kind: kills, and kills where that operation was not yet acknowledged.
    let mut landed: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let (mut survived_unacked, mut ops_total, mut acked_total) = (0usize, 0usize, 0usize);

    for k in 0..kills {
        let target = TARGETS[k % TARGETS.len()];
        let child_seed = seed.wrapping_add(k as u64).to_string();
        let child = Child::spawn(
            env!("CARGO_BIN_EXE_crash-writer"),
            &[backend.name(), &dir_arg, &child_seed],
        )
        .expect("spawn crash-writer");

        // Let a random number of matching operations pass, then kill at the next one.
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
        let (rest, ending, stderr) = child.kill().expect("kill crash-writer");
        assert_eq!(
            ending,
            Ending::Signal(9),
            "{backend}: crash-writer ended by itself before kill {k}: {stderr}"
        );
        lines.extend(rest);

        let (ops, acked) = parse(&lines);
        let kind = target.unwrap_or("any");
        let targeted = match target {
            Some(kind) => ops.iter().rposition(|op| op.kind() == kind),
            None => ops.len().checked_sub(1),
        };
        let entry = landed.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += usize::from(targeted.is_some_and(|i| i >= acked));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        base = rt.block_on(async {
            let mut store = compat_tests::open_store(backend, dir.path())
                .unwrap_or_else(|e| panic!("{backend}: reopen after kill {k}: {e}"));
            let observed = model::observe(&mut store)
                .await
                .unwrap_or_else(|e| panic!("{backend}: after kill {k} (seed {seed}): {e}"));
            let prefix = model::check(&base, &ops, acked, &observed)
                .unwrap_or_else(|e| panic!("{backend}: after kill {k} (seed {seed}): {e}"));
            survived_unacked += prefix - acked;
            ops_total += ops.len();
            acked_total += acked;

            // The store still takes appends, and keeps them.
            let last = observed.last_index();
            let op = LogOp::Append {
                term: observed.max_term(),
                first: last + 1,
                last: last + 1,
            };
            let flushed = model::issue(&mut store, &op).await.expect("append after reopen");
            if let Some(flushed) = flushed {
                util::wait_flushed(flushed)
                    .await
                    .expect("append after reopen is durable");
            }
            let mut next = observed;
            next.apply(&op);
            let again = model::observe(&mut store).await.expect("read after append");
            assert_eq!(again, next, "{backend}: the append after reopen is not there");
            next
        });
    }
    eprintln!(
        "{backend}: {kills} kills, {ops_total} operations issued, {acked_total} acknowledged, \
         {survived_unacked} unacknowledged ones found durable; \
         (kills, with that operation unacknowledged) by kind: {landed:?}"
    );
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

#[test]
fn crash_redb() {
    crash_test(Backend::Redb);
}

#[test]
fn crash_lmdb() {
    crash_test(Backend::Lmdb);
}

#[test]
fn crash_rocksdb() {
    crash_test(Backend::Rocksdb);
}

#[test]
fn crash_sled() {
    crash_test(Backend::Sled);
}
