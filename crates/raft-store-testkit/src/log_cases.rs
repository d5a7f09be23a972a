//! Log cases for any openraft `RaftLogStorage` that a [`StoreOpener`] can open and reopen.

use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::RaftLogStorage;

use super::CaseError;
use super::CaseResult;
use super::StoreOpener;
use super::rng::Rng;
use super::rng::SEED_ENV;
use super::rng::count_from_env;
use super::rng::seed;
use super::util::append;
use super::util::append_nowait;
use super::util::entries;
use super::util::entry;
use super::util::entry_with;
use super::util::has_fired;
use super::util::indexes;
use super::util::log_id;
use super::util::same_entries;
use super::util::tempdir;
use super::util::vote;
use super::util::wait_flushed;
use crate::ensure;

/// The store cases for any store, on disk or in memory.
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_case_list {
    // The cases that need the store's files; a store kept in memory has none.
    (on_disk $mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            flipped_byte_under_the_store,
        );
    };
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            reopen_keeps_entries,
            reopen_keeps_vote_and_committed,
            purge_then_reopen,
            purge_keeps_the_first_kept_entry,
            readable_when_append_returns,
            log_state_counts_unflushed_entries,
            truncate_then_append_overwrites_tail,
            append_with_gap_is_refused,
            large_entry_round_trips,
            hundred_thousand_entries,
            reader_sees_contiguous_prefix_during_appends,
        );
    };
}

/// Two purges with reopens between them keep every entry after the second purge: the sequence
/// an outside run reported losing entry 10 on RocksDB (whose file deletion after a purge
/// included the first kept key). Whether it meets the bad file layout depends on when the
/// engine flushes; `log_under::purge_after_compaction_keeps_the_next_entry` forces the layout.
pub async fn purge_keeps_the_first_kept_entry<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    {
        let mut s = o.open(dir.path())?;
        append(&mut s, entries(1, 1, 11)).await?;
    }
    {
        let mut s = o.open(dir.path())?;
        s.purge(log_id(1, 1)).await?;
        append(&mut s, entries(1, 11, 21)).await?;
    }
    {
        let mut s = o.open(dir.path())?;
        s.purge(log_id(1, 9)).await?;
    }
    let mut s = o.open(dir.path())?;
    let got = s.get_log_reader().await.try_get_log_entries(10..21).await?;
    same_entries(&got, &entries(1, 10, 21))?;
    ensure!(
        s.get_log_state().await?.last_purged_log_id == Some(log_id(1, 9)),
        "last purged after reopen"
    );
    Ok(())
}

/// Entries, their order and payloads survive closing and reopening the store.
pub async fn reopen_keeps_entries<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let want = entries(1, 1, 51);
    {
        let mut s = o.open(dir.path())?;
        for chunk in want.chunks(7) {
            append(&mut s, chunk.to_vec()).await?;
        }
    }
    let mut s = o.open(dir.path())?;
    let state = s.get_log_state().await?;
    ensure!(
        state.last_log_id == Some(log_id(1, 50)),
        "after reopen last log id is {:?}",
        state.last_log_id
    );
    ensure!(
        state.last_purged_log_id.is_none(),
        "after reopen last purged is {:?}",
        state.last_purged_log_id
    );
    let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &want)?;
    append(&mut s, vec![entry(2, 51)]).await?;
    ensure!(
        s.get_log_state().await?.last_log_id == Some(log_id(2, 51)),
        "append after reopen"
    );
    Ok(())
}

/// `save_vote` and `save_committed` survive reopen, the latest value winning.
pub async fn reopen_keeps_vote_and_committed<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    {
        let mut s = o.open(dir.path())?;
        ensure!(
            s.get_log_reader().await.read_vote().await?.is_none(),
            "a new store has a vote"
        );
        append(&mut s, entries(1, 1, 6)).await?;
        s.save_vote(&vote(1, 3)).await?;
        s.save_vote(&vote(2, 4)).await?;
        s.save_committed(Some(log_id(1, 3))).await?;
        s.save_committed(Some(log_id(1, 4))).await?;
        ensure!(
            s.read_committed().await? == Some(log_id(1, 4)),
            "read_committed before reopen"
        );
        append(&mut s, vec![entry(1, 6)]).await?;
    }
    let mut s = o.open(dir.path())?;
    let v = s.get_log_reader().await.read_vote().await?;
    ensure!(
        v == Some(vote(2, 4)),
        "after reopen the vote is {v:?}, expected the last saved one"
    );
    let c = s.read_committed().await?;
    ensure!(c == Some(log_id(1, 4)), "after reopen committed is {c:?}");
    Ok(())
}

