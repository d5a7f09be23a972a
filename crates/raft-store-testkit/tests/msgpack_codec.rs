//! The default codec, MessagePack with named fields, through the generated round trips users
//! run on codecs of their own (careless payloads included: it must give every one back).

raft_store_testkit::codec_suite!(raft_store_core::MessagePack);
