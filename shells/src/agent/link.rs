//! The agent's side of the agent <-> master protocol: registration with backoff, the command
//! stream (RecordIO of `AgentCommand` JSON) kept open, and the ordered sending of messages.
//!
//! Two tasks, both feeding the agent's one state-owning task through its bounded input channel:
//! - the *connection* task registers (asking the agent for the registration body each time, so a
//!   reregistration carries the current tasks), opens the stream, forwards commands, reconnects
//!   when it drops and registers again when the master says the agent is unknown;
//! - the *sender* task POSTs queued messages, up to [`MAX_SENDS_IN_FLIGHT`] at a time. When the
//!   master announced batches at registration (`max_batch_messages`), each POST carries all the
//!   messages queued at that moment (up to that bound) to `/internal/agent/{id}/messages`, so a
//!   burst of status updates costs one request instead of one each. Order between messages does
//!   not matter: the status-update manager keeps only one update per task in flight (the next
//!   goes after the master acknowledged it), and pongs carry nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use mesos_core::backoff::{Backoff, Retry};
use mesos_core::ids::AgentId;
use mesos_core::master::{AgentCommand, AgentMessage, AgentRegistration};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::daemon::Input;
use crate::recordio::Decoder;

/// A command stream open this long counts as healthy (reconnect backoff starts over).
const STABLE_STREAM: Duration = Duration::from_secs(5);

/// Messages being POSTed to the master at once, at most. One at a time, a round trip per
/// update caps an agent at a few thousand updates per second whatever the master could take.
pub const MAX_SENDS_IN_FLIGHT: usize = 32;

/// Largest command record accepted from the master.
const MAX_RECORD: usize = 16 << 20;

/// Most messages the agent puts in one batch, whatever the master allows (a bound on the size of
/// one request body: a status update is well under 16 KiB, the master's body limit is 16 MiB).
pub const MAX_BATCH: usize = 256;

/// What a master call can end in, besides success.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No answer (connection refused, timeout, stream cut).
    #[error("master unreachable: {0}")]
    Unreachable(String),
    /// 404: the master does not know this agent; it must register again.
    #[error("the master does not know this agent: {0}")]
    UnknownAgent(String),
    /// 403: the agent was removed for good.
    #[error("the master removed this agent: {0}")]
    Removed(String),
    /// Any other refusal.
    #[error("the master refused the request ({status}): {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body (the master's `{"error":..}`).
        body: String,
    },
}

/// The master's answer to a registration.
#[derive(Debug, Deserialize)]
pub struct Registered {
    /// The agent's id.
    pub agent_id: AgentId,
    /// How long the master lets the agent go unheard (ping interval times missed pings), when
    /// it says; the agent then reconnects when its stream stays silent that long (upstream's
    /// `total_ping_timeout_seconds`).
    #[serde(default)]
    pub total_ping_timeout_seconds: Option<f64>,
    /// Most messages the master takes in one `POST /internal/agent/{id}/messages`; absent when
    /// it only takes them one at a time (`/message`).
    #[serde(default)]
    pub max_batch_messages: Option<usize>,
}

/// An HTTP client for one master.
#[derive(Clone)]
pub struct MasterClient {
    http: reqwest::Client,
    streaming: reqwest::Client,
    base: String,
    /// Messages per POST the master takes (from its last registration answer; 1 until then or
    /// when it did not say). Shared by the clones: the connection task learns it, the sender
    /// uses it.
    batch_limit: Arc<AtomicUsize>,
}

