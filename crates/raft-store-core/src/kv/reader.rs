//! Reads while openraft owns the state machine.

use std::io;
use std::ops::ControlFlow;

use super::KvLine;
use super::LineStateReader;
use super::SnapshotFile;
use super::state::lock;
use crate::Engine;
use crate::codec::Codec;
use crate::error::StoreError;

impl<C: KvLine, E: Engine, K: Codec> LineStateReader<C, E, K> {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let st = lock(&self.shared.state);
        self.shared.read(st.generation, key)
    }

    /// Visit every key and value in key order (one consistent view), until `visit` breaks.
    ///
    /// Keys stored under their hash (those over the engine's key limit, see the
    /// [module docs](super)) come in key order too: they are read before the others (keys in
    /// memory, values in a temporary file in the snapshot directory) and merged in, with
    /// applies waiting meanwhile.
    pub fn scan(&self, visit: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let st = lock(&self.shared.state);
        self.shared.scan_in_order(st, &mut |k, v| Ok(visit(k, v)))
    }

    /// The last applied log id and membership as stored.
    pub fn applied(&self) -> (Option<C::LogId>, C::Membership) {
        let st = lock(&self.shared.state);
        (st.last_applied.clone(), st.last_membership.clone())
    }

    /// The meta of the current snapshot, if one exists.
    pub fn current_snapshot(&self) -> Option<C::SnapshotMeta> {
        lock(&self.shared.current).as_ref().map(|c| c.meta.clone())
    }

    /// Same as [`LineStateMachine::receive_snapshot`](super::LineStateMachine::receive_snapshot), for a
    /// network server that receives snapshots while openraft owns the state machine.
    pub fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        self.shared.receive_snapshot()
    }
}
