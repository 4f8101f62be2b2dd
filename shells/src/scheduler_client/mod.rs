//! A v1 scheduler HTTP API client a Rust framework can reuse: it subscribes to a master, keeps
//! the subscription alive (heartbeats, redirects to the leader, reconnection with backoff,
//! resubscription with the same framework id) and posts calls on the current stream.
//!
//! [`SchedulerClient::start`] spawns the connection task and returns a [`CallSender`] and a
//! receiver of [`ClientEvent`]s. Calls posted while no stream is open are kept (up to a bound)
//! and sent after the next SUBSCRIBED: the master, not this client, decides what a call on a
//! stale offer means (it answers launches on unknown offers with TASK_LOST/DROPPED).
//! The client takes no scheduling decision.

pub mod wire;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mesos_core::ids::FrameworkId;
use mesos_core::master::{Call, Event, FrameworkInfo, MasterInfo};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::recordio;
pub use wire::{call_json, parse_event, subscribe_json, EventError, StreamEvent};

/// Why a master address is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterUrlError {
    /// `zk://...`: leader detection through ZooKeeper is not built yet.
    #[error("master '{0}' needs ZooKeeper support, which this build does not have yet; give the leading master as host:port or http://host:port")]
    NeedsZooKeeper(String),
    /// Not `host:port`, `http://host:port` or `https://`.
    #[error("master '{given}' is not usable: {reason}")]
    Invalid {
        /// The value given.
        given: String,
        /// Why.
        reason: String,
    },
}

/// Where the master's scheduler API is: `http://host:port` without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterUrl(String);

impl MasterUrl {
    /// Reads `host:port`, `http://host:port[/]` (also the process-qualified
    /// `http://host:port/master`); `zk://` is refused with [`MasterUrlError::NeedsZooKeeper`].
    pub fn parse(given: &str) -> Result<Self, MasterUrlError> {
        let s = given.trim();
        if s.starts_with("zk://") {
            return Err(MasterUrlError::NeedsZooKeeper(s.to_string()));
        }
        let invalid = |reason: &str| MasterUrlError::Invalid {
            given: given.to_string(),
            reason: reason.to_string(),
        };
        if s.starts_with("https://") {
            return Err(invalid("https is not supported; use http://"));
        }
        let rest = s.strip_prefix("http://").unwrap_or(s);
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err(invalid("expected host:port"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (authority, "5050"),
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(&format!("port '{port}' is not a number from 1 to 65535")))?;
        if port == 0 {
            return Err(invalid("port 0"));
        }
        Ok(MasterUrl(format!("http://{host}:{port}")))
    }

    /// `http://host:port`.
    pub fn base(&self) -> &str {
        &self.0
    }

    fn scheduler(&self) -> String {
        format!("{}/api/v1/scheduler", self.0)
    }

    /// The leader a 307 points at (`//host:port/api/v1/scheduler`, or absolute).
    fn redirected(location: &str) -> Option<MasterUrl> {
        let l = location
            .strip_prefix("http:")
            .unwrap_or(location)
            .trim_start_matches('/');
        let authority = l.split('/').next()?;
        MasterUrl::parse(authority).ok()
    }
}

/// What the client tells its framework.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// A subscription is open: the framework id to persist, the stream id the calls carry.
    Subscribed {
        /// The framework's id (the same as before after a resubscription).
        framework_id: FrameworkId,
        /// The master's `Mesos-Stream-Id`.
        stream_id: String,
        /// How often the master sends heartbeats.
        heartbeat_interval: Duration,
        /// The master that answered.
        master_info: MasterInfo,
    },
    /// Any other event of the stream (offers, updates, rescinds, failures, errors).
    Event(Event),
    /// The stream ended or could not be opened; the client retries after `retry_in`.
    Disconnected {
        /// What happened.
        reason: String,
        /// When the next attempt is.
        retry_in: Duration,
    },
}

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The master.
    pub master: MasterUrl,
    /// The framework to subscribe as (`id` is ignored: see `framework_id`).
    pub framework_info: FrameworkInfo,
    /// A framework id from an earlier run, to resubscribe with.
    pub framework_id: Option<FrameworkId>,
    /// First reconnection delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Largest reconnection delay.
    pub backoff_max: Duration,
    /// Missed heartbeats before the stream is considered dead (Mesos' clients use 5).
    pub missed_heartbeats: u32,
    /// Calls kept while disconnected; older ones are dropped beyond it.
    pub max_buffered_calls: usize,
    /// Acknowledgements posted at the same time (other calls go one by one, in order).
    pub concurrent_acks: usize,
}

impl ClientConfig {
    /// Defaults for `framework_info` against `master`.
    pub fn new(master: MasterUrl, framework_info: FrameworkInfo) -> Self {
        ClientConfig {
            master,
            framework_info,
            framework_id: None,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            missed_heartbeats: 5,
            max_buffered_calls: 100_000,
            concurrent_acks: 16,
        }
    }
}

