//! Reads while openraft owns the state machine.

use std::io;
use std::ops::ControlFlow;

use super::KvLine;
use super::SnapshotFile;
use super::StateReader;
use super::state::lock;
use crate::codec::Codec;
use crate::engine::Engine;
use crate::error::StoreError;

impl<C: KvLine, E: Engine, K: Codec> StateReader<C, E, K> {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let st = lock(&self.shared.state);
        self.shared.read(st.generation, key)
    }

    /// Visit every key and value in key order (one consistent view), until `visit` breaks.
    pub fn scan(&self, visit: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>) -> Result<(), StoreError> {
        let st = lock(&self.shared.state);
        let generation = st.generation;
        let mut guard = Some(st);
        let mut failed = None;
        let shared = &*self.shared;
        shared.scan_generation(generation, &mut |key, value| {
            guard.take();
            match shared.decode_record(key, value) {
                Ok((k, v)) => {
                    if let Ok(k) = std::str::from_utf8(k) {
                        visit(k, v)
                    } else {
                        failed = Some(shared.corrupt_key(key, "key is not UTF-8"));
                        ControlFlow::Break(())
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
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

    /// Same as [`StateMachine::receive_snapshot`], for a network server that receives
    /// snapshots while openraft owns the state machine.
    pub fn receive_snapshot(&self) -> io::Result<SnapshotFile> {
        self.shared.receive_snapshot()
    }
}
