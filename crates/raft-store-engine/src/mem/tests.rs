use super::*;
use std::ops::ControlFlow;

fn put(engine: &MemEngine, key: u8, durability: Durability) {
    let mut batch = Batch::new();
    batch.put(Space::Log, vec![key], vec![key]);
    engine.write(&batch, durability).unwrap();
}

#[test]
fn power_loss_drops_only_unsynced_writes() {
    let engine = MemEngine::with_power_loss();
    put(&engine, 1, Durability::Buffered);
    put(&engine, 2, Durability::Durable);
    put(&engine, 3, Durability::Buffered);
    assert_eq!(engine.unsynced_writes(), 1);
    engine.power_loss();
    assert_eq!(
        engine.get(Space::Log, &[1]).unwrap(),
        Some(vec![1]),
        "covered by the later sync"
    );
    assert_eq!(engine.get(Space::Log, &[2]).unwrap(), Some(vec![2]));
    assert_eq!(
        engine.get(Space::Log, &[3]).unwrap(),
        None,
        "unsynced write survived power loss"
    );
}

#[test]
fn power_loss_without_tracking_keeps_everything() {
    let engine = MemEngine::new();
    put(&engine, 1, Durability::Buffered);
    engine.power_loss();
    assert_eq!(engine.get(Space::Log, &[1]).unwrap(), Some(vec![1]));
}

#[test]
fn inverted_scan_range_is_empty_not_a_panic() {
    let engine = MemEngine::new();
    put(&engine, 5, Durability::Durable);
    let mut seen = 0;
    engine
        .scan(Space::Log, KeyRange::half_open(&[9], &[1]), &mut |_, _| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, 0);
}
