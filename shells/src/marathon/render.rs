//! JSON the REST API answers with that does not come from the scheduler core: `/v2/info`,
//! `/v2/leader`, `/metrics`, and Marathon's timestamp format.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value as Json};

use super::config::MarathonFlags;

/// The version `/v2/info` reports (the Marathon API level these shapes follow).
pub const MARATHON_VERSION: &str = "1.10.26";

/// Now, as Marathon writes timestamps (`2026-12-07T18:00:00.000Z`).
pub fn now_iso() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_millis(d.as_millis() as u64)
}

/// Milliseconds since the epoch as `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
pub fn format_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// What `/v2/info` needs from the daemon.
pub struct InfoInput<'a> {
    /// The flags.
    pub flags: &'a MarathonFlags,
    /// `host:port` of this Marathon.
    pub leader: &'a str,
    /// The framework id, once subscribed.
    pub framework_id: Option<&'a str>,
    /// The master URL in use.
    pub master: &'a str,
    /// The HTTP port actually bound.
    pub http_port: u16,
}

/// `GET /v2/info`, with exactly the keys marathon-python 0.13.0 accepts (reference §4.3).
pub fn info_json(i: &InfoInput<'_>) -> Json {
    let f = i.flags;
    let marathon_config = marathon_config(i);
    json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": "mesos-rs",
        "elected": true,
        "leader": i.leader,
        "frameworkId": i.framework_id,
        "marathon_config": marathon_config,
        "zookeeper_config": {
            "zk": f.zk,
            "zk_future_timeout": {"duration": 10000},
            "zk_hosts": "",
            "zk_max_versions": 50,
            "zk_path": "/marathon",
            "zk_session_timeout": 10000,
            "zk_state": "",
            "zk_timeout": 10000,
            "zk_connection_timeout": 10000,
            "zk_compression": true,
            "zk_compression_threshold": 65536,
            "zk_max_node_size": 1024000,
        },
        "http_config": {
            "assets_path": null,
            "http_port": i.http_port,
            "https_port": 8443,
        },
        "event_subscriber": null,
    })
}

fn marathon_config(i: &InfoInput<'_>) -> Json {
    let f = i.flags;
    let mut m = serde_json::Map::new();
    m.insert("checkpoint".into(), json!(true));
    m.insert("executor".into(), json!("//cmd"));
    m.insert("failover_timeout".into(), json!(f.failover_timeout));
    m.insert("framework_name".into(), json!(f.framework_name));
    m.insert("ha".into(), json!(false));
    m.insert("hostname".into(), json!(f.advertised_host()));
    m.insert("leader_proxy_connection_timeout_ms".into(), json!(5000));
    m.insert("leader_proxy_read_timeout_ms".into(), json!(10000));
    m.insert("local_port_min".into(), json!(10000));
    m.insert("local_port_max".into(), json!(20000));
    m.insert("maintenance_mode".into(), json!(false));
    m.insert("master".into(), json!(i.master));
    m.insert(
        "mesos_leader_ui_url".into(),
        json!(format!("{}/", i.master)),
    );
    m.insert("mesos_role".into(), json!(f.mesos_role));
    m.insert("mesos_user".into(), json!(f.user()));
    m.insert("new_group_enforce_role".into(), json!("off"));
    m.insert("webui_url".into(), json!(null));
    m.insert("reconciliation_initial_delay".into(), json!(15000));
    m.insert("reconciliation_interval".into(), json!(600000));
    m.insert("task_launch_timeout".into(), json!(f.task_launch_timeout));
    m.insert("marathon_store_timeout".into(), json!(2000));
    m.insert("task_reservation_timeout".into(), json!(20000));
    m.insert("features".into(), json!([]));
    m.insert("access_control_allow_origin".into(), json!(null));
    m.insert("decline_offer_duration".into(), json!(120000));
    m.insert("default_network_name".into(), json!(null));
    m.insert("env_vars_prefix".into(), json!(null));
    m.insert("launch_token".into(), json!(100));
    m.insert("launch_token_refresh_interval".into(), json!(30000));
    m.insert("max_instances_per_offer".into(), json!(100));
    m.insert("mesos_bridge_name".into(), json!("mesos-bridge"));
    m.insert("mesos_heartbeat_failure_threshold".into(), json!(5));
    m.insert("mesos_heartbeat_interval".into(), json!(15000));
    m.insert("min_revive_offers_interval".into(), json!(5000));
    m.insert("offer_matching_timeout".into(), json!(3000));
    m.insert("on_elected_prepare_timeout".into(), json!(180000));
    m.insert("revive_offers_for_new_apps".into(), json!(true));
    m.insert("revive_offers_repetitions".into(), json!(3));
    m.insert("scale_apps_initial_delay".into(), json!(15000));
    m.insert("scale_apps_interval".into(), json!(300000));
    m.insert("store_cache".into(), json!(true));
    m.insert("task_launch_confirm_timeout".into(), json!(300000));
    m.insert("task_lost_expunge_initial_delay".into(), json!(300000));
    m.insert("task_lost_expunge_interval".into(), json!(30000));
    Json::Object(m)
}

/// Prometheus text for the counters the daemon keeps.
pub fn metrics_text(metrics: &[(&str, &str, f64)]) -> String {
    let mut out = String::new();
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_marathon_format() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn info_has_the_client_keys() {
        let f = MarathonFlags::local("127.0.0.1:5050", "/tmp".into());
        let v = info_json(&InfoInput {
            flags: &f,
            leader: "127.0.0.1:8080",
            framework_id: Some("F"),
            master: "http://127.0.0.1:5050",
            http_port: 8080,
        });
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "name",
            "version",
            "elected",
            "leader",
            "frameworkId",
            "marathon_config",
            "zookeeper_config",
            "http_config",
            "event_subscriber",
            "buildref",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
        assert_eq!(keys.len(), 10);
        assert_eq!(v["http_config"]["http_port"], 8080);
    }
}
