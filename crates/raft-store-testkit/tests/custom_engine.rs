//! How to run the conformance suite against an engine of your own: a complete engine in one
//! file, an append-only file of batches replayed into ordered maps on open, checked by every
//! case of the suite at the bottom of this file.

use std::collections::BTreeMap;
use std::fs::File;
use std::fs::OpenOptions;
use std::io::Read;
use std::io::Write;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::EngineError;
use raft_store_core::KeyRange;
use raft_store_core::Op;
use raft_store_core::Space;
use raft_store_core::StoreDir;
use raft_store_core::Visitor;

const BACKEND: &str = "batchfile";

struct State {
    maps: [BTreeMap<Vec<u8>, Vec<u8>>; 4],
    file: File,
    /// Encoded buffered batches, written with the next durable write.
    unsynced: Vec<u8>,
    /// Length of the file as written so far, and as of its last completed sync.
    len: u64,
    synced_len: u64,
}

/// Every batch is one record `[len u32 BE][crc32c u32 BE][synced u64 BE][ops]` appended to
/// `batches.log`, where `synced` is how far the file had been synced when the record was made
/// and the checksum covers `synced` and the ops. On open, a bad record is a torn tail (cut off)
/// only if no later record says the file was synced past it; otherwise it is damage to
/// acknowledged data, and the store refuses to open rather than forget it.
pub struct BatchFileEngine {
    state: Mutex<State>,
    _dir: StoreDir,
}

