//! bincode 2 through the generated round trips users run on codecs of their own: values of
//! every shape come back; careless payloads come back equal or are caught by the value check.

raft_store_testkit::codec_suite!(raft_store_core::Bincode);