/// Purged entries stay gone and the last purged id stays after reopen; the rest is intact.
pub async fn purge_then_reopen<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    {
        let mut s = o.open(dir.path())?;
        append(&mut s, entries(1, 1, 21)).await?;
        s.purge(log_id(1, 10)).await?;
        let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
        ensure!(
            indexes(&got) == (11..21).collect::<Vec<_>>(),
            "after purge(10) read {:?}",
            indexes(&got)
        );
        append(&mut s, vec![entry(1, 21)]).await?;
    }
    let mut s = o.open(dir.path())?;
    let state = s.get_log_state().await?;
    ensure!(
        state.last_purged_log_id == Some(log_id(1, 10)),
        "last purged after reopen: {:?}",
        state.last_purged_log_id
    );
    ensure!(
        state.last_log_id == Some(log_id(1, 21)),
        "last log id after reopen: {:?}",
        state.last_log_id
    );
    let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &entries(1, 11, 22))?;

    // Purging everything leaves an empty log whose last log id is the purged one.
    s.purge(log_id(1, 21)).await?;
    drop(s);
    let mut s = o.open(dir.path())?;
    let state = s.get_log_state().await?;
    ensure!(
        state.last_purged_log_id == Some(log_id(1, 21)) && state.last_log_id == Some(log_id(1, 21)),
        "after purging all and reopen: {state:?}"
    );
    ensure!(
        s.get_log_reader()
            .await
            .try_get_log_entries(0..100)
            .await?
            .is_empty(),
        "purged entries read back"
    );
    append(&mut s, vec![entry(2, 22)]).await?;
    Ok(())
}

/// Entries are readable as soon as `append` returns, before the callback reports them durable.
pub async fn readable_when_append_returns<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let mut s = o.open(dir.path())?;
    let mut reader = s.get_log_reader().await;
    let mut pending = Vec::new();
    for i in 1..=20 {
        pending.push(append_nowait(&mut s, vec![entry(1, i)]).await?);
        let got = reader.try_get_log_entries(i..=i).await?;
        same_entries(&got, &[entry(1, i)])?;
    }
    for rx in pending {
        wait_flushed(rx).await?;
    }
    Ok(())
}

/// Rounds of [`log_state_counts_unflushed_entries`]: each is one chance to read while an
/// append's flush is still running.
const UNFLUSHED_ROUNDS: u64 = 200;

/// As soon as `append` returns, `get_log_state` counts its entries and a reader returns them,
/// before the callback reports them durable: openraft reads the log state and then the entries
/// it names while its appends are still being flushed. A store that reports only flushed
/// entries would have openraft send or vote on a log it believes shorter than it is. Each
/// round appends without waiting and reads at once; a store that flushes inside `append` has
/// nothing unflushed to read, and passes.
pub async fn log_state_counts_unflushed_entries<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let mut s = o.open(dir.path())?;
    let mut pending = Vec::new();
    // Rounds whose reads all ran before the append's callback fired: where the case checked
    // what it is about (reported when it fails).
    let mut unflushed_reads = 0u64;
    for i in 1..=UNFLUSHED_ROUNDS {
        let rx = append_nowait(&mut s, vec![entry(1, i)]).await?;
        let state = s.get_log_state().await?;
        let got = s.get_log_reader().await.try_get_log_entries(1..=i).await?;
        let before_flush = !has_fired(&rx);
        unflushed_reads += u64::from(before_flush);
        let when = if before_flush {
            "before its flush callback fired"
        } else {
            "(its flush callback had fired)"
        };
        ensure!(
            state.last_log_id == Some(log_id(1, i)),
            "after append of entry {i} returned, {when}, get_log_state says the last log id is              {:?}: entries appended but not yet flushed must count              ({unflushed_reads} of {i} rounds read before the flush)",
            state.last_log_id
        );
        same_entries(&got, &entries(1, 1, i + 1))
            .map_err(|e| format!("after append of entry {i} returned, {when}: {e}"))?;
        pending.push(rx);
    }
    for rx in pending {
        wait_flushed(rx).await?;
    }
    Ok(())
}

