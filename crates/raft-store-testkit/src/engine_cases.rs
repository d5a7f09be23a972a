//! Engine cases: the [`Engine`] contract, for any engine.
//!
//! Every case opens a fresh engine in its own temporary directory through an [`EngineHarness`].

use std::ops::Bound;
use std::ops::ControlFlow;

use super::CaseResult;
use super::EngineHarness;
use super::tempdir;
use crate::ensure;
use raft_store_engine::Batch;
use raft_store_engine::Durability;
use raft_store_engine::Engine;
use raft_store_engine::KeyRange;
use raft_store_engine::Space;

/// The engine cases, for every engine.
///
/// Adding a case to this module means adding it here: the suite's macros expand this list into
/// one `#[test]` each, and the crate's test `every_public_case_is_listed` fails for a public
/// case that is in no list.
#[doc(hidden)]
#[macro_export]
macro_rules! __engine_case_list {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            put_get_delete,
            batch_applies_in_order,
            delete_range_bounds,
            scan_is_ordered_and_stops,
            scan_bounds,
            last_key_per_space,
            last_key_after_inner_range_delete,
            last_key_in_stays_in_its_range,
            spaces_are_separate,
            reopen_keeps_durable_writes,
            large_values_and_binary_keys,
            stated_key_limit_holds,
            scan_sees_one_state_during_writes,
        );
    };
}

fn put(space: Space, key: &[u8], value: &[u8]) -> Batch {
    let mut b = Batch::new();
    b.put(space, key, value);
    b
}

