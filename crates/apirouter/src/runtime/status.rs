//! Docker's human-readable container status text (`Up 3 seconds`, `Exited (0) 2 minutes ago`).

use std::fmt;
use std::time::Duration;

use hypersh_watch::container::ContainerState;

/// The `Status` text Docker shows for a container in `state`, where `elapsed` is the time
/// since it started (running, paused) or finished (exited), and `exit_code` its last exit code.
pub(crate) fn status_text(state: ContainerState, elapsed: Duration, exit_code: i64) -> String {
    Status::new(state, elapsed, exit_code).to_string()
}

/// Go's `units.HumanDuration`, which Docker uses for status texts.
#[cfg(test)]
pub(crate) fn human_duration(d: Duration) -> String {
    HumanDuration(d).to_string()
}

/// A status text (see [`status_text`]), written where it is displayed: a list writes it
/// straight into the JSON it sends, without a `String` per container.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Status {
    state: ContainerState,
    elapsed: Duration,
    exit_code: i64,
}

impl Status {
    pub(crate) fn new(state: ContainerState, elapsed: Duration, exit_code: i64) -> Self {
        Self {
            state,
            elapsed,
            exit_code,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, ago) = (self.exit_code, HumanDuration(self.elapsed));
        match self.state {
            ContainerState::Created => f.write_str("Created"),
            ContainerState::Running => write!(f, "Up {ago}"),
            ContainerState::Paused => write!(f, "Up {ago} (Paused)"),
            ContainerState::Restarting => write!(f, "Restarting ({code}) {ago} ago"),
            // The router's runtime never makes Podman's `stopped`; Podman writes it so.
            ContainerState::Exited | ContainerState::Stopped => {
                write!(f, "Exited ({code}) {ago} ago")
            }
            ContainerState::Stopping => f.write_str("Stopping"),
            ContainerState::Dead => f.write_str("Dead"),
            ContainerState::Removing => f.write_str("Removal In Progress"),
            ContainerState::Unknown => Ok(()),
        }
    }
}

/// Go's `units.HumanDuration`, displayed.
#[derive(Clone, Copy, Debug)]
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let seconds = d.as_secs();
        let hours_f = d.as_secs_f64() / 3600.0;
        if seconds < 1 {
            return f.write_str("Less than a second");
        }
        if seconds == 1 {
            return f.write_str("1 second");
        }
        if seconds < 60 {
            return write!(f, "{seconds} seconds");
        }
        let minutes = seconds / 60;
        if minutes == 1 {
            return f.write_str("About a minute");
        }
        if minutes < 60 {
            return write!(f, "{minutes} minutes");
        }
        // Go rounds the hours: int(d.Hours() + 0.5). The value is small and positive here.
        let hours = (hours_f + 0.5).floor() as u64;
        if hours == 1 {
            f.write_str("About an hour")
        } else if hours < 48 {
            write!(f, "{hours} hours")
        } else if hours < 24 * 7 * 2 {
            write!(f, "{} days", hours / 24)
        } else if hours < 24 * 30 * 2 {
            write!(f, "{} weeks", hours / 24 / 7)
        } else if hours < 24 * 365 * 2 {
            write!(f, "{} months", hours / 24 / 30)
        } else {
            write!(f, "{} years", (hours_f / 24.0 / 365.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_follow_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(42)), "42 seconds");
        assert_eq!(human_duration(s(61)), "About a minute");
        assert_eq!(human_duration(s(5 * 60)), "5 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5 * 3600)), "5 hours");
        assert_eq!(human_duration(s(3 * 24 * 3600)), "3 days");
        assert_eq!(human_duration(s(21 * 24 * 3600)), "3 weeks");
        assert_eq!(human_duration(s(90 * 24 * 3600)), "3 months");
        assert_eq!(human_duration(s(3 * 365 * 24 * 3600)), "3 years");
    }

    #[test]
    fn status_texts_look_like_dockers() {
        let s = Duration::from_secs(3);
        assert_eq!(status_text(ContainerState::Created, s, 0), "Created");
        assert_eq!(status_text(ContainerState::Running, s, 0), "Up 3 seconds");
        assert_eq!(
            status_text(ContainerState::Paused, s, 0),
            "Up 3 seconds (Paused)"
        );
        assert_eq!(
            status_text(ContainerState::Exited, Duration::from_secs(2), 137),
            "Exited (137) 2 seconds ago"
        );
    }
}
