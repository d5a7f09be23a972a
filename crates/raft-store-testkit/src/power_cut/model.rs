//! A random workload of raft log operations, and the model that decides whether a store's state
//! after a crash is allowed.
//!
//! `LogStore` makes operations durable in the order they were issued (one flusher, one engine
//! batch per group), so after a crash the store must hold exactly the result of applying some
//! prefix of the issued operations, at least as long as the acknowledged prefix. That is the
//! whole check: every acknowledged entry, truncate, purge, vote and committed id is there, the
//! log is contiguous, and no entry is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::str::FromStr;

use openraft::EntryPayload;
use openraft::RaftLogReader;
use openraft::storage::RaftLogStorage;

use crate::TestConfig;
use crate::rng::Rng;
use crate::util;
use crate::util::Flushed;

/// One operation on the log, as the crash writer issues it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOp {
    /// Append entries `first..=last`, all of `term`.
    Append {
        /// Term of the entries.
        term: u64,
        /// First index.
        first: u64,
        /// Last index.
        last: u64,
    },
    /// Remove every entry after `after` (whose term is `term`).
    Truncate {
        /// Term of the entry kept last.
        term: u64,
        /// Index of the entry kept last.
        after: u64,
    },
    /// Purge every entry up to and including `upto` (whose term is `term`).
    Purge {
        /// Term of the last purged entry.
        term: u64,
        /// Index of the last purged entry.
        upto: u64,
    },
    /// Save the vote of `node` in `term`.
    Vote {
        /// Term.
        term: u64,
        /// Node voted for.
        node: u64,
    },
    /// Save the committed log id.
    Committed {
        /// Term of the committed entry.
        term: u64,
        /// Its index.
        index: u64,
    },
}

impl LogOp {
    /// The kind of operation, as printed: `append`, `truncate`, `purge`, `vote`, `committed`.
    pub fn kind(&self) -> &'static str {
        match self {
            LogOp::Append { .. } => "append",
            LogOp::Truncate { .. } => "truncate",
            LogOp::Purge { .. } => "purge",
            LogOp::Vote { .. } => "vote",
            LogOp::Committed { .. } => "committed",
        }
    }
}

impl fmt::Display for LogOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LogOp::Append { term, first, last } => write!(f, "append {term} {first} {last}"),
            LogOp::Truncate { term, after } => write!(f, "truncate {term} {after}"),
            LogOp::Purge { term, upto } => write!(f, "purge {term} {upto}"),
            LogOp::Vote { term, node } => write!(f, "vote {term} {node}"),
            LogOp::Committed { term, index } => write!(f, "committed {term} {index}"),
        }
    }
}

impl FromStr for LogOp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            parts
                .get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("operation {s:?}: field {i} is not a number"))
        };
        match parts.first().copied() {
            Some("append") => Ok(LogOp::Append {
                term: num(1)?,
                first: num(2)?,
                last: num(3)?,
            }),
            Some("truncate") => Ok(LogOp::Truncate {
                term: num(1)?,
                after: num(2)?,
            }),
            Some("purge") => Ok(LogOp::Purge {
                term: num(1)?,
                upto: num(2)?,
            }),
            Some("vote") => Ok(LogOp::Vote {
                term: num(1)?,
                node: num(2)?,
            }),
            Some("committed") => Ok(LogOp::Committed {
                term: num(1)?,
                index: num(2)?,
            }),
            _ => Err(format!("unknown operation {s:?}")),
        }
    }
}

/// The payload of the entry at `index` written in `term`: derived from both, with a length that
/// varies, so a reader can tell any wrong entry from the right one.
pub fn payload(term: u64, index: u64) -> String {
    let pad = usize::try_from((index * 31 + term * 7) % 200).unwrap_or(0);
    format!("{term}:{index}:{}", "x".repeat(pad))
}

/// What a log store holds: entries (index to term), the purged id, vote and committed id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Entries after the purged one: index to term.
    pub entries: BTreeMap<u64, u64>,
    /// `(term, index)` of the last purged entry.
    pub purged: Option<(u64, u64)>,
    /// `(term, node)` of the saved vote.
    pub vote: Option<(u64, u64)>,
    /// `(term, index)` of the saved committed id.
    pub committed: Option<(u64, u64)>,
}

