//! On-disk format fixtures: stores written by each backend at each released format version and
//! default codec (`compat-tests/fixtures/v<N>/<backend>/` with bincode, the default codec until
//! MessagePack; `v<N>-<codec>/<backend>/` since, made by the `make-fixtures` binary) must open
//! with this release, with the codec their format record names, and read back exactly what was
//! written: every entry, the purged id, the vote and the committed id. Each is opened from a
//! copy, so the committed files never change.

use std::path::Path;

use compat_tests::Model;
use compat_tests::model;
use raft_store_testkit::util;

/// The fixture sets: directory and codec.
const SETS: [(&str, &str); 3] = [
    ("v1", "bincode2"),
    ("v2", "bincode2"),
    ("v2-msgpack-named1", "msgpack-named1"),
];

#[test]
fn every_fixture_opens_and_reads_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut want = Model::default();
    for op in model::sample_ops() {
        want.apply(&op);
    }
    let mut opened = 0;
    for (set, codec) in SETS {
        for backend in compat_tests::DISK_BACKENDS {
            let fixture = root.join(set).join(backend.name());
            assert!(
                fixture.is_dir(),
                "missing fixture {}: run make-fixtures (see compat-tests/README.md)",
                fixture.display()
            );
            let tmp = util::tempdir();
            let copy = tmp.path().join("store");
            compat_tests::copy_dir(&fixture, &copy).expect("copy fixture");
            util::run(async {
                let got = if codec == "bincode2" {
                    // The default opening refuses it, naming the codec to open it with.
                    let err = compat_tests::open_store(backend, &copy)
                        .err()
                        .expect("opened with the wrong codec");
                    assert!(err.to_string().contains("bincode2"), "{set} {backend}: {err}");
                    let mut store = compat_tests::open_bincode_store(backend, &copy)
                        .unwrap_or_else(|e| panic!("fixture {set} {backend} does not open: {e}"));
                    model::observe(&mut store).await
                } else {
                    let mut store = compat_tests::open_store(backend, &copy)
                        .unwrap_or_else(|e| panic!("fixture {set} {backend} does not open: {e}"));
                    model::observe(&mut store).await
                };
                let got = got.unwrap_or_else(|e| panic!("fixture {set} {backend}: {e}"));
                assert_eq!(got, want, "fixture {set} {backend} reads back differently");
            });
            opened += 1;
        }
    }
    assert_eq!(opened, 4 * SETS.len());
    // A new format version needs its own fixture set here.
    assert_eq!(
        raft_store_engine::format::STORE_FORMAT_VERSION,
        3,
        "add the fixtures of the new format version to SETS or GROUP_SETS"
    );
}

/// Multi-group stores (format version 3): every group of the fixture reads back the sample.
const GROUP_SETS: [&str; 1] = ["v3-groups-msgpack-named1"];

#[test]
fn every_multi_group_fixture_opens_and_reads_back_exactly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut want = Model::default();
    for op in model::sample_ops() {
        want.apply(&op);
    }
    let mut opened = 0;
    for set in GROUP_SETS {
        for backend in compat_tests::DISK_BACKENDS {
            let fixture = root.join(set).join(backend.name());
            assert!(
                fixture.is_dir(),
                "missing fixture {}: run make-fixtures --groups (see compat-tests/README.md)",
                fixture.display()
            );
            let tmp = util::tempdir();
            let copy = tmp.path().join("store");
            compat_tests::copy_dir(&fixture, &copy).expect("copy fixture");
            let store = raft_store::open_groups(&raft_store::StoreConfig::new(backend, &copy))
                .unwrap_or_else(|e| panic!("fixture {set} {backend} does not open: {e}"));
            assert_eq!(
                store.groups(),
                compat_tests::FIXTURE_GROUPS.to_vec(),
                "{set} {backend}"
            );
            for group in compat_tests::FIXTURE_GROUPS {
                util::run(async {
                    let view = store.group(group).expect("a listed group");
                    let mut log: compat_tests::GroupTestStore = raft_store::LogStore::open(view)
                        .unwrap_or_else(|e| panic!("fixture {set} {backend} group {group}: {e}"));
                    let got = model::observe(&mut log)
                        .await
                        .unwrap_or_else(|e| panic!("fixture {set} {backend} group {group}: {e}"));
                    assert_eq!(
                        got, want,
                        "fixture {set} {backend} group {group} reads back differently"
                    );
                });
            }
            opened += 1;
        }
    }
    assert_eq!(opened, 4 * GROUP_SETS.len());
}
