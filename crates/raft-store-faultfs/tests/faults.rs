//! The faults: torn writes at a cut, a failed fsync, a full device, a bad read range.

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use common::{durable_file, mount, open_rw};
use raft_store_faultfs::CutMode;

const PAGE: usize = 4096;

#[test]
fn a_torn_cut_keeps_only_whole_pages_of_the_volatile_writes() {
    let Some(m) = mount("a_torn_cut_keeps_only_whole_pages_of_the_volatile_writes") else {
        return;
    };
    let pages = 32;
    durable_file(&m.path("f"), &vec![0xAA; pages * PAGE]);
    let f = open_rw(&m.path("f"));
    // Unaligned writes, so a page holds parts of two writes.
    for i in 0..pages {
        f.write_at(&vec![0xBB; PAGE], (i * PAGE + 100) as u64).unwrap();
    }
    m.fs.control().cut(CutMode::TornSubset { seed: 42 }).unwrap();
    let after = fs::read(m.path("f")).unwrap();
    assert!(
        after.len() == pages * PAGE || after.len() == pages * PAGE + 100,
        "{}",
        after.len()
    );
    let (mut old, mut new) = (0, 0);
    for (i, block) in after.chunks(PAGE).enumerate() {
        let was = if i == 0 {
            [&[0xAA; 100][..], &[0xBB; PAGE - 100][..]].concat()
        } else {
            vec![0xBB; PAGE]
        };
        if block == &vec![0xAA; PAGE][..block.len()] {
            old += 1;
        } else if block == &was[..block.len()] {
            new += 1;
        } else {
            panic!("block {i} is neither the durable page nor the written one");
        }
    }
    assert!(
        old > 0 && new > 0,
        "seed 42 keeps some pages and loses others: {old} old, {new} new"
    );
}

#[test]
fn a_torn_prefix_keeps_the_first_pages_written() {
    let Some(m) = mount("a_torn_prefix_keeps_the_first_pages_written") else {
        return;
    };
    durable_file(&m.path("log"), b"");
    let mut f = open_rw(&m.path("log"));
    for i in 0..16u8 {
        f.write_all(&[i; PAGE]).unwrap();
    }
    m.fs.control().cut(CutMode::TornPrefix { seed: 7 }).unwrap();
    let after = fs::read(m.path("log")).unwrap();
    assert_eq!(after.len() % PAGE, 0);
    assert!(after.len() < 16 * PAGE, "seed 7 loses a tail");
    for (i, block) in after.chunks(PAGE).enumerate() {
        assert_eq!(block, &[i as u8; PAGE][..], "page {i} of a prefix");
    }
    assert_eq!(fs::read(m.backing("log")).unwrap(), after);
}

#[test]
fn a_failed_fsync_drops_the_dirty_data_and_the_next_one_succeeds() {
    let Some(m) = mount("a_failed_fsync_drops_the_dirty_data_and_the_next_one_succeeds") else {
        return;
    };
    durable_file(&m.path("f"), b"durable");
    let mut f = open_rw(&m.path("f"));
    m.fs.control().fail_fsync(2).unwrap();
    f.sync_all().unwrap(); // the first from now
    f.write_all(b"DIRTY").unwrap();
    let err = f.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    assert_eq!(
        fs::read(m.path("f")).unwrap(),
        b"durable",
        "the dirty pages are gone"
    );
    f.sync_all().expect("a later fsync reports clean");
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"durable");
    let stats = m.fs.control().stats().unwrap();
    assert_eq!(stats.failed_fsyncs, 1);
    assert!(stats.fsyncs >= 4, "{stats:?}");
}

#[test]
fn writes_fail_with_enospc_once_the_budget_is_spent() {
    let Some(m) = mount("writes_fail_with_enospc_once_the_budget_is_spent") else {
        return;
    };
    let mut f = File::create(m.path("f")).unwrap();
    m.fs.control().space_budget(Some(10_000)).unwrap();
    f.write_all(&[1; PAGE]).unwrap();
    f.write_all(&[2; PAGE]).unwrap();
    let err = f.write_all(&[3; PAGE]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "{err}");
    assert_eq!(
        fs::metadata(m.path("f")).unwrap().len(),
        10_000,
        "the last write was cut short at the budget"
    );
    m.fs.control().space_budget(None).unwrap();
    f.write_all(&[4; PAGE]).unwrap();
}

