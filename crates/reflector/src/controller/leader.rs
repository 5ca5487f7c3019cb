//! The controller's leader gate ([`Controller::with_leadership`]): whether reconciles may
//! start now, and under which term.

use hypersh_election::{FencingToken, Role, Term};
use tokio::sync::watch;

use super::Controller;

/// Whether reconciles may start (under this term, if gated by an election).
pub(super) enum Gate {
    /// Reconciles may start (under this term, if gated).
    Open(Option<Term>),
    /// Not leading: none starts.
    Closed,
}

impl Controller {
    /// Whether reconciles may start now, and under which term; on a new term, queues
    /// every cached container. `role` is marked seen first, so a change after this check
    /// wakes the loop.
    pub(super) fn gate(
        &self,
        role: Option<&mut watch::Receiver<Role>>,
        led: &mut Option<FencingToken>,
    ) -> Gate {
        let Some(leadership) = &self.leadership else {
            return Gate::Open(None);
        };
        if let Some(role) = role {
            role.borrow_and_update();
        }
        let term = leadership.current();
        let token = term.as_ref().map(Term::token);
        if token != *led {
            match (token, *led) {
                (Some(token), _) => {
                    tracing::info!(term = %token, "leading: taking work, every cached container queued");
                    self.shared.add_all();
                }
                (None, Some(old)) => {
                    tracing::info!(term = %old, "not leading: no reconcile starts");
                }
                (None, None) => {}
            }
            *led = token;
        }
        match term {
            Some(term) => Gate::Open(Some(term)),
            None => Gate::Closed,
        }
    }
}
