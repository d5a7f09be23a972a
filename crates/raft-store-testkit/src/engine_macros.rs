//! The macro that expands the engine cases into one `#[test]` each.

/// Expand the engine cases for an [`EngineHarness`] into one `#[test]` each, in module `engine`.
///
/// ```
/// use std::path::Path;
///
/// // Any `Fn(&Path) -> Result<impl Engine, EngineError>` that keeps its store in `dir`.
/// raft_store_testkit::engine_suite!(crate::FnHarness(|dir: &Path| {
///     my_engine::open(dir)
/// }));
/// # mod my_engine {
/// #     pub fn open(_: &std::path::Path) -> Result<raft_store_engine::MemEngine, raft_store_engine::EngineError> {
/// #         Ok(raft_store_engine::MemEngine::new())
/// #     }
/// # }
/// # fn main() {}
/// ```
///
/// (An engine that forgets everything on reopen, like the one above, fails
/// `reopen_keeps_durable_writes`: use [`MemHarness`] for the in-memory engine.)
#[macro_export]
macro_rules! engine_suite {
    ($harness:expr) => {
        fn __raft_store_engine_harness() -> impl $crate::EngineHarness {
            $harness
        }
        $crate::__engine_cases!(__raft_store_engine_harness);
    };
}

/// Module `engine`: every engine case against the harness the function `$harness` returns.
#[doc(hidden)]
#[macro_export]
macro_rules! __engine_cases {
    ($harness:ident) => {
        /// Engine cases.
        mod engine {
            $crate::__engine_tests!($harness;
                put_get_delete,
                batch_applies_in_order,
                delete_range_bounds,
                scan_is_ordered_and_stops,
                scan_bounds,
                last_key_per_space,
                last_key_after_inner_range_delete,
                spaces_are_separate,
                reopen_keeps_durable_writes,
                large_values_and_binary_keys,
                stated_key_limit_holds,
                scan_sees_one_state_during_writes,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __engine_tests {
    ($harness:ident; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::check($crate::engine_cases::$case(&super::$harness()));
            }
        )*
    };
}
