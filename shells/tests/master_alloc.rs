//! Offers through the real DRF allocator: two frameworks in two roles on two agents, and
//! DECLINE's refuse_seconds.

mod master_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use master_support::*;
use tokio::sync::watch;
use tokio::time::Instant;

/// Launches one `task` per offer that fits it (giving the rest back without a filter) and
/// declines offers that do not fit, until `stop`.
fn greedy(
    mut sched: Scheduler,
    prefix: &'static str,
    cpus: f64,
    mem: f64,
    launched: Arc<AtomicUsize>,
    per_agent: Arc<std::sync::Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Scheduler> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                return sched;
            }
            let e = tokio::select! {
                _ = stop.changed() => return sched,
                e = sched.next_event(Duration::from_millis(200)) => e,
            };
            let Some(e) = e else { continue };
            sched.ack(&e).await;
            for offer in offers(&e) {
                if offered(&offer, "cpus") + 1e-9 >= cpus && offered(&offer, "mem") + 1e-9 >= mem {
                    let n = launched.fetch_add(1, Ordering::SeqCst);
                    let id = format!("{prefix}-{n}");
                    sched
                        .launch(&offer, &id, &format!("cpus:{cpus};mem:{mem}"), "sleep 1000")
                        .await;
                    per_agent
                        .lock()
                        .expect("lock")
                        .push(offer["agent_id"]["value"].as_str().unwrap_or("").into());
                } else {
                    sched.decline(&offer, 0.0).await;
                }
            }
        }
    })
}

async fn wait_count(what: &str, counter: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + WAIT;
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} to reach {n} (at {})",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Framework A (role `a`, tasks cpus:1;mem:128) fills agent 1 (cpus:4;mem:512) alone: its
/// dominant share is 4/8 of the CPUs. Then framework B (role `b`, tasks cpus:0.25;mem:512) and
/// agent 2 (cpus:4;mem:4096) arrive; both launch one task per offer. DRF hands agent 2 to the
/// role with the lower dominant share each time, so B (1/9 of the memory per task) launches
/// until its share passes A's (5 tasks), then the two alternate until agent 2 is full:
/// A 6 tasks (share 6/8), B 7 (share 7/9). A first-come or random allocator ends elsewhere.
#[tokio::test]
async fn two_roles_on_two_agents_get_drf_shares() {
    let m = TestMaster::start(fast_flags()).await;
    let base = m.url();
    let (stop_tx, stop) = watch::channel(false);

    let a_launched = Arc::new(AtomicUsize::new(0));
    let a_agents = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sched_a = Scheduler::subscribe(&base, framework_info("fw-a", "a", &[])).await;
    let agent1 = FakeAgent::start(&base, "agent-1", "cpus:4;mem:512").await;
    let a = greedy(
        sched_a,
        "a",
        1.0,
        128.0,
        a_launched.clone(),
        a_agents.clone(),
        stop.clone(),
    );
    wait_count("A's tasks on agent 1", &a_launched, 4).await;

    let b_launched = Arc::new(AtomicUsize::new(0));
    let b_agents = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sched_b = Scheduler::subscribe(&base, framework_info("fw-b", "b", &[])).await;
    let b = greedy(
        sched_b,
        "b",
        0.25,
        512.0,
        b_launched.clone(),
        b_agents.clone(),
        stop.clone(),
    );
    let agent2 = FakeAgent::start(&base, "agent-2", "cpus:4;mem:4096").await;
    wait_count("B's tasks", &b_launched, 7).await;
    wait_count("A's tasks", &a_launched, 6).await;
    // Let twenty more allocation cycles pass: nothing else fits, nothing else is launched.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = stop_tx.send(true);
    let _sa = a.await.expect("a");
    let _sb = b.await.expect("b");

    let a_agents = a_agents.lock().expect("lock").clone();
    let b_agents = b_agents.lock().expect("lock").clone();
    assert_eq!(a_launched.load(Ordering::SeqCst), 6, "A: {a_agents:?}");
    assert_eq!(b_launched.load(Ordering::SeqCst), 7, "B: {b_agents:?}");
    assert!(a_agents[..4].iter().all(|id| id == &agent1.id));
    assert!(a_agents[4..].iter().all(|id| id == &agent2.id));
    assert!(b_agents.iter().all(|id| id == &agent2.id));

    let s = m.state().await;
    let mut shares = Vec::new();
    for fw in s["frameworks"].as_array().expect("frameworks") {
        let used = &fw["used_resources"];
        let share = (used["cpus"].as_f64().unwrap_or(0.0) / 8.0)
            .max(used["mem"].as_f64().unwrap_or(0.0) / 4608.0);
        shares.push(share);
    }
    assert_eq!(shares.len(), 2);
    assert!(
        (shares[0] - shares[1]).abs() <= 1.0 / 8.0,
        "dominant shares within one task of each other: {shares:?}"
    );
    m.shutdown().await;
}

/// A declined offer is not offered again to the framework before refuse_seconds, and is
/// offered again after it.
#[tokio::test]
async fn decline_with_refuse_seconds_is_honoured() {
    let m = TestMaster::start(fast_flags()).await;
    let _agent = FakeAgent::start(&m.url(), "agent-d", "cpus:2;mem:1024").await;
    let mut sched = Scheduler::subscribe(&m.url(), framework_info("decliner", "*", &[])).await;

    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    let refuse = Duration::from_secs(2);
    let declined_at = Instant::now();
    sched.decline(&offer, refuse.as_secs_f64()).await;
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let waited = declined_at.elapsed();
    assert!(
        waited >= refuse - Duration::from_millis(100),
        "re-offered after {waited:?}, before refuse_seconds {refuse:?}"
    );

    // With refuse_seconds 0 the resources come back at the next allocation.
    let offer = offers(&e).remove(0);
    sched.decline(&offer, 0.0).await;
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    assert_eq!(offers(&e).len(), 1);
    m.shutdown().await;
}
