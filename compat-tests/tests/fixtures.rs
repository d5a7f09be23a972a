//! On-disk format fixtures: stores written by each backend at each released format version
//! (`compat-tests/fixtures/v<N>/<backend>/`, made by the `make-fixtures` binary) must open with
//! this release and read back exactly what was written: every entry, the purged id, the vote and
//! the committed id. Each is opened from a copy, so the committed files never change.

use std::path::Path;

use compat_tests::Model;
use compat_tests::model;
use raft_store_core::testing::util;

#[test]
fn every_fixture_opens_and_reads_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut want = Model::default();
    for op in model::sample_ops() {
        want.apply(&op);
    }
    let mut opened = 0;
    for version in 1..=raft_store_core::format::STORE_FORMAT_VERSION {
        for backend in compat_tests::DISK_BACKENDS {
            let fixture = root.join(format!("v{version}")).join(backend.name());
            assert!(
                fixture.is_dir(),
                "missing fixture {}: run make-fixtures (see compat-tests/README.md)",
                fixture.display()
            );
            let tmp = util::tempdir();
            let copy = tmp.path().join("store");
            compat_tests::copy_dir(&fixture, &copy).expect("copy fixture");
            util::run(async {
                let mut store = compat_tests::open_store(backend, &copy)
                    .unwrap_or_else(|e| panic!("format v{version} {backend} fixture does not open: {e}"));
                let got = model::observe(&mut store)
                    .await
                    .unwrap_or_else(|e| panic!("format v{version} {backend} fixture: {e}"));
                assert_eq!(
                    got, want,
                    "format v{version} {backend} fixture reads back differently"
                );
            });
            opened += 1;
        }
    }
    assert_eq!(opened, 4 * raft_store_core::format::STORE_FORMAT_VERSION as usize);
}
