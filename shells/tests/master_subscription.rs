//! The one subscription check (`Master::check_subscription`) as the HTTP API shows it: every call
//! type, handled or ignored, gets the same answer, and a stream that closed takes its calls with it.

mod master_support;

use std::time::Duration;

use master_support::*;
use serde_json::json;

/// Polls `/master/state` until the framework's `connected` is `want` (bounded by `WAIT`).
async fn wait_connected(m: &TestMaster, want: bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = m.state().await;
        if s["frameworks"][0]["connected"] == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "framework connected != {want}: {}",
            s["frameworks"]
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn calls_on_a_stream_that_closed_are_refused() {
    let m = TestMaster::start(fast_flags()).await;
    // failover_timeout 60: the framework stays, disconnected, after its stream closes.
    let sched = Scheduler::subscribe(&m.url(), framework_info("closer", "*", &[])).await;
    let (client, base, framework_id, stream_id) = (
        sched.client.clone(),
        sched.base.clone(),
        sched.framework_id.clone(),
        sched.stream_id.clone(),
    );
    drop(sched); // ends the subscription stream
    wait_connected(&m, false).await;
    for call in [
        json!({"type": "REVIVE"}),
        json!({"type": "RECONCILE", "reconcile": {"tasks": []}}),
        json!({"type": "ACCEPT_INVERSE_OFFERS", "accept_inverse_offers": {"inverse_offer_ids": []}}),
    ] {
        let mut body = call.clone();
        body["framework_id"] = json!({ "value": framework_id });
        let resp = client
            .post(format!("{base}/api/v1/scheduler"))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &stream_id)
            .json(&body)
            .send()
            .await
            .expect("call");
        assert_eq!(
            resp.status(),
            403,
            "{} on the closed stream: {}",
            call["type"],
            resp.text().await.unwrap_or_default()
        );
    }
    // A new SUBSCRIBE brings it back.
    let again = Scheduler::subscribe_with(
        &m.url(),
        framework_info("closer", "*", &[]),
        Some(&framework_id),
    )
    .await;
    assert_eq!(again.call(json!({"type": "REVIVE"})).await, 202);
    drop(again);
    m.shutdown().await;
}

#[tokio::test]
async fn a_removed_framework_gets_403_for_every_call_type() {
    let m = TestMaster::start(fast_flags()).await;
    let sched = Scheduler::subscribe(&m.url(), framework_info("gone", "*", &[])).await;
    assert_eq!(sched.call(json!({"type": "TEARDOWN"})).await, 202);
    let s = m.state().await;
    assert_eq!(
        s["completed_frameworks"][0]["id"],
        sched.framework_id.as_str()
    );
    // A handled call type and one the master accepts and ignores get the same answer.
    assert_eq!(sched.call(json!({"type": "REVIVE"})).await, 403);
    assert_eq!(
        sched
            .call(json!({"type": "ACCEPT_INVERSE_OFFERS", "accept_inverse_offers": {"inverse_offer_ids": []}}))
            .await,
        403,
        "an ignored call type of a removed framework"
    );
    drop(sched);
    m.shutdown().await;
}
