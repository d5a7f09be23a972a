//! An entry that encodes but cannot be decoded again is refused by `append` before anything is
//! written or acknowledged (it would otherwise be replicated and then unreadable on every node).

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store_core::LogStore;
use raft_store_core::MemEngine;

/// A field skipped when empty: bincode is not self-describing, so the decoder still expects it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Lossy {
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<u32>,
    text: String,
}

impl std::fmt::Display for Lossy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

openraft::declare_raft_types!(LossyConfig: D = Lossy, R = String);

fn entry(index: u64, tag: Option<u32>) -> EntryOf<LossyConfig> {
    let id = LogIdOf::<LossyConfig>::new(
        openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 },
        index,
    );
    EntryOf::<LossyConfig>::new_normal(
        id,
        Lossy {
            tag,
            text: "x".into(),
        },
    )
}

#[tokio::test]
async fn an_entry_that_does_not_decode_is_refused_before_it_is_written() {
    let mut store = LogStore::<LossyConfig, _>::open(MemEngine::new()).expect("open");
    let (tx, rx) = LossyConfig::oneshot();
    store
        .append([entry(1, Some(7))], IOFlushed::signal(tx))
        .await
        .expect("an entry that round-trips is accepted");
    rx.await.expect("callback").expect("durable");

    let (tx, _rx) = LossyConfig::oneshot();
    let err = store
        .append([entry(2, None)], IOFlushed::signal(tx))
        .await
        .expect_err("an entry that cannot be decoded again must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("entry 2") && msg.contains("cannot decode again"),
        "{msg}"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // Nothing of it was kept, and the store goes on.
    assert!(!store.is_poisoned());
    let state = store.get_log_state().await.expect("log state");
    assert_eq!(state.last_log_id.map(|l| l.index()), Some(1));
    let (tx, rx) = LossyConfig::oneshot();
    store
        .append([entry(2, Some(8))], IOFlushed::signal(tx))
        .await
        .expect("the next valid entry is accepted");
    rx.await.expect("callback").expect("durable");
    let got = store
        .get_log_reader()
        .await
        .try_get_log_entries(1..3)
        .await
        .expect("read back");
    assert_eq!(got, vec![entry(1, Some(7)), entry(2, Some(8))]);
}
