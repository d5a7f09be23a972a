//! A short deterministic run of the fuzz target's decoder (`compat_tests::decode::decode`) on
//! random bytes and on valid envelopes with bytes flipped, cut and inserted. The fuzz target
//! (`compat-tests/fuzz`, cargo-fuzz) runs the same function for as long as one likes.

use compat_tests::decode;

#[test]
fn decoding_random_and_mutated_bytes_never_panics() {
    let n = compat_tests::count_from_env("RAFT_STORE_DECODE_CASES", 20_000);
    let seed = compat_tests::seed();
    eprintln!("{n} inputs, RAFT_STORE_SEED={seed}");
    for input in decode::mutations(seed, n) {
        decode::decode(&input);
    }
}

#[test]
fn seeds_decode_and_mutations_are_rejected() {
    use raft_store_core::Bincode;
    use raft_store_engine::codec;
    use raft_store_testkit::TestConfig;
    use raft_store_testkit::util;

    let sealed = codec::seal::<Bincode, _>(&util::entry(4, 9)).expect("seal");
    let back: openraft::type_config::alias::EntryOf<TestConfig> =
        codec::unseal::<Bincode, _>(&sealed).expect("unseal");
    assert_eq!(back, util::entry(4, 9));
    // Any single flipped bit of the payload or header is caught by the envelope.
    for at in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[at] ^= 0x10;
        assert!(
            codec::unseal::<Bincode, openraft::type_config::alias::EntryOf<TestConfig>>(&bad).is_err(),
            "flip at byte {at} was not detected"
        );
    }
}
