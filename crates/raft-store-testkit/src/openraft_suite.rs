//! openraft's own `testing::log::Suite`, one case at a time, over any [`StoreOpener`].
//!
//! openraft's `Suite::test_all` runs every case in one test and stops at the first failure; the
//! [`conformance_suite!`](raft_store_testkit::conformance_suite) macro calls each case on its own instead,
//! and runs `test_all` once more as a catch-all ([`run_all`]).

use std::future::Future;
use std::io;

use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use super::MemStateMachine;
use super::StoreOpener;
use super::TestConfig;
use super::util::run;
use super::util::tempdir;

/// Builds a fresh store in a new temporary directory for each openraft case.
pub struct OpenraftBuilder<O>(pub O);

impl<O: StoreOpener> StoreBuilder<TestConfig, O::Store, MemStateMachine, TempDir> for OpenraftBuilder<O> {
    async fn build(&self) -> Result<(TempDir, O::Store, MemStateMachine), StorageError<TestConfig>> {
        let dir = tempdir();
        let store = self
            .0
            .open(dir.path())
            .map_err(|e| StorageError::read(TestConfig::err_from_error(&e)))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

/// openraft's suite instantiated for the stores of `O`.
pub type SuiteOf<O> = openraft::testing::log::Suite<
    TestConfig,
    <O as StoreOpener>::Store,
    MemStateMachine,
    OpenraftBuilder<O>,
    TempDir,
>;

/// Run one openraft case `(store, sm) -> Result` on a fresh store.
pub fn run_case<O, F, Fut>(opener: O, case: F)
where
    O: StoreOpener,
    F: FnOnce(O::Store, MemStateMachine) -> Fut,
    Fut: Future<Output = Result<(), io::Error>>,
{
    run(async move {
        let builder = OpenraftBuilder(opener);
        let (_dir, store, sm) = builder.build().await.expect("open a store for the openraft case");
        case(store, sm).await.expect("openraft suite case");
    });
}

/// Run openraft's snapshot transfer case, which builds two stores itself.
pub fn run_transfer_snapshot<O: StoreOpener>(opener: O) {
    run(async move {
        let builder = OpenraftBuilder(opener);
        SuiteOf::<O>::transfer_snapshot(&builder)
            .await
            .expect("openraft suite case");
    });
}

/// Run openraft's `Suite::test_all`: every case openraft's suite has, in one test.
///
/// The per-case tests come from a list written by hand, which cannot know a case that a later
/// openraft adds to its suite; `test_all` does, so a new case runs (and can fail) here even
/// before the list names it.
pub fn run_all<O: StoreOpener>(opener: O) {
    run(async move {
        SuiteOf::<O>::test_all(OpenraftBuilder(opener))
            .await
            .expect("openraft's Suite::test_all");
    });
}

/// Calls `$mac!($($args)*; <every case of openraft's log suite run one by one>)`, so the log
/// store's and the state machine's expansions share one list.
#[doc(hidden)]
#[macro_export]
macro_rules! __openraft_case_names {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            last_membership_in_log_initial,
            last_membership_in_log,
            last_membership_in_log_multi_step,
            get_membership_initial,
            get_membership_from_log_and_empty_sm,
            get_membership_from_empty_log_and_sm,
            get_membership_from_log_le_sm_last_applied,
            get_membership_from_log_gt_sm_last_applied_1,
            get_membership_from_log_gt_sm_last_applied_2,
            get_initial_state_without_init,
            get_initial_state_membership_from_empty_log_and_sm,
            get_initial_state_membership_from_sm_inlog_is_smaller,
            get_initial_state_membership_from_log_insm_is_smaller,
            get_initial_state_with_state,
            get_initial_state_last_log_gt_sm,
            get_initial_state_last_log_lt_sm,
            get_initial_state_inverted_log_order,
            get_initial_state_conflict_at_same_index,
            get_initial_state_log_ids,
            get_initial_state_re_apply_committed,
            save_vote,
            get_log_entries,
            limited_get_log_entries,
            leader_bounded_stream,
            entries_stream,
            try_get_log_entry,
            log_reader_reads_new_entries,
            initial_logs,
            get_log_state,
            get_log_id,
            last_id_in_log,
            last_applied_state,
            purge_logs_upto_0,
            purge_logs_upto_5,
            purge_logs_upto_20,
            delete_logs_after_11,
            delete_logs_after_5,
            delete_logs_after_0,
            delete_logs_after_none,
            append_to_log,
            snapshot_meta,
            snapshot_meta_optional,
            apply_single,
            apply_multiple,
                );
    };
}
