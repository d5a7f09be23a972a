//! The macros that expand the suite into one `#[test]` per case.

/// Expand the whole conformance suite for an engine into named tests.
///
/// The argument is an expression implementing [`EngineHarness`](crate::EngineHarness),
/// for example [`FnHarness`](crate::FnHarness) around `|dir: &Path| MyEngine::open(dir)`.
/// The tests land in modules `engine` (engine cases), `log` (store cases through
/// [`LogStore`](raft_store_core::LogStore)), `log_under` (syncs, faults, corruption, power loss) and
/// `openraft_suite` (openraft's own `testing::log::Suite`, case by case, and its `test_all` once
/// as `all_cases_at_once`).
///
/// Module `power_cut` runs the engine in a child process on the fault file system and cuts the
/// power under it ([`power_cut`](crate::power_cut)); module `fs_faults` fails fsyncs,
/// writes (a full disk) and reads in that file system under the engine
/// ([`fs_faults`](crate::fs_faults)). Both need FUSE.
///
/// ```
/// use std::path::Path;
///
/// // Any `Fn(&Path) -> Result<impl Engine, EngineError>` that keeps its store in `dir`.
/// raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
///     my_engine::open(dir)
/// }));
/// # mod my_engine {
/// #     pub fn open(_: &std::path::Path) -> Result<raft_store_core::MemEngine, raft_store_core::EngineError> {
/// #         Ok(raft_store_core::MemEngine::new())
/// #     }
/// # }
/// # fn main() {}
/// ```
///
/// An engine that keeps nothing on disk (like [`MemEngine`](raft_store_core::MemEngine) under
/// [`MemHarness`](crate::MemHarness)) has no files to cut the power under and dies
/// with a child process: `conformance_suite!(in_memory: harness)` leaves the power-cut and
/// file-system fault cases out (its simulated power loss runs in `log_under`, its failed syncs
/// and full disk, injected above the engine, in `log_under_in_memory`), and
/// `log::flipped_byte_under_the_store`, which damages the store's files.
///
/// ```
/// raft_store_testkit::conformance_suite!(in_memory: raft_store_testkit::MemHarness::new());
/// # fn main() {}
/// ```
///
/// `conformance_suite!(in_a_group: harness)` (and `in_a_group in_memory:`) runs the same suite on
/// one group of a multi-group store over the engine, with two neighbouring groups writing beside
/// it ([`GroupHarness`](crate::GroupHarness)), leaving out the generated and multi-group
/// modules, which the plain form runs on the engine itself.
#[macro_export]
macro_rules! conformance_suite {
    (in_memory: $harness:expr) => {
        $crate::__conformance_suite_body!($harness);
        $crate::__conformance_single_store!();
        $crate::__conformance_in_memory!();
    };
    (in_a_group in_memory: $harness:expr) => {
        $crate::__conformance_suite_body!($crate::GroupHarness($harness));
        $crate::__conformance_in_memory!();
    };
    (in_a_group: $harness:expr) => {
        $crate::__conformance_suite_body!($crate::GroupHarness($harness), on_disk);
        $crate::__conformance_on_disk!();
    };
    ($harness:expr) => {
        $crate::__conformance_suite_body!($harness, on_disk);
        $crate::__conformance_single_store!();
        $crate::__conformance_on_disk!();
    };
}

/// The modules only an engine kept in memory gets.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_in_memory {
    () => {
        /// Faults injected above the engine (`FaultEngine`): for an engine on disk, the file
        /// system injects them under it instead (module `fs_faults`), which an engine kept in
        /// memory has no files for.
        mod log_under_in_memory {
            $crate::__engine_log_case_list!(in_memory __engine_log_tests!());
        }
    };
}

/// The modules only an engine on disk gets: power cuts and file-system faults under it.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_on_disk {
    () => {
        /// Power cuts under the engine on the fault file system (needs FUSE).
        mod power_cut {
            #[test]
            fn log_ops() {
                let stores = super::__raft_store_stores();
                $crate::check($crate::power_cut::log_ops(
                    &stores,
                    &$crate::__test_name!("log_ops"),
                    $crate::power_cut::model::Order::Strict,
                ));
            }

            #[test]
            fn engine_batches() {
                $crate::check($crate::power_cut::engine_batches(
                    &super::__raft_store_harness(),
                    &$crate::__test_name!("engine_batches"),
                ));
            }
        }

        /// Failed fsyncs, a full disk and failed reads in the file system under the engine
        /// (needs FUSE).
        mod fs_faults {
            #[test]
            fn fsync_eio_reaches_callback_then_refused() {
                $crate::check($crate::run(
                    $crate::fs_faults::fsync_eio_reaches_callback_then_refused(
                        &super::__raft_store_harness(),
                        &$crate::__test_name!("fsync_eio_reaches_callback_then_refused"),
                    ),
                ));
            }

            #[test]
            fn enospc_reaches_callback_then_refused() {
                $crate::check($crate::run(
                    $crate::fs_faults::enospc_reaches_callback_then_refused(
                        &super::__raft_store_harness(),
                        &$crate::__test_name!("enospc_reaches_callback_then_refused"),
                    ),
                ));
            }

            #[test]
            fn eio_on_read_is_an_error_not_data() {
                $crate::check($crate::run(
                    $crate::fs_faults::eio_on_read_is_an_error_not_data(
                        &super::__raft_store_harness(),
                        &$crate::__test_name!("eio_on_read_is_an_error_not_data"),
                    ),
                ));
            }
        }
    };
}

