//! Property test: any sequence of upserts, deletes, writer batches (with updates derived
//! from the cached version), relists and handler
//! registrations leaves the store equal to a plain `HashMap` model (objects and an index),
//! and every handler saw a sequence of events that replays to that same state.

use std::collections::HashMap;
use std::sync::Arc;

use hypersh_store::{Change, Deleted, Handler, HandlerOptions, Keyed, StoreConfig, store};
use proptest::prelude::*;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
struct Item {
    id: String,
    val: u8,
}

impl Keyed for Item {
    fn key(&self) -> &str {
        &self.id
    }
}

fn item(key: u8, val: u8) -> Item {
    Item {
        id: format!("k{key}"),
        val,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, u8),
    Delete(u8),
    Replace(Vec<(u8, u8)>),
    /// A relist fed one key at a time: `Some(v)` inserts, `None` removes the key from the
    /// relist (as the reflector does for an event that deleted it during the list).
    Relist(Vec<(u8, Option<u8>)>),
    /// Changes applied in one writer batch.
    Batch(Vec<(u8, InBatch)>),
    /// Register another handler now, with this queue capacity.
    Register(usize),
}

#[derive(Debug, Clone)]
enum InBatch {
    Upsert(u8),
    Delete,
    /// `Batch::update`: the cached item's value plus one (mod 4); nothing if not cached.
    Bump,
}

fn in_batch() -> impl Strategy<Value = InBatch> {
    prop_oneof![
        (0..4u8).prop_map(InBatch::Upsert),
        Just(InBatch::Delete),
        Just(InBatch::Bump),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..8u8, 0..4u8).prop_map(|(k, v)| Op::Upsert(k, v)),
        2 => (0..9u8).prop_map(Op::Delete),
        1 => prop::collection::vec((0..8u8, 0..4u8), 0..10).prop_map(Op::Replace),
        1 => prop::collection::vec((0..8u8, prop::option::of(0..4u8)), 0..12)
            .prop_map(Op::Relist),
        1 => prop::collection::vec((0..8u8, in_batch()), 0..100).prop_map(Op::Batch),
        1 => (1..4usize).prop_map(Op::Register),
    ]
}

#[derive(Debug)]
enum Ev {
    Add(String, u8),
    Update(String, u8, u8),
    Delete(String, u8),
}

struct Recorder(mpsc::UnboundedSender<Ev>);

impl Handler<Item> for Recorder {
    fn on_add(&mut self, o: &Arc<Item>) {
        let _ = self.0.send(Ev::Add(o.id.clone(), o.val));
    }
    fn on_update(&mut self, old: &Arc<Item>, new: &Arc<Item>) {
        let _ = self.0.send(Ev::Update(new.id.clone(), old.val, new.val));
    }
    fn on_delete(&mut self, d: &Deleted<Item>) {
        let _ = self.0.send(Ev::Delete(d.key().to_owned(), d.last().val));
    }
}

const SENTINEL: &str = "sentinel";