#[test]
fn reads_of_a_bad_range_fail_with_eio() {
    let Some(m) = mount("reads_of_a_bad_range_fail_with_eio") else {
        return;
    };
    durable_file(&m.path("d"), b"");
    fs::create_dir(m.path("sub")).unwrap();
    durable_file(&m.path("sub/f"), &vec![7; 4 * PAGE]);
    m.fs.control()
        .fail_reads("sub/f", (2 * PAGE) as u64..(2 * PAGE + 1) as u64)
        .unwrap();
    let f = File::open(m.path("sub/f")).unwrap();
    let mut buf = vec![0; PAGE];
    f.read_exact_at(&mut buf, 0).expect("a read before the bad range");
    let err = f.read_exact_at(&mut buf, (2 * PAGE) as u64).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}");
    assert!(
        File::open(m.path("sub/f"))
            .unwrap()
            .read_to_end(&mut Vec::new())
            .is_err()
    );
    m.fs.control().clear_faults().unwrap();
    assert_eq!(fs::read(m.path("sub/f")).unwrap().len(), 4 * PAGE);
}

#[test]
fn the_counters_count() {
    let Some(m) = mount("the_counters_count") else {
        return;
    };
    let mut f = File::create(m.path("f")).unwrap();
    f.write_all(&[1; 10]).unwrap();
    let stats = m.fs.control().stats().unwrap();
    assert_eq!(
        (stats.bytes_written, stats.volatile_bytes, stats.fsyncs),
        (10, PAGE as u64, 0)
    );
    f.sync_all().unwrap();
    common::sync_dir(&m.mnt);
    let stats = m.fs.control().stats().unwrap();
    assert_eq!((stats.volatile_bytes, stats.fsyncs, stats.dir_syncs), (0, 1, 1));
    m.cut();
    assert_eq!(m.fs.control().stats().unwrap().cuts, 1);
}

#[test]
fn a_tear_at_fsync_loses_the_last_page_of_the_write_and_stops_the_world() {
    let Some(m) = mount("a_tear_at_fsync_loses_the_last_page_of_the_write_and_stops_the_world") else {
        return;
    };
    durable_file(&m.path("log"), &[1; 100]);
    let f = open_rw(&m.path("log"));
    m.fs.control().tear_at_fsync(2).unwrap();
    // One dirty page: this fsync is not counted, and syncs.
    f.write_all_at(&[2; 100], 100).unwrap();
    f.sync_data().unwrap();
    // A record over three pages, from byte 200: the first counted fsync syncs it.
    f.write_all_at(&[3; 2 * PAGE], 200).unwrap();
    f.sync_data().unwrap();
    // The second counted one: the power goes, the write's last page is lost.
    f.write_all_at(&[4; 2 * PAGE], 200 + 2 * PAGE as u64).unwrap();
    let err = f.sync_data().expect_err("the fsync the power went at");
    assert_eq!(err.raw_os_error(), Some(EIO), "{err}");
    assert!(
        File::open(m.path("log")).is_err(),
        "an open after the power went must fail"
    );
    let stats = m.fs.control().stats().unwrap();
    assert_eq!((stats.torn_fsyncs, stats.cuts), (1, 1));
    m.fs.control().clear_faults().unwrap();
    let after = fs::read(m.path("log")).unwrap();
    // The last write covered bytes 8392..16584, pages 2..=4: pages 2 and 3 reached the disk,
    // page 4 did not.
    let torn_end = 4 * PAGE;
    let mut want = [vec![1; 100], vec![2; 100], vec![3; 2 * PAGE]].concat();
    want.resize(torn_end, 4);
    assert_eq!(
        after.len(),
        torn_end,
        "the file ends where its last kept page does"
    );
    assert!(
        after == want,
        "the file holds the synced bytes and the write's first page"
    );
}

/// The errno of an I/O error.
const EIO: i32 = 5;
