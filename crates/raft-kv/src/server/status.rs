//! What a node says about itself: `GET /status` (one typed [`NodeStatus`], which gRPC's
//! `Status` call answers too), `GET /health` for probes, `GET /metrics` for Prometheus, and
//! `GET /openapi.json`, the HTTP API's contract.
//!
//! Nothing here touches the disk: the metrics come from raft's metrics and the store's
//! counters ([`raft_store::StoreStats`]), so a scrape costs the same on any data size.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use openraft::async_runtime::WatchReceiver;
use raft_store::HistogramSnapshot;
use serde::Serialize;

use super::Caller;
use super::NodeState;
use super::Shared;
use crate::FatalCause;

/// The HTTP API's contract, an `OpenAPI` document (committed beside the crate, checked against a live node in
/// CI by a property-based API tester).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// One member of the cluster, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// The member's id.
    pub id: u64,
    /// Its raft address.
    pub raft: String,
    /// Its client API address.
    pub http: String,
    /// Its gRPC address (empty: none).
    pub grpc: String,
    /// Whether it votes (a learner does not).
    pub voter: bool,
}

/// The size limits a node checks requests against, as `/status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_field_names, reason = "named as the settings are")]
pub struct LimitsStatus {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-key-bytes`.
    pub max_key_bytes: usize,
    /// `--max-append-bytes`.
    pub max_append_bytes: usize,
}

/// A node's status: what `GET /status` answers as JSON and gRPC's `Status` as a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// This node's id.
    pub id: u64,
    /// Its raft role (`Leader`, `Follower`, `Candidate`, `Learner`, `Shutdown`).
    pub state: String,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// Every member, voters and learners.
    pub members: Vec<MemberStatus>,
    /// The index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// The index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// The index of the last entry this node knows is committed.
    pub committed: Option<u64>,
    /// The last index the current snapshot covers.
    pub snapshot: Option<u64>,
    /// The storage backend.
    pub backend: &'static str,
    /// The request size limits.
    pub limits: LimitsStatus,
    /// Why the node stopped serving for good (it exits shortly); `null` while it serves.
    pub fatal: Option<String>,
    /// The data directory: only for an authenticated caller, since it tells an attacker where
    /// the files are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

/// The node's status; the data directory only if `private` (the caller proved a token).
pub fn node_status(s: &NodeState, private: bool) -> NodeStatus {
    let m = s.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    NodeStatus {
        id: s.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        members: membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                raft: node.raft.clone(),
                http: node.http.clone(),
                grpc: node.grpc.clone(),
                voter: voters.contains(id),
            })
            .collect(),
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.as_ref().map(|l| l.index),
        committed: m.local_committed.as_ref().map(|l| l.index),
        snapshot: m.snapshot.as_ref().map(|l| l.index),
        backend: s.backend,
        limits: LimitsStatus {
            max_request_bytes: s.limits.max_request_bytes,
            max_key_bytes: s.limits.max_key_bytes,
            max_append_bytes: s.limits.max_append_bytes,
        },
        fatal: s.fatal().map(ToString::to_string),
        data_dir: private.then(|| s.data_dir.display().to_string()),
    }
}

pub(super) async fn status(State(s): State<Shared>, caller: Option<Extension<Caller>>) -> Response {
    axum::Json(node_status(&s, caller.is_some())).into_response()
}

/// How recently a follower must have heard from its leader, and a leader from a quorum, to
/// count as serving: ten heartbeats (200 ms apart) missed, more than the longest election
/// timeout (1.6 s), so a normal election reads as not serving only while it runs.
pub const CONTACT_WITHIN: Duration = Duration::from_secs(2);

/// Whether a node serves, as `/health` and gRPC's health service tell it.
#[derive(Debug, Clone)]
pub enum Health {
    /// Raft runs, a leader is known and in contact (a leader with a quorum, a follower with
    /// its leader): requests can be answered.
    Serving,
    /// Raft runs but cannot answer: no leader is known, this follower has not heard from its
    /// leader within [`CONTACT_WITHIN`], or this leader not from a quorum; why.
    NoLeader(String),
    /// A fatal error stopped the node; it exits shortly.
    Fatal(FatalCause),
}

impl Health {
    /// The health of `s` now.
    pub fn of(s: &NodeState) -> Health {
        use openraft::Instant as _;
        if let Some(cause) = s.fatal() {
            return Health::Fatal(cause.clone());
        }
        let m = s.raft.metrics().borrow_watched().clone();
        if let Some(cause) = FatalCause::of_raft(&m) {
            return Health::Fatal(cause);
        }
        let ms = |d: Duration| d.as_millis();
        match m.current_leader {
            None => Health::NoLeader(
                "no leader is known: the cluster is electing one, or this node is cut off from it"
                    .to_string(),
            ),
            Some(leader) if leader == s.id => {
                // A leader that is the only voter is its own quorum.
                if m.membership_config.membership().voter_ids().all(|v| v == s.id) {
                    return Health::Serving;
                }
                match m.last_quorum_acked.as_deref().map(|t| t.elapsed()) {
                    Some(since) if since < CONTACT_WITHIN => Health::Serving,
                    Some(since) => Health::NoLeader(format!(
                        "this node leads, but no quorum has acknowledged it for {} ms: it is cut off from the other voters",
                        ms(since)
                    )),
                    None => {
                        Health::NoLeader("this node leads, but no quorum has acknowledged it yet".to_string())
                    }
                }
            }
            Some(leader) => match s.leader_contact() {
                Some(since) if since < CONTACT_WITHIN => Health::Serving,
                Some(since) => Health::NoLeader(format!(
                    "no message from leader {leader} for {} ms: this node is cut off from it, or it is gone",
                    ms(since)
                )),
                None => Health::NoLeader(format!("no message from leader {leader} yet")),
            },
        }
    }
}

pub(super) async fn health(State(s): State<Shared>) -> Response {
    match Health::of(&s) {
        Health::Serving => axum::Json(serde_json::json!({ "status": "serving", "id": s.id })).into_response(),
        Health::NoLeader(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "no_leader", "id": s.id, "error": why })),
        )
            .into_response(),
        Health::Fatal(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "fatal", "id": s.id, "error": cause.to_string() })),
        )
            .into_response(),
    }
}

pub(super) async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

/// Prometheus' text format, one metric family at a time, every sample labelled with the node.
struct Exposition {
    out: String,
    node: u64,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{name}{{node=\"{}\"", self.node);
        for (label, v) in labels {
            let _ = write!(self.out, ",{label}=\"{}\"", escape_label(v));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in &h.buckets {
            self.sample(&bucket, &[("le", &bound.to_string())], count);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count);
    }
}

/// A label value in Prometheus' text format: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub(super) async fn metrics(State(s): State<Shared>) -> Response {
    let m = s.raft.metrics().borrow_watched().clone();
    let mut e = Exposition {
        out: String::new(),
        node: s.id,
    };
    e.gauge("raft_kv_term", "Current raft term.", m.current_term);
    e.gauge(
        "raft_kv_is_leader",
        "1 if this node is the leader (0 once a fatal error stopped it).",
        u64::from(m.current_leader == Some(s.id) && s.fatal().is_none()),
    );
    e.gauge(
        "raft_kv_last_log_index",
        "Index of the last log entry.",
        m.last_log_index.unwrap_or(0),
    );
    e.gauge(
        "raft_kv_last_applied_index",
        "Index of the last applied entry.",
        m.last_applied.as_ref().map_or(0, |l| l.index),
    );
    e.gauge(
        "raft_kv_committed_index",
        "Index of the last committed entry.",
        m.local_committed.as_ref().map_or(0, |l| l.index),
    );
    e.gauge(
        "raft_kv_snapshot_index",
        "Last log index in the current snapshot.",
        m.snapshot.as_ref().map_or(0, |l| l.index),
    );
    e.gauge(
        "raft_kv_members",
        "Number of nodes in the membership.",
        m.membership_config.membership().nodes().count() as u64,
    );
    e.gauge(
        "raft_kv_fatal",
        "1 once a fatal store error stopped the node (it exits shortly).",
        u64::from(s.fatal().is_some()),
    );
    requests(&mut e, &s);
    store(&mut e, &s.stats.snapshot());
    ([("content-type", "text/plain; version=0.0.4")], e.out).into_response()
}

/// The client request counters.
fn requests(e: &mut Exposition, s: &NodeState) {
    let c = &s.counters;
    e.family(
        "raft_kv_requests_total",
        "counter",
        "Client requests received, by kind.",
    );
    for (kind, counter) in [
        ("write", &c.writes),
        ("read", &c.reads),
        ("stale_read", &c.stale_reads),
        ("forwarded", &c.forwarded),
    ] {
        e.sample(
            "raft_kv_requests_total",
            &[("kind", kind)],
            counter.load(Ordering::Relaxed),
        );
    }
}

/// The store's figures.
fn store(e: &mut Exposition, st: &raft_store::StatsSnapshot) {
    e.histogram(
        "raft_kv_store_sync_seconds",
        "Latency of each durable log write (the write and its fsync), in seconds.",
        &st.sync_seconds,
    );
    e.histogram(
        "raft_kv_store_group_jobs",
        "Jobs (appends, vote and commit saves, truncations, purges) sharing one durable write: the group commit size.",
        &st.group_jobs,
    );
    e.counter(
        "raft_kv_store_bytes_written_total",
        "Bytes of keys and values the log's durable writes carried.",
        st.bytes_written,
    );
    e.counter(
        "raft_kv_store_entries_appended_total",
        "Log entries made durable.",
        st.entries_appended,
    );
    e.counter(
        "raft_kv_store_entries_applied_total",
        "Entries applied to the state machine.",
        st.entries_applied,
    );
    e.family(
        "raft_kv_store_snapshots_total",
        "counter",
        "Snapshots built by this node or installed from a leader.",
    );
    e.sample(
        "raft_kv_store_snapshots_total",
        &[("kind", "built")],
        st.snapshots_built,
    );
    e.sample(
        "raft_kv_store_snapshots_total",
        &[("kind", "installed")],
        st.snapshots_installed,
    );
    e.family(
        "raft_kv_store_errors_total",
        "counter",
        "Store errors by operation (write: a failed durable write, the store is then poisoned; refused: a write refused since; apply; snapshot) and kind.",
    );
    for ((op, kind), n) in &st.errors {
        e.sample("raft_kv_store_errors_total", &[("op", op), ("kind", kind)], n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_then_inf_sum_and_count() {
        let mut e = Exposition {
            out: String::new(),
            node: 7,
        };
        let h = HistogramSnapshot {
            buckets: vec![(0.001, 2), (0.01, 5)],
            count: 6,
            sum: 0.25,
        };
        e.histogram("x_seconds", "help", &h);
        let lines: Vec<&str> = e.out.lines().collect();
        assert_eq!(
            lines,
            [
                "# HELP x_seconds help",
                "# TYPE x_seconds histogram",
                "x_seconds_bucket{node=\"7\",le=\"0.001\"} 2",
                "x_seconds_bucket{node=\"7\",le=\"0.01\"} 5",
                "x_seconds_bucket{node=\"7\",le=\"+Inf\"} 6",
                "x_seconds_sum{node=\"7\"} 0.25",
                "x_seconds_count{node=\"7\"} 6",
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