fn io(context: &str, e: std::io::Error) -> EngineError {
    EngineError::io(BACKEND, context, e)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Header bytes of a record: length, checksum, synced length.
const HEADER: usize = 16;

fn encode(batch: &Batch, synced: u64) -> Vec<u8> {
    let mut ops = synced.to_be_bytes().to_vec();
    for op in batch.ops() {
        match op {
            Op::Put { space, key, value } => {
                ops.extend([0, *space as u8]);
                put_bytes(&mut ops, key);
                put_bytes(&mut ops, value);
            }
            Op::Delete { space, key } => {
                ops.extend([1, *space as u8]);
                put_bytes(&mut ops, key);
            }
            Op::DeleteRange { space, start, end } => {
                ops.extend([2, *space as u8]);
                put_bytes(&mut ops, start);
                ops.push(u8::from(end.is_some()));
                put_bytes(&mut ops, end.as_deref().unwrap_or_default());
            }
        }
    }
    // `ops` starts with the synced length: the length field counts it, the checksum covers it.
    let mut record = Vec::with_capacity(ops.len() + 8);
    record.extend_from_slice(&((ops.len() - 8) as u32).to_be_bytes());
    record.extend_from_slice(&crc32c::crc32c(&ops).to_be_bytes());
    record.extend_from_slice(&ops);
    record
}

/// The record at the start of `bytes`, if one is there whole with a matching checksum: its
/// synced length, its ops and its total size.
fn record_at(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(..8)?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let body = bytes.get(8..HEADER.checked_add(len)?)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let synced = u64::from_be_bytes(body[..8].try_into().ok()?);
    Some((synced, &body[8..], HEADER + len))
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = buf.split_at_checked(n)?;
    *buf = rest;
    Some(head)
}

fn take_bytes(buf: &mut &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_be_bytes(take(buf, 4)?.try_into().ok()?) as usize;
    Some(take(buf, len)?.to_vec())
}

fn decode(mut ops: &[u8]) -> Option<Batch> {
    let spaces = Space::ALL;
    let mut batch = Batch::new();
    while !ops.is_empty() {
        let [tag, space] = take(&mut ops, 2)? else {
            return None;
        };
        let space = *spaces.get(usize::from(*space))?;
        match tag {
            0 => batch.put(space, take_bytes(&mut ops)?, take_bytes(&mut ops)?),
            1 => batch.delete(space, take_bytes(&mut ops)?),
            2 => {
                let start = take_bytes(&mut ops)?;
                let bounded = take(&mut ops, 1)? == [1];
                let end = take_bytes(&mut ops)?;
                batch.delete_range(space, start, bounded.then_some(end));
            }
            _ => return None,
        }
    }
    Some(batch)
}

fn apply(maps: &mut [BTreeMap<Vec<u8>, Vec<u8>>; 4], batch: &Batch) {
    for op in batch.ops() {
        let map = &mut maps[op.space() as usize];
        match op {
            Op::Put { key, value, .. } => {
                map.insert(key.clone(), value.clone());
            }
            Op::Delete { key, .. } => {
                map.remove(key);
            }
            Op::DeleteRange { start, end, .. } => {
                let end = end
                    .as_ref()
                    .map_or(Bound::Unbounded, |e| Bound::Excluded(e.clone()));
                if matches!(&end, Bound::Excluded(e) if e <= start) {
                    continue;
                }
                let doomed: Vec<_> = map
                    .range((Bound::Included(start.clone()), end))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in doomed {
                    map.remove(&k);
                }
            }
        }
    }
}

impl BatchFileEngine {
    /// Open the store in `dir`, replaying every complete record; a torn last record (a crash
    /// in the middle of an append) is cut off, since it was never acknowledged.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        let store_dir = StoreDir::open(BACKEND, dir)?;
        let path = dir.join("batches.log");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        // A new file's name is durable only once its directory is synced: without this, a
        // power cut after the first durable write loses the whole file (the suite's power-cut
        // cases catch it).
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing the store directory", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io("reading", e))?;
        let mut maps: [BTreeMap<Vec<u8>, Vec<u8>>; 4] = Default::default();
        let mut good = 0usize;
        while let Some((_, ops, size)) = record_at(&bytes[good..]) {
            let batch = decode(ops).ok_or_else(|| EngineError::NotAStore {
                backend: BACKEND,
                path: path.clone(),
                detail: format!("record at byte {good} has a valid checksum but cannot be decoded"),
            })?;
            apply(&mut maps, &batch);
            good += size;
        }
        // Torn tail or damage? A later record that says the file was synced past `good` means
        // the bad bytes were acknowledged once: refuse. (A stray match of a checksum in torn
        // garbage is a 1 in 2^32 chance per offset; the search runs only on a bad file.)
        if good < bytes.len()
            && let Some(at) = (good + 1..bytes.len())
                .find(|&o| record_at(&bytes[o..]).is_some_and(|(synced, _, _)| synced > good as u64))
        {
            return Err(EngineError::NotAStore {
                backend: BACKEND,
                path: path.clone(),
                detail: format!(
                    "the record at byte {good} is damaged, but the record at byte {at} says the file \
                     was synced past it: acknowledged data is lost"
                ),
            });
        }
        file.set_len(good as u64)
            .map_err(|e| io("cutting a torn tail", e))?;
        Ok(Self {
            state: Mutex::new(State {
                maps,
                file,
                unsynced: Vec::new(),
                len: good as u64,
                synced_len: good as u64,
            }),
            _dir: store_dir,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Engine for BatchFileEngine {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn write(&self, batch: &Batch, durability: Durability) -> Result<(), EngineError> {
        let mut state = self.lock();
        let record = encode(batch, state.synced_len);
        state.unsynced.extend(record);
        if durability == Durability::Durable {
            let pending = std::mem::take(&mut state.unsynced);
            state.file.write_all(&pending).map_err(|e| io("appending", e))?;
            state.len += pending.len() as u64;
            state.file.sync_data().map_err(|e| io("syncing", e))?;
            state.synced_len = state.len;
        }
        apply(&mut state.maps, batch);
        Ok(())
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.lock().maps[space as usize].get(key).cloned())
    }

    fn scan(&self, space: Space, range: KeyRange<'_>, visit: &mut Visitor<'_>) -> Result<(), EngineError> {
        let state = self.lock();
        let map = &state.maps[space as usize];
        if range.is_empty() {
            return Ok(()); // BTreeMap::range panics on an inverted range; it is simply empty.
        }
        for (k, v) in map.range::<[u8], _>((range.start, range.end)) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(&self, space: Space) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.lock().maps[space as usize]
            .last_key_value()
            .map(|(k, _)| k.clone()))
    }
}

// The whole suite: engine cases, store cases, faults, power loss and openraft's own suite.
/// The name `docs/conformance.md` gives the user's engine, so the line below is the one it tells
/// users to write, word for word.
type MyEngine = BatchFileEngine;

raft_store_testkit::conformance_suite!(raft_store_testkit::FnHarness(MyEngine::open));
