//! Test helpers shared by the unit tests: a small keyed object and a recording handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{Deleted, Handler, Keyed};

/// A small cached object: key, version, tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Obj {
    pub(crate) id: String,
    pub(crate) v: u32,
    pub(crate) tags: Vec<String>,
}

impl Keyed for Obj {
    fn key(&self) -> &str {
        &self.id
    }
}

pub(crate) fn obj(id: &str, v: u32) -> Obj {
    tagged(id, v, &[])
}

pub(crate) fn tagged(id: &str, v: u32, tags: &[&str]) -> Obj {
    Obj {
        id: id.to_owned(),
        v,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// What a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    Add(String, u32),
    /// key, old version, new version, whether old and new are the same `Arc` (a resync).
    Update(String, u32, u32, bool),
    /// key, last version, whether it is a relist tombstone.
    Delete(String, u32, bool),
}

impl Ev {
    pub(crate) fn key(&self) -> &str {
        match self {
            Ev::Add(k, _) | Ev::Update(k, ..) | Ev::Delete(k, ..) => k,
        }
    }
}

/// A handler that forwards everything it sees to a channel.
pub(crate) struct Recorder(pub(crate) mpsc::UnboundedSender<Ev>);

pub(crate) fn recorder() -> (Recorder, mpsc::UnboundedReceiver<Ev>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Recorder(tx), rx)
}

impl Handler<Obj> for Recorder {
    fn on_add(&mut self, o: &Arc<Obj>) {
        let _ = self.0.send(Ev::Add(o.id.clone(), o.v));
    }

    fn on_update(&mut self, old: &Arc<Obj>, new: &Arc<Obj>) {
        let _ = self.0.send(Ev::Update(
            new.id.clone(),
            old.v,
            new.v,
            Arc::ptr_eq(old, new),
        ));
    }

    fn on_delete(&mut self, d: &Deleted<Obj>) {
        let _ = self.0.send(Ev::Delete(
            d.key().to_owned(),
            d.last().v,
            d.is_final_state_unknown(),
        ));
    }
}

/// The next event; fails the test instead of hanging if none comes (with paused time this
/// fires only when nothing else can make progress).
pub(crate) async fn next(rx: &mut mpsc::UnboundedReceiver<Ev>) -> Ev {
    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("recorder closed"),
        Err(_) => panic!("no event within 30s"),
    }
}

/// The next `n` events.
pub(crate) async fn take(rx: &mut mpsc::UnboundedReceiver<Ev>, n: usize) -> Vec<Ev> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(rx).await);
    }
    out
}

/// Replays events onto a key -> version map, checking that each is consistent with what
/// came before (adds of absent keys, updates and deletes of the version last seen).
pub(crate) fn replay(state: &mut HashMap<String, u32>, ev: &Ev) {
    match ev {
        Ev::Add(k, v) => assert_eq!(state.insert(k.clone(), *v), None, "add of present {k}"),
        Ev::Update(k, old, new, _) => {
            assert_eq!(state.insert(k.clone(), *new), Some(*old), "update of {k}");
        }
        Ev::Delete(k, last, _) => assert_eq!(state.remove(k), Some(*last), "delete of {k}"),
    }
}

/// A handler that blocks (off the runtime's scheduler, via `block_in_place`) inside its
/// first call until released, then records like a [`Recorder`](crate::testutil::Recorder).
pub(crate) struct Stalled {
    gate: Option<std::sync::mpsc::Receiver<()>>,
    entered: Option<oneshot::Sender<()>>,
    out: tokio::sync::mpsc::UnboundedSender<Ev>,
}

impl Stalled {
    pub(crate) fn new() -> (
        Self,
        std::sync::mpsc::Sender<()>,
        oneshot::Receiver<()>,
        tokio::sync::mpsc::UnboundedReceiver<Ev>,
    ) {
        let (release, gate) = std::sync::mpsc::channel();
        let (entered_tx, entered) = oneshot::channel();
        let (out, rx) = tokio::sync::mpsc::unbounded_channel();
        let me = Self {
            gate: Some(gate),
            entered: Some(entered_tx),
            out,
        };
        (me, release, entered, rx)
    }
}

impl Handler<Obj> for Stalled {
    fn on_add(&mut self, o: &Arc<Obj>) {
        if let Some(entered) = self.entered.take() {
            let _ = entered.send(());
        }
        if let Some(gate) = self.gate.take() {
            tokio::task::block_in_place(|| gate.recv()).unwrap();
        }
        let _ = self.out.send(Ev::Add(o.id.clone(), o.v));
    }
}

/// Sends this thread's logs to `subscriber` until the guard is dropped, reliably under the
/// parallel test harness.
///
/// `tracing` caches each callsite's interest for the whole process the first time the
/// callsite runs, asking the subscriber of the thread that ran it: a sibling test's
/// thread with no subscriber would cache "never", and the capture would miss that event
/// for good. A global subscriber that wants everything and does nothing (a bare
/// `Registry`) keeps every thread's answer "yes"; the interest cache is rebuilt once this
/// thread's subscriber is in place.
pub(crate) fn capture_logs(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
) -> tracing::subscriber::DefaultGuard {
    static ANCHOR: std::sync::Once = std::sync::Once::new();
    ANCHOR.call_once(|| {
        // Fails only if a global subscriber is set already, which serves as well.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    guard
}
