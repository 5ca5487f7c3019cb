//! Docker's human-readable container status text (`Up 3 seconds`, `Exited (0) 2 minutes ago`).

use std::time::Duration;

use hypersh_watch::container::ContainerState;

/// The `Status` text Docker shows for a container in `state`, where `elapsed` is the time
/// since it started (running, paused) or finished (exited), and `exit_code` its last exit code.
pub(crate) fn status_text(state: ContainerState, elapsed: Duration, exit_code: i64) -> String {
    match state {
        ContainerState::Created => "Created".to_owned(),
        ContainerState::Running => format!("Up {}", human_duration(elapsed)),
        ContainerState::Paused => format!("Up {} (Paused)", human_duration(elapsed)),
        ContainerState::Restarting => {
            format!("Restarting ({exit_code}) {} ago", human_duration(elapsed))
        }
        // The router's runtime never makes Podman's `stopped`; Podman writes it so.
        ContainerState::Exited | ContainerState::Stopped => {
            format!("Exited ({exit_code}) {} ago", human_duration(elapsed))
        }
        ContainerState::Stopping => "Stopping".to_owned(),
        ContainerState::Dead => "Dead".to_owned(),
        ContainerState::Removing => "Removal In Progress".to_owned(),
        ContainerState::Unknown => String::new(),
    }
}

/// Go's `units.HumanDuration`, which Docker uses for status texts.
pub(crate) fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let hours_f = d.as_secs_f64() / 3600.0;
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds the hours: int(d.Hours() + 0.5). The value is small and positive here.
    let hours = (hours_f + 0.5).floor() as u64;
    if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (hours_f / 24.0 / 365.0) as u64)
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
