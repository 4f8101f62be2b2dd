//! Mesos health checks of command tasks (`TaskInfo.health_check`, v1 `HealthCheck`): what to
//! check, and the probe a checking worker runs (reporting each result to the agent task).
//!
//! - `COMMAND`: `/bin/sh -c <value>` in the sandbox with the task's environment (tasks of the
//!   `mesos` containerizer only; for Docker and LXC tasks the launch fails with a message rather
//!   than the check running outside the container).
//! - `HTTP`: `GET http://127.0.0.1:<port><path>`, healthy on the listed `statuses`, else on
//!   200-399. A Docker BRIDGE task's container port is reached through its host port mapping.
//! - `TCP`: a connection to `127.0.0.1:<port>`.
//!
//! Timing (upstream's health checker): the first check after `delay_seconds` (15), then every
//! `interval_seconds` (10), each bounded by `timeout_seconds` (20). What the results mean
//! (`grace_period_seconds`, `consecutive_failures`) is the agent core's verdict:
//! [`mesos_core::agent::Health`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mesos_runtime::{ContainerInfo, ContainerSpec, Network};
use serde_json::Value as Json;

/// What one check does.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    /// Run a shell command in the sandbox; healthy on exit 0.
    Command {
        /// The command.
        command: String,
        /// Its environment.
        env: BTreeMap<String, String>,
        /// Its working directory (the sandbox).
        cwd: PathBuf,
    },
    /// `GET http://127.0.0.1:port/path`.
    Http {
        /// The host port.
        port: u16,
        /// The path (with a leading `/`).
        path: String,
        /// Healthy statuses (empty: 200-399).
        statuses: Vec<u16>,
    },
    /// Connect to `127.0.0.1:port`.
    Tcp {
        /// The host port.
        port: u16,
    },
}

/// A task's health check.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    /// The probe.
    pub probe: Probe,
    /// Before the first check.
    pub delay: Duration,
    /// Between checks.
    pub interval: Duration,
    /// Bound of one check.
    pub timeout: Duration,
    /// Failures in a row that kill the task (0: never).
    pub consecutive_failures: u32,
    /// How long failures before the first success are ignored.
    pub grace_period: Duration,
}

fn secs(obj: &Json, field: &str, default: f64) -> Result<Duration, String> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(Duration::from_secs_f64(default)),
        Some(v) => v
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 1e6)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("health_check.{field} must be a number of seconds, got {v}")),
    }
}

fn port(obj: &Json, at: &str) -> Result<u16, String> {
    match obj.get("port") {
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{at}.port must be a port number (1-65535), got {v}")),
        None => Err(format!("{at}.port is required")),
    }
}

/// The host port that reaches `port` of the task: through a Docker BRIDGE mapping if one
/// publishes it, else the port itself.
fn host_port(spec: &ContainerSpec, port: u16) -> u16 {
    if let ContainerInfo::Docker(d) = &spec.container {
        if d.network == Network::Bridge {
            if let Some(m) = d.port_mappings.iter().find(|m| m.container_port == port) {
                return m.host_port;
            }
        }
    }
    port
}

