//! The accounting of [`Informer::refresh`](crate::Informer::refresh): which requests a
//! fetch or a list has served.
//!
//! A request is served by what *started after it*: a fetch started before the request may
//! carry an answer older than the change the caller waits for. So each request notes how
//! many fetches and lists had started when it came, and is served once every id it names
//! has been answered by a later fetch, or a later list has been committed.

use std::collections::BTreeSet;

use super::{FetchId, RefreshId};

/// The refreshes waiting to be served.
#[derive(Debug, Default)]
pub(crate) struct Refreshes {
    waiting: Vec<Waiter>,
}

/// One request, until it is served.
#[derive(Debug)]
struct Waiter {
    request: RefreshId,
    /// Ids not yet answered by a fetch started after the request.
    remaining: BTreeSet<String>,
    /// The last fetch started before the request: later ones count.
    after_fetch: FetchId,
    /// Lists started before the request: a later list serves every id.
    after_list: u64,
}

impl Refreshes {
    /// Records a request for `ids`, made when `fetches` and `lists` had started.
    pub(crate) fn add(
        &mut self,
        request: RefreshId,
        ids: impl IntoIterator<Item = String>,
        fetches: FetchId,
        lists: u64,
    ) {
        self.waiting.push(Waiter {
            request,
            remaining: ids.into_iter().collect(),
            after_fetch: fetches,
            after_list: lists,
        });
    }

    /// The fetch `fetch`, which asked for `asked`, has been applied: returns the requests
    /// it completes.
    pub(crate) fn fetched(&mut self, fetch: FetchId, asked: &[String]) -> Vec<RefreshId> {
        for w in &mut self.waiting {
            if w.after_fetch < fetch {
                for id in asked {
                    w.remaining.remove(id);
                }
            }
        }
        self.take_done()
    }

    /// List number `list` has been committed: returns the requests it serves (those made
    /// before it started).
    pub(crate) fn listed(&mut self, list: u64) -> Vec<RefreshId> {
        for w in &mut self.waiting {
            if w.after_list < list {
                w.remaining.clear();
            }
        }
        self.take_done()
    }

    /// The ids of requests not served by list number `list`, which they came during: to
    /// fetch once the watch phase begins.
    pub(crate) fn made_during(&self, list: u64) -> impl Iterator<Item = &String> {
        self.waiting
            .iter()
            .filter(move |w| w.after_list >= list)
            .flat_map(|w| &w.remaining)
    }

    /// Forgets every request (the reflector stopped: none will be served).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
    }

    /// How many requests wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    fn take_done(&mut self) -> Vec<RefreshId> {
        if !self.waiting.iter().any(|w| w.remaining.is_empty()) {
            return Vec::new();
        }
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.remaining.is_empty());
        self.waiting = waiting;
        done.into_iter().map(|w| w.request).collect()
    }
}
