//! Test helpers: events and containers in a few words, and a `HashMap` as the cache.

use std::collections::HashMap;

use hypersh_store::Change;
use hypersh_watch::{Container, ContainerState, WatchEvent};

use crate::core::Cache;

/// A Docker-style event for container `id` named `n-<id>`.
pub(crate) fn docker(action: &str, id: &str) -> WatchEvent {
    WatchEvent::decode(format!(
        r#"{{"Type":"container","Action":"{action}","id":"{id}","Actor":{{"Attributes":{{"name":"n-{id}"}}}}}}"#
    ))
    .expect("a valid test frame")
}

/// A Kubernetes-style event for container `id` in `phase`.
pub(crate) fn k8s(action: &str, id: &str, phase: &str) -> WatchEvent {
    WatchEvent::decode(format!(
        r#"{{"Action":"{action}","Id":"{id}","Status":"{phase}","Type":"container","Actor":{{"Attributes":{{"Name":"n-{id}","Image":"busybox","Labels":null}}}}}}"#
    ))
    .expect("a valid test frame")
}

/// Container `id`, named `n-<id>`, from `busybox`, in `state`.
pub(crate) fn container(id: &str, state: ContainerState) -> Container {
    labelled(id, state, &[])
}

/// Container `id` in `state` with these labels.
pub(crate) fn labelled(id: &str, state: ContainerState, labels: &[(&str, &str)]) -> Container {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    serde_json::from_value(serde_json::json!({
        "Id": id,
        "Names": [format!("/n-{id}")],
        "Image": "busybox",
        "State": state.as_str(),
        "Labels": labels,
    }))
    .expect("a valid test container")
}

/// A plain map as the cache (the store's batch or relist in the reflector).
#[derive(Debug, Default)]
pub(crate) struct MapCache(pub(crate) HashMap<String, Container>);

impl MapCache {
    pub(crate) fn of(list: impl IntoIterator<Item = Container>) -> Self {
        Self(list.into_iter().map(|c| (c.id().to_owned(), c)).collect())
    }

    /// The cached containers' ids and states, sorted by id.
    pub(crate) fn states(&self) -> Vec<(String, ContainerState)> {
        let mut out: Vec<_> = self
            .0
            .values()
            .map(|c| (c.id().to_owned(), c.state()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Cache for MapCache {
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        match f(self.0.get(id)) {
            Some(Change::Upsert(c)) => {
                self.0.insert(id.to_owned(), c);
                true
            }
            Some(Change::Delete(key)) => self.0.remove(&key).is_some(),
            None => false,
        }
    }

    fn insert(&mut self, c: Container) {
        self.0.insert(c.id().to_owned(), c);
    }
}
