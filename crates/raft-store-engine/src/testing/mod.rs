//! The engine layer of the conformance suite (feature `testing`).
//!
//! - [`engine_cases`]: what every [`Engine`](crate::Engine) must do (batches, ranges, scans,
//!   keyspaces, reopen), run by [`engine_suite!`](crate::engine_suite) one `#[test]` per case;
//! - [`FaultEngine`]: an engine wrapper that fails writes and syncs on demand and can drop what
//!   was never synced, for the store-level cases of `raft-store-core`;
//! - [`rng`]: the seeded generator the power-cut cases replay a run with.
//!
//! An adapter's `tests/conformance.rs` that wants the engine cases only:
//!
//! ```
//! raft_store_engine::engine_suite!(raft_store_engine::testing::MemHarness::new());
//! # fn main() {}
//! ```
//!
//! The whole suite (the log store and state machine of each openraft line on top of the engine)
//! is `raft_store_core::conformance_suite!`, which includes these cases.
//!
//! Cases return [`CaseResult`] instead of panicking, so negative tests can assert that a
//! deliberately broken engine fails them.

pub mod engine_cases;
mod fault;
mod harness;
pub mod rng;

pub use fault::Fault;
pub use fault::FaultEngine;
pub use fault::Faults;
pub use fault::InjectedFault;
pub use harness::EngineHarness;
pub use harness::FnHarness;
pub use harness::MemHarness;

/// What a case returns: `Err` says which check failed and why.
pub type CaseResult = Result<(), CaseError>;

/// A failed check of a case.
pub type CaseError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Fail the case with a message unless `cond` holds.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

/// Panic with the case's message if it failed; used by the generated `#[test]`s.
pub fn check(result: CaseResult) {
    if let Err(e) = result {
        panic!("conformance case failed: {e}");
    }
}

/// A fresh temporary directory for one store.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("raft-store-case-")
        .tempdir()
        .expect("temporary directory for a case")
}

/// Expand the engine cases for an [`EngineHarness`] into one `#[test]` each, in module `engine`.
///
/// ```
/// use std::path::Path;
///
/// // Any `Fn(&Path) -> Result<impl Engine, EngineError>` that keeps its store in `dir`.
/// raft_store_engine::engine_suite!(raft_store_engine::testing::FnHarness(|dir: &Path| {
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
        fn __raft_store_engine_harness() -> impl $crate::testing::EngineHarness {
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
                $crate::testing::check($crate::testing::engine_cases::$case(&super::$harness()));
            }
        )*
    };
}

/// A directory this process may not write to, for the "directory without permission" cases;
/// the permission comes back on drop.
///
/// An unprivileged process gets mode `000`. Root ignores modes, so as root the directory is made
/// immutable with `chattr +i` (which needs a filesystem like ext4, xfs or btrfs).
pub struct UnwritableDir {
    dir: tempfile::TempDir,
    immutable: bool,
}

impl UnwritableDir {
    /// Make one.
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false);
        if root {
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir.path())
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "as root, `chattr +i` must work on the temp directory to test permission errors"
            );
        } else {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o000))
                .expect("chmod 000 on a temporary directory");
        }
        Self { dir, immutable: root }
    }

    /// The directory itself (exists, not writable).
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for UnwritableDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for UnwritableDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.dir.path())
                .status();
        } else {
            let _ = std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
}
