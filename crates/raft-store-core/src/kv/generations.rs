//! Generations of keys: loading a snapshot into a new one, and removing old ones in small
//! steps.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use super::KvLine;
use super::keys::Bucket;
use super::keys::is_hashed_form;
use super::keys::stored_key;
use super::snapshot::SnapshotReader;
use super::snapshot_files::snapshot_read;
use super::state::Shared;
use crate::Batch;
use crate::Durability;
use crate::Engine;
use crate::KeyRange;
use crate::Space;
use crate::codec::Codec;
use crate::codec::seal_bytes;
use crate::error::StoreError;

impl<C: KvLine, E: Engine, K: Codec> Shared<C, E, K> {
    pub(super) fn load_generation(
        &self,
        generation: u64,
        reader: &mut SnapshotReader,
        path: &Path,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        let mut since_sync = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        // Buckets of long keys put in `batch` and not written yet.
        let mut pending: HashMap<Vec<u8>, Bucket> = HashMap::new();
        while let Some((key, value)) = reader.next_record().map_err(|e| snapshot_read(path, e))? {
            if last_key.as_ref().is_some_and(|last| *last >= key) {
                return Err(StoreError::SnapshotFile {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its keys are not in ascending order at key {:?}",
                        String::from_utf8_lossy(&key)
                    ),
                    source: None,
                });
            }
            if std::str::from_utf8(&key).is_err() {
                return Err(StoreError::SnapshotFile {
                    path: path.to_path_buf(),
                    reason: format!("key {:?} is not UTF-8", String::from_utf8_lossy(&key)),
                    source: None,
                });
            }
            let stored = stored_key(generation, &key, &self.limits);
            let bytes = if is_hashed_form(&stored) {
                // A long key: into the bucket of its hash, as written so far (by this batch or
                // an earlier one). Records come in key order, not hash order.
                let mut bucket = match pending.remove(&stored) {
                    Some(bucket) => bucket,
                    None => match self.engine.get(Space::Data, &stored)? {
                        Some(bytes) => self.bucket(&stored, &bytes)?,
                        None => Bucket::default(),
                    },
                };
                bucket.set(&key, &value);
                let bytes = bucket.encode();
                pending.insert(stored.clone(), bucket);
                bytes
            } else {
                Some(seal_bytes(&value))
            };
            let Some(bytes) = bytes.filter(|b| self.limits.fits(stored.len(), b.len())) else {
                return Err(StoreError::SnapshotFile {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the record of a key of {} bytes ({:.40?}...) with a value of {} bytes is too large \
                         for the {} engine ({:?})",
                        key.len(),
                        String::from_utf8_lossy(&key),
                        value.len(),
                        self.backend,
                        self.limits
                    ),
                    source: None,
                });
            };
            batch.put(Space::Data, stored, bytes);
            last_key = Some(key);
            if batch.size_bytes() >= self.options.batch_bytes {
                since_sync += batch.size_bytes();
                let durability = if since_sync >= self.options.sync_every_bytes {
                    since_sync = 0;
                    Durability::Durable
                } else {
                    Durability::Buffered
                };
                self.engine.write(&batch, durability)?;
                batch = Batch::new();
                pending.clear();
            }
        }
        if !batch.is_empty() {
            self.engine.write(&batch, Durability::Buffered)?;
        }
        Ok(())
    }
}

/// Remove every key of [`Space::Data`] in `start..end`, `chunk` keys per batch (see
/// [`KvOptions::delete_chunk`](super::KvOptions::delete_chunk)) so that an old generation of any
/// size is removed in small steps.
pub(crate) fn delete_keys<E: Engine>(
    engine: &E,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    chunk: usize,
) -> Result<(), StoreError> {
    let mut start = start;
    loop {
        let mut seen = 0usize;
        let mut last: Option<Vec<u8>> = None;
        let range = match &end {
            Some(end) => KeyRange::half_open(&start, end),
            None => KeyRange::from(&start),
        };
        if range.is_empty() {
            return Ok(());
        }
        engine.scan(Space::Data, range, &mut |k, _| {
            seen += 1;
            if seen >= chunk {
                last = Some(k.to_vec());
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        if seen == 0 {
            return Ok(());
        }
        let mut batch = Batch::new();
        if let Some(mut last) = last {
            // A full chunk: delete up to and including its last key, then go on after it.
            last.push(0);
            batch.delete_range(Space::Data, start, Some(last.clone()));
            engine.write(&batch, Durability::Buffered)?;
            start = last;
        } else {
            batch.delete_range(Space::Data, start, end);
            engine.write(&batch, Durability::Buffered)?;
            return Ok(());
        }
    }
}