/// `truncate_after` removes exactly the tail, an append then overwrites it, and both survive
/// reopen; `truncate_after(None)` empties the log.
pub async fn truncate_then_append_overwrites_tail<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let want: Vec<_> = entries(1, 1, 6).into_iter().chain(entries(2, 6, 9)).collect();
    {
        let mut s = o.open(dir.path())?;
        append(&mut s, entries(1, 1, 11)).await?;
        s.truncate_after(Some(log_id(1, 5))).await?;
        let state = s.get_log_state().await?;
        ensure!(
            state.last_log_id == Some(log_id(1, 5)),
            "last log id after truncate_after(5): {:?}",
            state.last_log_id
        );
        let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
        ensure!(
            indexes(&got) == vec![1, 2, 3, 4, 5],
            "after truncate_after(5) read {:?}",
            indexes(&got)
        );
        // Appended without waiting: the new tail must replace the old one in reads at once.
        let rx = append_nowait(&mut s, entries(2, 6, 9)).await?;
        let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
        same_entries(&got, &want)?;
        wait_flushed(rx).await?;
    }
    let mut s = o.open(dir.path())?;
    let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &want)?;
    ensure!(
        s.get_log_state().await?.last_log_id == Some(log_id(2, 8)),
        "last log id after reopen"
    );

    s.truncate_after(None).await?;
    ensure!(
        s.get_log_reader()
            .await
            .try_get_log_entries(0..100)
            .await?
            .is_empty(),
        "truncate_after(None) left entries"
    );
    append(&mut s, vec![entry(3, 1)]).await?;
    drop(s);
    let mut s = o.open(dir.path())?;
    let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &[entry(3, 1)])?;
    Ok(())
}

/// An append that would leave a gap, or that overlaps the log without a truncate, is refused and
/// writes nothing.
pub async fn append_with_gap_is_refused<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let mut s = o.open(dir.path())?;
    append(&mut s, entries(1, 1, 6)).await?;
    let bad: [(&str, Vec<_>); 3] = [
        ("a gap after index 5", vec![entry(1, 7), entry(1, 8)]),
        ("an overlap at index 3", vec![entry(1, 3)]),
        ("a hole inside the batch", vec![entry(1, 6), entry(1, 8)]),
    ];
    for (what, batch) in bad {
        let result = append_nowait(&mut s, batch).await;
        match result {
            Err(_) => {}
            Ok(rx) => {
                ensure!(
                    wait_flushed(rx).await.is_err(),
                    "an append with {what} was accepted"
                );
            }
        }
        let state = s.get_log_state().await?;
        ensure!(
            state.last_log_id == Some(log_id(1, 5)),
            "a refused append ({what}) moved the last log id to {:?}",
            state.last_log_id
        );
    }
    drop(s);
    let mut s = o.open(dir.path())?;
    let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
    same_entries(&got, &entries(1, 1, 6))?;
    append(&mut s, vec![entry(1, 6)]).await?;
    Ok(())
}

/// A 4 MiB entry round-trips, before and after reopen.
pub async fn large_entry_round_trips<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let payload: String = (0..4usize << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let big = entry_with(1, 2, payload);
    let want = vec![entry(1, 1), big, entry(1, 3)];
    {
        let mut s = o.open(dir.path())?;
        append(&mut s, want.clone()).await?;
        same_entries(&s.get_log_reader().await.try_get_log_entries(1..4).await?, &want)?;
    }
    let mut s = o.open(dir.path())?;
    same_entries(&s.get_log_reader().await.try_get_log_entries(1..4).await?, &want)?;
    Ok(())
}