impl MasterClient {
    /// A client for the master at `base` (`http://host:port`).
    pub fn new(base: String) -> Result<Self, LinkError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        // The stream stays open indefinitely: only connecting is bounded.
        let streaming = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Ok(MasterClient {
            http,
            streaming,
            base,
            batch_limit: Arc::new(AtomicUsize::new(1)),
        })
    }

    /// How many messages the sender may put in one POST (1: one per `/message` request).
    pub fn batch_limit(&self) -> usize {
        self.batch_limit.load(Ordering::Relaxed).max(1)
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, LinkError> {
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(match status {
            404 => LinkError::UnknownAgent(body),
            403 => LinkError::Removed(body),
            _ => LinkError::Refused { status, body },
        })
    }

    /// `POST /internal/agent/register`.
    pub async fn register(&self, reg: &AgentRegistration) -> Result<Registered, LinkError> {
        let resp = self
            .http
            .post(format!("{}/internal/agent/register", self.base))
            .json(reg)
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        let resp = Self::check(resp).await?;
        let answer: Registered = resp.json().await.map_err(|e| LinkError::Refused {
            status: 200,
            body: format!("unreadable registration answer: {e}"),
        })?;
        let limit = answer.max_batch_messages.unwrap_or(1).clamp(1, MAX_BATCH);
        self.batch_limit.store(limit, Ordering::Relaxed);
        Ok(answer)
    }

    /// `POST /internal/agent/{id}/stream`.
    pub async fn open_stream(&self, id: &AgentId) -> Result<reqwest::Response, LinkError> {
        let resp = self
            .streaming
            .post(format!("{}/internal/agent/{}/stream", self.base, id))
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Self::check(resp).await
    }

    /// `POST /internal/agent/{id}/message`.
    pub async fn send(&self, id: &AgentId, msg: &AgentMessage) -> Result<(), LinkError> {
        let resp = self
            .http
            .post(format!("{}/internal/agent/{}/message", self.base, id))
            .json(msg)
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Self::check(resp).await.map(|_| ())
    }

    /// `POST /internal/agent/{id}/messages`: several messages, handled by the master in order.
    pub async fn send_batch(&self, id: &AgentId, msgs: &[AgentMessage]) -> Result<(), LinkError> {
        let resp = self
            .http
            .post(format!("{}/internal/agent/{}/messages", self.base, id))
            .json(msgs)
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Self::check(resp).await.map(|_| ())
    }

    /// Sends `msgs` the way the master takes them: one batch, or one request for a lone message
    /// to a master that did not announce batches.
    async fn deliver(&self, id: &AgentId, msgs: &[AgentMessage]) -> Result<(), LinkError> {
        match msgs {
            [] => Ok(()),
            [one] if self.batch_limit() == 1 => self.send(id, one).await,
            many => self.send_batch(id, many).await,
        }
    }
}

/// Registration and reconnect backoff: starts at `initial`, doubles up to `max` (the policy is
/// [`mesos_core::backoff::Backoff`]).
pub fn registration_backoff(initial: Duration, max: Duration) -> Backoff {
    Backoff::new(initial, 2.0, max.max(initial))
}

/// Signals from the agent to its connection task.
#[derive(Debug)]
pub enum LinkControl {
    /// The master answered a message with 404: register again.
    Reregister,
}

async fn ask_registration(inputs: &mpsc::Sender<Input>) -> Option<AgentRegistration> {
    let (tx, rx) = oneshot::channel();
    inputs.send(Input::RegistrationWanted(tx)).await.ok()?;
    rx.await.ok()
}

