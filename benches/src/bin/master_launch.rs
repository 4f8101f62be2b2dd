//! End-to-end launch throughput and master memory, through the real `mesos-master` binary on
//! loopback.
//!
//! ```text
//! cargo build --release -p shells && cargo run --release -p benches --bin master_launch -- \
//!     --mode noop --tasks 100000 --agents 4
//! cargo run --release -p benches --bin master_launch -- --mode process --tasks 5000 --agents 2
//! ```
//!
//! - `--mode noop`: agents are in-process fakes speaking the agent protocol that answer every
//!   RUN_TASK with TASK_RUNNING at once (the master path alone), the updates that are ready in
//!   one batch POST as the real agent's sender does. Tasks stay running, so the master's RSS
//!   growth per task is measured too.
//! - `--mode process`: real `mesos-agent` processes run every task (`true`) through the process
//!   runtime; a launch counts when its TASK_FINISHED reaches the framework.
//!
//! The framework is a v1 HTTP scheduler in this process: it packs as many tasks (cpus:0.01 and
//! mem:1, or mem:4 with real processes) into each offer as fit and acknowledges every update.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt;
use mesos_core::master::{Address, AgentRegistration};
use mesos_core::resources::Resources;
use mesos_core::task::StatusUuid;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, Semaphore};

/// `{"value": "..."}`.
#[derive(serde::Deserialize)]
struct Id {
    value: String,
}

/// The fields of an agent command the fake agent needs.
#[derive(serde::Deserialize)]
struct MiniCommand {
    #[serde(rename = "type")]
    kind: String,
    framework: Option<MiniFramework>,
    task: Option<MiniTask>,
}

#[derive(serde::Deserialize)]
struct MiniFramework {
    id: Id,
}

#[derive(serde::Deserialize)]
struct MiniTask {
    task_id: Id,
}

/// The fields of a scheduler event the framework needs (offers are read in full).
#[derive(serde::Deserialize)]
struct MiniEvent {
    #[serde(rename = "type")]
    kind: String,
    subscribed: Option<Json>,
    offers: Option<Json>,
    update: Option<MiniUpdate>,
}

#[derive(serde::Deserialize)]
struct MiniUpdate {
    status: MiniStatus,
}

#[derive(serde::Deserialize)]
struct MiniStatus {
    task_id: Id,
    state: String,
    agent_id: Option<Id>,
    uuid: Option<String>,
    message: Option<String>,
}

const TASK_CPUS: f64 = 0.01;
const TASK_MEM: f64 = 1.0;
/// The process runtime refuses memory limits under 4 MB.
const PROCESS_TASK_MEM: f64 = 4.0;

struct Args {
    mode: String,
    tasks: usize,
    agents: usize,
    bin_dir: std::path::PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        mode: "noop".into(),
        tasks: 20_000,
        agents: 2,
        bin_dir: std::env::current_exe()?
            .parent()
            .context("exe dir")?
            .to_path_buf(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => a.mode = value,
            "--tasks" => a.tasks = value.parse()?,
            "--agents" => a.agents = value.parse()?,
            "--bin-dir" => a.bin_dir = value.into(),
            other => bail!(
                "unknown flag {other} (--mode noop|process, --tasks N, --agents K, --bin-dir DIR)"
            ),
        }
    }
    if a.mode != "noop" && a.mode != "process" {
        bail!("--mode is noop or process");
    }
    if a.tasks == 0 || a.agents == 0 {
        bail!("--tasks and --agents must be above zero");
    }
    Ok(a)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (clock ticks assumed 100/s, Linux' USER_HZ).
fn cpu_secs(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / 100.0)
        })
        .unwrap_or(0.0)
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SIGTERM first so agents kill their tasks; then make sure.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        for c in &mut self.0 {
            for _ in 0..100 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if client
            .get(format!("{base}/master/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("master not healthy")
}

/// Reads RecordIO records from a streamed body into a channel, all the whole records of a
/// chunk at once.
fn records(resp: reqwest::Response, tx: mpsc::Sender<Vec<Vec<u8>>>) {
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.extend_from_slice(&chunk);
            let mut out = Vec::new();
            let mut at = 0;
            while let Some(nl) = buf[at..].iter().position(|b| *b == b'\n') {
                let Some(len) = std::str::from_utf8(&buf[at..at + nl])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    return;
                };
                let begin = at + nl + 1;
                if buf.len() < begin + len {
                    break;
                }
                out.push(buf[begin..begin + len].to_vec());
                at = begin + len;
            }
            buf.drain(..at);
            if !out.is_empty() && tx.send(out).await.is_err() {
                return;
            }
        }
    });
}

