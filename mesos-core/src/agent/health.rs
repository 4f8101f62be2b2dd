//! The agent's health verdicts: what a health check's result means for its task (upstream's
//! health checker policy). The probes themselves (commands, HTTP, TCP) run in the shell; the
//! shell only reports each result.
//!
//! Failures before the first success are ignored during the grace period (counted from when
//! checking started: `delay + grace_period`). A change of health is reported as a TASK_RUNNING
//! update; after `consecutive_failures` failures in a row (0: never) the task is killed.

use std::time::Duration;

/// The part of a task's `HealthCheck` that decides verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Before the first check.
    pub delay: Duration,
    /// How long failures before the first success are ignored (after `delay`).
    pub grace_period: Duration,
    /// Failures in a row that kill the task (0: never).
    pub consecutive_failures: u32,
}

/// A task's health as the agent tracks it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Unknown until the first result that counts.
    pub healthy: Option<bool>,
    /// Failures in a row.
    pub consecutive_failures: u32,
}

/// What a result means for the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Quiet,
    /// The health changed: send TASK_RUNNING with this `healthy`.
    Changed(bool),
    /// Too many failures: kill the task (the message says why).
    Kill(String),
}

impl Health {
    /// Applies one result. `in_grace` is true while the grace period since checking started
    /// runs.
    pub fn record(
        &mut self,
        policy: &HealthPolicy,
        result: Result<(), String>,
        in_grace: bool,
    ) -> Verdict {
        match result {
            Ok(()) => {
                self.consecutive_failures = 0;
                if self.healthy == Some(true) {
                    Verdict::Quiet
                } else {
                    self.healthy = Some(true);
                    Verdict::Changed(true)
                }
            }
            Err(why) => {
                if self.healthy.is_none() && in_grace {
                    return Verdict::Quiet;
                }
                self.consecutive_failures += 1;
                if policy.consecutive_failures > 0
                    && self.consecutive_failures >= policy.consecutive_failures
                {
                    self.healthy = Some(false);
                    return Verdict::Kill(format!(
                        "killed after {} consecutive failed health checks: {why}",
                        self.consecutive_failures
                    ));
                }
                if self.healthy == Some(false) {
                    Verdict::Quiet
                } else {
                    self.healthy = Some(false);
                    Verdict::Changed(false)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(consecutive_failures: u32) -> HealthPolicy {
        HealthPolicy {
            delay: Duration::ZERO,
            grace_period: Duration::from_secs(10),
            consecutive_failures,
        }
    }

    #[test]
    fn early_failures_are_ignored_changes_reported_and_too_many_kill() {
        let c = policy(2);
        let mut h = Health::default();
        assert_eq!(h.record(&c, Err("x".into()), true), Verdict::Quiet);
        assert_eq!(h.record(&c, Ok(()), true), Verdict::Changed(true));
        assert_eq!(h.record(&c, Ok(()), false), Verdict::Quiet);
        assert_eq!(h.record(&c, Err("x".into()), true), Verdict::Changed(false));
        assert!(
            matches!(h.record(&c, Err("x".into()), false), Verdict::Kill(m) if m.contains("2 consecutive"))
        );
        let never = policy(0);
        let mut h = Health::default();
        for _ in 0..10 {
            assert!(!matches!(
                h.record(&never, Err("x".into()), false),
                Verdict::Kill(_)
            ));
        }
    }
}