/// The connection task: runs until the agent's input channel closes or the master removes it.
pub async fn connection(
    client: MasterClient,
    inputs: mpsc::Sender<Input>,
    mut control: mpsc::Receiver<LinkControl>,
    backoff: Backoff,
) {
    let mut retry = Retry::new(backoff);
    let mut agent: Option<AgentId> = None;
    let mut must_register = true;
    let mut silence_limit: Option<Duration> = None;
    loop {
        if must_register {
            let Some(reg) = ask_registration(&inputs).await else {
                return;
            };
            match client.register(&reg).await {
                Ok(answer) => {
                    let id = answer.agent_id;
                    silence_limit = answer
                        .total_ping_timeout_seconds
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(|s| Duration::from_secs_f64(s.min(1e6)));
                    tracing::info!(agent = %id, reregistration = reg.id.is_some(), "registered with the master");
                    if inputs.send(Input::Registered(id.clone())).await.is_err() {
                        return;
                    }
                    agent = Some(id);
                    must_register = false;
                    retry.reset();
                }
                Err(LinkError::Removed(body)) => {
                    let _ = inputs.send(Input::Removed(body)).await;
                    return;
                }
                Err(LinkError::Refused { status: 400, body }) => {
                    // The registration itself is wrong: sending it again will not help.
                    let _ = inputs.send(Input::Refused(body)).await;
                    return;
                }
                Err(e) => {
                    let delay = retry.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "registration failed");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
        }
        let Some(id) = agent.clone() else {
            must_register = true;
            continue;
        };
        let resp = match client.open_stream(&id).await {
            Ok(r) => r,
            Err(LinkError::UnknownAgent(_)) => {
                tracing::info!(agent = %id, "the master does not know this agent: registering again");
                must_register = true;
                continue;
            }
            Err(LinkError::Removed(body)) => {
                let _ = inputs.send(Input::Removed(body)).await;
                return;
            }
            Err(e) => {
                let delay = retry.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "cannot open the command stream");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if inputs.send(Input::StreamOpened).await.is_err() {
            return;
        }
        let opened = tokio::time::Instant::now();
        let mut body = resp.bytes_stream();
        let mut decoder = Decoder::new(MAX_RECORD);
        let mut heard = tokio::time::Instant::now();
        let ended = loop {
            let deadline = silence_limit.map(|l| heard + l);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    break format!(
                        "nothing from the master for {:?} (its ping timeout)",
                        silence_limit.unwrap_or_default()
                    );
                }
                chunk = body.next() => {
                    heard = tokio::time::Instant::now();
                    let chunk = match chunk {
                        Some(Ok(c)) => c,
                        Some(Err(e)) => break format!("stream error: {e}"),
                        None => break "the master closed the stream".to_string(),
                    };
                    decoder.push(&chunk);
                    let mut bad = None;
                    loop {
                        match decoder.next_record() {
                            Ok(Some(rec)) => match serde_json::from_slice::<AgentCommand>(&rec) {
                                Ok(cmd) => {
                                    if inputs.send(Input::Command(Box::new(cmd))).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => tracing::warn!(
                                    error = %e,
                                    record = %String::from_utf8_lossy(&rec[..rec.len().min(200)]),
                                    "ignoring an unreadable command"
                                ),
                            },
                            Ok(None) => break,
                            Err(e) => {
                                bad = Some(e);
                                break;
                            }
                        }
                    }
                    if let Some(e) = bad {
                        break format!("malformed stream: {e}");
                    }
                }
                ctl = control.recv() => match ctl {
                    Some(LinkControl::Reregister) => {
                        must_register = true;
                        break "the master asked for a reregistration".to_string();
                    }
                    None => return,
                },
            }
        };
        tracing::warn!(reason = %ended, "command stream lost; reconnecting");
        if inputs.send(Input::StreamClosed).await.is_err() {
            return;
        }
        // A stream that lived a while was healthy: reconnect at once (after a short pause).
        // One that ends quickly again and again backs off like registrations do, so a master
        // that keeps closing streams is never hammered.
        if opened.elapsed() >= STABLE_STREAM {
            retry.reset();
            tokio::time::sleep(backoff.first().min(Duration::from_millis(200))).await;
        } else {
            tokio::time::sleep(retry.next_delay()).await;
        }
    }
}

/// The sender task: POSTs queued messages (several at a time, see [`MAX_SENDS_IN_FLIGHT`], each
/// POST with what is queued for one agent id, up to [`MasterClient::batch_limit`]); failures are
/// left to the status-update manager's retries (updates) or dropped (pongs).
pub async fn sender(
    client: MasterClient,
    mut queue: mpsc::Receiver<(AgentId, AgentMessage)>,
    inputs: mpsc::Sender<Input>,
    control: mpsc::Sender<LinkControl>,
) {
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut open = true;
    // A message taken from the queue that belongs to the next batch (another agent id).
    let mut carry: Option<(AgentId, AgentMessage)> = None;
    while open || carry.is_some() || !in_flight.is_empty() {
        if in_flight.len() < MAX_SENDS_IN_FLIGHT {
            if let Some(first) = carry.take() {
                let (id, batch) = take_batch(first, &mut queue, client.batch_limit(), &mut carry);
                let client = &client;
                in_flight.push(async move {
                    let result = client.deliver(&id, &batch).await;
                    (id, result)
                });
                continue;
            }
        }
        tokio::select! {
            next = queue.recv(), if open && in_flight.len() < MAX_SENDS_IN_FLIGHT => match next {
                Some(first) => carry = Some(first),
                None => open = false,
            },
            Some((id, result)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(()) => {}
                Err(LinkError::UnknownAgent(body)) => {
                    tracing::info!(agent = %id, %body, "the master does not know this agent: reregistering");
                    let _ = control.try_send(LinkControl::Reregister);
                }
                Err(LinkError::Removed(body)) => {
                    let _ = inputs.send(Input::Removed(body)).await;
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "message not delivered; updates are retried"),
            },
        }
    }
}

/// `first` and the messages queued behind it for the same agent id, at most `limit` in all; a
/// message for another id ends the batch and is left in `carry`.
fn take_batch(
    first: (AgentId, AgentMessage),
    queue: &mut mpsc::Receiver<(AgentId, AgentMessage)>,
    limit: usize,
    carry: &mut Option<(AgentId, AgentMessage)>,
) -> (AgentId, Vec<AgentMessage>) {
    let (id, msg) = first;
    let mut batch = vec![msg];
    while batch.len() < limit {
        match queue.try_recv() {
            Ok((next_id, m)) if next_id == id => batch.push(m),
            Ok(other) => {
                *carry = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    (id, batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pong(id: &str) -> (AgentId, AgentMessage) {
        (AgentId::new(id), AgentMessage::Pong)
    }

    #[test]
    fn a_batch_takes_what_is_queued_for_its_agent_up_to_the_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        for _ in 0..5 {
            tx.try_send(pong("a")).unwrap();
        }
        let mut carry = None;
        let (id, batch) = take_batch(pong("a"), &mut rx, 4, &mut carry);
        assert_eq!((id.as_str(), batch.len()), ("a", 4));
        assert!(carry.is_none());
        let (_, batch) = take_batch(pong("a"), &mut rx, 4, &mut carry);
        assert_eq!(batch.len(), 3, "the two left and the first");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn another_agent_id_ends_the_batch_and_waits_in_carry() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.try_send(pong("a")).unwrap();
        tx.try_send(pong("b")).unwrap();
        tx.try_send(pong("b")).unwrap();
        let mut carry = None;
        let (id, batch) = take_batch(pong("a"), &mut rx, 10, &mut carry);
        assert_eq!((id.as_str(), batch.len()), ("a", 2));
        let next = carry.take().expect("carried");
        assert_eq!(next.0.as_str(), "b");
        let (id, batch) = take_batch(next, &mut rx, 10, &mut carry);
        assert_eq!((id.as_str(), batch.len()), ("b", 2));
        assert!(carry.is_none());
    }

    #[test]
    fn a_master_that_announces_no_batches_gets_one_message_per_request() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.try_send(pong("a")).unwrap();
        let mut carry = None;
        let client = MasterClient::new("http://127.0.0.1:1".into()).unwrap();
        let (_, batch) = take_batch(pong("a"), &mut rx, client.batch_limit(), &mut carry);
        assert_eq!(batch.len(), 1);
    }
}