impl Model {
    /// Apply one operation, as a correct store does.
    pub fn apply(&mut self, op: &LogOp) {
        match *op {
            LogOp::Append { term, first, last } => {
                for i in first..=last {
                    self.entries.insert(i, term);
                }
            }
            LogOp::Truncate { after, .. } => {
                self.entries.split_off(&(after + 1));
            }
            LogOp::Purge { term, upto } => {
                self.entries = self.entries.split_off(&(upto + 1));
                if self.purged.is_none_or(|(_, p)| p < upto) {
                    self.purged = Some((term, upto));
                }
            }
            LogOp::Vote { term, node } => self.vote = Some((term, node)),
            LogOp::Committed { term, index } => self.committed = Some((term, index)),
        }
    }

    /// Index of the last entry (or of the purged one, or 0).
    pub fn last_index(&self) -> u64 {
        self.entries
            .last_key_value()
            .map(|(i, _)| *i)
            .or(self.purged.map(|(_, i)| i))
            .unwrap_or(0)
    }

    /// Term of the entry at `index`, the purged one included.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.entries
            .get(&index)
            .copied()
            .or_else(|| self.purged.filter(|(_, i)| *i == index).map(|(t, _)| t))
    }

    /// The highest term seen in entries, purged id and vote.
    pub fn max_term(&self) -> u64 {
        let entries = self.entries.values().copied().max().unwrap_or(0);
        [
            entries,
            self.purged.map_or(0, |p| p.0),
            self.vote.map_or(0, |v| v.0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.entries.first_key_value(), self.entries.last_key_value()) {
            (Some((a, _)), Some((b, tb))) => write!(f, "entries {a}..={b} (last term {tb})")?,
            _ => write!(f, "no entries")?,
        }
        write!(
            f,
            ", purged {:?}, vote {:?}, committed {:?}",
            self.purged, self.vote, self.committed
        )
    }
}

/// A fixed small history: 400 entries over four terms (each term's vote first), a committed id,
/// and the first 20 entries purged. The corruption tests damage a store holding it, and the
/// on-disk format fixtures are stores holding it.
pub fn sample_ops() -> Vec<LogOp> {
    let mut ops = Vec::new();
    for term in 1..=4u64 {
        ops.push(LogOp::Vote { term, node: 1 });
        for chunk in 0..10u64 {
            let first = (term - 1) * 100 + chunk * 10 + 1;
            ops.push(LogOp::Append {
                term,
                first,
                last: first + 9,
            });
        }
    }
    ops.push(LogOp::Committed { term: 4, index: 350 });
    ops.push(LogOp::Purge { term: 1, upto: 20 });
    ops
}

/// How strictly a crash check reads openraft's storage contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Every operation lands whole and in the order issued, the committed id and purges
    /// included: what [`LogStore`](raft_store_core::LogStore) promises.
    Strict,
    /// What openraft itself requires of any `RaftLogStorage`: writes in the order issued and
    /// the vote durable, but the committed id may be older or absent (saving it is optional), a
    /// purge may be lost (the purged entries are then still there, unchanged), and a
    /// truncate cut by the crash may have removed only part of the tail, from the end.
    Openraft,
}

/// Check a store's state after a crash: it must be the state after some prefix of `ops` applied
/// to `base`, no shorter than `acked`. Returns the prefix length it matched.
pub fn check(base: &Model, ops: &[LogOp], acked: usize, observed: &Model) -> Result<usize, String> {
    check_with(base, ops, acked, observed, Order::Strict)
}

/// [`check`], reading the contract as `order` says.
pub fn check_with(
    base: &Model,
    ops: &[LogOp],
    acked: usize,
    observed: &Model,
    order: Order,
) -> Result<usize, String> {
    let acked = acked.min(ops.len());
    let mut m = base.clone();
    // Terms of the entries purged by `ops`, for a store whose purge was lost.
    let mut ghosts = BTreeMap::new();
    let apply = |m: &mut Model, ghosts: &mut BTreeMap<u64, u64>, op: &LogOp| {
        if let LogOp::Purge { upto, .. } = op {
            ghosts.extend(m.entries.range(..=upto).map(|(i, t)| (*i, *t)));
        }
        m.apply(op);
    };
    for op in &ops[..acked] {
        apply(&mut m, &mut ghosts, op);
    }
    let at_ack = m.clone();
    for p in acked..=ops.len() {
        let matched = match order {
            Order::Strict => m == *observed,
            Order::Openraft => loosely_matches(&m, &ghosts, ops.get(p), observed),
        };
        if matched {
            return Ok(p);
        }
        if let Some(op) = ops.get(p) {
            apply(&mut m, &mut ghosts, op);
        }
    }
    Err(format!(
        "the store matches no state between the {acked} acknowledged and the {} issued operations:\n  \
         found     {observed}\n  acknowledged state {at_ack}\n  issued state      {m}\n  \
         operations after the acknowledged ones: {:?}",
        ops.len(),
        &ops[acked..ops.len().min(acked + 8)]
    ))
}

