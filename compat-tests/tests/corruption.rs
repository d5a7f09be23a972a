//! Damaged files on every backend: a store is written, closed, then copied once per case with one
//! byte flipped or one file cut short at an offset of a real on-disk file. A child process
//! (`corrupt-reader`) opens each copy and prints what it reads. Every case must end with the
//! child exiting normally, having either reported an error or read back only entries, vote,
//! committed and purged ids identical to what was written: never a wrong entry, never a panic
//! or an abort.
//!
//! An earlier state of the store served without an error (the engine's recovery cut its log at
//! the damage, as after a crash) fails the test, except on sled, whose recovery does exactly that
//! (documented with the adapter); there it is counted and printed. The one other exception is
//! the LMDB meta-page damage no check can see (see `lmdb_meta_id_flip`). The case counts are
//! `RAFT_STORE_FLIPS` (default 48) and `RAFT_STORE_CUTS` (default 16) per backend.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use compat_tests::LogOp;
use compat_tests::Model;
use compat_tests::Rng;
use compat_tests::model;
use compat_tests::process::Child;
use compat_tests::process::Ending;
use raft_store::Backend;
use raft_store_testkit::util;

fn write_template(backend: Backend, dir: &Path) {
    let mut model = Model::default();
    util::run(async {
        let mut store = compat_tests::open_store(backend, dir).expect("open template store");
        for op in model::sample_ops() {
            if let Some(flushed) = model::issue(&mut store, &op).await.expect("write template") {
                util::wait_flushed(flushed).await.expect("template append");
            }
            model.apply(&op);
        }
        store.flush().await.expect("flush template");
        let observed = model::observe(&mut store).await.expect("read template");
        assert_eq!(
            observed, model,
            "{backend}: the template store reads back as written"
        );
    });
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for item in fs::read_dir(dir).expect("read dir") {
        let path = item.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            files(&path, out);
        } else if name != "RAFT_STORE.lock" && !name.starts_with("LOG") {
            // The lock file holds nothing and RocksDB's LOG files are its text diagnostics.
            out.push(path);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip { offset: u64, bit: u8 },
    Cut { len: u64 },
}

/// What a case ended as (anything else fails the test).
#[derive(Debug, Default)]
struct Outcomes {
    unchanged: usize,
    error: usize,
    /// Read back as an earlier state of the history without an error: what an engine whose
    /// recovery cuts its log at the damage serves. Allowed only where documented (sled).
    rolled_back: usize,
}

/// Compare what the child printed with the history written. `Ok(None)`: exactly the final
/// state; `Ok(Some(p))`: exactly the state after the first `p` operations of the history (an
/// earlier state, every value in it as written); `Err`: anything else (a wrong entry, a hole,
/// metadata that never was).
fn compare(lines: &[String], ops: &[LogOp]) -> Result<Option<usize>, String> {
    let mut got = Model::default();
    let mut ended = false;
    for line in lines {
        let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let nums: Vec<u64> = rest
            .split_whitespace()
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        match (tag, nums.as_slice()) {
            ("P", [t, i]) => got.purged = Some((*t, *i)),
            ("V", [t, n]) => got.vote = Some((*t, *n)),
            ("C", [t, i]) => got.committed = Some((*t, *i)),
            ("E", [i, t]) => {
                let payload = rest.splitn(3, ' ').nth(2).unwrap_or_default();
                if payload != model::payload(*t, *i) {
                    return Err(format!("wrong entry served: {line:?}"));
                }
                got.entries.insert(*i, *t);
            }
            ("END", []) => ended = true,
            _ => return Err(format!("unexpected output {line:?}")),
        }
    }
    if !ended {
        return Err("the reader printed neither END nor ERR".into());
    }
    let prefix = model::check(&Model::default(), ops, 0, &got)
        .map_err(|e| format!("served a state that never was: {e}"))?;
    Ok((prefix < ops.len()).then_some(prefix))
}

// Case building, running and judging read best in one place.
#[allow(clippy::too_many_lines)]
fn corruption_test(backend: Backend) {
    let flips = compat_tests::count_from_env("RAFT_STORE_FLIPS", 48);
    let cuts = compat_tests::count_from_env("RAFT_STORE_CUTS", 16);
    let seed = compat_tests::seed();
    let mut rng = Rng::new(seed);
    let root = util::tempdir();
    let template = root.path().join("template");
    let ops = model::sample_ops();
    write_template(backend, &template);
    // sled's recovery treats a damaged segment as the end of its log and serves the state
    // before it, without an error (documented as a limitation of the experimental adapter).
    let rollback_allowed = backend == Backend::Sled;
    let mut targets = Vec::new();
    files(&template, &mut targets);
    targets.sort();
    let sizes: Vec<u64> = targets
        .iter()
        .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    let total: u64 = sizes.iter().sum::<u64>().max(1);

    // Cases: every file gets a flip at its start and middle and a cut to half; the rest of the
    // flips fall at random offsets chosen in proportion to file size, the rest of the cuts at
    // evenly spaced lengths of the largest file.
    let mut cases: Vec<(usize, Damage)> = Vec::new();
    for (f, &size) in sizes.iter().enumerate().filter(|(_, s)| **s > 0) {
        cases.push((f, Damage::Flip { offset: 0, bit: 0 }));
        cases.push((
            f,
            Damage::Flip {
                offset: size / 2,
                bit: 3,
            },
        ));
        cases.push((f, Damage::Cut { len: size / 2 }));
    }
    let mut extra_flips = flips.saturating_sub(2 * sizes.len());
    while extra_flips > 0 {
        let mut at = rng.below(total);
        let f = sizes
            .iter()
            .position(|&s| {
                if at < s {
                    true
                } else {
                    at -= s;
                    false
                }
            })
            .unwrap_or(0);
        cases.push((
            f,
            Damage::Flip {
                offset: at,
                bit: (rng.below(8)) as u8,
            },
        ));
        extra_flips -= 1;
    }
    let largest = sizes
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| **s)
        .map_or(0, |(i, _)| i);
    let extra_cuts = cuts.saturating_sub(sizes.len()) as u64;
    for j in 0..extra_cuts {
        cases.push((
            largest,
            Damage::Cut {
                len: sizes[largest] * j / extra_cuts.max(1),
            },
        ));
    }

    let mut outcomes = Outcomes::default();
    let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (n, (f, damage)) in cases.iter().enumerate() {
        let case_dir = root.path().join(format!("case-{n}"));
        compat_tests::copy_dir(&template, &case_dir).expect("copy template");
        let rel = targets[*f].strip_prefix(&template).expect("under template");
        let path = case_dir.join(rel);
        match *damage {
            Damage::Flip { offset, bit } => {
                let mut bytes = fs::read(&path).expect("read file");
                let at = usize::try_from(offset).expect("offset fits").min(bytes.len() - 1);
                bytes[at] ^= 1 << bit;
                fs::write(&path, bytes).expect("write flipped file");
            }
            Damage::Cut { len } => {
                let file = fs::OpenOptions::new().write(true).open(&path).expect("open file");
                file.set_len(len).expect("cut file");
            }
        }
        *per_file.entry(rel.display().to_string()).or_default() += 1;
        let child = Child::spawn(
            env!("CARGO_BIN_EXE_corrupt-reader"),
            &[backend.name(), case_dir.to_str().expect("UTF-8 path")],
        )
        .expect("spawn corrupt-reader");
        let (lines, ending, stderr) = child.wait(Duration::from_secs(30)).expect("wait corrupt-reader");
        let what = format!("{backend}: case {n}: {damage:?} of {}", rel.display());
        if ending != Ending::Exited(0) {
            failures.push(format!(
                "{what}: the reader ended with {ending:?}: {}",
                stderr.trim()
            ));
        } else if lines.last().is_some_and(|l| l.starts_with("ERR ")) {
            outcomes.error += 1;
        } else {
            match compare(&lines, &ops) {
                Ok(None) => outcomes.unchanged += 1,
                Ok(Some(prefix))
                    if rollback_allowed || lmdb_meta_id_flip(backend, &template, rel, damage) =>
                {
                    eprintln!(
                        "{what}: read back the state after {prefix} of {} operations",
                        ops.len()
                    );
                    outcomes.rolled_back += 1;
                }
                Ok(Some(prefix)) => failures.push(format!(
                    "{what}: silently rolled back to the state after {prefix} of {} operations",
                    ops.len()
                )),
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
        fs::remove_dir_all(&case_dir).expect("remove case");
    }
    eprintln!(
        "{backend}: {} cases ({flips} flips asked, {cuts} cuts asked; per file {per_file:?}): {outcomes:?}, {} failures (RAFT_STORE_SEED={seed})",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        outcomes.error > 0,
        "{backend}: no damage was ever reported: the cases missed the data"
    );
}

/// The one damage LMDB's files cannot reveal (see the LMDB adapter's `check` module): bit 1 of
/// the lowest byte of a meta page's transaction id (offset 144 of meta page 0 or 1) can make the
/// previous commit's meta page look like the newer of a valid pair. LMDB then serves the state
/// one commit earlier; allowed for exactly these two flips.
fn lmdb_meta_id_flip(backend: Backend, template: &Path, file: &Path, damage: &Damage) -> bool {
    if backend != Backend::Lmdb || file != Path::new("data.mdb") {
        return false;
    }
    // The page size, from meta page 0 of the undamaged template (`md_pad` of the free-page db).
    let page_size = fs::read(template.join(file))
        .ok()
        .and_then(|b| Some(u64::from(u32::from_le_bytes(b.get(40..44)?.try_into().ok()?))));
    matches!((*damage, page_size), (Damage::Flip { offset, bit: 1 }, Some(page)) if offset == 144 || offset == page + 144)
}

#[test]
fn corruption_redb() {
    corruption_test(Backend::Redb);
}

#[test]
fn corruption_lmdb() {
    corruption_test(Backend::Lmdb);
}

#[test]
fn corruption_rocksdb() {
    corruption_test(Backend::Rocksdb);
}

#[test]
fn corruption_sled() {
    corruption_test(Backend::Sled);
}