/// Reads `TaskInfo.health_check` for a task about to run as `spec`; `None` without one.
pub fn parse(
    health_check: Option<&Json>,
    spec: &ContainerSpec,
) -> Result<Option<HealthCheck>, String> {
    let Some(hc) = health_check.filter(|h| !h.is_null()) else {
        return Ok(None);
    };
    if !hc.is_object() {
        return Err(format!("health_check must be an object, got {hc}"));
    }
    let kind = match hc.get("type") {
        Some(Json::String(t)) => t.to_ascii_uppercase(),
        // Pre-1.2 checks have no type: a command or an http section.
        None | Some(Json::Null) if hc.get("command").is_some() => "COMMAND".into(),
        None | Some(Json::Null) if hc.get("http").is_some() => "HTTP".into(),
        other => {
            return Err(format!(
                "health_check.type is required (COMMAND, HTTP or TCP), got {other:?}"
            ))
        }
    };
    let probe = match kind.as_str() {
        "COMMAND" => {
            if !matches!(spec.container, ContainerInfo::Mesos) {
                return Err(format!(
                    "COMMAND health checks run only for tasks of the mesos containerizer, not {}",
                    spec.container.kind()
                ));
            }
            let c = hc.get("command").cloned().unwrap_or(Json::Null);
            let command = c
                .get("value")
                .and_then(Json::as_str)
                .filter(|v| !v.trim().is_empty())
                .ok_or("health_check.command.value is required for a COMMAND check")?
                .to_string();
            let mut env = spec.env.clone();
            env.insert("MESOS_SANDBOX".into(), spec.sandbox.display().to_string());
            for (i, p) in spec.host_ports.iter().enumerate() {
                env.entry(format!("PORT{i}"))
                    .or_insert_with(|| p.to_string());
            }
            if let Some(vars) = c
                .get("environment")
                .and_then(|e| e.get("variables"))
                .and_then(Json::as_array)
            {
                for v in vars {
                    if let Some(name) = v.get("name").and_then(Json::as_str) {
                        let value = v.get("value").and_then(Json::as_str).unwrap_or("");
                        env.insert(name.to_string(), value.to_string());
                    }
                }
            }
            Probe::Command {
                command,
                env,
                cwd: spec.sandbox.clone(),
            }
        }
        "HTTP" => {
            let h = hc
                .get("http")
                .filter(|h| h.is_object())
                .ok_or("health_check.http is required for an HTTP check")?;
            let scheme = h.get("scheme").and_then(Json::as_str).unwrap_or("http");
            if !scheme.eq_ignore_ascii_case("http") {
                return Err(format!(
                    "health_check.http.scheme `{scheme}` is not supported (this agent is built without TLS)"
                ));
            }
            let path = h.get("path").and_then(Json::as_str).unwrap_or("/");
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            let statuses = match h.get("statuses") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|s| {
                        s.as_u64()
                            .and_then(|s| u16::try_from(s).ok())
                            .ok_or_else(|| {
                                format!("health_check.http.statuses holds {s}, not an HTTP status")
                            })
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(format!(
                        "health_check.http.statuses must be an array, got {other}"
                    ))
                }
            };
            Probe::Http {
                port: host_port(spec, port(h, "health_check.http")?),
                path,
                statuses,
            }
        }
        "TCP" => {
            let t = hc
                .get("tcp")
                .filter(|t| t.is_object())
                .ok_or("health_check.tcp is required for a TCP check")?;
            Probe::Tcp {
                port: host_port(spec, port(t, "health_check.tcp")?),
            }
        }
        other => {
            return Err(format!(
                "health_check.type `{other}` is not supported (COMMAND, HTTP or TCP)"
            ))
        }
    };
    let consecutive_failures = match hc.get("consecutive_failures") {
        None | Some(Json::Null) => 3,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("health_check.consecutive_failures must be a count, got {v}"))?,
    };
    Ok(Some(HealthCheck {
        probe,
        delay: secs(hc, "delay_seconds", 15.0)?,
        interval: secs(hc, "interval_seconds", 10.0)?.max(Duration::from_millis(10)),
        timeout: secs(hc, "timeout_seconds", 20.0)?.max(Duration::from_millis(10)),
        consecutive_failures,
        grace_period: secs(hc, "grace_period_seconds", 10.0)?,
    }))
}

