//! Launch backoff: after a task of an app fails, wait before launching the next one, longer
//! after each failure (`RateLimiter` in Marathon).
//!
//! The first failure sets the delay to `backoffSeconds`; each further one multiplies it by
//! `backoffFactor`, capped at `maxLaunchDelaySeconds`. The next launch is allowed at the last
//! failure plus the delay. A task that gets going (staging, starting, running) moves the reference
//! time to now without shrinking the delay, and a delay whose reference is a whole
//! `maxLaunchDelaySeconds` in the past is forgotten. A new version resets it. Users asked to see
//! "delayed until" and to reset it (`DELETE /v2/queue/{id}/delay`): both are here as data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::app::AppDefinition;
use crate::task::TaskState;
use crate::time::Time;

/// Whether a task ending in `state` makes the next launch wait: failed, error, finished (exit 0
/// counts: a long-running app must not exit), gone, dropped, lost. A kill does not.
pub fn increases_backoff(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Failed
            | TaskState::Error
            | TaskState::Finished
            | TaskState::Gone
            | TaskState::GoneByOperator
            | TaskState::Dropped
            | TaskState::Lost
    )
}

/// Whether `state` shows a launch getting going, which refreshes the delay's reference time.
pub fn advances_backoff(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Staging | TaskState::Starting | TaskState::Running
    )
}

/// The backoff of one app version.
///
/// ```
/// use std::time::Duration;
/// use mesos_core::marathon::{AppDefinition, LaunchBackoff};
/// use mesos_core::time::Time;
/// let app = AppDefinition::from_json(&serde_json::json!({"id": "a", "cmd": "x"})).unwrap();
/// let mut b = LaunchBackoff::for_app(&app);
/// b.failed(Time::from_secs(100));
/// assert_eq!(b.delay(), Some(Duration::from_secs(1)));
/// b.failed(Time::from_secs(101));
/// assert_eq!(b.delay(), Some(Duration::from_secs_f64(1.15)));
/// assert_eq!(b.launch_allowed_at(), Time::from_secs(101) + Duration::from_secs_f64(1.15));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchBackoff {
    initial: Duration,
    factor: f64,
    max: Duration,
    delay: Option<Duration>,
    reference: Time,
}

impl LaunchBackoff {
    /// With the app's `backoffSeconds`, `backoffFactor` and `maxLaunchDelaySeconds`.
    pub fn for_app(app: &AppDefinition) -> LaunchBackoff {
        LaunchBackoff::new(
            Duration::from_secs(app.backoff_seconds),
            app.backoff_factor,
            Duration::from_secs(app.max_launch_delay_seconds),
        )
    }

    /// With explicit settings.
    pub fn new(initial: Duration, factor: f64, max: Duration) -> LaunchBackoff {
        LaunchBackoff {
            initial,
            factor: if factor.is_finite() && factor >= 1.0 {
                factor
            } else {
                1.0
            },
            max,
            delay: None,
            reference: Time::ZERO,
        }
    }

    /// A task failed at `now`: grow the delay.
    pub fn failed(&mut self, now: Time) {
        let next = match self.delay {
            None => self.initial,
            Some(d) => {
                Duration::try_from_secs_f64(d.as_secs_f64() * self.factor).unwrap_or(self.max)
            }
        };
        self.delay = Some(next.min(self.max));
        self.reference = now;
    }

    /// A task of this version got going at `now`: the delay counts from now.
    pub fn advanced(&mut self, now: Time) {
        if self.delay.is_some() {
            self.reference = now;
        }
    }

    /// Applies a status update's state at `now`.
    pub fn observe(&mut self, now: Time, state: TaskState) {
        if increases_backoff(state) {
            self.failed(now);
        } else if advances_backoff(state) {
            self.advanced(now);
        }
    }

    /// Forgets the delay (new version, restart, `DELETE /v2/queue/{id}/delay`, app stopped).
    pub fn reset(&mut self) {
        self.delay = None;
    }

    /// Forgets a delay whose reference lies a whole maximum delay before `now`.
    pub fn expire(&mut self, now: Time) {
        if self.delay.is_some() && self.reference + self.max <= now {
            self.delay = None;
        }
    }

    /// The current delay, `None` when not backed off.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// The earliest launch time (the epoch when not backed off).
    pub fn launch_allowed_at(&self) -> Time {
        self.delay.map_or(Time::ZERO, |d| self.reference + d)
    }

    /// `/v2/queue` `delay.timeLeftSeconds`: how long launches still wait at `now`.
    pub fn time_left(&self, now: Time) -> Duration {
        self.launch_allowed_at().saturating_duration_since(now)
    }

    /// True when a launch may happen at `now`.
    pub fn may_launch(&self, now: Time) -> bool {
        self.launch_allowed_at() <= now
    }
}
