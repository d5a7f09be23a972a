//! Bounded connections on every listener: how long a client may take to send a request, how
//! long a keep-alive connection may sit idle, and how many connections a listener holds.
//!
//! - **Header timeout** (default 10 s): a request head must be complete this long after its
//!   first byte arrived. Enforced by [`crate::head_guard::HeadGuard`]; the client gets a 408
//!   JSON answer. A connection that sends nothing at all is idle, not late: client pools open
//!   connections before they need them, and answering one that was never used would race with
//!   its first request. (HTTP/2 has no head to time this way; gRPC relies on the others.)
//! - **Body timeout** (default 30 s): the longest a handler waits for the next bytes of a
//!   request body. It bounds a stalled body, not a slow one: a snapshot streamed steadily for an
//!   hour is never cut, a body that stops for 30 s is. An HTTP/1 connection is then closed (its
//!   framing is lost); a gRPC call fails and its connection serves on.
//! - **Idle timeout** (default 60 s): a connection with no request in progress is closed this
//!   long after its last answer (or its start), without an answer; on gRPC, with no call in
//!   flight.
//! - **Connection caps**, one per listener: [`DEFAULT_MAX_CONNECTIONS`] on the HTTP API and
//!   on gRPC each, [`DEFAULT_MAX_RAFT_CONNECTIONS`] on the raft port. A connection beyond the
//!   cap is admitted by closing the longest-idle one (a connection is idle until a complete
//!   request head arrived, so a slowloris client holding a partial head is evicted as well); if
//!   every connection is busy it is refused (HTTP: 503 JSON, gRPC: closed).
//!
//! The caps and a reserve for everything else a node opens fit below the common 1,024 open
//! file limit; [`check_file_limit`] raises the soft limit when the caps need more, and warns
//! when it cannot.

mod body;
mod grpc_io;
mod tracker;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use body::TimedBody;
pub use grpc_io::GrpcIo;
pub use grpc_io::busy_layer;
pub use grpc_io::incoming;
pub use tracker::Conn;
pub use tracker::Refuse;
pub use tracker::Tracker;

/// The default header timeout.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default body timeout (the longest wait for the next body bytes).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default idle timeout. Above the 30 s after which peers (`crate::network`) drop their
/// idle connections, so a peer never sends on a connection this node is closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default cap of the HTTP API and of the gRPC API, each.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The default cap of the raft port: a peer holds a few connections to it (replication,
/// votes, a snapshot), so 128 leaves room for clusters of dozens of nodes.
pub const DEFAULT_MAX_RAFT_CONNECTIONS: usize = 128;
/// Open files a node needs besides its listeners' connections: the store's files, connections
/// to peers and forwards, answers to refused connections, the runtime, stdio.
pub const FILE_RESERVE: u64 = 160;

/// A duration setting: a whole number with a unit (`500ms`, `10s`, `2m`), or a bare number of
/// seconds; a TOML file may also give an integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits);
        let bad = || format!("{s:?}: expected a duration such as 500ms, 10s or 2m");
        let n: u64 = number.parse().map_err(|_| bad())?;
        let duration = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        Ok(Timeout(duration))
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timeout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            Seconds(u64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Seconds(n) => Ok(Timeout(Duration::from_secs(n))),
            Given::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The connection limits of a node (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Time to receive a complete request head.
    pub header_timeout: Duration,
    /// The longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// How long a connection with no request in progress stays open.
    pub idle_timeout: Duration,
    /// The cap of the HTTP API and of the gRPC API, each.
    pub max_connections: usize,
    /// The cap of the raft port.
    pub max_raft_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_raft_connections: DEFAULT_MAX_RAFT_CONNECTIONS,
        }
    }
}

