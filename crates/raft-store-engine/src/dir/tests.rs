use super::*;

#[test]
fn creates_marks_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store");
    let d = StoreDir::open("redb", &path).unwrap();
    assert_eq!(d.path(), path);
    assert_eq!(
        std::fs::read_to_string(path.join(MARKER)).unwrap(),
        "raft-store backend=redb\n"
    );
    drop(d);
    StoreDir::open("redb", &path).unwrap();
}

#[test]
fn a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let err = StoreDir::open("redb", &file).unwrap_err();
    assert!(matches!(err, EngineError::NotADirectory { .. }), "{err}");
}

#[test]
fn another_backends_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(StoreDir::open("lmdb", tmp.path()).unwrap());
    let err = StoreDir::open("redb", tmp.path()).unwrap_err();
    let matched = matches!(&err, EngineError::ForeignStore { found, .. } if found == "lmdb");
    assert!(matched, "{err}");
}

#[test]
fn a_directory_of_other_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    let err = StoreDir::open("redb", tmp.path()).unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(std::fs::read(tmp.path().join("notes.txt")).unwrap() == b"mine");
}

#[test]
fn a_garbled_marker_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(MARKER), b"\xff\xfegarbage").unwrap();
    assert!(StoreDir::open("redb", tmp.path()).is_err());
}

#[test]
fn second_open_is_locked_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let first = StoreDir::open("redb", tmp.path()).unwrap();
    let err = StoreDir::open("redb", tmp.path()).unwrap_err();
    assert!(matches!(err, EngineError::Locked { .. }), "{err}");
    drop(first);
    StoreDir::open("redb", tmp.path()).unwrap();
}

#[test]
fn a_lock_held_in_this_process_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = StoreDir::open("redb", tmp.path()).unwrap();
    let err = StoreDir::open("redb", tmp.path()).unwrap_err();
    assert!(err.to_string().contains("this process still holds open"), "{err}");
}

#[test]
fn wait_released_returns_once_the_holder_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store");
    assert!(!StoreDir::is_held(&path), "a directory never opened is not held");
    assert_eq!(StoreDir::wait_released(&path, Duration::ZERO), Ok(()));

    let first = StoreDir::open("lmdb", &path).unwrap();
    // Another spelling of the same directory is the same entry.
    let spelled = tmp.path().join(".").join("store");
    assert!(StoreDir::is_held(&spelled));
    assert_eq!(
        StoreDir::wait_released(&path, Duration::from_millis(20)),
        Err("lmdb"),
        "still held: the wait times out and names the backend"
    );

    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
    });
    let started = std::time::Instant::now();
    assert_eq!(StoreDir::wait_released(&spelled, Duration::from_secs(10)), Ok(()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the drop, not the timeout"
    );
    dropper.join().unwrap();
    assert!(!StoreDir::is_held(&path));
    // Released means the lock is free: the next open succeeds at once.
    StoreDir::open("lmdb", &path).unwrap();
}
