//! Reading a generation in key order, long keys included.
//!
//! The short records of a generation come out of one engine scan in key order; the long ones
//! are stored under their hash, after every short record and in hash order (see
//! [`super::keys`]). So the long records are gathered first (their keys in memory, their
//! values in a file in the snapshot directory), sorted by key, and merged into the scan of the
//! short ones. The state lock is held from before the gathering until the short scan has its
//! view of the engine, so no apply writes in between and both see one state. Without long
//! keys the gathering is one empty range scan.

use std::fs::File;
use std::io;
use std::io::BufWriter;
use std::io::Read;
use std::io::Seek;
use std::io::SeekFrom;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::MutexGuard;

use super::KvLine;
use super::snapshot_files::remove_quietly;
use super::snapshot_files::snapshot_io;
use super::state::Shared;
use super::state::SmState;
use crate::Engine;
use crate::codec::Codec;
use crate::error::StoreError;

/// What [`Shared::scan_in_order`] calls with each key and value; `Break` stops the scan.
pub(crate) type RecordVisitor<'a> = dyn FnMut(&str, &[u8]) -> Result<ControlFlow<()>, StoreError> + 'a;

/// The values of the long records, written out while they are gathered; removed on drop.
struct Spill {
    out: BufWriter<File>,
    path: PathBuf,
}

impl Drop for Spill {
    fn drop(&mut self) {
        remove_quietly(&self.path);
    }
}

/// The long records of a generation, sorted by key, and how far the merge has emitted them.
struct LongRecords {
    /// Key, offset of the value in the spill file, length of the value.
    index: Vec<(String, u64, usize)>,
    next: usize,
    spill: Option<Spill>,
}

impl LongRecords {
    /// Emit, in key order, the records not emitted yet whose key is below `bound` (all of them
    /// if `None`).
    fn emit_below(
        &mut self,
        bound: Option<&str>,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<ControlFlow<()>, StoreError> {
        while let Some((key, offset, len)) = self.index.get(self.next) {
            if bound.is_some_and(|b| key.as_str() >= b) {
                break;
            }
            let mut value = vec![0u8; *len];
            if let Some(spill) = &mut self.spill {
                let file = spill.out.get_mut();
                file.seek(SeekFrom::Start(*offset))
                    .and_then(|_| file.read_exact(&mut value))
                    .map_err(|e| snapshot_io(&spill.path, "reading back a long key's value", e))?;
            }
            self.next += 1;
            if visit(key, &value)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

impl<C: KvLine, E: Engine, K: Codec> Shared<C, E, K> {
    /// Visit every key and value of the generation `guard` names, in key order, one
    /// consistent view, until `visit` breaks. `guard` is the state lock: it is released once
    /// the view is taken.
    pub(crate) fn scan_in_order(
        &self,
        guard: MutexGuard<'_, SmState<C>>,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<(), StoreError> {
        let generation = guard.generation;
        let mut long = self.gather_long(generation)?;
        let mut guard = Some(guard);
        let mut failed = None;
        let mut stopped = false;
        self.scan_short(generation, &mut |k, v| {
            // The first record proves the scan has its view: applies may go on.
            guard.take();
            let step = self.decode_short(k, v).and_then(|(key, value)| {
                if long.emit_below(Some(key), visit)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
                visit(key, value)
            });
            match step {
                Ok(ControlFlow::Continue(())) => ControlFlow::Continue(()),
                Ok(ControlFlow::Break(())) => {
                    stopped = true;
                    ControlFlow::Break(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        drop(guard);
        if let Some(e) = failed {
            return Err(e);
        }
        if !stopped {
            // Whether the visitor breaks here no longer matters: nothing follows.
            let _ = long.emit_below(None, visit)?;
        }
        Ok(())
    }

    /// Read the long records of a generation: keys into memory, values into a spill file.
    fn gather_long(&self, generation: u64) -> Result<LongRecords, StoreError> {
        let mut long = LongRecords {
            index: Vec::new(),
            next: 0,
            spill: None,
        };
        let mut offset = 0u64;
        let mut failed = None;
        self.scan_hashed(generation, &mut |stored, bytes| {
            let step = self.bucket(stored, bytes).and_then(|bucket| {
                for (key, value) in bucket.into_pairs() {
                    let spill = match &mut long.spill {
                        Some(spill) => spill,
                        None => long.spill.insert(self.spill_file()?),
                    };
                    spill
                        .out
                        .write_all(&value)
                        .map_err(|e| snapshot_io(&spill.path, "writing out a long key's value", e))?;
                    // Bucket::decode checked the key is UTF-8.
                    let key =
                        String::from_utf8(key).map_err(|_| self.corrupt_key(stored, "key is not UTF-8"))?;
                    long.index.push((key, offset, value.len()));
                    offset += value.len() as u64;
                }
                Ok(())
            });
            match step {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(spill) = &mut long.spill {
            spill
                .out
                .flush()
                .map_err(|e| snapshot_io(&spill.path, "writing out a long key's value", e))?;
        }
        long.index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(long)
    }

    /// A new spill file in the snapshot directory (a `.tmp` file: the next open removes it if
    /// a crash left it behind).
    fn spill_file(&self) -> Result<Spill, StoreError> {
        let path = self.file_name("scan", None);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e: io::Error| snapshot_io(&path, "creating a file for long keys' values", e))?;
        Ok(Spill {
            out: BufWriter::with_capacity(256 << 10, file),
            path,
        })
    }
}