/// 100,000 entries: reads at both edges, beyond them, across a purge and across reopen.
pub async fn hundred_thousand_entries<O: StoreOpener>(o: &O) -> CaseResult {
    const N: u64 = 100_000;
    let dir = tempdir();
    let mut s = o.open(dir.path())?;
    let mut pending = Vec::new();
    for start in (1..=N).step_by(1000) {
        pending.push(append_nowait(&mut s, entries(1, start, start + 1000)).await?);
    }
    for rx in pending {
        wait_flushed(rx).await?;
    }
    for round in ["before reopen", "after reopen"] {
        let mut r = s.get_log_reader().await;
        let edges: [(u64, u64, u64, u64); 7] = [
            (0, 1, 0, 0),
            (1, 2, 1, 2),
            (N, N + 1, N, N + 1),
            (N - 10, N + 10, N - 10, N + 1),
            (N + 1, N + 100, 0, 0),
            (50_000, 50_064, 50_000, 50_064),
            (0, u64::MAX, 1, N + 1),
        ];
        for (from, to, want_from, want_to) in edges {
            let got = r.try_get_log_entries(from..to).await?;
            let want = if want_from == want_to {
                Vec::new()
            } else {
                entries(1, want_from, want_to)
            };
            same_entries(&got, &want).map_err(|e| format!("{round}: read {from}..{to}: {e}"))?;
        }
        drop(r);
        if round == "before reopen" {
            drop(s);
            s = o.open(dir.path())?;
        }
    }
    s.purge(log_id(1, 30_000)).await?;
    let mut r = s.get_log_reader().await;
    let got = r.try_get_log_entries(29_990..30_010).await?;
    same_entries(&got, &entries(1, 30_001, 30_010))?;
    drop(r);
    drop(s);
    let mut s = o.open(dir.path())?;
    let got = s
        .get_log_reader()
        .await
        .try_get_log_entries(30_000..30_002)
        .await?;
    same_entries(&got, &[entry(1, 30_001)])?;
    let state = s.get_log_state().await?;
    ensure!(
        state.last_purged_log_id == Some(log_id(1, 30_000)) && state.last_log_id == Some(log_id(1, N)),
        "log state after purge and reopen: {state:?}"
    );
    Ok(())
}

/// A reader running beside appends and a truncate always sees a contiguous run of entries
/// starting at the first index, with terms that never go down (no mix of old and new tails).
pub async fn reader_sees_contiguous_prefix_during_appends<O: StoreOpener>(o: &O) -> CaseResult {
    let dir = tempdir();
    let mut s = o.open(dir.path())?;
    let mut reader = s.get_log_reader().await;
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0u64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let got = reader
                    .try_get_log_entries(0..u64::MAX)
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some(first) = got.first()
                    && first.index() != 1
                {
                    return Err(format!("a read started at index {}, not 1", first.index()));
                }
                for pair in got.windows(2) {
                    let (a, b) = (&pair[0], &pair[1]);
                    if b.index() != a.index() + 1 || b.log_id.leader_id.term < a.log_id.leader_id.term {
                        return Err(format!("a read saw {a} followed by {b}"));
                    }
                }
                reads += 1;
                if finished {
                    return Ok(reads);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut pending = Vec::new();
    for i in 0..200u64 {
        pending.push(append_nowait(&mut s, entries(1, i * 5 + 1, i * 5 + 6)).await?);
        if i % 50 == 49 {
            for rx in pending.drain(..) {
                wait_flushed(rx).await?;
            }
        }
    }
    s.truncate_after(Some(log_id(1, 500))).await?;
    for i in 0..100u64 {
        pending.push(append_nowait(&mut s, entries(2, 501 + i * 3, 504 + i * 3)).await?);
    }
    for rx in pending {
        wait_flushed(rx).await?;
    }
    done.store(true, Ordering::SeqCst);
    let reads = checker.await.map_err(|e| format!("reader task failed: {e}"))??;
    ensure!(reads > 0, "the reader never completed a read");
    Ok(())
}

/// Length of the text that every payload of [`flipped_byte_under_the_store`] carries.
const PATTERN_LEN: usize = 64;

/// A fixed run of ASCII letters, long and random enough to occur in the store's files only
/// where a payload was written.
fn payload_pattern() -> String {
    let mut rng = Rng::new(0x00f1_1bbe_d0c5_7a9e);
    (0..PATTERN_LEN)
        .map(|_| {
            let letter = rng.below(52) as u8;
            char::from(if letter < 26 {
                b'A' + letter
            } else {
                b'a' + letter - 26
            })
        })
        .collect()
}

/// Where a pattern was found: a file and the offset in it.
type Found = Vec<(PathBuf, u64)>;

/// Every occurrence of `pattern` in the regular files under `dir`, with the number of files
/// and bytes searched.
fn find_under(dir: &Path, pattern: &[u8]) -> Result<(Found, usize, u64), CaseError> {
    let (mut found, mut files, mut bytes) = (Vec::new(), 0usize, 0u64);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mut children = std::fs::read_dir(&d)
            .map_err(|e| format!("listing {}: {e}", d.display()))?
            .map(|c| c.map(|c| c.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("listing {}: {e}", d.display()))?;
        // Sorted, so that a seed picks the same occurrence on every machine.
        children.sort();
        for path in children {
            let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                let content = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                files += 1;
                bytes += content.len() as u64;
                for (at, window) in content.windows(pattern.len()).enumerate() {
                    if window == pattern {
                        found.push((path.clone(), at as u64));
                    }
                }
            }
        }
    }
    Ok((found, files, bytes))
}

