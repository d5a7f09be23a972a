//! What a case returns, and the checks it makes.

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