/// Replays a handler's events up to the sentinel, checking each against the replayed state.
async fn replay(rx: &mut mpsc::UnboundedReceiver<Ev>) -> Result<HashMap<String, u8>, String> {
    let mut state = HashMap::new();
    loop {
        let ev = rx
            .recv()
            .await
            .ok_or("handler stopped before the sentinel")?;
        match ev {
            Ev::Add(k, _) if k == SENTINEL => return Ok(state),
            Ev::Add(k, v) => {
                if let Some(prev) = state.insert(k.clone(), v) {
                    return Err(format!("add of present {k} (was {prev})"));
                }
            }
            Ev::Update(k, old, new) => {
                if state.insert(k.clone(), new) != Some(old) {
                    return Err(format!(
                        "update of {k} from {old}: not the replayed version"
                    ));
                }
            }
            Ev::Delete(k, last) => {
                if state.remove(&k) != Some(last) {
                    return Err(format!("delete of {k} at {last}: not the replayed version"));
                }
            }
        }
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let (mut writer, cache) = store::<Item>(StoreConfig::default());
        cache.add_index("val", |i: &Item| vec![i.val.to_string()]);
        let mut model: HashMap<String, u8> = HashMap::new();
        let mut recorders = Vec::new();
        let mut register = |capacity: usize| {
            let (tx, rx) = mpsc::unbounded_channel();
            let handle =
                cache.register(Recorder(tx), HandlerOptions::new().queue_capacity(capacity));
            recorders.push((handle, rx));
        };
        register(2);
        for op in ops {
            match op {
                Op::Upsert(k, v) => {
                    writer.apply(Change::Upsert(item(k, v))).await;
                    model.insert(item(k, v).id, v);
                }
                Op::Delete(k) => {
                    writer.apply(Change::Delete(item(k, 0).id)).await;
                    model.remove(&item(k, 0).id);
                }
                Op::Replace(all) => {
                    writer.replace(all.iter().map(|&(k, v)| item(k, v))).await;
                    model = all.iter().map(|&(k, v)| (item(k, v).id, v)).collect();
                }
                Op::Relist(steps) => {
                    let mut relist = writer.relist();
                    model.clear();
                    for (k, v) in steps {
                        let id = item(k, 0).id;
                        match v {
                            Some(v) => {
                                relist.insert(item(k, v));
                                model.insert(id, v);
                            }
                            None => {
                                relist.remove(&id);
                                model.remove(&id);
                            }
                        }
                    }
                    prop_assert_eq!(relist.len(), model.len());
                    relist.commit().await;
                }
                Op::Batch(changes) => {
                    let mut batch = writer.batch().await;
                    for (k, change) in changes {
                        let id = item(k, 0).id;
                        match change {
                            InBatch::Upsert(v) => {
                                batch.apply(Change::Upsert(item(k, v)));
                                model.insert(id, v);
                            }
                            InBatch::Delete => {
                                batch.apply(Change::Delete(id.clone()));
                                model.remove(&id);
                            }
                            InBatch::Bump => {
                                let bump = |i: Option<&Item>| {
                                    i.map(|i| Change::Upsert(item(k, (i.val + 1) % 4)))
                                };
                                let changed = batch.update(&id, bump);
                                prop_assert_eq!(changed, model.contains_key(&id));
                                if let Some(v) = model.get_mut(&id) {
                                    *v = (*v + 1) % 4;
                                }
                            }
                        }
                    }
                    batch.commit().await;
                }
                Op::Register(capacity) => register(capacity),
            }
        }
        writer
            .apply(Change::Upsert(Item {
                id: SENTINEL.into(),
                val: 0,
            }))
            .await;
        writer.apply(Change::Delete(SENTINEL.into())).await;

        let cached: HashMap<String, u8> =
            cache.list().iter().map(|i| (i.id.clone(), i.val)).collect();
        prop_assert_eq!(&cached, &model);
        prop_assert_eq!(cache.len(), model.len());
        for (k, v) in &model {
            prop_assert_eq!(cache.get(k).map(|i| i.val), Some(*v));
        }
        for val in 0..4u8 {
            let mut hits: Vec<String> = cache
                .by_index("val", &val.to_string())
                .map_err(|e| TestCaseError::fail(e.to_string()))?
                .iter()
                .map(|i| i.id.clone())
                .collect();
            hits.sort();
            let mut want: Vec<String> = model
                .iter()
                .filter(|(_, v)| **v == val)
                .map(|(k, _)| k.clone())
                .collect();
            want.sort();
            prop_assert_eq!(hits, want);
        }
        for (handle, rx) in &mut recorders {
            let replayed = replay(rx).await.map_err(TestCaseError::fail)?;
            prop_assert_eq!(&replayed, &model, "handler {}", handle.name());
            prop_assert_eq!(handle.panic_count(), 0);
        }
        Ok(())
    })
}

proptest! {
    #[test]
    fn store_and_every_handler_match_the_model(ops in prop::collection::vec(op(), 0..40)) {
        run(ops)?;
    }
}