/// Posts calls on the client's current stream (cheap to clone).
#[derive(Clone, Debug)]
pub struct CallSender(mpsc::UnboundedSender<Call>);

impl CallSender {
    /// Queues a call; false when the client has stopped.
    pub fn send(&self, call: Call) -> bool {
        self.0.send(call).is_ok()
    }
}

/// The running client.
pub struct SchedulerClient {
    /// The connection task (ends when `stop` turns true or the event receiver is dropped).
    pub task: JoinHandle<()>,
}

#[derive(Clone)]
struct Stream {
    framework_id: FrameworkId,
    stream_id: String,
    master: MasterUrl,
}

impl SchedulerClient {
    /// Spawns the client: events arrive on the returned receiver, calls go through the sender.
    pub fn start(
        config: ClientConfig,
        stop: watch::Receiver<bool>,
    ) -> (Self, CallSender, mpsc::Receiver<ClientEvent>) {
        let (events_tx, events_rx) = mpsc::channel(4096);
        let (calls_tx, calls_rx) = mpsc::unbounded_channel();
        let (stream_tx, stream_rx) = watch::channel::<Option<Stream>>(None);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        let poster = tokio::spawn(post_calls(
            http.clone(),
            calls_rx,
            stream_rx,
            config.max_buffered_calls,
            config.concurrent_acks.max(1),
            stop.clone(),
        ));
        let task = tokio::spawn(async move {
            connect_loop(http, config, events_tx, stream_tx, stop).await;
            poster.abort();
        });
        (SchedulerClient { task }, CallSender(calls_tx), events_rx)
    }
}

async fn connect_loop(
    http: reqwest::Client,
    config: ClientConfig,
    events: mpsc::Sender<ClientEvent>,
    stream_tx: watch::Sender<Option<Stream>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut master = config.master.clone();
    let mut framework_id = config.framework_id.clone();
    let mut backoff = config.backoff_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let outcome = tokio::select! {
            r = subscribe_once(&http, &config, &mut master, &mut framework_id, &events, &stream_tx) => r,
            _ = stop.changed() => return,
        };
        let _ = stream_tx.send(None);
        let reason = match outcome {
            Outcome::Redirected => continue,
            Outcome::Closed {
                reason,
                was_subscribed,
            } => {
                if was_subscribed {
                    backoff = config.backoff_min;
                }
                reason
            }
            Outcome::ReceiverGone => return,
        };
        tracing::warn!(master = master.base(), %reason, retry_in = ?backoff, "scheduler subscription lost");
        if events
            .send(ClientEvent::Disconnected {
                reason,
                retry_in: backoff,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(config.backoff_max);
        // A redirect may have pointed away from the configured master, which may lead again.
        master = config.master.clone();
    }
}

enum Outcome {
    Redirected,
    Closed {
        reason: String,
        was_subscribed: bool,
    },
    ReceiverGone,
}

async fn subscribe_once(
    http: &reqwest::Client,
    config: &ClientConfig,
    master: &mut MasterUrl,
    framework_id: &mut Option<FrameworkId>,
    events: &mpsc::Sender<ClientEvent>,
    stream_tx: &watch::Sender<Option<Stream>>,
) -> Outcome {
    let closed = |reason: String| Outcome::Closed {
        reason,
        was_subscribed: false,
    };
    let body = subscribe_json(&config.framework_info, framework_id.as_ref());
    let response = match http
        .post(master.scheduler())
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return closed(format!("SUBSCRIBE to {}: {e}", master.base())),
    };
    let status = response.status();
    if status.as_u16() == 307 {
        let location = response
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return match MasterUrl::redirected(location) {
            Some(leader) if leader != *master => {
                tracing::info!(leader = leader.base(), "redirected to the leading master");
                *master = leader;
                Outcome::Redirected
            }
            _ => closed(format!("redirect to an unusable location '{location}'")),
        };
    }
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return closed(format!("SUBSCRIBE answered {status}: {}", text.trim()));
    }
    let Some(stream_id) = response
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return closed("SUBSCRIBE answered without a Mesos-Stream-Id header".into());
    };
    let mut body = response.bytes_stream();
    let mut decoder = recordio::Decoder::new(64 << 20);
    let mut silence = Duration::from_secs(60);
    let mut subscribed = false;
    loop {
        loop {
            let record = match decoder.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    return Outcome::Closed {
                        reason: format!("malformed stream: {e}"),
                        was_subscribed: subscribed,
                    }
                }
            };
            let event = match parse_event(&record) {
                Ok(StreamEvent::Event(e)) => e,
                Ok(StreamEvent::Heartbeat) => continue,
                Ok(StreamEvent::Ignored(kind)) => {
                    tracing::debug!(kind, "ignoring scheduler event");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dropping an unreadable scheduler event");
                    continue;
                }
            };
            let out = match event {
                Event::Subscribed {
                    framework_id: id,
                    heartbeat_interval,
                    master_info,
                } => {
                    subscribed = true;
                    silence = heartbeat_interval * config.missed_heartbeats.max(1);
                    *framework_id = Some(id.clone());
                    let _ = stream_tx.send(Some(Stream {
                        framework_id: id.clone(),
                        stream_id: stream_id.clone(),
                        master: master.clone(),
                    }));
                    ClientEvent::Subscribed {
                        framework_id: id,
                        stream_id: stream_id.clone(),
                        heartbeat_interval,
                        master_info,
                    }
                }
                Event::Error(message) => {
                    let _ = events
                        .send(ClientEvent::Event(Event::Error(message.clone())))
                        .await;
                    return Outcome::Closed {
                        reason: format!("the master refused the framework: {message}"),
                        was_subscribed: subscribed,
                    };
                }
                other => ClientEvent::Event(other),
            };
            if events.send(out).await.is_err() {
                return Outcome::ReceiverGone;
            }
        }
        match tokio::time::timeout(silence, body.next()).await {
            Ok(Some(Ok(chunk))) => decoder.push(&chunk),
            Ok(Some(Err(e))) => {
                return Outcome::Closed {
                    reason: format!("stream read failed: {e}"),
                    was_subscribed: subscribed,
                }
            }
            Ok(None) => {
                return Outcome::Closed {
                    reason: "the master closed the stream".into(),
                    was_subscribed: subscribed,
                }
            }
            Err(_) => {
                return Outcome::Closed {
                    reason: format!("no heartbeat for {silence:?}"),
                    was_subscribed: subscribed,
                }
            }
        }
    }
}

