//! The default codec, bincode 2, through the generated round trip users run on codecs of
//! their own.

raft_store_core::codec_suite!(raft_store_core::Bincode);
