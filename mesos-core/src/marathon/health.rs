//! Health check definitions and the counting that decides when an instance is killed.
//!
//! The shell runs the actual probes (an HTTP GET, a TCP connect, a Mesos command check) and feeds
//! each outcome here with the current time; this module only counts, as Marathon's
//! `HealthCheckActor` does:
//!
//! - results are ignored until the task runs, and failures are ignored during the grace period
//!   as long as no check has succeeded yet (users were bitten by kills during start-up, #430);
//! - a success resets the consecutive-failure count;
//! - `maxConsecutiveFailures` failures in a row kill the instance (0 = never), except an
//!   unreachable instance, which cannot be killed and must not be replaced twice (#3942).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::validation::{Reader, ValidationError};
use crate::time::Time;

/// How a health check probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthProtocol {
    /// HTTP GET by Marathon; healthy on status 200-399.
    Http,
    /// HTTPS GET by Marathon.
    Https,
    /// TCP connect by Marathon.
    Tcp,
    /// A command run by Mesos on the agent; healthy on exit 0.
    Command,
    /// HTTP by Mesos on the agent.
    MesosHttp,
    /// HTTPS by Mesos on the agent.
    MesosHttps,
    /// TCP by Mesos on the agent.
    MesosTcp,
}

impl HealthProtocol {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HTTP" => HealthProtocol::Http,
            "HTTPS" => HealthProtocol::Https,
            "TCP" => HealthProtocol::Tcp,
            "COMMAND" => HealthProtocol::Command,
            "MESOS_HTTP" => HealthProtocol::MesosHttp,
            "MESOS_HTTPS" => HealthProtocol::MesosHttps,
            "MESOS_TCP" => HealthProtocol::MesosTcp,
            _ => return None,
        })
    }

    /// True for the protocols that speak HTTP.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            HealthProtocol::Http
                | HealthProtocol::Https
                | HealthProtocol::MesosHttp
                | HealthProtocol::MesosHttps
        )
    }
}

/// A command for `COMMAND` checks: `{"value": "curl -f localhost:$PORT0"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCommand {
    /// The shell command.
    pub value: String,
}

/// One entry of `healthChecks`, with Marathon's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// How to probe (`HTTP` by default).
    pub protocol: HealthProtocol,
    /// HTTP path (`/` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports; 0 by default for every protocol but COMMAND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    /// A fixed port instead of `portIndex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// The command for `COMMAND` checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<HealthCommand>,
    /// Failures are ignored this long after the task started, until a first success (300).
    pub grace_period_seconds: u64,
    /// Time between checks (60).
    pub interval_seconds: u64,
    /// A check not answered within this long failed (20).
    pub timeout_seconds: u64,
    /// Failures in a row that kill the instance; 0 never kills (3).
    pub max_consecutive_failures: u32,
    /// Treat 1xx answers as "no result" instead of failures.
    pub ignore_http1xx: bool,
    /// Mesos checks: delay before the first check (15).
    pub delay_seconds: u64,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            protocol: HealthProtocol::Http,
            path: None,
            port_index: None,
            port: None,
            command: None,
            grace_period_seconds: 300,
            interval_seconds: 60,
            timeout_seconds: 20,
            max_consecutive_failures: 3,
            ignore_http1xx: false,
            delay_seconds: 15,
        }
    }
}

