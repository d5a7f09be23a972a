//! The suite's unwritable directory is what the engine layer reports as a permission error.

use raft_store_engine::EngineError;
use raft_store_engine::StoreDir;

#[test]
fn an_unwritable_directory_is_a_permission_error() {
    let locked = raft_store_testkit::UnwritableDir::new();
    for path in [locked.path().to_path_buf(), locked.path().join("inner")] {
        let err = StoreDir::open("redb", &path).unwrap_err();
        let matched = matches!(err, EngineError::PermissionDenied { .. });
        assert!(matched, "{}: {err}", path.display());
    }
}
