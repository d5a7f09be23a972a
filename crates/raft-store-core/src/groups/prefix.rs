//! The keys of one group in a multi-group store: the byte `g`, the group id as 8 bytes
//! big-endian, then the key a single-group store would use.
//!
//! Byte order is group order, so one group's keys are one contiguous range of every keyspace,
//! next to its neighbours' and to nobody else's: a scan of a group never leaves its range, and
//! a range delete drops it. The leading byte keeps the store's own records (the format record
//! `format`, the registry `G` + id) outside every group's range, id 0 and `u64::MAX` included.

use std::ops::Bound;

use crate::Batch;
use crate::KeyRange;
use crate::Op;

/// The first byte of every key of a group.
pub(crate) const GROUP_TAG: u8 = b'g';
/// The first byte after every group's keys: the end of group `u64::MAX`'s range.
const AFTER_GROUPS: u8 = GROUP_TAG + 1;

/// The key prefix of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GroupPrefix([u8; 9]);

/// Owned bounds of a range of the engine's keys, for a [`KeyRange`] to borrow.
pub(crate) struct OwnedRange {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
}

impl OwnedRange {
    /// The range, borrowed.
    pub fn as_range(&self) -> KeyRange<'_> {
        KeyRange {
            start: as_ref(&self.start),
            end: as_ref(&self.end),
        }
    }
}

fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl GroupPrefix {
    /// The prefix of group `id`.
    pub fn new(id: u64) -> Self {
        let mut bytes = [0u8; 9];
        bytes[0] = GROUP_TAG;
        bytes[1..].copy_from_slice(&id.to_be_bytes());
        Self(bytes)
    }

    /// The prefix's bytes: the first key of the group's range.
    pub fn start(&self) -> &[u8] {
        &self.0
    }

    /// The first key after the group's range: the next group's prefix, or for `u64::MAX` the
    /// byte after the group tag.
    pub fn end(&self) -> Vec<u8> {
        let id = u64::from_be_bytes(self.0[1..].try_into().unwrap_or([0xFF; 8]));
        match id.checked_add(1) {
            Some(next) => GroupPrefix::new(next).0.to_vec(),
            None => vec![AFTER_GROUPS],
        }
    }

    /// The engine's key for the group's `key`.
    pub fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + key.len());
        out.extend_from_slice(&self.0);
        out.extend_from_slice(key);
        out
    }

    /// The group's key for the engine's `key`, or `None` for a key of another group (or none).
    pub fn strip<'a>(&self, key: &'a [u8]) -> Option<&'a [u8]> {
        key.strip_prefix(&self.0[..])
    }

    /// The engine's range for the group's `range`: an unbounded side becomes the edge of the
    /// group's range, so nothing outside the group is ever in it.
    pub fn range(&self, range: KeyRange<'_>) -> OwnedRange {
        let start = match range.start {
            Bound::Included(k) => Bound::Included(self.key(k)),
            Bound::Excluded(k) => Bound::Excluded(self.key(k)),
            Bound::Unbounded => Bound::Included(self.0.to_vec()),
        };
        let end = match range.end {
            Bound::Included(k) => Bound::Included(self.key(k)),
            Bound::Excluded(k) => Bound::Excluded(self.key(k)),
            Bound::Unbounded => Bound::Excluded(self.end()),
        };
        OwnedRange { start, end }
    }

    /// The whole group, in the engine's keys.
    pub fn all(&self) -> OwnedRange {
        self.range(KeyRange::ALL)
    }

    /// `batch` in the engine's keys. A range delete without an upper bound ends at the end of
    /// the group.
    pub fn batch(&self, batch: Batch) -> Batch {
        let mut out = Batch::new();
        for op in batch.into_ops() {
            match op {
                Op::Put { space, key, value } => out.put(space, self.key(&key), value),
                Op::Delete { space, key } => out.delete(space, self.key(&key)),
                Op::DeleteRange { space, start, end } => out.delete_range(
                    space,
                    self.key(&start),
                    Some(end.map_or_else(|| self.end(), |e| self.key(&e))),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Space;

    #[test]
    fn neighbours_ranges_touch_and_never_overlap() {
        for id in [0, 1, 255, 256, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let p = GroupPrefix::new(id);
            let end = p.end();
            assert!(p.start() < end.as_slice());
            if let Some(next) = id.checked_add(1) {
                assert_eq!(end, GroupPrefix::new(next).start(), "group {id}");
            } else {
                assert_eq!(end, vec![b'h']);
            }
            // Every key of the group lies in its range; the store's own records do not.
            let range = p.all();
            let range = range.as_range();
            assert!(range.contains(&p.key(&[])));
            assert!(range.contains(&p.key(&[0xFF; 40])));
            for own in [
                &b"format"[..],
                b"G\x00\x00\x00\x00\x00\x00\x00\x00",
                b"G\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
                b"h",
            ] {
                assert!(!range.contains(own), "group {id} contains {own:?}");
            }
        }
    }

    #[test]
    fn a_batch_moves_into_the_group_and_an_open_range_ends_at_its_edge() {
        let p = GroupPrefix::new(7);
        let mut batch = Batch::new();
        batch.put(Space::Log, vec![1], vec![2]);
        batch.delete(Space::Meta, b"vote".to_vec());
        batch.delete_range(Space::Log, vec![3], None);
        let ops = p.batch(batch).into_ops();
        assert_eq!(
            ops,
            vec![
                Op::Put {
                    space: Space::Log,
                    key: p.key(&[1]),
                    value: vec![2]
                },
                Op::Delete {
                    space: Space::Meta,
                    key: p.key(b"vote")
                },
                Op::DeleteRange {
                    space: Space::Log,
                    start: p.key(&[3]),
                    end: Some(GroupPrefix::new(8).start().to_vec())
                },
            ]
        );
        assert_eq!(p.strip(&p.key(b"abc")), Some(&b"abc"[..]));
        assert_eq!(GroupPrefix::new(8).strip(&p.key(b"abc")), None);
    }
}
