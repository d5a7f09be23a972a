//! What storage engines rely on: mmap'd reads, flock and fcntl locks, control from another
//! process, and a cost per durable append that a test suite can afford.
//!
//! The tests that need a second process re-run this test binary with an environment
//! variable naming the child's job, as sled's crash tests do.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{durable_file, mount, mount_with, open_rw};
use nix::fcntl::{FcntlArg, fcntl};
use raft_store_faultfs::{Control, MountOptions};

/// The child's job: `cut SOCKET` or `lock FILE`.
const CHILD_ENV: &str = "FAULTFS_TEST_CHILD";

/// Runs the named test of this binary in a child process with `job`.
fn child(test: &str, job: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("this test binary");
    Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, job)
        .output()
        .expect("run the child")
}

fn child_job() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

#[test]
fn mmap_reads_see_the_file_and_later_pwrites() {
    let Some(m) = mount("mmap_reads_see_the_file_and_later_pwrites") else {
        return;
    };
    let page = 4096;
    durable_file(&m.path("data.mdb"), &vec![1; 4 * page]);
    let f = open_rw(&m.path("data.mdb"));
    #[allow(unsafe_code)]
    // SAFETY: the mapping is read only, and the file is not truncated while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    assert!(map.iter().all(|&b| b == 1));
    // LMDB without WRITE_MAP writes with pwrite and reads the change through its map.
    f.write_at(&vec![2; page], page as u64).unwrap();
    assert!(map[page..2 * page].iter().all(|&b| b == 2));
    assert!(map[2 * page..].iter().all(|&b| b == 1));
    drop(map);
    m.cut();
    let f = File::open(m.path("data.mdb")).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: as above.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    assert!(
        map.iter().all(|&b| b == 1),
        "the unsynced pwrite is gone after the cut"
    );
}

#[test]
fn flock_excludes_a_second_open_file() {
    let Some(m) = mount("flock_excludes_a_second_open_file") else {
        return;
    };
    durable_file(&m.path("LOCK"), b"");
    let first = File::open(m.path("LOCK")).unwrap();
    first.try_lock().expect("the first lock");
    let second = File::open(m.path("LOCK")).unwrap();
    assert!(
        second.try_lock().is_err(),
        "flock locks are per open file: the second must fail"
    );
    first.unlock().unwrap();
    second.try_lock().expect("free again");
}

#[test]
fn fcntl_locks_exclude_another_process() {
    const TEST: &str = "fcntl_locks_exclude_another_process";
    if let Some(job) = child_job() {
        // The child: the lock the parent holds must be refused.
        let path = job.strip_prefix("lock ").unwrap();
        let f = open_rw(std::path::Path::new(path));
        let lock = write_lock();
        let err = fcntl(&f, FcntlArg::F_SETLK(&lock)).unwrap_err();
        assert!(
            matches!(err, nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES),
            "{err}"
        );
        println!("CHILD-REFUSED");
        return;
    }
    let Some(m) = mount(TEST) else { return };
    durable_file(&m.path("LOCK"), b"");
    let f = open_rw(&m.path("LOCK"));
    fcntl(&f, FcntlArg::F_SETLK(&write_lock())).expect("the parent's lock");
    let out = child(TEST, &format!("lock {}", m.path("LOCK").display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-REFUSED"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_lock() -> nix::libc::flock {
    nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[test]
fn another_process_cuts_the_power_through_the_control_socket() {
    const TEST: &str = "another_process_cuts_the_power_through_the_control_socket";
    if let Some(job) = child_job() {
        let control = Control::connect(job.strip_prefix("cut ").unwrap());
        let before = control.stats().unwrap();
        assert!(before.volatile_bytes > 0, "{before:?}");
        control.cut_power().unwrap();
        assert_eq!(control.stats().unwrap().volatile_bytes, 0);
        println!("CHILD-CUT");
        return;
    }
    let Some(m) = mount(TEST) else { return };
    durable_file(&m.path("wal"), b"acknowledged");
    open_rw(&m.path("wal")).write_all_at(b" and not", 12).unwrap();
    let out = child(TEST, &format!("cut {}", m.fs.control_socket().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-CUT"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(m.path("wal")).unwrap(), b"acknowledged");
    assert_eq!(m.fs.control().stats().unwrap().cuts, 1);
}

#[test]
fn a_bad_control_command_is_refused_with_a_message() {
    let Some(m) = mount("a_bad_control_command_is_refused_with_a_message") else {
        return;
    };
    let mut s = std::os::unix::net::UnixStream::connect(m.fs.control_socket()).unwrap();
    s.write_all(b"cut sideways\n").unwrap();
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut reply).unwrap();
    assert!(reply.starts_with("err unknown command"), "{reply}");
}

#[test]
fn a_durable_append_costs_well_under_a_millisecond_over_the_backing_fsync() {
    // Without the backing fsync, what is left is this file system's own cost.
    let options = MountOptions::default().sync_backing(false);
    let Some(m) = mount_with(
        "a_durable_append_costs_well_under_a_millisecond_over_the_backing_fsync",
        &options,
    ) else {
        return;
    };
    durable_file(&m.path("log"), b"");
    let mut f = open_rw(&m.path("log"));
    let record = [5u8; 4096];
    let n = 500;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&record).unwrap();
        f.sync_data().unwrap();
    }
    let each = start.elapsed() / n;
    println!("4 KiB append + fdatasync through the mount: {each:?} each (backing fsync off)");
    // Debug builds on a loaded machine: the bound is generous, the printed number is the point.
    assert!(each < Duration::from_millis(1), "{each:?}");
    m.cut();
    assert_eq!(fs::metadata(m.path("log")).unwrap().len(), 4096 * u64::from(n));
}
