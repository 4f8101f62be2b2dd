//! The master's HTTP surface against a master on 127.0.0.1:0: the v1 scheduler API's status
//! codes and JSON shapes, the agent protocol, and the read-only endpoints.

mod master_support;

use std::time::Duration;

use master_support::*;
use mesos_core::task::TaskState;
use serde_json::{json, Value as Json};

async fn post(
    url: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client.post(url).body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn bad_scheduler_calls_get_clear_errors() {
    let m = TestMaster::start(fast_flags()).await;
    let url = format!("{}/api/v1/scheduler", m.url());
    let sub = r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;

    let get = reqwest::get(&url).await.expect("get");
    assert_eq!(get.status(), 405);

    let (s, body) = post(&url, None, &[], sub).await;
    assert_eq!(s, 400, "missing Content-Type: {body}");
    assert!(body.contains("Content-Type"), "{body}");

    let (s, _) = post(&url, Some("text/plain"), &[], sub).await;
    assert_eq!(s, 415);

    let (s, _) = post(
        &url,
        Some("application/json"),
        &[("Accept", "text/html")],
        sub,
    )
    .await;
    assert_eq!(s, 406);

    let (s, body) = post(&url, Some("application/json"), &[], "{not json").await;
    assert_eq!(s, 400);
    assert!(body.contains("Call"), "{body}");

    let (s, body) = post(
        &url,
        Some("application/json"),
        &[],
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("framework_info.name"), "{body}");

    let (s, _) = post(
        &url,
        Some("application/json"),
        &[("Mesos-Stream-Id", "x")],
        sub,
    )
    .await;
    assert_eq!(s, 400, "SUBSCRIBE with a stream id");

    let mut sched = Scheduler::subscribe(&m.url(), framework_info("api", "*", &[])).await;
    let fid = sched.framework_id.clone();
    let decline =
        json!({"type":"DECLINE","framework_id":{"value": fid},"decline":{"offer_ids":[]}})
            .to_string();

    let (s, body) = post(&url, Some("application/json"), &[], &decline).await;
    assert_eq!(s, 400, "no stream id: {body}");
    assert!(body.contains("Mesos-Stream-Id"), "{body}");

    let (s, _) = post(
        &url,
        Some("application/json"),
        &[("Mesos-Stream-Id", "not-the-stream")],
        &decline,
    )
    .await;
    assert_eq!(s, 400, "stream id mismatch");

    let unknown =
        json!({"type":"DECLINE","framework_id":{"value":"nope"},"decline":{"offer_ids":[]}})
            .to_string();
    let (s, _) = post(
        &url,
        Some("application/json"),
        &[("Mesos-Stream-Id", &sched.stream_id)],
        &unknown,
    )
    .await;
    assert_eq!(s, 400, "unknown framework");

    let (s, body) = post(
        &url,
        Some("application/json"),
        &[("Mesos-Stream-Id", &sched.stream_id)],
        &json!({"type":"KILL","framework_id":{"value": fid}}).to_string(),
    )
    .await;
    assert_eq!(s, 400, "KILL without payload: {body}");
    assert!(body.contains("kill"), "{body}");

    // Well-formed but stale calls are 202.
    assert_eq!(
        sched
            .call(json!({"type":"DECLINE","decline":{"offer_ids":[{"value":"gone"}]}}))
            .await,
        202
    );
    assert_eq!(sched.call(json!({"type":"REVIVE"})).await, 202);
    assert_eq!(
        sched
            .call(json!({"type":"RECONCILE","reconcile":{"tasks":[]}}))
            .await,
        202
    );

    // TEARDOWN ends the stream; later calls are refused with 403.
    assert_eq!(sched.call(json!({"type":"TEARDOWN"})).await, 202);
    assert!(
        sched.next_event(WAIT).await.is_none(),
        "the stream ends after TEARDOWN"
    );
    assert_eq!(sched.call(json!({"type":"REVIVE"})).await, 403);
    m.shutdown().await;
}

#[tokio::test]
async fn offers_launch_and_updates_have_mesos_shapes() {
    let m = TestMaster::start(fast_flags()).await;
    let agent = FakeAgent::start(
        &m.url(),
        "agent-a",
        "cpus:2;mem:1024;disk:100;ports:[31000-31009]",
    )
    .await;
    let mut sched = Scheduler::subscribe(&m.url(), framework_info("shapes", "*", &[])).await;

    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    assert_eq!(offer["agent_id"]["value"], agent.id.as_str());
    assert_eq!(offer["hostname"], "agent-a");
    assert_eq!(offer["url"]["scheme"], "http");
    assert_eq!(offer["url"]["address"]["port"], 5051);
    assert!(offer.get("allocation_info").is_none(), "not MULTI_ROLE");
    for r in offer["resources"].as_array().expect("resources") {
        assert_eq!(r["role"], "*", "pre-refinement format: {r}");
        assert!(r.get("allocation_info").is_none(), "{r}");
    }
    assert_eq!(offered(&offer, "cpus"), 2.0);

    sched
        .launch(&offer, "t1", "cpus:0.5;mem:64", "sleep 100")
        .await;
    let e = sched
        .wait_for("RUNNING", |e| {
            e["type"] == "UPDATE" && e["update"]["status"]["state"] == "TASK_RUNNING"
        })
        .await;
    let status = &e["update"]["status"];
    assert_eq!(status["task_id"]["value"], "t1");
    assert_eq!(status["agent_id"]["value"], agent.id.as_str());
    assert!(status["uuid"].is_string());

    // The agent sees RUN_TASK and (after the ack above) an ACKNOWLEDGE.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (run, ack) = {
            let cmds = agent.commands.lock().expect("lock");
            (
                cmds.iter()
                    .any(|c| matches!(c, mesos_core::master::AgentCommand::RunTask { .. })),
                cmds.iter()
                    .any(|c| matches!(c, mesos_core::master::AgentCommand::Acknowledge { .. })),
            )
        };
        if run && ack {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent commands: RUN_TASK {run}, ACKNOWLEDGE {ack}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An invalid launch gets a master-generated TASK_ERROR without uuid.
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    sched
        .launch(&offer, "too-big", "cpus:64;mem:64", "true")
        .await;
    let e = sched
        .wait_for("TASK_ERROR", |e| {
            e["type"] == "UPDATE" && e["update"]["status"]["task_id"]["value"] == "too-big"
        })
        .await;
    assert_eq!(e["update"]["status"]["state"], "TASK_ERROR");
    assert_eq!(e["update"]["status"]["source"], "SOURCE_MASTER");
    assert!(e["update"]["status"].get("uuid").is_none());

    // /master/state in the §7 shape.
    let s = m.state().await;
    assert_eq!(s["version"], "1.11.0");
    assert_eq!(s["activated_slaves"], 1);
    let slave = &s["slaves"][0];
    assert_eq!(slave["id"], agent.id.as_str());
    assert_eq!(slave["resources"]["cpus"], 2.0);
    assert_eq!(slave["resources"]["gpus"], 0.0);
    assert_eq!(slave["resources"]["ports"], "[31000-31009]");
    assert_eq!(slave["used_resources"]["cpus"], 0.5);
    let fw = &s["frameworks"][0];
    assert_eq!(fw["id"], sched.framework_id.as_str());
    assert_eq!(fw["role"], "*");
    assert_eq!(fw["tasks"][0]["id"], "t1");
    assert_eq!(fw["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(fw["tasks"][0]["slave_id"], agent.id.as_str());
    assert_eq!(fw["used_resources"]["mem"], 64.0);

    // Metrics, both forms.
    let metrics: Json = reqwest::get(format!("{}/metrics/snapshot", m.url()))
        .await
        .expect("metrics")
        .json()
        .await
        .expect("json");
    assert_eq!(metrics["master/tasks_running"], 1.0);
    assert_eq!(metrics["master/slaves_active"], 1.0);
    assert_eq!(metrics["master/frameworks_connected"], 1.0);
    assert_eq!(metrics["master/cpus_total"], 2.0);
    assert_eq!(metrics["master/cpus_used"], 0.5);
    assert_eq!(metrics["master/elected"], 1.0);
    let text = reqwest::get(format!("{}/metrics", m.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("\nmaster_tasks_running 1\n"), "{text}");

    // The operator API.
    let client = reqwest::Client::new();
    let op = |kind: &str| {
        client
            .post(format!("{}/api/v1", m.url()))
            .header("Content-Type", "application/json")
            .json(&json!({ "type": kind }))
            .send()
    };
    let h: Json = op("GET_HEALTH")
        .await
        .expect("op")
        .json()
        .await
        .expect("json");
    assert_eq!(h["get_health"]["healthy"], true);
    let t: Json = op("GET_TASKS")
        .await
        .expect("op")
        .json()
        .await
        .expect("json");
    assert_eq!(t["get_tasks"]["tasks"][0]["task_id"]["value"], "t1");
    assert_eq!(t["get_tasks"]["tasks"][0]["state"], "TASK_RUNNING");
    let a: Json = op("GET_AGENTS")
        .await
        .expect("op")
        .json()
        .await
        .expect("json");
    assert_eq!(
        a["get_agents"]["agents"][0]["agent_info"]["id"]["value"],
        agent.id.as_str()
    );
    let f: Json = op("GET_FRAMEWORKS")
        .await
        .expect("op")
        .json()
        .await
        .expect("json");
    assert_eq!(
        f["get_frameworks"]["frameworks"][0]["framework_info"]["id"]["value"],
        sched.framework_id.as_str()
    );
    let st: Json = op("GET_STATE")
        .await
        .expect("op")
        .json()
        .await
        .expect("json");
    assert_eq!(st["type"], "GET_STATE");
    assert!(st["get_state"]["get_agents"]["agents"].is_array());
    let bad = op("NOPE").await.expect("op");
    assert_eq!(bad.status(), 400);
    m.shutdown().await;
}

#[tokio::test]
async fn multi_role_frameworks_get_allocation_info() {
    let m = TestMaster::start(fast_flags()).await;
    let _agent = FakeAgent::start(&m.url(), "agent-a", "cpus:1;mem:512").await;
    let info = json!({"user": "u", "name": "mr", "roles": ["web"],
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "RESERVATION_REFINEMENT"}]});
    let mut sched = Scheduler::subscribe(&m.url(), info).await;
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    assert_eq!(offer["allocation_info"]["role"], "web");
    for r in offer["resources"].as_array().expect("resources") {
        assert_eq!(r["allocation_info"]["role"], "web", "{r}");
        assert!(r.get("role").is_none(), "refined format has no role: {r}");
    }
    m.shutdown().await;
}

#[tokio::test]
async fn read_only_endpoints() {
    let m = TestMaster::start(fast_flags()).await;
    let v: Json = reqwest::get(format!("{}/version", m.url()))
        .await
        .expect("version")
        .json()
        .await
        .expect("json");
    let version = v["version"].as_str().expect("version");
    assert!(
        version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "dotted integers: {version}"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client
        .get(format!("{}/master/redirect", m.url()))
        .send()
        .await
        .expect("redirect");
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"].to_str().expect("ascii"),
        format!("//127.0.0.1:{}", m.addr.port())
    );
    let h = reqwest::get(format!("{}/master/health", m.url()))
        .await
        .expect("health");
    assert_eq!(h.status(), 200);
    let page = reqwest::get(format!("{}/", m.url()))
        .await
        .expect("ui")
        .text()
        .await
        .expect("text");
    assert!(page.contains("master/state"), "the UI reads /master/state");
    let s = reqwest::get(format!("{}/state", m.url()))
        .await
        .expect("state");
    assert_eq!(s.status(), 200);
    m.shutdown().await;
}

#[tokio::test]
async fn agent_protocol_errors() {
    let m = TestMaster::start(fast_flags()).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/internal/agent/nope/stream", m.url()))
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), 404);
    let body: Json = r.json().await.expect("json");
    assert!(body["error"].is_string());
    let r = client
        .post(format!("{}/internal/agent/nope/message", m.url()))
        .json(&json!({"type": "PONG"}))
        .send()
        .await
        .expect("message");
    assert_eq!(r.status(), 404);
    let r = client
        .post(format!("{}/internal/agent/register", m.url()))
        .json(&json!({"hostname": "h"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 400);
    let r = client
        .post(format!("{}/internal/agent/register", m.url()))
        .json(
            &json!({"hostname": "", "address": {"hostname": "h", "ip": "127.0.0.1", "port": 1},
            "resources": []}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 400, "empty hostname is invalid");
    m.shutdown().await;
}

#[tokio::test]
async fn agent_message_batches_are_handled_in_order_and_bad_ones_are_refused() {
    let m = TestMaster::start(fast_flags()).await;
    let client = reqwest::Client::new();

    let agent = FakeAgent::start(&m.url(), "agent-a", "cpus:2;mem:1024").await;
    let mut sched = Scheduler::subscribe(&m.url(), framework_info("batches", "*", &[])).await;
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    sched
        .launch(&offer, "t1", "cpus:0.5;mem:64", "sleep 100")
        .await;
    sched
        .wait_for("RUNNING", |e| {
            e["type"] == "UPDATE" && e["update"]["status"]["state"] == "TASK_RUNNING"
        })
        .await;

    // One POST, three messages: a pong, a second RUNNING, then FINISHED; the framework sees
    // the two updates in the order of the batch.
    let fw = mesos_core::ids::FrameworkId::new(sched.framework_id.clone());
    let task = mesos_core::ids::TaskId::new("t1");
    let running = status_update(&fw, &task, &agent.id, TaskState::Running, 100);
    let finished = status_update(&fw, &task, &agent.id, TaskState::Finished, 101);
    let batch = json!([{"type": "PONG"}, running, finished]);
    let url = format!("{}/internal/agent/{}/messages", m.url(), agent.id);
    let (s, body) = post(&url, Some("application/json"), &[], &batch.to_string()).await;
    assert_eq!(s, 202, "{body}");
    let mut states = Vec::new();
    while states.len() < 2 {
        let e = sched.wait_for("UPDATE", |e| e["type"] == "UPDATE").await;
        states.push(
            e["update"]["status"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(states, ["TASK_RUNNING", "TASK_FINISHED"]);

    // An empty batch is fine; anything but an array of messages is a 400 naming the problem.
    let (s, body) = post(&url, Some("application/json"), &[], "[]").await;
    assert_eq!(s, 202, "{body}");
    let (s, body) = post(&url, Some("application/json"), &[], r#"{"type":"PONG"}"#).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("invalid agent message batch"), "{body}");
    let (s, body) = post(
        &url,
        Some("application/json"),
        &[],
        r#"[{"type":"PONG"},{"type":"NOPE"}]"#,
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("message 1"), "{body}");
    let too_many = format!("[{}]", vec![r#"{"type":"PONG"}"#; 1025].join(","));
    let (s, body) = post(&url, Some("application/json"), &[], &too_many).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("more than 1024 messages"), "{body}");
    let (s, body) = post(
        &url,
        Some("application/json"),
        &[],
        "[{\"type\":\"PONG\"}] x",
    )
    .await;
    assert_eq!(s, 400, "trailing bytes: {body}");
    let huge = format!(r#"[{{"type":"PONG","pad":"{}"}}]"#, "x".repeat(17 << 20));
    let (s, _) = post(&url, Some("application/json"), &[], &huge).await;
    assert_eq!(s, 413);

    // An unknown agent: 404 (the agent registers again), naming the first message not handled.
    let (s, body) = post(
        &format!("{}/internal/agent/nope/messages", m.url()),
        Some("application/json"),
        &[],
        r#"[{"type":"PONG"},{"type":"PONG"}]"#,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("message 0"), "{body}");

    // The single-message endpoint still works.
    let (s, body) = post(
        &format!("{}/internal/agent/{}/message", m.url(), agent.id),
        Some("application/json"),
        &[],
        r#"{"type":"PONG"}"#,
    )
    .await;
    assert_eq!(s, 202, "{body}");
    // The registration answer tells agents the batch endpoint exists and its bound (registered
    // last: its offers would compete with the fake agent's above).
    let r = client
        .post(format!("{}/internal/agent/register", m.url()))
        .json(
            &json!({"hostname": "h", "address": {"hostname": "h", "ip": "127.0.0.1", "port": 1},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}}]}),
        )
        .send()
        .await
        .expect("register");
    let status = r.status();
    let answer: Json = r.json().await.expect("json");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["max_batch_messages"], 1024);

    m.shutdown().await;
}

#[tokio::test]
async fn subscription_streams_carry_heartbeats() {
    let mut flags = fast_flags();
    flags.heartbeat_interval = "100ms".into();
    let m = TestMaster::start(flags).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/scheduler", m.url()))
        .header("Content-Type", "application/json")
        .body(r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"hb"}}}"#)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("chunked")
    );
    let mut body = resp.bytes_stream();
    let mut decoder = shells::recordio::Decoder::new(1 << 20);
    let mut kinds = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while kinds.iter().filter(|k| *k == "HEARTBEAT").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut body))
            .await
            .expect("heartbeats in time")
            .expect("stream open")
            .expect("chunk");
        decoder.push(&chunk);
        while let Some(r) = decoder.next_record().expect("RecordIO") {
            let e: Json = serde_json::from_slice(&r).expect("json");
            kinds.push(e["type"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(kinds[0], "SUBSCRIBED");
    m.shutdown().await;
}

#[tokio::test]
async fn a_new_subscription_replaces_the_old_stream() {
    let m = TestMaster::start(fast_flags()).await;
    let mut first = Scheduler::subscribe(&m.url(), framework_info("twice", "*", &[])).await;
    let id = first.framework_id.clone();
    let second =
        Scheduler::subscribe_with(&m.url(), framework_info("twice", "*", &[]), Some(&id)).await;
    assert_eq!(second.framework_id, id);
    assert_ne!(second.stream_id, first.stream_id);
    assert!(
        first.next_event(WAIT).await.is_none(),
        "the old stream ends"
    );
    // Calls with the old stream id are refused, with the new one accepted.
    assert_eq!(first.call(json!({"type": "REVIVE"})).await, 400);
    assert_eq!(second.call(json!({"type": "REVIVE"})).await, 202);
    let s = m.state().await;
    assert_eq!(s["frameworks"][0]["connected"], true);
    m.shutdown().await;
}

#[tokio::test]
async fn oversized_unknown_and_mangled_bodies_get_4xx_and_the_master_lives_on() {
    let m = TestMaster::start(fast_flags()).await;
    let url = format!("{}/api/v1/scheduler", m.url());

    let (s, body) = post(
        &url,
        Some("application/json"),
        &[],
        r#"{"type":"FROBNICATE"}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("unknown call type 'FROBNICATE'"), "{body}");

    let huge = format!(r#"{{"type":"SUBSCRIBE","pad":"{}"}}"#, "x".repeat(17 << 20));
    let (s, _) = post(&url, Some("application/json"), &[], &huge).await;
    assert_eq!(s, 413);

    // Bounded, deterministic mangling of a valid SUBSCRIBE and ACCEPT: never a 5xx.
    let seeds = [
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#,
        r#"{"framework_id":{"value":"f"},"type":"ACCEPT","accept":{"offer_ids":[{"value":"o"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}],"command":{"value":"true"}}]}}]}}"#,
    ];
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for seed in seeds {
        for _ in 0..60 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng % bytes.len() as u64) as usize;
                const JUNK: &[u8] = b"{}[]\":,0-9aZ\\";
                bytes[i] = JUNK[(rng >> 32) as usize % JUNK.len()];
            }
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let (s, text) = post(
                &url,
                Some("application/json"),
                &[("Mesos-Stream-Id", "x")],
                &body,
            )
            .await;
            assert!(s < 500, "{s} for {body}: {text}");
        }
    }
    let health = reqwest::get(format!("{}/master/health", m.url()))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    m.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_task_gets_task_error_and_the_offer_comes_back() {
    let m = TestMaster::start(fast_flags()).await;
    let _agent = FakeAgent::start(&m.url(), "agent-a", "cpus:1;mem:512").await;
    let info = framework_info("bad-task", "*", &[]);
    let mut sched = Scheduler::subscribe(&m.url(), info).await;
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    let code = sched
        .call(json!({"type": "ACCEPT", "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                "name": "neg", "task_id": {"value": "neg"}, "agent_id": offer["agent_id"],
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1.0}}],
                "command": {"value": "true"}}]}}],
            "filters": {"refuse_seconds": 0.0}}}))
        .await;
    assert_eq!(code, 202);
    let u = sched
        .wait_for("TASK_ERROR", |e| {
            e["type"] == "UPDATE" && e["update"]["status"]["task_id"]["value"] == "neg"
        })
        .await;
    let status = &u["update"]["status"];
    assert_eq!(status["state"], "TASK_ERROR");
    assert_eq!(status["reason"], "REASON_TASK_INVALID");
    assert!(status.get("uuid").is_none(), "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or("")
            .contains("negative"),
        "{status}"
    );
    // The offered resources were given back (refuse_seconds 0): they are offered again.
    let again = sched
        .wait_for("OFFERS again", |e| e["type"] == "OFFERS")
        .await;
    assert_eq!(offered(&offers(&again)[0], "cpus"), 1.0);
    m.shutdown().await;
}