fn keys<E: Engine>(e: &E, space: Space, range: KeyRange<'_>) -> Result<Vec<Vec<u8>>, super::CaseError> {
    let mut out = Vec::new();
    e.scan(space, range, &mut |k, _| {
        out.push(k.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

fn fill<E: Engine>(e: &E, space: Space, n: u64) -> CaseResult {
    let mut b = Batch::new();
    for i in 0..n {
        b.put(space, i.to_be_bytes(), i.to_be_bytes());
    }
    e.write(&b, Durability::Durable)?;
    Ok(())
}

fn be(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// Put, get, overwrite and delete a key.
pub fn put_get_delete<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    ensure!(
        e.get(Space::Log, b"k")?.is_none(),
        "a new engine returned a value for a key never written"
    );
    e.write(&put(Space::Log, b"k", b"v1"), Durability::Durable)?;
    ensure!(
        e.get(Space::Log, b"k")?.as_deref() == Some(&b"v1"[..]),
        "get after put"
    );
    e.write(&put(Space::Log, b"k", b"v2"), Durability::Buffered)?;
    ensure!(
        e.get(Space::Log, b"k")?.as_deref() == Some(&b"v2"[..]),
        "a buffered overwrite is not visible"
    );
    let mut b = Batch::new();
    b.delete(Space::Log, b"k");
    b.delete(Space::Log, b"never-written");
    e.write(&b, Durability::Durable)?;
    ensure!(
        e.get(Space::Log, b"k")?.is_none(),
        "get after delete returned a value"
    );
    Ok(())
}

/// Operations of one batch apply in order: a later op sees the earlier ones.
pub fn batch_applies_in_order<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let mut b = Batch::new();
    b.put(Space::Meta, b"a", b"1");
    b.delete(Space::Meta, b"a");
    b.delete(Space::Meta, b"b");
    b.put(Space::Meta, b"b", b"2");
    b.put(Space::Log, be(1), b"x");
    b.put(Space::Log, be(2), b"x");
    b.delete_range(Space::Log, be(0), None);
    b.put(Space::Log, be(3), b"y");
    e.write(&b, Durability::Durable)?;
    ensure!(
        e.get(Space::Meta, b"a")?.is_none(),
        "put then delete in one batch left the key"
    );
    ensure!(
        e.get(Space::Meta, b"b")?.as_deref() == Some(&b"2"[..]),
        "delete then put in one batch lost the key"
    );
    let left = keys(&e, Space::Log, KeyRange::ALL)?;
    ensure!(
        left == vec![be(3)],
        "delete_range then put in one batch left {left:?}"
    );
    Ok(())
}

/// `delete_range` removes `start..end` exactly; `end = None` removes to the end.
pub fn delete_range_bounds<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    fill(&e, Space::Log, 20)?;
    let mut b = Batch::new();
    b.delete_range(Space::Log, be(5), Some(be(8)));
    b.delete_range(Space::Log, be(9), Some(be(9)));
    b.delete_range(Space::Log, be(12), Some(be(10)));
    b.delete_range(Space::Log, be(15), None);
    e.write(&b, Durability::Durable)?;
    let want: Vec<Vec<u8>> = [0u64, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14].map(be).to_vec();
    let got = keys(&e, Space::Log, KeyRange::ALL)?;
    ensure!(
        got == want,
        "after delete_range [5,8), [9,9), [12,10), [15,..): keys {got:?}"
    );
    let mut b = Batch::new();
    b.delete_range(Space::Log, Vec::new(), Some(be(10)));
    e.write(&b, Durability::Durable)?;
    let got = keys(&e, Space::Log, KeyRange::ALL)?;
    ensure!(
        got == [10u64, 11, 12, 13, 14].map(be).to_vec(),
        "after delete_range [empty key, 10): {got:?}"
    );
    Ok(())
}

/// Scans go in ascending byte order and stop when the visitor breaks.
pub fn scan_is_ordered_and_stops<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let mut b = Batch::new();
    for i in [300u64, 2, 256, 1, 65_536, 255] {
        b.put(Space::Log, be(i), be(i));
    }
    e.write(&b, Durability::Durable)?;
    let got = keys(&e, Space::Log, KeyRange::ALL)?;
    ensure!(
        got == [1u64, 2, 255, 256, 300, 65_536].map(be).to_vec(),
        "scan order {got:?}"
    );
    let mut seen = Vec::new();
    e.scan(Space::Log, KeyRange::ALL, &mut |k, v| {
        seen.push((k.to_vec(), v.to_vec()));
        if seen.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    ensure!(
        seen == vec![(be(1), be(1)), (be(2), be(2))],
        "scan did not stop at Break: {seen:?}"
    );
    Ok(())
}

/// A scan range and the keys it must return.
type BoundsCase<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>, Vec<u64>);

/// Included, excluded and unbounded scan bounds, and empty ranges.
pub fn scan_bounds<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    fill(&e, Space::Log, 10)?;
    let (k3, k6) = (be(3), be(6));
    let cases: [BoundsCase<'_>; 8] = [
        (Bound::Excluded(&k3), Bound::Excluded(&k3), vec![]),
        (Bound::Included(&k3), Bound::Included(&k3), vec![3]),
        (Bound::Included(&k3), Bound::Excluded(&k6), vec![3, 4, 5]),
        (Bound::Excluded(&k3), Bound::Included(&k6), vec![4, 5, 6]),
        (Bound::Unbounded, Bound::Excluded(&k3), vec![0, 1, 2]),
        (Bound::Included(&k6), Bound::Unbounded, vec![6, 7, 8, 9]),
        (Bound::Included(&k6), Bound::Excluded(&k3), vec![]),
        (Bound::Included(&k3), Bound::Excluded(&k3), vec![]),
    ];
    for (start, end, want) in cases {
        let got = keys(&e, Space::Log, KeyRange { start, end })?;
        let want: Vec<Vec<u8>> = want.into_iter().map(be).collect();
        ensure!(
            got == want,
            "scan {start:?}..{end:?} gave {got:?}, expected {want:?}"
        );
    }
    Ok(())
}

/// `last_key` is the greatest key of each keyspace, or `None` when it is empty.
pub fn last_key_per_space<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    for space in Space::ALL {
        ensure!(
            e.last_key(space)?.is_none(),
            "last_key of empty {space} is not None"
        );
    }
    fill(&e, Space::Log, 1000)?;
    ensure!(
        e.last_key(Space::Log)? == Some(be(999)),
        "last_key of log after 0..1000"
    );
    ensure!(
        e.last_key(Space::Meta)?.is_none(),
        "meta has a last key though only log was written"
    );
    let mut b = Batch::new();
    b.delete_range(Space::Log, be(500), None);
    e.write(&b, Durability::Durable)?;
    ensure!(
        e.last_key(Space::Log)? == Some(be(499)),
        "last_key after deleting the tail"
    );
    Ok(())
}

