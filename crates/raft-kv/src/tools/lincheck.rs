//! A linearizability checker for histories of reads and writes of registers (one per key).
//!
//! Linearizability is local: a history is linearizable if and only if the history of every
//! key is, so each key is checked on its own. For one key, the search looks for an order of
//! the operations that (a) respects real time: an operation that completed before another was
//! invoked comes first, and (b) is a legal register history: every read returns the value of
//! the latest write before it (or the initial value). It tries, depth first, every operation
//! that may come next (one invoked before the earliest completion among those not yet placed)
//! and remembers the (placed set, register value) pairs already explored, which keeps the
//! search small for the histories of real clients (after Wing and Gong, with Lowe's cache).
//!
//! An operation whose outcome is unknown (a time-out) may have taken effect at any time after
//! its invocation, or never: it has no completion time and need not be placed at all.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt::Write as _;

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Set the register to a value.
    Write(String),
    /// Read the register: the value seen (`None`: not set).
    Read(Option<String>),
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Op {
    /// The key (register).
    pub key: String,
    /// When it was invoked (any monotonic unit, the same for all operations).
    pub call: u64,
    /// When it completed; `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// What it did.
    pub kind: OpKind,
    /// Which client issued it, for messages.
    pub client: usize,
}

/// Check a history (every register starts unset). On a violation, the error names the key
/// and lists its operations.
pub fn check(history: &[Op], max_states: usize) -> Result<(), String> {
    let mut keys: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        keys.entry(op.key.as_str()).or_default().push(op);
    }
    for (key, ops) in keys {
        check_register(&ops, max_states).map_err(|why| {
            let mut msg = format!("key {key:?}: {why}\n");
            let mut sorted = ops.clone();
            sorted.sort_by_key(|o| o.call);
            for op in sorted {
                let _ = writeln!(
                    msg,
                    "  client {} [{} .. {}] {:?}",
                    op.client,
                    op.call,
                    op.ret.map_or("unknown".to_string(), |r| r.to_string()),
                    op.kind
                );
            }
            msg
        })?;
    }
    Ok(())
}

fn check_register(ops: &[&Op], max_states: usize) -> Result<(), String> {
    // Values as small numbers (0: unset), so a search state is cheap to copy and hash.
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut id_of = |v: &Option<String>| -> u32 {
        match v {
            None => 0,
            Some(v) => {
                let next = u32::try_from(ids.len() + 1).unwrap_or(u32::MAX);
                *ids.entry(v.clone()).or_insert(next)
            }
        }
    };
    let read_values: HashSet<u32> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Read(v) => Some(v),
            OpKind::Write(_) => None,
        })
        .map(&mut id_of)
        .collect();
    // (call, ret, written value or None for a read, value read)
    let mut compact: Vec<(u64, Option<u64>, Option<u32>, u32)> = Vec::new();
    for op in ops {
        match &op.kind {
            OpKind::Write(v) => {
                let id = id_of(&Some(v.clone()));
                // A write of unknown outcome whose value nobody read can be left out: if it
                // took effect, a later write overwrote it before any read saw it, so the
                // history is linearizable with it exactly when it is without it.
                if op.ret.is_none() && !read_values.contains(&id) {
                    continue;
                }
                compact.push((op.call, op.ret, Some(id), 0));
            }
            OpKind::Read(v) => compact.push((op.call, op.ret, None, id_of(v))),
        }
    }
    let n = compact.len();
    let words = n.div_ceil(64);
    let must_place = compact.iter().filter(|o| o.1.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, u32)> = HashSet::new();
    // Depth-first search with an explicit stack of (placed set, value, completed ones placed).
    let mut stack: Vec<(Vec<u64>, u32, usize)> = vec![(vec![0; words], 0, 0)];
    while let Some((placed, value, done)) = stack.pop() {
        if done == must_place {
            return Ok(());
        }
        if !seen.insert((placed.clone(), value)) {
            continue;
        }
        if seen.len() > max_states {
            return Err(format!(
                "undecided after {max_states} search states: the history is too large to check"
            ));
        }
        let is_placed = |i: usize| placed[i / 64] & (1 << (i % 64)) != 0;
        // The earliest completion among operations not yet placed bounds what may come next.
        let horizon = (0..n)
            .filter(|&i| !is_placed(i))
            .filter_map(|i| compact[i].1)
            .min()
            .unwrap_or(u64::MAX);
        for i in (0..n).filter(|&i| !is_placed(i) && compact[i].0 <= horizon) {
            let (_, ret, write, read) = compact[i];
            let next_value = match write {
                Some(v) => v,
                None if read == value => value,
                None => continue,
            };
            let mut next = placed.clone();
            next[i / 64] |= 1 << (i % 64);
            stack.push((next, next_value, done + usize::from(ret.is_some())));
        }
    }
    Err("no order of its operations respects real time and reads the latest write".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, call: u64, ret: Option<u64>, kind: OpKind) -> Op {
        Op {
            key: "k".into(),
            call,
            ret,
            kind,
            client,
        }
    }

    fn w(v: &str) -> OpKind {
        OpKind::Write(v.into())
    }

    fn r(v: Option<&str>) -> OpKind {
        OpKind::Read(v.map(str::to_string))
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let history = vec![
            op(0, 0, Some(10), w("a")),
            op(1, 1, Some(11), w("b")),
            op(2, 2, Some(12), r(Some("a"))),
            op(3, 13, Some(14), r(Some("b"))),
            op(4, 15, Some(16), r(Some("b"))),
        ];
        check(&history, 100_000).unwrap();
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let history = vec![
            op(0, 0, Some(1), w("a")),
            op(0, 2, Some(3), w("b")),
            op(1, 4, Some(5), r(Some("a"))),
        ];
        let err = check(&history, 100_000).unwrap_err();
        assert!(err.contains("key \"k\""), "{err}");
    }

    #[test]
    fn a_value_flipping_back_is_a_violation() {
        let history = vec![
            op(0, 0, Some(10), w("a")),
            op(1, 0, Some(10), w("b")),
            op(2, 11, Some(12), r(Some("a"))),
            op(3, 13, Some(14), r(Some("b"))),
            op(2, 15, Some(16), r(Some("a"))),
        ];
        assert!(check(&history, 100_000).is_err());
    }

    #[test]
    fn an_unknown_write_may_apply_late_or_never() {
        let late = vec![
            op(0, 0, None, w("a")),
            op(1, 5, Some(6), r(None)),
            op(1, 7, Some(8), r(Some("a"))),
        ];
        check(&late, 100_000).unwrap();
        let never = vec![op(0, 0, None, w("a")), op(1, 5, Some(6), r(None))];
        check(&never, 100_000).unwrap();
        // But it cannot take effect before it was invoked.
        let early = vec![op(1, 0, Some(1), r(Some("a"))), op(0, 2, None, w("a"))];
        assert!(check(&early, 100_000).is_err());
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut history = vec![op(0, 0, Some(1), w("a")), op(1, 2, Some(3), r(Some("a")))];
        history.push(Op {
            key: "other".into(),
            ..op(2, 4, Some(5), r(Some("a")))
        });
        let err = check(&history, 100_000).unwrap_err();
        assert!(err.contains("key \"other\""), "{err}");
    }
}
