//! Fetching containers by id: the list calls that run beside the watch stream, and what
//! the reflector does with their answers.

use std::collections::BTreeSet;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use hypersh_store::{Change, Keyed};
use hypersh_watch::{Client, Container, Error as WatchError, Filters};

use super::Reflector;
use crate::live::delete;
use crate::status::StatusHandle;

/// How many ids one list call asks for (they go into the query string).
const FETCH_BATCH: usize = 50;
/// How many fetches may be in flight at once: a create waits for its own list call, not
/// for the one before it.
pub(super) const MAX_FETCHES: usize = 4;

/// A fetch in flight: the list call for some of the containers in
/// `Live::in_flight`, which answers with the ids it asked for.
pub(super) type Fetch = BoxFuture<'static, (Vec<String>, Result<Vec<Container>, WatchError>)>;

impl Reflector {
    /// Starts fetching every pending container (in as few list calls as possible). The
    /// loop polls the returned future beside the stream.
    ///
    /// The request goes out before this returns: the future is polled once, which hands
    /// the request to its HTTP connection, and the task yields so that the connection
    /// (another task, on this thread with a current-thread runtime) writes it now rather
    /// than after the next run of events and of handler calls.
    pub(super) async fn start_fetch(&mut self) -> Fetch {
        let ids: Vec<String> = std::mem::take(&mut self.live.pending).into_iter().collect();
        self.live.in_flight.extend(ids.iter().cloned());
        let client = self.client.clone();
        let status = self.status.clone();
        let mut fetch: Fetch = Box::pin(async move {
            let answer = fetch(&client, &status, &ids).await;
            (ids, answer)
        });
        let first = fetch.as_mut().now_or_never();
        if let Some(answer) = first {
            return Box::pin(std::future::ready(answer));
        }
        tokio::task::yield_now().await;
        fetch
    }

    /// Stores what a fetch found, then replays the events held while it ran, in one
    /// writer batch. A container the answer lacks is already gone: its delete event
    /// follows, or is among the held ones.
    pub(super) async fn apply_fetched(&mut self, asked: &[String], answer: Vec<Container>) {
        let Self {
            writer,
            live,
            selector,
            status,
            ..
        } = self;
        let mut batch = writer.batch().await;
        let asked: BTreeSet<&str> = asked.iter().map(String::as_str).collect();
        live.in_flight.retain(|id| !asked.contains(id.as_str()));
        let mut applied = 0;
        for mut c in answer {
            if !asked.contains(c.id()) {
                continue;
            }
            let cached = live.store.get(c.id());
            if let Some(cached) = &cached {
                c.share_unchanged(cached);
            }
            if cached.as_deref() == Some(&c) {
                continue;
            }
            if selector.admits(&c) {
                batch.apply(Change::Upsert(c));
                applied += 1;
            } else if delete(&mut batch, c.id()) {
                applied += 1;
            }
        }
        let (replay, still_held) = std::mem::take(&mut live.held)
            .into_iter()
            .partition(|e| asked.contains(e.id()));
        live.held = still_held;
        for event in replay {
            if live.apply(&mut batch, event) {
                applied += 1;
            }
        }
        metrics::counter!("hypersh_reflector_events_applied_total").increment(applied);
        status.update(|s| s.events_applied += applied);
        batch.commit().await;
    }
}

/// Lists the given containers by id (exact ids only).
pub(super) async fn fetch(
    client: &Client,
    status: &StatusHandle,
    ids: &[String],
) -> Result<Vec<Container>, WatchError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(FETCH_BATCH) {
        let mut filters = Filters::new();
        for id in chunk {
            filters.add("id", id.clone());
        }
        let listed = client.list_containers(&filters).await?;
        out.extend(
            listed
                .into_iter()
                .filter(|c| chunk.iter().any(|id| **id == *c.id())),
        );
    }
    metrics::counter!("hypersh_reflector_fetches_total").increment(ids.len() as u64);
    status.update(|s| s.fetches += ids.len() as u64);
    Ok(out)
}