impl HealthCheck {
    /// Reads one health check at `path` (e.g. `/healthChecks(0)`), recording problems in `errors`.
    pub(crate) fn read(json: &Json, path: &str, errors: &mut ValidationError) -> HealthCheck {
        let mut r = Reader::new(json, path, errors);
        let mut hc = HealthCheck::default();
        if let Some(p) = r.str("protocol") {
            match HealthProtocol::parse(p) {
                Some(p) => hc.protocol = p,
                None => {
                    let at = r.path("protocol");
                    r.errors().push(
                        at,
                        "is not one of (HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP)",
                    );
                }
            }
        }
        hc.path = r.str("path").map(str::to_string);
        hc.port = non_negative(&mut r, "port").map(|n| n as u32);
        hc.port_index = non_negative(&mut r, "portIndex").map(|n| n as u32);
        if let Some(c) = r.object("command") {
            let at = r.path("command");
            let mut cr = Reader::new(c, &at, r.errors());
            hc.command = cr.str("value").map(|v| HealthCommand {
                value: v.to_string(),
            });
        }
        for (key, slot) in [
            ("gracePeriodSeconds", &mut hc.grace_period_seconds),
            ("intervalSeconds", &mut hc.interval_seconds),
            ("timeoutSeconds", &mut hc.timeout_seconds),
            ("delaySeconds", &mut hc.delay_seconds),
        ] {
            if let Some(n) = non_negative(&mut r, key) {
                *slot = n;
            }
        }
        if let Some(n) = non_negative(&mut r, "maxConsecutiveFailures") {
            hc.max_consecutive_failures = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(b) = r.bool("ignoreHttp1xx") {
            hc.ignore_http1xx = b;
        }
        if hc.protocol == HealthProtocol::Command {
            if hc.command.is_none() {
                let at = r.path("command");
                r.errors()
                    .push(at, "Command health checks require a command");
            }
        } else if hc.port.is_none() && hc.port_index.is_none() {
            // Normalisation: probes need a port; the first one by default.
            hc.port_index = Some(0);
        }
        hc
    }

    /// The time between two checks.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    /// How long to wait for one check.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The grace period after the task started.
    pub fn grace_period(&self) -> Duration {
        Duration::from_secs(self.grace_period_seconds)
    }

    /// The outcome of an HTTP answer: healthy on 200-399, ignored for 1xx when asked to.
    ///
    /// ```
    /// use mesos_core::marathon::{HealthCheck, ProbeOutcome};
    /// let hc = HealthCheck::default();
    /// assert_eq!(hc.http_outcome(204), Some(ProbeOutcome::Healthy));
    /// assert!(matches!(hc.http_outcome(503), Some(ProbeOutcome::Unhealthy { .. })));
    /// ```
    pub fn http_outcome(&self, status: u16) -> Option<ProbeOutcome> {
        if self.ignore_http1xx && (100..200).contains(&status) {
            return None;
        }
        if (200..400).contains(&status) {
            Some(ProbeOutcome::Healthy)
        } else {
            Some(ProbeOutcome::Unhealthy {
                cause: format!("HTTP status {status}"),
            })
        }
    }
}

fn non_negative(r: &mut Reader<'_, '_>, key: &str) -> Option<u64> {
    let n = r.i64(key)?;
    match u64::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            let at = r.path(key);
            r.errors().push(at, format!("got {n}, expected 0 or more"));
            None
        }
    }
}

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The instance answered as healthy.
    Healthy,
    /// The instance failed the probe (or did not answer within the timeout).
    Unhealthy {
        /// Why, for `lastFailureCause`.
        cause: String,
    },
}

/// What the caller must do after a result was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthAction {
    /// Nothing.
    None,
    /// The result was ignored (task not running yet, or failure within the grace period).
    Ignored,
    /// Kill the instance: too many failures in a row.
    Kill,
}

/// The health of one instance for one check (`healthCheckResults[]` in Marathon's task JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The last counted result was healthy.
    pub alive: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The first success.
    pub first_success: Option<Time>,
    /// The last success.
    pub last_success: Option<Time>,
    /// The last failure.
    pub last_failure: Option<Time>,
    /// Why the last failure failed.
    pub last_failure_cause: Option<String>,
}

impl Health {
    /// Counts one probe outcome at `now` for a task that started running at `started_at`
    /// (`None` while it is not running: results are then ignored). `reachable` is false for
    /// instances on unreachable agents, which are never killed by health checks.
    ///
    /// ```
    /// use mesos_core::marathon::{Health, HealthAction, HealthCheck, ProbeOutcome};
    /// use mesos_core::time::Time;
    /// let hc = HealthCheck { grace_period_seconds: 10, max_consecutive_failures: 2, ..HealthCheck::default() };
    /// let mut h = Health::default();
    /// let bad = || ProbeOutcome::Unhealthy { cause: "503".into() };
    /// let start = Some(Time::from_secs(0));
    /// // Within the grace period, before any success: ignored.
    /// assert_eq!(h.record(&hc, Time::from_secs(5), start, true, bad()), HealthAction::Ignored);
    /// assert_eq!(h.record(&hc, Time::from_secs(11), start, true, bad()), HealthAction::None);
    /// assert_eq!(h.record(&hc, Time::from_secs(12), start, true, bad()), HealthAction::Kill);
    /// ```
    pub fn record(
        &mut self,
        check: &HealthCheck,
        now: Time,
        started_at: Option<Time>,
        reachable: bool,
        outcome: ProbeOutcome,
    ) -> HealthAction {
        let Some(started) = started_at else {
            return HealthAction::Ignored;
        };
        match outcome {
            ProbeOutcome::Healthy => {
                self.alive = true;
                self.consecutive_failures = 0;
                self.first_success.get_or_insert(now);
                self.last_success = Some(now);
                HealthAction::None
            }
            ProbeOutcome::Unhealthy { cause } => {
                let in_grace = self.first_success.is_none() && started + check.grace_period() > now;
                if in_grace {
                    return HealthAction::Ignored;
                }
                self.alive = false;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_failure = Some(now);
                self.last_failure_cause = Some(cause);
                let max = check.max_consecutive_failures;
                if max > 0 && self.consecutive_failures >= max && reachable {
                    HealthAction::Kill
                } else {
                    HealthAction::None
                }
            }
        }
    }

    /// Healthy as Marathon counts `tasksHealthy`: has a result and the last one was a success.
    pub fn is_healthy(&self) -> bool {
        self.alive && self.first_success.is_some()
    }
}