/// `last_key_in` gives the greatest key inside the range, for every kind of bound, never one
/// past it, and nothing for a range with no key (as a multi-group store asks it for one group's
/// last log key, between two neighbours' keys).
pub fn last_key_in_stays_in_its_range<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let mut b = Batch::new();
    // Three "groups" of keys, prefix byte 1, 2 and 4, with a key of prefix 3 missing.
    for prefix in [1u8, 2, 4] {
        for i in 0..50u64 {
            let mut key = vec![prefix];
            key.extend_from_slice(&be(i * 2));
            b.put(Space::Log, key, be(i));
        }
    }
    b.put(Space::Meta, vec![2, 0xFF], vec![1]);
    e.write(&b, Durability::Durable)?;
    let key = |prefix: u8, i: u64| {
        let mut key = vec![prefix];
        key.extend_from_slice(&be(i));
        key
    };
    let (k2, k3, k4) = (vec![2u8], vec![3u8], vec![4u8]);
    let (k2_50, k2_51) = (key(2, 50), key(2, 51));
    let cases: Vec<(KeyRange<'_>, Option<Vec<u8>>, &str)> = vec![
        (KeyRange::half_open(&k2, &k3), Some(key(2, 98)), "[2, 3)"),
        (KeyRange::half_open(&k3, &k4), None, "[3, 4): no key"),
        (KeyRange::from(&k4), Some(key(4, 98)), "[4, ..)"),
        (
            KeyRange {
                start: Bound::Unbounded,
                end: Bound::Excluded(&k2),
            },
            Some(key(1, 98)),
            "(.., 2)",
        ),
        (
            KeyRange {
                start: Bound::Included(&k2),
                end: Bound::Included(&k2_50),
            },
            Some(key(2, 50)),
            "[2, 2:50]",
        ),
        (
            KeyRange {
                start: Bound::Included(&k2),
                end: Bound::Excluded(&k2_50),
            },
            Some(key(2, 48)),
            "[2, 2:50)",
        ),
        (
            KeyRange {
                start: Bound::Excluded(&k2_50),
                end: Bound::Included(&k2_51),
            },
            None,
            "(2:50, 2:51]",
        ),
        (KeyRange::half_open(&k3, &k2), None, "[3, 2): empty"),
        (KeyRange::ALL, Some(key(4, 98)), "everything"),
    ];
    for (range, want, name) in cases {
        let got = e.last_key_in(Space::Log, range)?;
        ensure!(
            got == want,
            "last_key_in {name}: {}, expected {}",
            show(got.as_deref()),
            show(want.as_deref())
        );
    }
    ensure!(
        e.last_key_in(Space::Meta, KeyRange::half_open(&k2, &k3))? == Some(vec![2, 0xFF]),
        "last_key_in of another keyspace"
    );
    Ok(())
}

/// A key as the cases write it (eight big-endian bytes) shown as its number, else as bytes.
fn show(key: Option<&[u8]>) -> String {
    match key {
        None => "None".into(),
        Some(k) => {
            <[u8; 8]>::try_from(k).map_or_else(|_| format!("{k:?}"), |b| u64::from_be_bytes(b).to_string())
        }
    }
}

/// `last_key` after range deletes that stop short of the tail or leave the head, in each
/// keyspace, across reopens.
///
/// An engine that keeps its own index of the greatest key (rather than asking its ordered
/// table) has to update it on `DeleteRange`: a range inside the keyspace leaves the last key,
/// and a range removing the tail from inside an earlier hole leaves the greatest key before
/// the hole, not the key before the range's start. `last_key_per_space` only deletes a tail
/// from a dense keyspace, which a naive "one key back" index also passes.
pub fn last_key_after_inner_range_delete<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let mut e = h.open(dir.path())?;
    let mut b = Batch::new();
    for space in Space::ALL {
        for i in 0..100u64 {
            b.put(space, be(i), be(i));
        }
    }
    e.write(&b, Durability::Durable)?;
    for (done, space) in Space::ALL.into_iter().enumerate() {
        let mut b = Batch::new();
        b.delete_range(space, be(10), Some(be(20)));
        e.write(&b, Durability::Durable)?;
        for when in ["", " and reopen"] {
            let last = e.last_key(space)?;
            ensure!(
                last == Some(be(99)),
                "{space}: last_key after deleting [10, 20) of 0..100{when} is {}, expected 99",
                show(last.as_deref())
            );
            if when.is_empty() {
                drop(e);
                e = h.open(dir.path())?;
            }
        }
        // Starts inside the hole [10, 20): the greatest key left before it is 9, not 14.
        let mut b = Batch::new();
        b.delete_range(space, be(15), Some(be(1000)));
        e.write(&b, Durability::Durable)?;
        for when in ["", " and reopen"] {
            let last = e.last_key(space)?;
            ensure!(
                last == Some(be(9)),
                "{space}: last_key after deleting [10, 20) then [15, 1000) of 0..100{when} is {}, \
                 expected 9",
                show(last.as_deref())
            );
            if when.is_empty() {
                drop(e);
                e = h.open(dir.path())?;
            }
        }
        for (i, other) in Space::ALL.into_iter().enumerate() {
            let want = if i <= done { 9 } else { 99 };
            let last = e.last_key(other)?;
            ensure!(
                last == Some(be(want)),
                "after range deletes in {space}: last_key of {other} is {}, expected {want}",
                show(last.as_deref())
            );
        }
    }
    Ok(())
}

/// The same key in different keyspaces holds different values.
pub fn spaces_are_separate<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let mut b = Batch::new();
    for space in Space::ALL {
        b.put(space, b"same", space.name());
    }
    e.write(&b, Durability::Durable)?;
    for space in Space::ALL {
        let got = e.get(space, b"same")?;
        ensure!(
            got.as_deref() == Some(space.name().as_bytes()),
            "{space} holds {got:?}"
        );
    }
    let mut b = Batch::new();
    b.delete_range(Space::Meta, Vec::new(), None);
    e.write(&b, Durability::Durable)?;
    ensure!(
        e.get(Space::Log, b"same")?.is_some(),
        "delete_range on meta removed a log key"
    );
    ensure!(
        e.get(Space::Meta, b"same")?.is_none(),
        "delete_range on meta left its key"
    );
    Ok(())
}

