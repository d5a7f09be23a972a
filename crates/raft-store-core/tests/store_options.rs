//! `LogStoreOptions`: the defaults are the bounds the store always had, a bound of zero is
//! refused before the engine is touched, and the read cap bounds `limited_get_log_entries` on
//! both openraft lines.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::type_config::alias::EntryOf;
use openraft::type_config::alias::LogIdOf;
use raft_store_core::Engine;
use raft_store_core::LogStore;
use raft_store_core::LogStoreOptions;
use raft_store_core::MemEngine;
use raft_store_core::OptionsError;
use raft_store_core::SLOW_SYNC;
use raft_store_core::Space;
use raft_store_core::StoreError;

openraft::declare_raft_types!(
    /// The openraft 0.10 type config of these tests.
    pub Config: D = String, R = String
);

/// A normal entry of term 1 at `index` whose payload is `len` bytes.
fn entry(index: u64, len: usize) -> EntryOf<Config> {
    let leader = openraft::impls::leader_id_adv::LeaderId { term: 1, node_id: 0 };
    EntryOf::<Config>::new_normal(LogIdOf::<Config>::new(leader, index), "x".repeat(len))
}

#[test]
fn the_defaults_are_the_bounds_the_store_always_had() {
    let options = LogStoreOptions::default();
    assert_eq!(options.max_group_bytes, 64 << 20);
    assert_eq!(options.limited_read_bytes, 8 << 20);
    assert_eq!(options.slow_sync, SLOW_SYNC);
    assert_eq!(options.slow_sync, Duration::from_millis(100));
    assert_eq!(options.validate(), Ok(()));

    let store: LogStore<Config, MemEngine> = LogStore::open(MemEngine::new()).unwrap();
    assert_eq!(store.options(), &options, "open has the default options");
}

#[test]
fn the_setters_set_their_field_only() {
    let options = LogStoreOptions::default()
        .with_max_group_bytes(1)
        .with_limited_read_bytes(2)
        .with_slow_sync(Duration::ZERO);
    assert_eq!(options.max_group_bytes, 1);
    assert_eq!(options.limited_read_bytes, 2);
    assert_eq!(options.slow_sync, Duration::ZERO);
    // A zero threshold logs every durable write: a choice, not a mistake.
    assert_eq!(options.validate(), Ok(()));
}

#[test]
fn a_bound_of_zero_is_refused_before_the_engine_is_touched() {
    for (options, field) in [
        (
            LogStoreOptions::default().with_max_group_bytes(0),
            "max_group_bytes",
        ),
        (
            LogStoreOptions::default().with_limited_read_bytes(0),
            "limited_read_bytes",
        ),
    ] {
        let typed = options.validate().unwrap_err();
        assert!(
            matches!(typed, OptionsError::Zero { options: "LogStoreOptions", field: f } if f == field),
            "{typed:?}"
        );
        assert_eq!(
            typed.to_string(),
            format!("LogStoreOptions::{field} is 0; it must be at least 1")
        );

        let engine = Arc::new(MemEngine::new());
        let refused = LogStore::<Config, _>::open_with(engine.clone(), options.clone())
            .err()
            .expect("a bound of zero is refused");
        let StoreError::InvalidOptions { .. } = &refused else {
            panic!("expected StoreError::InvalidOptions, found {refused:?}");
        };
        assert!(refused.to_string().contains(&typed.to_string()), "{refused}");
        let source = refused
            .source()
            .expect("the refusal keeps the typed error as its source");
        assert_eq!(source.downcast_ref::<OptionsError>(), Some(&typed));
        // Not even the format record was written: the engine is as it was given.
        assert_eq!(engine.last_key(Space::Meta).unwrap(), None);

        let checked = LogStore::<Config, _>::open_checked_with(
            engine.clone(),
            raft_store_core::EntryCheck::equal(),
            options,
        );
        assert!(checked.is_err(), "open_checked_with refuses it too");
        assert_eq!(engine.last_key(Space::Meta).unwrap(), None);
    }
}

