//! Random and mutated inputs for the decoder of the fuzz target
//! (`raft_store_testkit::decode`), for a short deterministic run in the normal test suite.

pub use raft_store_testkit::decode::decode;
pub use raft_store_testkit::decode::seeds;

use crate::Rng;

/// `n` inputs from `seed`: a third random bytes, the rest seeds with random bytes changed, cut
/// or inserted.
pub fn mutations(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let seeds = seeds();
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                let len = rng.below(64) as usize;
                return rng.bytes(len);
            }
            let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(v.len().max(1) as u64) as usize;
                match rng.below(3) {
                    0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
                    1 => v.truncate(at),
                    _ => v.insert(at.min(v.len()), rng.bytes(1)[0]),
                }
            }
            v
        })
        .collect()
}