async fn post(http: &reqwest::Client, stream: &Stream, call: &Call) {
    let body = call_json(&stream.framework_id, call);
    let result = http
        .post(stream.master.scheduler())
        .header("Content-Type", "application/json")
        .header("Mesos-Stream-Id", &stream.stream_id)
        .json(&body)
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            tracing::warn!(call = call.name(), %status, body = text.trim(), "scheduler call refused");
        }
        Err(e) => tracing::warn!(call = call.name(), error = %e, "scheduler call failed"),
    }
}

async fn post_calls(
    http: reqwest::Client,
    mut calls: mpsc::UnboundedReceiver<Call>,
    mut stream_rx: watch::Receiver<Option<Stream>>,
    max_buffered: usize,
    concurrent_acks: usize,
    mut stop: watch::Receiver<bool>,
) {
    let acks = Arc::new(Semaphore::new(concurrent_acks));
    let mut pending: VecDeque<Call> = VecDeque::new();
    loop {
        let stream = stream_rx.borrow().clone();
        match stream {
            Some(stream) => {
                let call = match pending.pop_front() {
                    Some(c) => c,
                    None => tokio::select! {
                        c = calls.recv() => match c { Some(c) => c, None => return },
                        _ = stream_rx.changed() => continue,
                        _ = stop.changed() => return,
                    },
                };
                if matches!(call, Call::Acknowledge { .. }) {
                    let Ok(permit) = acks.clone().acquire_owned().await else {
                        return;
                    };
                    let http = http.clone();
                    tokio::spawn(async move {
                        post(&http, &stream, &call).await;
                        drop(permit);
                    });
                } else {
                    post(&http, &stream, &call).await;
                }
            }
            None => tokio::select! {
                c = calls.recv() => match c {
                    Some(c) => {
                        if pending.len() >= max_buffered {
                            pending.pop_front();
                            tracing::warn!("too many calls while disconnected; dropping the oldest");
                        }
                        pending.push_back(c);
                    }
                    None => return,
                },
                _ = stream_rx.changed() => {}
                _ = stop.changed() => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_urls() {
        assert_eq!(
            MasterUrl::parse("127.0.0.1:5050").unwrap().base(),
            "http://127.0.0.1:5050"
        );
        assert_eq!(
            MasterUrl::parse("http://m:5051/").unwrap().base(),
            "http://m:5051"
        );
        assert_eq!(MasterUrl::parse("m").unwrap().base(), "http://m:5050");
        let e = MasterUrl::parse("zk://z:2181/mesos").unwrap_err();
        assert!(e.to_string().contains("needs ZooKeeper support"), "{e}");
        assert!(MasterUrl::parse("m:x").is_err());
        assert!(MasterUrl::parse("http://").is_err());
        assert_eq!(
            MasterUrl::redirected("//10.0.0.2:5050/api/v1/scheduler")
                .unwrap()
                .base(),
            "http://10.0.0.2:5050"
        );
    }
}