/// Durable writes survive closing and reopening the engine.
pub fn reopen_keeps_durable_writes<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    {
        let e = h.open(dir.path())?;
        fill(&e, Space::Log, 100)?;
        e.write(&put(Space::Data, b"k", b"v"), Durability::Durable)?;
        let mut b = Batch::new();
        b.delete_range(Space::Log, be(0), Some(be(10)));
        e.write(&b, Durability::Durable)?;
    }
    let e = h.open(dir.path())?;
    let got = keys(&e, Space::Log, KeyRange::ALL)?;
    ensure!(
        got == (10..100).map(be).collect::<Vec<_>>(),
        "after reopen the log keys are {} keys",
        got.len()
    );
    ensure!(
        e.get(Space::Data, b"k")?.as_deref() == Some(&b"v"[..]),
        "after reopen sm_data lost its key"
    );
    Ok(())
}

/// A 4 MiB value, an empty value and keys with every byte value round-trip.
pub fn large_values_and_binary_keys<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let big: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut b = Batch::new();
    b.put(Space::Data, b"big", big.clone());
    b.put(Space::Data, b"empty", Vec::new());
    b.put(Space::Data, vec![0u8, 0xff, 0, 0x80], b"binary");
    e.write(&b, Durability::Durable)?;
    drop(e);
    let e = h.open(dir.path())?;
    ensure!(
        e.get(Space::Data, b"big")?.as_deref() == Some(&big[..]),
        "4 MiB value changed"
    );
    ensure!(
        e.get(Space::Data, b"empty")?.as_deref() == Some(&b""[..]),
        "empty value changed"
    );
    ensure!(
        e.get(Space::Data, &[0, 0xff, 0, 0x80])?.as_deref() == Some(&b"binary"[..]),
        "binary key lost"
    );
    Ok(())
}

/// The limits the engine states hold: a key of exactly [`EngineLimits::max_key`] bytes (or 64
/// KiB, if the limit is higher) is stored and read back, and where the limit is that low a
/// key one byte longer is refused, so the figure is neither too high (a write the state
/// machine trusts would fail) nor too low.
///
/// [`EngineLimits::max_key`]: raft_store_core::EngineLimits::max_key
pub fn stated_key_limit_holds<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let limits = e.limits();
    ensure!(
        limits.max_key >= 8 && limits.max_value >= 1 << 20,
        "{}: stated limits {limits:?} are too low to hold a raft log",
        e.backend()
    );
    let len = limits.max_key.min(64 << 10);
    let longest = vec![b'k'; len];
    let mut b = Batch::new();
    b.put(Space::Data, longest.clone(), b"fits");
    e.write(&b, Durability::Durable)?;
    ensure!(
        e.get(Space::Data, &longest)?.as_deref() == Some(&b"fits"[..]),
        "{}: a key of {len} bytes (within the stated limit) was not read back",
        e.backend()
    );
    if len == limits.max_key {
        let mut b = Batch::new();
        b.put(Space::Data, vec![b'k'; len + 1], b"over");
        ensure!(
            e.write(&b, Durability::Durable).is_err(),
            "{}: a key of {} bytes, over the stated limit of {len}, was stored: the limit is too low",
            e.backend(),
            len + 1
        );
    }
    Ok(())
}

/// A scan running while batches replace a range sees each batch entirely or not at all.
pub fn scan_sees_one_state_during_writes<H: EngineHarness>(h: &H) -> CaseResult {
    let dir = tempdir();
    let e = h.open(dir.path())?;
    let mut b = Batch::new();
    for i in 0..50u64 {
        b.put(Space::Log, be(i), be(0));
    }
    e.write(&b, Durability::Durable)?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> CaseResult {
            // Each batch rewrites every key with one generation number.
            for generation in 1..=200u64 {
                let mut b = Batch::new();
                for i in 0..50u64 {
                    b.put(Space::Log, be(i), be(generation));
                }
                e.write(&b, Durability::Buffered)?;
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        let mut scans = 0u32;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) || scans == 0 {
            let mut values = Vec::new();
            e.scan(Space::Log, KeyRange::ALL, &mut |_, v| {
                values.push(v.to_vec());
                ControlFlow::Continue(())
            })?;
            ensure!(values.len() == 50, "scan saw {} keys, expected 50", values.len());
            ensure!(
                values.windows(2).all(|w| w[0] == w[1]),
                "one scan saw values of different batches"
            );
            scans += 1;
        }
        writer.join().map_err(|_| "writer thread panicked")??;
        Ok(())
    })
}