/// Whether `o` is a state openraft allows after the operations that made `m`, with `next` the
/// operation in flight at the crash and `ghosts` the terms of entries purged on the way.
fn loosely_matches(m: &Model, ghosts: &BTreeMap<u64, u64>, next: Option<&LogOp>, o: &Model) -> bool {
    if o.vote != m.vote || o.committed.is_some_and(|c| m.committed.is_none_or(|mc| c > mc)) {
        return false;
    }
    if o.purged > m.purged {
        return false;
    }
    let purged = m.purged.map_or(0, |p| p.1);
    let entries_match = o.entries.iter().all(|(i, t)| {
        let want = if *i > purged {
            m.entries.get(i)
        } else {
            ghosts.get(i)
        };
        want == Some(t)
    });
    // Every entry the model holds is there, unless the truncate in flight removed it (from the
    // end backward, down to no lower than what it keeps).
    let kept_floor = match next {
        Some(LogOp::Truncate { after, .. }) => Some(*after),
        _ => None,
    };
    let o_last = o.last_index();
    let tail_ok = m
        .entries
        .keys()
        .all(|i| o.entries.contains_key(i) || kept_floor.is_some_and(|after| *i > after && *i > o_last));
    entries_match && tail_ok
}

/// Chooses valid random operations, keeping its own model of what was issued.
#[derive(Debug, Clone)]
pub struct Workload {
    issued: Model,
    term: u64,
    voted: bool,
}

impl Workload {
    /// A workload continuing from a store holding `model`, in a new term.
    pub fn resume(model: &Model) -> Self {
        Self {
            issued: model.clone(),
            term: model.max_term() + 1,
            voted: false,
        }
    }

    /// The next operation (already applied to the workload's model).
    pub fn next_op(&mut self, rng: &mut Rng) -> LogOp {
        let op = self.choose(rng);
        self.issued.apply(&op);
        op
    }

    fn choose(&mut self, rng: &mut Rng) -> LogOp {
        let m = &self.issued;
        if !self.voted {
            self.voted = true;
            return LogOp::Vote {
                term: self.term,
                node: rng.between(1, 3),
            };
        }
        let last = m.last_index();
        let committed = m.committed.map_or(0, |c| c.1);
        let purged = m.purged.map_or(0, |p| p.1);
        // Never below what is committed or purged: raft never truncates those.
        let floor = committed.max(purged);
        let append = |n: u64| LogOp::Append {
            term: self.term,
            first: last + 1,
            last: last + n,
        };
        match rng.below(100) {
            0..55 => append(rng.between(1, 16)),
            55..62 => append(rng.between(64, 256)),
            62..74 if last > committed => {
                let index = rng.between(committed + 1, last);
                match m.term_at(index) {
                    Some(term) => LogOp::Committed { term, index },
                    None => append(1),
                }
            }
            74..82 if last > floor + 1 => {
                let after = rng.between(floor.max(1), last - 1);
                match m.term_at(after) {
                    Some(term) => {
                        // A truncate means a new leader: the next entries are of a new term.
                        self.term += 1;
                        self.voted = false;
                        LogOp::Truncate { term, after }
                    }
                    None => append(1),
                }
            }
            82..92 if committed > purged => {
                let upto = rng.between(purged + 1, committed);
                match m.term_at(upto) {
                    Some(term) => LogOp::Purge { term, upto },
                    None => append(1),
                }
            }
            92..100 => {
                self.term += 1;
                LogOp::Vote {
                    term: self.term,
                    node: rng.between(1, 3),
                }
            }
            _ => append(rng.between(1, 8)),
        }
    }
}

/// Issue `op` on `store`. Appends return their flush callback; the other operations are queued
/// (vote: durable) when this returns.
pub async fn issue<S: RaftLogStorage<TestConfig>>(store: &mut S, op: &LogOp) -> io::Result<Option<Flushed>> {
    match *op {
        LogOp::Append { term, first, last } => {
            let entries = (first..=last).map(|i| util::entry_with(term, i, payload(term, i)));
            let rx = util::append_nowait(store, entries.collect::<Vec<_>>()).await?;
            Ok(Some(rx))
        }
        LogOp::Truncate { term, after } => {
            store.truncate_after(Some(util::log_id(term, after))).await?;
            Ok(None)
        }
        LogOp::Purge { term, upto } => {
            store.purge(util::log_id(term, upto)).await?;
            Ok(None)
        }
        LogOp::Vote { term, node } => {
            store.save_vote(&util::vote(term, node)).await?;
            Ok(None)
        }
        LogOp::Committed { term, index } => {
            store.save_committed(Some(util::log_id(term, index))).await?;
            Ok(None)
        }
    }
}