#[tokio::test]
async fn the_read_cap_bounds_limited_reads_on_openraft_0_10() {
    // Entries of about 1 KiB each: a cap of 2.5 KiB stops after the third entry's bytes.
    let options = LogStoreOptions::default().with_limited_read_bytes(2500);
    let mut store: LogStore<Config, MemEngine> = LogStore::open_with(MemEngine::new(), options).unwrap();
    store
        .append_and_wait((1..=10).map(|i| entry(i, 1000)).collect())
        .await
        .unwrap();
    let limited = store.limited_get_log_entries(1, 11).await.unwrap();
    assert_eq!(limited.len(), 3, "stops once more than the cap was read");
    let all = store.try_get_log_entries(1..11).await.unwrap();
    assert_eq!(all.len(), 10, "unlimited reads are not capped");

    // The default cap (8 MiB) takes all ten.
    let mut default: LogStore<Config, MemEngine> = LogStore::open(MemEngine::new()).unwrap();
    default
        .append_and_wait((1..=10).map(|i| entry(i, 1000)).collect())
        .await
        .unwrap();
    assert_eq!(default.limited_get_log_entries(1, 11).await.unwrap().len(), 10);
}

mod openraft09 {
    use openraft_09 as openraft;

    use std::io::Cursor;

    use openraft::CommittedLeaderId;
    use openraft::Entry;
    use openraft::EntryPayload;
    use openraft::LogId;
    use openraft::RaftLogReader;
    use raft_store_core::LogStoreOptions;
    use raft_store_core::MemEngine;
    use raft_store_core::openraft09::LogStore;

    openraft::declare_raft_types!(
        /// The openraft 0.9 type config of these tests.
        pub Config09: D = String, R = String
    );

    fn entry(index: u64, len: usize) -> Entry<Config09> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal("x".repeat(len)),
        }
    }

    #[tokio::test]
    async fn the_read_cap_bounds_limited_reads_on_openraft_0_9() {
        // The 0.9 module names the same options type.
        let options = raft_store_core::LogStoreOptions::default().with_limited_read_bytes(2500);
        let mut store: LogStore<Config09, MemEngine> =
            LogStore::open_with(MemEngine::new(), options).unwrap();
        store
            .append_and_wait((1..=10).map(|i| entry(i, 1000)).collect())
            .await
            .unwrap();
        assert_eq!(store.options().limited_read_bytes, 2500);
        assert_eq!(store.limited_get_log_entries(1, 11).await.unwrap().len(), 3);
        assert_eq!(store.try_get_log_entries(1..11).await.unwrap().len(), 10);
    }

    #[test]
    fn a_bound_of_zero_is_refused_on_openraft_0_9() {
        let options = LogStoreOptions::default().with_max_group_bytes(0);
        assert!(LogStore::<Config09, MemEngine>::open_with(MemEngine::new(), options).is_err());
    }
}

#[cfg(feature = "serde")]
mod serde_form {
    use std::time::Duration;

    use raft_store_core::LogStoreOptions;

    #[test]
    fn every_field_may_be_left_out() {
        let options: LogStoreOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(options, LogStoreOptions::default());
        let options: LogStoreOptions = serde_json::from_str(r#"{"slow_sync_ms": 250}"#).unwrap();
        assert_eq!(
            options,
            LogStoreOptions::default().with_slow_sync(Duration::from_millis(250))
        );
    }

    #[test]
    fn the_form_names_every_field_and_the_threshold_in_milliseconds() {
        let options = LogStoreOptions::default()
            .with_max_group_bytes(1 << 20)
            .with_limited_read_bytes(4096)
            .with_slow_sync(Duration::from_millis(40));
        let json = serde_json::to_value(&options).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "max_group_bytes": 1 << 20,
                "limited_read_bytes": 4096,
                "slow_sync_ms": 40,
            })
        );
        let back: LogStoreOptions = serde_json::from_value(json).unwrap();
        assert_eq!(back, options);
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let err = serde_json::from_str::<LogStoreOptions>(r#"{"max_group_byte": 1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        // The duration has one name: a bare `slow_sync` is unknown too.
        assert!(serde_json::from_str::<LogStoreOptions>(r#"{"slow_sync": 1}"#).is_err());
    }
}