/// Most agent messages a fake agent puts in one POST (the master's `max_batch_messages`).
const AGENT_BATCH: usize = 1024;

/// A fake agent answering RUN_TASK with TASK_RUNNING. Like the real agent's sender, it puts the
/// messages that are ready into one `POST /internal/agent/{id}/messages` (a JSON array), with a
/// few POSTs in flight.
async fn fake_agent(
    client: reqwest::Client,
    base: String,
    index: usize,
    resources: String,
) -> anyhow::Result<()> {
    let reg = AgentRegistration {
        id: None,
        hostname: format!("fake-{index}"),
        address: Address {
            hostname: format!("fake-{index}"),
            ip: "127.0.0.1".into(),
            port: 5051,
        },
        resources: Resources::parse(&resources)?,
        attributes: Default::default(),
        tasks: Vec::new(),
        version: "1.11.0".into(),
    };
    let r: Json = client
        .post(format!("{base}/internal/agent/register"))
        .json(&reg)
        .send()
        .await?
        .json()
        .await?;
    let id = r["agent_id"]["value"]
        .as_str()
        .context("agent id")?
        .to_string();
    let batch_limit = r["max_batch_messages"]
        .as_u64()
        .context("the master does not take message batches")? as usize;
    let batch_limit = batch_limit.clamp(1, AGENT_BATCH);
    let resp = client
        .post(format!("{base}/internal/agent/{id}/stream"))
        .send()
        .await?;
    let (tx, mut rx) = mpsc::channel(4096);
    records(resp, tx);
    let inflight = Arc::new(Semaphore::new(8));
    let url = format!("{base}/internal/agent/{id}/messages");
    let mut n: u128 = (index as u128) << 64;
    tokio::spawn(async move {
        let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match rx.recv().await {
                    Some(recs) => pending.extend(recs),
                    None => return,
                }
            }
            while let Ok(recs) = rx.try_recv() {
                pending.extend(recs);
            }
            let mut body = String::with_capacity(400 * pending.len().min(batch_limit) + 2);
            body.push('[');
            let mut count = 0;
            while count < batch_limit {
                let Some(rec) = pending.pop_front() else {
                    break;
                };
                let Ok(cmd) = serde_json::from_slice::<MiniCommand>(&rec) else {
                    continue;
                };
                if count > 0 {
                    body.push(',');
                }
                match (cmd.kind.as_str(), cmd.framework, cmd.task) {
                    ("RUN_TASK", Some(fw), Some(task)) => {
                        n += 1;
                        running_update(&mut body, &fw.id.value, &task.task_id.value, &id, n);
                    }
                    ("PING", _, _) => body.push_str(r#"{"type":"PONG"}"#),
                    _ => {
                        if count > 0 {
                            body.pop();
                        }
                        continue;
                    }
                }
                count += 1;
            }
            if count == 0 {
                continue;
            }
            body.push(']');
            let Ok(permit) = inflight.clone().acquire_owned().await else {
                return;
            };
            let req = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body)
                .send();
            tokio::spawn(async move {
                match req.await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => eprintln!("agent message batch: {}", r.status()),
                    Err(e) => eprintln!("agent message batch: {e}"),
                }
                drop(permit);
            });
        }
    });
    Ok(())
}

/// Appends a STATUS_UPDATE message with TASK_RUNNING, written directly.
fn running_update(out: &mut String, fw: &str, task: &str, agent: &str, n: u128) {
    let _ = write!(
        out,
        r#"{{"type":"STATUS_UPDATE","framework_id":{{"value":"{fw}"}},"status":{{"task_id":{{"value":"{task}"}},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","agent_id":{{"value":"{agent}"}},"timestamp":1.0,"uuid":"{}"}}}}"#,
        StatusUuid::from_u128(n).to_base64()
    );
}

