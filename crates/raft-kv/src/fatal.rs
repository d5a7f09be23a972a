//! Why a node stopped serving for good, typed: the store's own error where the store failed,
//! openraft's where raft stopped. Its text is what `/status`, `/health`, the logs and the exit
//! message show.

use std::fmt;
use std::sync::Arc;

use openraft::RaftMetrics;
use raft_store::StoreError;
use raft_store::StoreStats;

use crate::types::TypeConfig;

/// Why a node stopped serving for good: what [`Node::fatal`](crate::Node::fatal) resolves with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FatalCause {
    /// The store failed a durable write or an apply; the store's typed error is the
    /// [`source`](std::error::Error::source).
    #[error(transparent)]
    Store(StoreFailure),
    /// Raft's core task ended without a shutdown: it panicked, and every call of raft fails from
    /// then on while its last metrics still read as healthy.
    #[error("raft stopped: its core task ended (it panicked); see the log above")]
    CoreGone,
    /// Raft stopped on an error.
    #[error("raft stopped: {0}")]
    Raft(#[source] openraft::error::Fatal<TypeConfig>),
    /// Raft shut down.
    #[error("raft stopped")]
    Stopped,
}

impl FatalCause {
    /// The cause raft's metrics `m` show, if raft stopped (on an error or by a shutdown).
    pub(crate) fn of_raft(m: &RaftMetrics<TypeConfig>) -> Option<FatalCause> {
        if let Err(e) = &m.running_state {
            Some(FatalCause::Raft(e.clone()))
        } else if m.state == openraft::ServerState::Shutdown {
            Some(FatalCause::Stopped)
        } else {
            None
        }
    }
}

/// A fatal error of the store. The store's counters keep the typed error
/// ([`StoreStats::fatal_error`]), which is not `Clone`; this refers to it there. Its text is the
/// store's message for a server's status ([`StoreStats::fatal`]).
#[derive(Clone)]
pub struct StoreFailure(Arc<StoreStats>);

impl StoreFailure {
    /// The fatal error `stats` recorded, once the store had one.
    pub fn of(stats: &Arc<StoreStats>) -> Option<StoreFailure> {
        stats.fatal_error().map(|_| StoreFailure(stats.clone()))
    }

    /// The store's typed error: [`StoreError::WriteFailed`] for a failed durable write (the
    /// engine's error its source), [`StoreError::ApplyFailed`] for a failed apply. Always
    /// `Some`: the store keeps the first fatal error for good.
    pub fn error(&self) -> Option<&StoreError> {
        self.0.fatal_error()
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.fatal().unwrap_or("the store failed"))
    }
}

impl fmt::Debug for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreFailure").field(&self.error()).finish()
    }
}

impl std::error::Error for StoreFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_causes_keep_the_texts_status_and_health_showed() {
        assert_eq!(
            FatalCause::CoreGone.to_string(),
            "raft stopped: its core task ended (it panicked); see the log above"
        );
        assert_eq!(
            FatalCause::Raft(openraft::error::Fatal::Panicked).to_string(),
            "raft stopped: panicked"
        );
        assert_eq!(FatalCause::Stopped.to_string(), "raft stopped");
    }

    #[test]
    fn a_raft_cause_keeps_openraft_s_error_as_its_source() {
        let cause = FatalCause::Raft(openraft::error::Fatal::Panicked);
        let source = std::error::Error::source(&cause).expect("a source");
        assert_eq!(
            source.downcast_ref::<openraft::error::Fatal<TypeConfig>>(),
            Some(&openraft::error::Fatal::Panicked)
        );
    }

    #[test]
    fn a_store_without_a_fatal_error_gives_no_cause() {
        assert!(StoreFailure::of(&Arc::new(StoreStats::default())).is_none());
    }
}
