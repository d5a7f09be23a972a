//! The node's logs: `tracing` events to stderr, as text or one JSON object per line, filtered
//! by `--log-level` or, without it, `RUST_LOG` (both take `tracing_subscriber`'s directives,
//! e.g. `info` or `info,raft_kv::api=debug,openraft=warn`).
//!
//! Targets worth filtering on: `raft_kv::raft` (leader, role, membership and snapshot
//! changes), `raft_kv::node` (start, stop, fatal errors), `raft_kv::api` (every refused or
//! failed client request, with its status and reason), `raft_kv::raft_guard` (refused raft
//! messages), `raft_kv::connections`, `raft_kv::network`, `raft_kv::membership`, and the
//! store's `raft_store::sync` (slow and failed durable writes), `raft_store::apply` and
//! `raft_store::snapshot`.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`), for a log pipeline.
    Json,
}

/// The filter when neither `--log-level` nor `RUST_LOG` gives one: the node's own events at
/// info, openraft's at warn (its info lines are per-RPC chatter).
pub(crate) const DEFAULT_FILTER: &str = "info,openraft=warn";

/// Send `tracing` events to stderr in `format`, filtered by `level` (directives), else by
/// `RUST_LOG`, else [`DEFAULT_FILTER`]. A malformed filter is an error naming it.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), crate::Error> {
    // An empty level (`--log-level ''`, an empty variable) means "not given", as an empty
    // `RUST_LOG` does: an empty filter would silently log nothing, errors included.
    let directives = match level.filter(|l| !l.trim().is_empty()) {
        Some(level) => level.to_string(),
        None => std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_FILTER.to_string()),
    };
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| crate::Error::setup(format!("log level {directives:?}"), e))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = JSON.set(format == LogFormat::Json);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(false).try_init(),
    };
    installed.map_err(|e| crate::Error::setup("installing the logger", e))
}

/// Whether log lines are JSON: then a last word printed outside `tracing` (a start-up error,
/// the fatal exit) goes through it too, so every line of stderr parses.
pub fn is_json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_level_is_an_error_naming_it() {
        let err = init(LogFormat::Text, Some("info,raft_kv=loud")).expect_err("a bad directive");
        assert!(err.to_string().contains("raft_kv=loud"), "{err}");
    }
}
