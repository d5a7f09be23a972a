//! Benchmarks of raft-store backends (targets land with the benchmarks issue).