/// The modules the suite runs on the engine itself but not on one group of a multi-group store
/// (`in_a_group`): the generated inputs (codec and value shapes, the same whatever the key
/// layout) and the multi-group cases (which open a multi-group store on the engine).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_single_store {
    () => {
        /// Generated inputs: values of every shape and size, random log operations.
        mod generated {
            #[test]
            fn entries_round_trip() {
                $crate::check($crate::generated_cases::entries_round_trip(
                    &super::__raft_store_harness(),
                ));
            }

            #[test]
            fn log_ops_match_model() {
                $crate::check($crate::generated_cases::engine_log_ops_match_model(
                    &super::__raft_store_stores(),
                ));
            }

            #[test]
            fn careless_entries_returned_as_written() {
                $crate::check($crate::careless::careless_entries(
                    &super::__raft_store_harness(),
                ));
            }

            #[test]
            fn kv_requests_round_trip() {
                $crate::check($crate::generated_cases::kv_requests_round_trip(
                    &super::__raft_store_harness(),
                ));
            }
        }

        /// Many raft groups on one engine (`GroupStore`): isolation, one sync for many groups,
        /// fail-stop across groups, crash-safe drops.
        mod groups {
            $crate::__group_case_list!(__group_tests!());
        }
    };
}

/// The full name of the test `$case` in the module where this is expanded, as `--exact` wants
/// it: the module path without the crate's name.
#[doc(hidden)]
#[macro_export]
macro_rules! __test_name {
    ($case:literal) => {{
        let module = module_path!();
        format!(
            "{}::{}",
            module.split_once("::").map_or(module, |(_, rest)| rest),
            $case
        )
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_suite_body {
    ($harness:expr $(, $on_disk:ident)?) => {
        fn __raft_store_harness() -> impl $crate::EngineHarness {
            $harness
        }

        fn __raft_store_stores() -> $crate::EngineStores<impl $crate::EngineHarness> {
            $crate::EngineStores(__raft_store_harness())
        }

        $crate::__engine_cases!(__raft_store_harness);

        /// Store cases through `LogStore`.
        mod log {
            $crate::__log_tests!(super::__raft_store_stores);
            $($crate::__log_tests!($on_disk super::__raft_store_stores);)?
        }

        /// Cases that look under the store: syncs, faults, corruption, power loss.
        mod log_under {
            $crate::__engine_log_case_list!(__engine_log_tests!());
        }

        /// openraft's own log storage suite.
        mod openraft_suite {
            $crate::__openraft_tests!(super::__raft_store_stores);
        }

        /// The key-value state machine beside the log store in the same engine.
        mod kv_state_machine {
            $crate::__kv_tests!();
        }

    };
}

/// Expand the generated round-trip cases for a [`Codec`](raft_store_core::Codec) of your own: values of
/// every shape and size, and entries carrying them, must decode to what was encoded; careless
/// payloads ([`careless`](crate::careless)) must come back equal under a
/// self-describing codec, and are checked by value (never by re-encoded bytes) under any.
///
/// ```
/// raft_store_testkit::codec_suite!(raft_store_core::Postcard);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! codec_suite {
    ($codec:ty) => {
        /// The codec's generated round trip.
        mod codec {
            #[test]
            fn values_round_trip() {
                $crate::check($crate::generated_cases::codec_round_trips::<$codec>());
            }

            #[test]
            fn careless_values_round_trip() {
                $crate::check($crate::careless::careless_values_round_trip::<$codec>());
            }
        }
    };
}

/// Expand the store-level cases and openraft's suite for any `RaftLogStorage<TestConfig>`.
///
/// The argument is an expression implementing [`StoreOpener`](crate::StoreOpener).
/// Use this for a log store of your own that is not built on [`LogStore`](raft_store_core::LogStore).
/// Module `power_cut` runs the store in a child process on the fault file system and cuts the
/// power under it, checking what openraft requires of any log store (see
/// [`Order::Openraft`](crate::power_cut::model::Order::Openraft)); it needs FUSE.
///
/// ```
/// use std::io;
/// use std::path::Path;
///
/// use raft_store_testkit::StoreOpener;
///
/// /// Opens the store kept in `dir`: the suite reopens it there, and cuts the power under it.
/// struct MyStores;
///
/// impl StoreOpener for MyStores {
///     type Store = my_store::MyStore;
///
///     fn open(&self, dir: &Path) -> io::Result<my_store::MyStore> {
///         my_store::open(dir)
///     }
/// }
///
/// raft_store_testkit::log_store_suite!(MyStores);
/// # mod my_store {
/// #     use raft_store_testkit::TestConfig;
/// #     pub type MyStore = raft_store_core::LogStore<TestConfig, raft_store_core::MemEngine>;
/// #     pub fn open(_: &std::path::Path) -> std::io::Result<MyStore> {
/// #         Ok(raft_store_core::LogStore::open(raft_store_core::MemEngine::new())?)
/// #     }
/// # }
/// # fn main() {}
/// ```
///
/// `log_store_suite!(in_memory: opener)` leaves `power_cut` out, for a store that keeps
/// nothing on disk, and with it `log::flipped_byte_under_the_store`, which damages the store's
/// files. It is the weaker form: no case of it crashes the store, so it cannot see a flush
/// callback fired before the entries are durable, nor a vote that `save_vote` returns
/// before it is durable; only `power_cut::log_ops` of the form above catches those
/// (`tests/negative_power_cut.rs` shows each caught). A store that keeps its data on disk
/// belongs in the form above; on a machine without FUSE, `RAFT_STORE_NO_FUSE=1` has its
/// `power_cut` case say it skipped instead of failing.
///
/// ```
/// raft_store_testkit::log_store_suite!(in_memory: raft_store_testkit::EngineStores(
///     raft_store_testkit::MemHarness::new()
/// ));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! log_store_suite {
    (in_memory: $opener:expr) => {
        $crate::__log_store_suite_body!($opener);
    };
    ($opener:expr) => {
        $crate::__log_store_suite_body!($opener, on_disk);

        /// Power cuts under the store on the fault file system (needs FUSE).
        mod power_cut {
            #[test]
            fn log_ops() {
                $crate::check($crate::power_cut::log_ops(
                    &super::__raft_store_opener(),
                    &$crate::__test_name!("log_ops"),
                    $crate::power_cut::model::Order::Openraft,
                ));
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_store_suite_body {
    ($opener:expr $(, $on_disk:ident)?) => {
        fn __raft_store_opener() -> impl $crate::StoreOpener {
            $opener
        }

        /// Store cases.
        mod log {
            $crate::__log_tests!(super::__raft_store_opener);
            $($crate::__log_tests!($on_disk super::__raft_store_opener);)?
        }

        /// openraft's own log storage suite.
        mod openraft_suite {
            $crate::__openraft_tests!(super::__raft_store_opener);
        }

        /// Generated inputs: text entries of every size, random log operations.
        mod generated {
            #[test]
            fn text_entries_round_trip() {
                $crate::check($crate::generated_cases::text_entries_round_trip(
                    &super::__raft_store_opener(),
                ));
            }

            #[test]
            fn log_ops_match_model() {
                // A store of its own has no engine to reshape: reopens only.
                $crate::check($crate::generated_cases::log_ops_match_model(
                    &super::__raft_store_opener(),
                    |_| Ok(false),
                ));
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __engine_log_tests {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let stores = super::__raft_store_stores();
                $crate::check($crate::run($crate::engine_log_cases::$case(&stores)));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __group_tests {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let harness = super::__raft_store_harness();
                $crate::check($crate::run($crate::group_cases::$case(&harness)));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_tests {
    ($opener:path) => {
        $crate::__log_case_list!(__log_tests!(@cases $opener));
    };
    (on_disk $opener:path) => {
        $crate::__log_case_list!(on_disk __log_tests!(@cases $opener));
    };
    (@cases $opener:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let opener = $opener();
                $crate::check($crate::run($crate::log_cases::$case(&opener)));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __openraft_tests {
    ($opener:path) => {
        #[test]
        fn transfer_snapshot() {
            $crate::openraft_suite::run_transfer_snapshot($opener());
        }

        // The cases above are listed by hand; openraft's own `test_all` also runs any case a
        // later openraft adds, so none is skipped silently until the list catches up.
        #[test]
        fn all_cases_at_once() {
            $crate::openraft_suite::run_all($opener());
        }

        $crate::__openraft_case_names!(__openraft_tests!(@cases $opener));
    };
    (@cases $opener:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                fn go<O: $crate::StoreOpener>(opener: O) {
                    $crate::openraft_suite::run_case(
                        opener,
                        $crate::openraft_suite::SuiteOf::<O>::$case,
                    );
                }
                go($opener());
            }
        )*
    };
}

/// Expand the bad-input cases for an engine that keeps its store in a directory on disk: a path
/// that is a file, a directory without permission, a store opened twice in one process or held
/// by another process, a directory of another backend or of other files, a format record of
/// another backend or of a newer version. The tests land in module `bad_input`.
#[macro_export]
macro_rules! bad_input_suite {
    ($harness:expr) => {
        fn __raft_store_disk_harness() -> impl $crate::EngineHarness {
            $harness
        }

        /// Bad input: each case needs a clear error and loses nothing.
        mod bad_input {
            $crate::__bad_input_case_list!(__bad_input_tests!());

            #[test]
            fn locked_by_another_process() {
                // The child is this test binary running this one test: its name is the module
                // path without the crate's name, wherever the macro was expanded.
                let module = module_path!();
                let name = format!(
                    "{}::locked_by_another_process",
                    module.split_once("::").map_or(module, |(_, rest)| rest)
                );
                $crate::check($crate::bad_input::locked_by_another_process(
                    &super::__raft_store_disk_harness(),
                    &name,
                ));
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bad_input_tests {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::check($crate::bad_input::$case(&super::__raft_store_disk_harness()));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kv_tests {
    // Expanded in a module beside the suite's `__raft_store_harness`.
    () => {
        $crate::__openraft_case_names!(__kv_tests!(@openraft));
        $crate::__kv_case_list!(__kv_tests!(@ours));
    };
    (@openraft; $($case:ident),* $(,)?) => {
        /// openraft's suite with the key-value state machine.
        mod openraft_suite {
            #[test]
            fn transfer_snapshot() {
                $crate::kv_cases::run_transfer_snapshot(super::super::__raft_store_harness());
            }

            $(
                #[test]
                fn $case() {
                    fn go<H: $crate::EngineHarness>(harness: H) {
                        $crate::kv_cases::run_openraft_case(
                            harness,
                            $crate::kv_cases::KvSuiteOf::<H>::$case,
                        );
                    }
                    go(super::super::__raft_store_harness());
                }
            )*
        }
    };
    (@ours; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let harness = super::__raft_store_harness();
                $crate::check($crate::run($crate::kv_cases::$case(&harness)));
            }
        )*
    };
}

/// Expand the suite of the openraft 0.9 glue for an engine into named tests: module
/// `openraft09_suite` (openraft 0.9's own `testing::Suite` case by case, with the 0.9 log store
/// and key-value state machine, and its `test_all` once as `all_cases_at_once`) and module
/// `openraft09_store` (raft-store's cases for the 0.9 glue, among them random operations checked
/// against a model of the log). Needs features `testing` and
/// `openraft-0-9`.
///
/// ```
/// raft_store_testkit::openraft09_suite!(raft_store_testkit::MemHarness::new());
/// # fn main() {}
/// ```
#[cfg(feature = "openraft-0-9")]
#[macro_export]
macro_rules! openraft09_suite {
    ($harness:expr) => {
        fn __raft_store_09_harness() -> impl $crate::EngineHarness {
            $harness
        }

        /// openraft 0.9's own storage suite, with the key-value state machine.
        mod openraft09_suite {
            #[test]
            fn transfer_snapshot() {
                $crate::openraft09::run_transfer_snapshot(super::__raft_store_09_harness());
            }

            // openraft 0.9's `test_all` stops at the case below (see `run_refused_gap_case`);
            // this checks every case before it passes in one go and it stops for that reason.
            #[test]
            fn all_cases_at_once() {
                $crate::openraft09::run_all(super::__raft_store_09_harness());
            }

            /// Appends below the purged entries; refused, as every append that does not
            /// continue the log is.
            #[test]
            fn get_initial_state_membership_from_log_and_sm() {
                $crate::openraft09::run_refused_gap_case(super::__raft_store_09_harness());
            }

            $crate::__openraft09_case_names!(__openraft09_cases!());
        }

        /// raft-store's cases for the openraft 0.9 glue.
        mod openraft09_store {
            $crate::__openraft09_store_case_list!(__openraft09_store_cases!());
        }
    };
}

#[cfg(feature = "openraft-0-9")]
#[doc(hidden)]
#[macro_export]
macro_rules! __openraft09_cases {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                fn harness() -> impl $crate::EngineHarness {
                    super::__raft_store_09_harness()
                }
                fn typed<H: $crate::EngineHarness>(h: H) {
                    $crate::openraft09::run_case(
                        h,
                        $crate::openraft09::Suite09::<H>::$case,
                    );
                }
                typed(harness());
            }
        )*
    };
}

#[cfg(feature = "openraft-0-9")]
#[doc(hidden)]
#[macro_export]
macro_rules! __openraft09_store_cases {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::check($crate::openraft09::$case(&super::__raft_store_09_harness()));
            }
        )*
    };
}