/// Runs one check: `Err` says why it failed.
pub async fn probe(http: &reqwest::Client, check: &HealthCheck) -> Result<(), String> {
    let run = async {
        match &check.probe {
            Probe::Command { command, env, cwd } => {
                let out = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(command)
                    .env_clear()
                    .env("PATH", mesos_runtime::process::DEFAULT_PATH)
                    .envs(env)
                    .current_dir(cwd)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(|e| format!("cannot run the health check command: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let err = err.trim();
                    Err(format!(
                        "health check command `{command}` {}{}",
                        out.status,
                        if err.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", &err[..err.len().min(200)])
                        }
                    ))
                }
            }
            Probe::Http {
                port,
                path,
                statuses,
            } => {
                let url = format!("http://127.0.0.1:{port}{path}");
                let resp = http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let code = resp.status().as_u16();
                let ok = if statuses.is_empty() {
                    (200..400).contains(&code)
                } else {
                    statuses.contains(&code)
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("GET {url} answered {code}"))
                }
            }
            Probe::Tcp { port } => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .map(|_| ())
                .map_err(|e| format!("connect to 127.0.0.1:{port}: {e}")),
        }
    };
    match tokio::time::timeout(check.timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(format!("health check timed out after {:?}", check.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_runtime::{DockerInfo, PortMapping, Protocol};
    use serde_json::json;

    fn spec() -> ContainerSpec {
        ContainerSpec::shell("t", "sleep 1", "/tmp/sb")
    }

    #[test]
    fn checks_parse_with_upstream_defaults_and_bad_ones_say_why() {
        let c = parse(Some(&json!({"type":"TCP","tcp":{"port":8080}})), &spec())
            .unwrap()
            .unwrap();
        assert_eq!(c.probe, Probe::Tcp { port: 8080 });
        assert_eq!(c.delay, Duration::from_secs(15));
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_secs(20));
        assert_eq!(c.consecutive_failures, 3);
        assert_eq!(c.grace_period, Duration::from_secs(10));
        let c = parse(
            Some(&json!({"command":{"value":"true"},"interval_seconds":0.5})),
            &spec(),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(c.probe, Probe::Command { .. }));
        assert_eq!(c.interval, Duration::from_millis(500));
        for (hc, want) in [
            (
                json!({"type":"HTTP","http":{"port":80,"scheme":"https"}}),
                "without TLS",
            ),
            (json!({"type":"TCP","tcp":{}}), "tcp.port is required"),
            (json!({"type":"GRPC"}), "`GRPC` is not supported"),
            (
                json!({"type":"COMMAND","command":{}}),
                "command.value is required",
            ),
            (
                json!({"type":"TCP","tcp":{"port":1},"delay_seconds":-1}),
                "delay_seconds",
            ),
        ] {
            let err = parse(Some(&hc), &spec()).unwrap_err();
            assert!(err.contains(want), "{hc}: {err}");
        }
        let mut docker = spec();
        docker.container = ContainerInfo::Docker(DockerInfo::new("img"));
        let err = parse(
            Some(&json!({"type":"COMMAND","command":{"value":"true"}})),
            &docker,
        )
        .unwrap_err();
        assert!(err.contains("mesos containerizer"), "{err}");
    }

    #[test]
    fn docker_bridge_ports_go_through_the_mapping() {
        let mut s = spec();
        let mut d = DockerInfo::new("img");
        d.port_mappings.push(PortMapping {
            container_port: 80,
            host_port: 31002,
            protocol: Protocol::Tcp,
        });
        s.container = ContainerInfo::Docker(d);
        let c = parse(
            Some(&json!({"type":"HTTP","http":{"port":80,"path":"health"}})),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            c.probe,
            Probe::Http {
                port: 31002,
                path: "/health".into(),
                statuses: vec![]
            }
        );
    }

    #[tokio::test]
    async fn probes_tell_healthy_from_unhealthy() {
        let http = reqwest::Client::new();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/bad",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no")
                }),
            );
        let server = tokio::spawn(async move { axum::serve(l, app).await });
        let check = |probe| HealthCheck {
            probe,
            delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            consecutive_failures: 3,
            grace_period: Duration::ZERO,
        };
        probe(
            &http,
            &check(Probe::Http {
                port,
                path: "/ok".into(),
                statuses: vec![],
            }),
        )
        .await
        .unwrap();
        let err = probe(
            &http,
            &check(Probe::Http {
                port,
                path: "/bad".into(),
                statuses: vec![],
            }),
        )
        .await
        .unwrap_err();
        assert!(err.contains("503"), "{err}");
        probe(
            &http,
            &check(Probe::Http {
                port,
                path: "/bad".into(),
                statuses: vec![503],
            }),
        )
        .await
        .unwrap();
        probe(&http, &check(Probe::Tcp { port })).await.unwrap();
        server.abort();
        let cmd = |c: &str| Probe::Command {
            command: c.into(),
            env: BTreeMap::new(),
            cwd: std::env::temp_dir(),
        };
        probe(&http, &check(cmd("true"))).await.unwrap();
        let err = probe(&http, &check(cmd("echo broken >&2; exit 2")))
            .await
            .unwrap_err();
        assert!(err.contains("broken"), "{err}");
        let mut slow = check(cmd("sleep 5"));
        slow.timeout = Duration::from_millis(100);
        assert!(probe(&http, &slow).await.unwrap_err().contains("timed out"));
    }
}