impl ConnLimits {
    /// The limits from the settings given (`None`: the default); a zero is refused, since it
    /// would close every connection or admit none.
    pub fn resolve(
        header_timeout: Option<Timeout>,
        body_timeout: Option<Timeout>,
        idle_timeout: Option<Timeout>,
        max_connections: Option<usize>,
        max_raft_connections: Option<usize>,
    ) -> Result<ConnLimits, String> {
        let d = ConnLimits::default();
        let limits = ConnLimits {
            header_timeout: header_timeout.map_or(d.header_timeout, |t| t.0),
            body_timeout: body_timeout.map_or(d.body_timeout, |t| t.0),
            idle_timeout: idle_timeout.map_or(d.idle_timeout, |t| t.0),
            max_connections: max_connections.unwrap_or(d.max_connections),
            max_raft_connections: max_raft_connections.unwrap_or(d.max_raft_connections),
        };
        for (name, value) in [
            ("--header-timeout", limits.header_timeout),
            ("--body-timeout", limits.body_timeout),
            ("--idle-timeout", limits.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("{name} 0: must be above zero"));
            }
        }
        for (name, value) in [
            ("--max-connections", limits.max_connections),
            ("--max-raft-connections", limits.max_raft_connections),
        ] {
            if value == 0 {
                return Err(format!("{name} 0: must be at least 1"));
            }
        }
        Ok(limits)
    }

    /// The open files a node with these caps needs: every listener full, plus
    /// [`FILE_RESERVE`].
    pub fn files_needed(&self, grpc: bool) -> u64 {
        let grpc = if grpc { self.max_connections } else { 0 };
        [self.max_connections, self.max_raft_connections, grpc]
            .iter()
            .map(|&n| n as u64)
            .sum::<u64>()
            .saturating_add(FILE_RESERVE)
    }
}

/// The open file limit as the node found it and left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The soft limit at start.
    pub was: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Make sure the process may open `needed` files: raise the soft `RLIMIT_NOFILE` up to the hard
/// limit if it is lower, and warn on stderr (one line naming the settings) if even the hard
/// limit is lower. A node below the limit still runs: when `accept` fails for want of files,
/// the listener closes its longest-idle connection and tries again.
pub fn check_file_limit(needed: u64, settings: &str) -> Option<FileLimit> {
    use nix::sys::resource::Resource;
    let (soft, hard) = match nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(target: "raft_kv::node", error = %e, "cannot read the open file limit");
            return None;
        }
    };
    let mut limit = FileLimit {
        was: soft,
        soft,
        hard,
    };
    if soft < needed {
        let raised = needed.min(hard);
        match nix::sys::resource::setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => limit.soft = raised,
            Err(e) => {
                tracing::warn!(target: "raft_kv::node", error = %e, "cannot raise the open file limit to {raised}");
            }
        }
    }
    if limit.soft < needed {
        tracing::warn!(
            target: "raft_kv::node",
            "the open file limit is {} (hard {}), below the {needed} that {settings} \
             and {FILE_RESERVE} for the store and peers need; raise it (ulimit -n) or lower the caps",
            limit.soft, limit.hard
        );
    } else if limit.soft > limit.was {
        tracing::info!(
            target: "raft_kv::node",
            "raised the open file limit from {} to {} for {settings}",
            limit.was, limit.soft
        );
    }
    Some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_units_and_bare_seconds() {
        let t = |s: &str| s.parse::<Timeout>().map(|t| t.0);
        assert_eq!(t("10"), Ok(Duration::from_secs(10)));
        assert_eq!(t("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(t("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(t("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "1.5s", "-1s", "10 h", "99999999999999999999m"] {
            let err = t(bad).unwrap_err();
            assert!(err.contains("expected a duration"), "{bad}: {err}");
        }
        assert_eq!(Timeout(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Timeout(Duration::from_secs(30)).to_string(), "30s");
    }

    #[test]
    fn zero_limits_are_refused_and_defaults_fit_1024_files() {
        let zero = Some(Timeout(Duration::ZERO));
        let err = ConnLimits::resolve(None, zero, None, None, None).unwrap_err();
        assert!(err.contains("--body-timeout"), "{err}");
        let err = ConnLimits::resolve(None, None, None, None, Some(0)).unwrap_err();
        assert!(err.contains("--max-raft-connections"), "{err}");
        let defaults = ConnLimits::resolve(None, None, None, None, None).unwrap();
        assert_eq!(defaults, ConnLimits::default());
        assert!(
            defaults.files_needed(true) < 1024,
            "{}",
            defaults.files_needed(true)
        );
    }
}
