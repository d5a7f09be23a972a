//! The macro that expands the engine cases into one `#[test]` each.

/// Expand the engine cases for an [`EngineHarness`] into one `#[test]` each, in module `engine`.
///
/// ```
/// use std::path::Path;
///
/// // Any `Fn(&Path) -> Result<impl Engine, EngineError>` that keeps its store in `dir`.
/// raft_store_testkit::engine_suite!(raft_store_testkit::FnHarness(|dir: &Path| {
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
            $crate::__engine_case_list!(__engine_tests!($harness));
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
