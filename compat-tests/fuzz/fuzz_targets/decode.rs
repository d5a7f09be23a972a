//! Everything raft-store decodes from disk, on arbitrary bytes: envelopes, entries, votes, log
//! ids and format records, in both codecs. It must return a value or an error, never panic.
//!
//! `cargo +nightly fuzz run decode compat-tests/fuzz/corpus/decode` (from `compat-tests/fuzz`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    raft_store_testkit::decode::decode(data);
});