fn scalar(offer: &Json, name: &str) -> f64 {
    offer["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["name"] == name)
                .filter_map(|r| r["scalar"]["value"].as_f64())
                .sum()
        })
        .unwrap_or(0.0)
}

/// One thread for the bench's framework and fake agents: on a 2-core machine shared with the
/// master, a multi-threaded runtime spent a good part of the bench's CPU on cross-thread wakeups
/// and glibc malloc lock contention (frees on another thread than the allocation), taken from
/// the master.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let work = std::env::temp_dir().join(format!("master-launch-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut children = Children(Vec::new());
    let master_bin = args.bin_dir.join("mesos-master");
    let master = Command::new(&master_bin)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--allocation_interval",
            "10ms",
            "--agent_ping_timeout",
            "60secs",
        ])
        .args(["--max_completed_tasks_per_framework", "1000"])
        .env("MESOS_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", master_bin.display()))?;
    let master_pid = master.id();
    children.0.push(master);
    wait_healthy(&client, &base).await?;

    let task_mem = if args.mode == "noop" {
        TASK_MEM
    } else {
        PROCESS_TASK_MEM
    };
    let per_agent = args.tasks.div_ceil(args.agents) + 10;
    if args.mode == "noop" {
        let res = format!(
            "cpus:{};mem:{}",
            (per_agent as f64 * TASK_CPUS).ceil(),
            per_agent as f64 * TASK_MEM
        );
        for i in 0..args.agents {
            fake_agent(client.clone(), base.clone(), i, res.clone()).await?;
        }
    } else {
        let agent_bin = args.bin_dir.join("mesos-agent");
        for i in 0..args.agents {
            let aport = free_port()?;
            let child = Command::new(&agent_bin)
                .args(["--master", &format!("127.0.0.1:{port}")])
                .args(["--ip", "127.0.0.1", "--port", &aport.to_string()])
                .args(["--hostname", &format!("agent-{i}")])
                .args([
                    "--work_dir",
                    &work.join(format!("agent-{i}")).display().to_string(),
                ])
                .args(["--resources", "cpus:16;mem:16384;disk:1000"])
                .args(["--containerizers", "mesos", "--kill_tasks_on_shutdown"])
                .args(["--switch_user", "false"])
                .env("MESOS_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("spawn {}", agent_bin.display()))?;
            children.0.push(child);
        }
    }
    // Wait for the agents to register.
    for _ in 0..500 {
        let s: Json = client
            .get(format!("{base}/master/state"))
            .send()
            .await?
            .json()
            .await?;
        if s["activated_slaves"].as_u64().unwrap_or(0) as usize >= args.agents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_before = rss_kib(master_pid);
    let cpu_before = cpu_secs(master_pid);

    // The framework.
    let resp = client
        .post(format!("{base}/api/v1/scheduler"))
        .header("Content-Type", "application/json")
        .json(
            &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "bench", "name": "master_launch", "failover_timeout": 60.0}}}),
        )
        .send()
        .await?;
    if resp.status() != 200 {
        bail!("SUBSCRIBE: {}", resp.status());
    }
    let stream_id = resp
        .headers()
        .get("mesos-stream-id")
        .and_then(|v| v.to_str().ok())
        .context("stream id")?
        .to_string();
    let (tx, mut rx) = mpsc::channel(65_536);
    records(resp, tx);
    let done_state = if args.mode == "noop" {
        "TASK_RUNNING"
    } else {
        "TASK_FINISHED"
    };
    let launched = AtomicUsize::new(0);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let inflight = Arc::new(Semaphore::new(64));
    let mut framework_id = Json::Null;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let call = |body: String| {
        client
            .post(format!("{base}/api/v1/scheduler"))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", stream_id.clone())
            .body(body)
            .send()
    };
    while (done.load(Ordering::SeqCst) as usize) < args.tasks {
        if Instant::now() > deadline {
            bail!(
                "timed out with {} of {} tasks {done_state}",
                done.load(Ordering::SeqCst),
                args.tasks
            );
        }
        let Ok(Some(recs)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await else {
            continue;
        };
        for rec in recs {
            let e: MiniEvent = serde_json::from_slice(&rec)?;
            match e.kind.as_str() {
                "SUBSCRIBED" => {
                    framework_id = e
                        .subscribed
                        .map(|s| s["framework_id"].clone())
                        .unwrap_or_default()
                }
                "OFFERS" => {
                    let offers = e.offers.unwrap_or_default();
                    for offer in offers["offers"].as_array().into_iter().flatten() {
                        let left = args.tasks - launched.load(Ordering::SeqCst);
                        let fit = ((scalar(offer, "cpus") + 1e-9) / TASK_CPUS)
                            .min(scalar(offer, "mem") / task_mem)
                            .floor() as usize;
                        let n = fit.min(left);
                        if n == 0 {
                            // Nothing (more) to launch here: do not see this again for a while.
                            let body = json!({"type": "DECLINE", "framework_id": framework_id,
                            "decline": {"offer_ids": [offer["id"]],
                                "filters": {"refuse_seconds": 3600.0}}});
                            let r = call(body.to_string()).await?;
                            if r.status() != 202 {
                                bail!("DECLINE: {}", r.status());
                            }
                            continue;
                        }
                        // The same JSON `json!` would give, written directly (the bench's CPU is
                        // shared with the master).
                        let agent_id = offer["agent_id"].to_string();
                        let mut tasks = String::with_capacity(n * (200 + agent_id.len()));
                        for k in 0..n {
                            let i = launched.fetch_add(1, Ordering::SeqCst);
                            if k > 0 {
                                tasks.push(',');
                            }
                            let _ = write!(
                                tasks,
                                r#"{{"name":"t","task_id":{{"value":"t{i}"}},"agent_id":{agent_id},"resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":{TASK_CPUS:?}}}}},{{"name":"mem","type":"SCALAR","scalar":{{"value":{task_mem:?}}}}}],"command":{{"value":"true"}}}}"#
                            );
                        }
                        started.get_or_insert_with(Instant::now);
                        let body = format!(
                            r#"{{"type":"ACCEPT","framework_id":{framework_id},"accept":{{"offer_ids":[{}],"operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{tasks}]}}}}],"filters":{{"refuse_seconds":0.0}}}}}}"#,
                            offer["id"]
                        );
                        let r = call(body).await?;
                        if r.status() != 202 {
                            bail!("ACCEPT: {}", r.status());
                        }
                    }
                }
                "UPDATE" => {
                    let Some(u) = e.update else { continue };
                    let s = u.status;
                    if s.state == done_state {
                        done.fetch_add(1, Ordering::SeqCst);
                    } else if !matches!(s.state.as_str(), "TASK_STARTING" | "TASK_RUNNING") {
                        if failed.fetch_add(1, Ordering::SeqCst) == 0 {
                            eprintln!(
                                "first failure: {} {}: {}",
                                s.task_id.value,
                                s.state,
                                s.message.as_deref().unwrap_or("")
                            );
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    if let (Some(uuid), Some(agent)) = (s.uuid, s.agent_id) {
                        let body = format!(
                            r#"{{"type":"ACKNOWLEDGE","framework_id":{},"acknowledge":{{"agent_id":{{"value":"{}"}},"task_id":{{"value":"{}"}},"uuid":"{}"}}}}"#,
                            framework_id, agent.value, s.task_id.value, uuid
                        );
                        let permit = inflight.clone().acquire_owned().await?;
                        let req = call(body);
                        tokio::spawn(async move {
                            let _ = req.await;
                            drop(permit);
                        });
                    }
                }
                _ => {}
            }
        }
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    let master_cpu = cpu_secs(master_pid) - cpu_before;
    // Let in-flight acknowledgements land before measuring memory.
    let _ = inflight.acquire_many(64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(master_pid);
    let rate = args.tasks as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "master_launch mode={} tasks={} agents={} failed={} elapsed={:.3}s rate={:.0} tasks/s",
        args.mode,
        args.tasks,
        args.agents,
        failed.load(Ordering::SeqCst),
        elapsed.as_secs_f64(),
        rate
    );
    println!(
        "master CPU: {:.2} s ({:.0} tasks per master CPU second)",
        master_cpu,
        args.tasks as f64 / master_cpu.max(1e-9)
    );
    println!(
        "master RSS: {} KiB before, {} KiB after ({:.2} KiB per task held{})",
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before) as f64 / args.tasks as f64,
        if args.mode == "noop" {
            ", tasks still running"
        } else {
            ", tasks finished"
        }
    );
    drop(children);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