/// One byte of a payload flipped in the store's own files, under the store, while it is
/// closed: on reopen the store refuses to open, or fails the read with an error, or (when the
/// damaged copy was not the live one, say an old WAL record) reads exactly what was written.
/// It never returns a changed entry, vote or committed id as if nothing happened, and never
/// loses entries silently.
///
/// The store's layout is unknown here, so the case finds a long pattern the payloads carry in
/// every file under the directory and damages one occurrence: which one, which byte and which
/// bits come from the run's seed (printed; [`SEED_ENV`] replays it). The flip keeps the byte an
/// ASCII character (it changes only the low five bits of a letter), so a store without
/// checksums decodes a plausible, wrong payload rather than failing on invalid UTF-8.
///
/// A store whose files do not contain the payloads as written (compressed or encrypted) fails
/// the case with a message saying so: the case cannot check it, and says that rather than pass.
/// For stores that keep nothing on disk the macros leave this case out (`in_memory:`).
pub async fn flipped_byte_under_the_store<O: StoreOpener>(o: &O) -> CaseResult {
    let seed = seed();
    eprintln!("flipped_byte_under_the_store: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng::new(seed);
    let pattern = payload_pattern();
    let want: Vec<_> = (1..=20u64)
        .map(|i| entry_with(1, i, format!("{pattern}:t1-i{i}")))
        .collect();
    for round in 0..count_from_env("RAFT_STORE_FLIP_ROUNDS", 3) {
        let dir = tempdir();
        {
            let mut s = o.open(dir.path())?;
            for chunk in want.chunks(5) {
                append(&mut s, chunk.to_vec()).await?;
            }
            s.save_vote(&vote(2, 3)).await?;
            s.save_committed(Some(log_id(1, 15))).await?;
        }
        // A clean reopen first, so a failure below is the flipped byte's and nothing else's.
        {
            let mut s = o.open(dir.path())?;
            let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
            same_entries(&got, &want).map_err(|e| format!("round {round}, before any damage: {e}"))?;
        }
        let (found, files, bytes) = find_under(dir.path(), pattern.as_bytes())?;
        ensure!(
            !found.is_empty(),
            "the entries' payload text is in none of the {files} files ({bytes} bytes) under the store \
             directory: the case cannot damage a payload of a store that compresses or encrypts its \
             files, so it cannot check that the store notices (it fails rather than pass unchecked)"
        );
        let (path, start) = &found[rng.below(found.len() as u64) as usize];
        let at = start + rng.below(PATTERN_LEN as u64);
        let mask = rng.between(1, 0x1f) as u8;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("opening {} to damage it: {e}", path.display()))?;
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(at))?;
        std::io::Read::read_exact(&mut file, &mut byte)?;
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&[byte[0] ^ mask])?;
        file.sync_all()?;
        drop(file);
        let place = format!(
            "seed {seed}, round {round}: byte {at} of {} (occurrence {} of {}) xor {mask:#04x}",
            path.strip_prefix(dir.path()).unwrap_or(path).display(),
            found
                .iter()
                .position(|f| f == &(path.clone(), *start))
                .unwrap_or(0)
                + 1,
            found.len()
        );
        let read = async {
            let mut s = o.open(dir.path())?;
            let state = s.get_log_state().await?;
            let got = s.get_log_reader().await.try_get_log_entries(0..100).await?;
            let vote = s.get_log_reader().await.read_vote().await?;
            let committed = s.read_committed().await?;
            Ok::<_, CaseError>((state, got, vote, committed))
        }
        .await;
        let (state, got, v, committed) = match read {
            Err(e) => {
                eprintln!("{place}: refused with an error, as it may: {e}");
                continue;
            }
            Ok(read) => read,
        };
        same_entries(&got, &want).map_err(|e| format!("{place}: the store read without an error but {e}"))?;
        ensure!(
            state.last_log_id == Some(log_id(1, 20)) && state.last_purged_log_id.is_none(),
            "{place}: the store read without an error but its log state is {state:?}"
        );
        ensure!(
            v == Some(vote(2, 3)),
            "{place}: the store read without an error but the vote is {v:?}"
        );
        ensure!(
            committed == Some(log_id(1, 15)),
            "{place}: the store read without an error but committed is {committed:?}"
        );
        eprintln!("{place}: read everything right (the damaged copy was not the live one)");
    }
    Ok(())
}