/// Read everything a store holds into a [`Model`], checking on the way that the log is
/// contiguous and that every entry carries exactly the payload of its term and index.
pub async fn observe<S: RaftLogStorage<TestConfig>>(store: &mut S) -> Result<Model, String> {
    let state = store
        .get_log_state()
        .await
        .map_err(|e| format!("get_log_state: {e}"))?;
    let purged = state.last_purged_log_id.map(|id| (id.leader_id.term, id.index));
    let mut reader = store.get_log_reader().await;
    let vote = reader
        .read_vote()
        .await
        .map_err(|e| format!("read_vote: {e}"))?
        .map(|v| (v.leader_id.term, v.leader_id.node_id));
    let committed = store
        .read_committed()
        .await
        .map_err(|e| format!("read_committed: {e}"))?
        .map(|id| (id.leader_id.term, id.index));
    let start = purged.map_or(0, |(_, i)| i + 1);
    let end = state.last_log_id.map_or(0, |id| id.index + 1);
    let got = if end > start {
        reader
            .try_get_log_entries(start..end)
            .await
            .map_err(|e| format!("reading entries {start}..{end}: {e}"))?
    } else {
        Vec::new()
    };
    // Without a purge the log starts at its first entry, whatever its index.
    let first = match (purged, got.first()) {
        (None, Some(e)) => e.log_id.index,
        _ => start,
    };
    let mut entries = BTreeMap::new();
    for (i, e) in got.iter().enumerate() {
        let want_index = first + i as u64;
        if e.log_id.index != want_index {
            return Err(format!(
                "the log is not contiguous: entry {i} of {start}..{end} has index {}",
                e.log_id.index
            ));
        }
        let term = e.log_id.leader_id.term;
        let expected = payload(term, want_index);
        match &e.payload {
            EntryPayload::Normal(data) if *data == expected => {}
            other => {
                return Err(format!(
                    "wrong entry at index {want_index} (term {term}): payload {other:?}, expected {expected:?}"
                ));
            }
        }
        entries.insert(want_index, term);
    }
    if got.len() as u64 != end.saturating_sub(first) {
        return Err(format!(
            "the log is not contiguous: {} entries read from {first}..{end}",
            got.len()
        ));
    }
    Ok(Model {
        entries,
        purged,
        vote,
        committed,
    })
}

/// Test config alias, re-exported for the child binaries.
pub type Config = TestConfig;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_print_and_parse_back() {
        let mut rng = Rng::new(1);
        let mut w = Workload::resume(&Model::default());
        for _ in 0..500 {
            let op = w.next_op(&mut rng);
            assert_eq!(op.to_string().parse::<LogOp>(), Ok(op));
        }
        assert!("bogus 1".parse::<LogOp>().is_err());
        assert!("append 1 x 3".parse::<LogOp>().is_err());
    }

    #[test]
    fn a_prefix_matches_and_a_lost_acknowledged_op_does_not() {
        let ops = [
            LogOp::Append {
                term: 1,
                first: 1,
                last: 3,
            },
            LogOp::Committed { term: 1, index: 2 },
            LogOp::Append {
                term: 1,
                first: 4,
                last: 4,
            },
        ];
        let mut after_two = Model::default();
        after_two.apply(&ops[0]);
        after_two.apply(&ops[1]);
        assert_eq!(check(&Model::default(), &ops, 1, &after_two), Ok(2));
        // Losing the acknowledged second operation is a failure.
        let mut after_one = Model::default();
        after_one.apply(&ops[0]);
        assert!(check(&Model::default(), &ops, 2, &after_one).is_err());
        // So is an entry that was never issued.
        let mut extra = after_two.clone();
        extra.entries.insert(9, 1);
        assert!(check(&Model::default(), &ops, 0, &extra).is_err());
    }

    #[test]
    fn workload_stays_valid() {
        let mut rng = Rng::new(42);
        let mut w = Workload::resume(&Model::default());
        let mut m = Model::default();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let op = w.next_op(&mut rng);
            kinds.insert(op.kind());
            if let LogOp::Append { first, .. } = op {
                assert_eq!(first, m.last_index() + 1, "appends follow the last entry");
            }
            if let LogOp::Truncate { after, .. } = op {
                assert!(
                    after >= m.committed.map_or(0, |c| c.1),
                    "never truncates committed entries"
                );
            }
            m.apply(&op);
        }
        assert_eq!(kinds.len(), 5, "every kind of operation occurs: {kinds:?}");
    }
}
