//! The fleet's readiness: every host, under one deadline, and an error that names the
//! hosts that have not synced and why.

use std::fmt;

use futures_util::future::join_all;

use crate::informer::Informer;
use crate::ready::{NotSynced, SyncWait};

/// Some hosts of the fleet did not sync in time. Those that did are in the cache; the
/// others keep retrying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct FleetNotSynced {
    /// Each host that has not synced, by name, and why.
    pub hosts: Vec<(String, NotSynced)>,
    /// How many hosts were waited for.
    pub of: usize,
}

impl fmt::Display for FleetNotSynced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} hosts have not synced",
            self.hosts.len(),
            self.of
        )?;
        for (host, why) in &self.hosts {
            write!(f, "; host {host:?}: {why}")?;
        }
        Ok(())
    }
}

/// Waits for every informer at once, with the same deadline.
pub(super) async fn wait_all(
    informers: Vec<(String, Informer)>,
    wait: SyncWait,
) -> Result<(), FleetNotSynced> {
    let of = informers.len();
    let waits = informers.iter().map(|(host, informer)| async move {
        informer
            .wait_synced(wait)
            .await
            .err()
            .map(|e| (host.clone(), e))
    });
    let hosts: Vec<_> = join_all(waits).await.into_iter().flatten().collect();
    if hosts.is_empty() {
        Ok(())
    } else {
        Err(FleetNotSynced { hosts, of })
    }
}
