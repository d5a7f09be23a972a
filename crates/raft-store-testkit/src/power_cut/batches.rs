//! The power-cut case of the engine itself: multi-op batches, buffered and durable.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use super::CHILD_LIFETIME;
use super::CUTS_ENV;
use super::DEFAULT_CUTS;
use super::Mounted;
use super::child_job;
use super::plan;
use super::run_and_cut;
use crate::CaseError;
use crate::CaseResult;
use crate::EngineHarness;
use crate::ensure;
use crate::rng;
use crate::rng::Rng;
use raft_store_core::Batch;
use raft_store_core::Durability;
use raft_store_core::Engine;
use raft_store_core::KeyRange;
use raft_store_core::Space;

/// The key in [`Space::DataMeta`] that holds the number of the last batch applied.
const MARKER: &[u8] = b"power-cut batch";

/// Keys the batches write, overwrite and delete.
const KEYS: u64 = 64;

type Image = BTreeMap<Vec<u8>, Vec<u8>>;

/// The key numbered `i`.
fn key(i: u64) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Batch number `b` of the run with `seed`, and whether it is written durably: a function of
/// both alone, so the child that writes it and the parent that checks it agree on it wherever
/// the child started. Puts (values up to 6 KiB, so batches span pages), deletes, range deletes,
/// and always the marker, so a batch half applied shows as data that does not match it.
fn batch(seed: u64, b: u64) -> (Batch, Durability) {
    let mut rng = Rng::new(seed ^ b.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut batch = Batch::new();
    for i in 0..rng.between(1, 12) {
        match rng.below(100) {
            0..65 => {
                let mut value = format!("{b}:{i}:").into_bytes();
                let len = rng.between(0, 6000) as usize;
                value.extend(rng.bytes(len));
                batch.put(Space::Data, key(rng.below(KEYS)), value);
            }
            65..88 => batch.delete(Space::Data, key(rng.below(KEYS))),
            88..97 => {
                let a = rng.below(KEYS);
                let z = rng.between(a + 1, KEYS);
                batch.delete_range(Space::Data, key(a), Some(key(z)));
            }
            _ => batch.delete_range(Space::Data, key(rng.below(KEYS)), None),
        }
    }
    batch.put(Space::DataMeta, MARKER, b.to_be_bytes());
    let durability = if rng.below(3) == 0 {
        Durability::Durable
    } else {
        Durability::Buffered
    };
    (batch, durability)
}

/// Apply a batch to the image of [`Space::Data`], as a correct engine does.
fn apply(image: &mut Image, batch: &Batch) {
    for op in batch.ops() {
        match op {
            raft_store_core::Op::Put {
                space: Space::Data,
                key,
                value,
            } => {
                image.insert(key.clone(), value.clone());
            }
            raft_store_core::Op::Delete {
                space: Space::Data,
                key,
            } => {
                image.remove(key);
            }
            raft_store_core::Op::DeleteRange {
                space: Space::Data,
                start,
                end,
            } => {
                image.retain(|k, _| k < start || end.as_ref().is_some_and(|e| k >= e));
            }
            _ => {}
        }
    }
}

/// The engine's data and the number of the last batch its marker names.
fn read<E: Engine>(engine: &E) -> Result<(Image, u64), CaseError> {
    let mut image = Image::new();
    engine.scan(Space::Data, KeyRange::ALL, &mut |k, v| {
        image.insert(k.to_vec(), v.to_vec());
        ControlFlow::Continue(())
    })?;
    let marker = match engine.get(Space::DataMeta, MARKER)? {
        None => 0,
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| format!("the batch marker holds {} bytes, not 8", v.len()))?,
        ),
    };
    Ok((image, marker))
}

