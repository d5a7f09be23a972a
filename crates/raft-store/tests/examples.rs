//! The worked example of each openraft line, run as a test: a single-node `Raft` on redb through
//! the facade initializes, writes, restarts on the same directory and reads back.

#[cfg(all(feature = "redb", feature = "openraft-0-10"))]
#[path = "../examples/openraft_0_10.rs"]
mod openraft_0_10;

#[cfg(all(feature = "redb", feature = "openraft-0-9"))]
#[path = "../examples/openraft_0_9.rs"]
mod openraft_0_9;

/// What both examples read back at the end: `a` rewritten after the restart, `b` from before it,
/// `c` from after it.
#[cfg(feature = "redb")]
fn expected() -> Vec<(String, String)> {
    [("a", "10"), ("b", "2"), ("c", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(all(feature = "redb", feature = "openraft-0-10"))]
#[test]
fn the_openraft_0_10_example_writes_restarts_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let read = raft_store_testkit::run(openraft_0_10::run(dir.path())).expect("the 0.10 example");
    assert_eq!(read, expected());
}

#[cfg(all(feature = "redb", feature = "openraft-0-9"))]
#[test]
fn the_openraft_0_9_example_writes_restarts_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let read = raft_store_testkit::run(openraft_0_9::run(dir.path())).expect("the 0.9 example");
    assert_eq!(read, expected());
}

#[cfg(all(feature = "redb", feature = "openraft-0-10", feature = "openraft-0-9"))]
#[test]
fn a_store_of_one_example_is_refused_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    raft_store_testkit::run(openraft_0_9::run(dir.path())).expect("the 0.9 example");
    let err = raft_store_testkit::run(openraft_0_10::run(dir.path()))
        .expect_err("the 0.10 example opened a 0.9 store");
    let msg = err.to_string();
    assert!(
        msg.contains("written with openraft 0.9 types") && msg.contains("opened with openraft 0.10 types"),
        "{msg}"
    );
}
