//! Bad input on every backend: the adapter's path cases (the `bad_input_suite!` of the core:
//! a file instead of a directory, no permission, opened twice, another backend's marker, foreign
//! files, another backend's or a newer format record, locked by another process), and a store of
//! each backend opened as each other backend, which must be refused with an error naming both,
//! and leave the store intact.

use std::path::Path;

use compat_tests::LogOp;
use compat_tests::model;
use raft_store::Backend;
use raft_store::StoreConfig;
use raft_store_testkit::util;

macro_rules! per_backend {
    ($($module:ident = $backend:expr),* $(,)?) => {
        $(
            mod $module {
                use super::*;

                raft_store_testkit::bad_input_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
                    StoreConfig::new($backend, dir).open_engine()
                }));
            }
        )*
    };
}

per_backend!(
    redb = Backend::Redb,
    lmdb = Backend::Lmdb,
    rocksdb = Backend::Rocksdb,
    sled = Backend::Sled,
);

#[test]
fn every_store_opened_as_every_other_backend_is_refused() {
    let mut refused = 0;
    for written in compat_tests::DISK_BACKENDS {
        let dir = util::tempdir();
        let op = LogOp::Append {
            term: 1,
            first: 1,
            last: 3,
        };
        let mut want = compat_tests::Model::default();
        want.apply(&op);
        util::run(async {
            let mut store = compat_tests::open_store(written, dir.path()).expect("create store");
            let flushed = model::issue(&mut store, &op).await.expect("append");
            util::wait_flushed(flushed.expect("append callback"))
                .await
                .expect("durable");
        });
        for other in compat_tests::DISK_BACKENDS.into_iter().filter(|b| *b != written) {
            let err = match compat_tests::open_store(other, dir.path()) {
                Ok(_) => panic!("a {written} store opened as {other}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(written.name()) && err.contains(other.name()),
                "opening a {written} store as {other} should name both: {err}"
            );
            refused += 1;
        }
        util::run(async {
            let mut store = compat_tests::open_store(written, dir.path()).expect("reopen as itself");
            let got = model::observe(&mut store).await.expect("read");
            assert_eq!(got, want, "{written}: the refused opens changed the store");
        });
    }
    assert_eq!(refused, 12);
}