/// The power-cut case of the engine: a child writes numbered multi-op batches, about one in
/// three durable, printing each number before the write and after a durable one returns; after
/// the kill and the cut the reopened engine must hold exactly the data of the first `m`
/// batches, where its marker says `m`: no batch half applied, none applied out of order, none
/// that was never written, and `m` no lower than the last durable batch acknowledged.
///
/// `test` is the full name of the `#[test]` that calls this (the child re-runs it).
pub fn engine_batches<H: EngineHarness>(h: &H, test: &str) -> CaseResult {
    if let Some((dir, seed)) = child_job() {
        return batch_writer(h, &dir, seed);
    }
    let Some(mount) = Mounted::new(test)? else {
        return Ok(());
    };
    let cuts = rng::count_from_env(CUTS_ENV, DEFAULT_CUTS);
    let seed = rng::seed();
    eprintln!("{test}: {cuts} power cuts, RAFT_STORE_SEED={seed}");
    let mut rng = Rng::new(seed);
    let (mut base, mut base_marker) = (Image::new(), 0u64);
    let (mut lost_buffered, mut durable_acked) = (0u64, 0u64);
    let torn_before = mount.control().stats()?.torn_fsyncs;
    for k in 0..cuts {
        // The workload's seed is the run's: batch `b` is the same whichever child writes it.
        let (lines, how) = run_and_cut(test, &mount, seed, plan(k, &mut rng), &mut rng)?;
        let at =
            |e: &dyn std::fmt::Display| format!("after power cut {k} ({how}, RAFT_STORE_SEED={seed}): {e}");
        let (mut issued, mut acked) = (base_marker, base_marker);
        for line in &lines {
            let num = |s: &str| {
                s.parse::<u64>()
                    .map_err(|_| format!("bad line from the child: {line:?}"))
            };
            if let Some(b) = line.strip_prefix("I ") {
                issued = issued.max(num(b)?);
            } else if let Some(b) = line.strip_prefix("A ") {
                acked = acked.max(num(b)?);
            }
        }
        let engine = h
            .open(mount.store_dir())
            .map_err(|e| at(&format!("reopen: {e}")))?;
        let (image, marker) = read(&engine).map_err(|e| at(&e))?;
        drop(engine);
        ensure!(
            marker >= acked,
            "{}",
            at(&format!(
                "batch {acked} was durable, but the engine holds only batches up to {marker}"
            ))
        );
        ensure!(
            marker <= issued,
            "{}",
            at(&format!(
                "the engine's marker says batch {marker}, but only {issued} were written"
            ))
        );
        ensure!(
            marker >= base_marker,
            "{}",
            at(&format!(
                "batches up to {base_marker} were there before this run, now only {marker}"
            ))
        );
        let mut want = base;
        for b in base_marker + 1..=marker {
            apply(&mut want, &batch(seed, b).0);
        }
        if image != want {
            let diff = want
                .iter()
                .find(|(k, v)| image.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .or_else(|| image.keys().find(|k| !want.contains_key(*k)).cloned())
                .unwrap_or_default();
            return Err(at(&format!(
                "the data is not that of batches 1..={marker} (half a batch, or batches out of \
                 order): key {:?} differs ({} keys found, {} expected)",
                String::from_utf8_lossy(&diff),
                image.len(),
                want.len()
            ))
            .into());
        }
        lost_buffered += issued - marker;
        durable_acked += acked - base_marker.min(acked);
        (base, base_marker) = (image, marker);
    }
    let torn = mount.control().stats()?.torn_fsyncs - torn_before;
    eprintln!(
        "{test}: {cuts} cuts ({torn} at an fsync, tearing a write), {base_marker} batches kept, \
         {durable_acked} acknowledged durable, {lost_buffered} unacknowledged ones lost"
    );
    ensure!(
        durable_acked > 0,
        "no durable batch was acknowledged in {cuts} runs of the child"
    );
    Ok(())
}

/// The child of [`engine_batches`]: write batches after the engine's marker until killed.
fn batch_writer<H: EngineHarness>(h: &H, dir: &Path, seed: u64) -> CaseResult {
    let engine = h.open(dir)?;
    let (_, marker) = read(&engine)?;
    // libtest has printed "test <name> ... " without a newline: start a line of our own.
    println!("\nR {marker}");
    let deadline = Instant::now() + CHILD_LIFETIME;
    let mut b = marker;
    while Instant::now() < deadline {
        b += 1;
        let (batch, durability) = batch(seed, b);
        println!("I {b}");
        engine.write(&batch, durability)?;
        if durability == Durability::Durable {
            println!("A {b}");
        }
    }
    Ok(())
}
