//! The one task that owns the master state machine.
//!
//! HTTP handlers talk to it through a bounded channel of [`Input`]s, each with a oneshot reply.
//! After every input the driver drains [`Master::poll_output`]: events go to the framework's
//! stream, commands to the agent's stream (both bounded; a subscriber that cannot keep up is
//! dropped, which disconnects it), records to the store. Then it sleeps until
//! [`Master::poll_timeout`] or the next input, whichever comes first.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use mesos_core::allocator::Allocator;
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::master::{
    AgentCommand, AgentError, AgentMessage, AgentRegistration, Call, CallError, FrameworkInfo,
    Master, Output, Record,
};
use mesos_core::time::Time;
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, Interval};

use super::render::{self, Query, RenderContext};
use super::store::MasterStore;
use super::v1::{self, ResourceStyle};
use crate::recordio;

/// Capacity of the driver's input channel.
pub const INPUT_CAPACITY: usize = 4096;
/// Records buffered per framework subscription before the subscriber counts as too slow.
pub const FRAMEWORK_STREAM_CAPACITY: usize = 16 * 1024;
/// Commands buffered per agent stream before the agent counts as too slow.
pub const AGENT_STREAM_CAPACITY: usize = 64 * 1024;
/// Commands kept for an agent whose stream is not open (yet); older ones are dropped.
pub const AGENT_BACKLOG: usize = 4096;

/// Most messages in one `POST /internal/agent/{id}/messages`; told to agents when they register
/// (`max_batch_messages`), so they know the endpoint exists and how much to put in a batch.
pub const MAX_BATCH_MESSAGES: usize = 1024;

/// Why a batch of agent messages was not wholly handled.
#[derive(Debug, thiserror::Error)]
#[error("message {index}: {error}")]
pub struct BatchError {
    /// The position of the first message that failed (those before it were handled).
    pub index: usize,
    /// Why it failed.
    pub error: AgentError,
}

/// The answer to a successful SUBSCRIBE.
pub struct Subscribed {
    /// The framework's id.
    pub framework_id: FrameworkId,
    /// The `Mesos-Stream-Id`.
    pub stream_id: String,
    /// The stream's records.
    pub body: EventBody,
}

/// An input to the driver.
pub enum Input {
    /// SUBSCRIBE.
    Subscribe {
        /// Top-level `framework_id`.
        framework_id: Option<FrameworkId>,
        /// `framework_info`.
        info: FrameworkInfo,
        /// `suppressed_roles`.
        suppressed_roles: Vec<String>,
        /// The answer.
        reply: oneshot::Sender<Result<Subscribed, CallError>>,
    },
    /// Any other scheduler call.
    Call {
        /// The framework.
        framework_id: FrameworkId,
        /// The request's `Mesos-Stream-Id`.
        stream_id: String,
        /// The call.
        call: Call,
        /// The answer.
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    /// A call type that is accepted and ignored, still checked against the subscription.
    CheckSubscription {
        /// The framework.
        framework_id: FrameworkId,
        /// The request's `Mesos-Stream-Id`.
        stream_id: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    /// A subscription stream's HTTP body was dropped.
    StreamClosed {
        /// The framework.
        framework_id: FrameworkId,
        /// Which stream.
        stream_id: String,
    },
    /// An agent (re)registers.
    RegisterAgent {
        /// The registration.
        registration: Box<AgentRegistration>,
        /// The answer.
        reply: oneshot::Sender<Result<AgentId, AgentError>>,
    },
    /// An agent opens its command stream.
    OpenAgentStream {
        /// The agent.
        agent_id: AgentId,
        /// The answer.
        reply: oneshot::Sender<Result<EventBody, AgentError>>,
    },
    /// An agent's command stream closed.
    AgentStreamClosed {
        /// The agent.
        agent_id: AgentId,
        /// Which connection.
        conn: u64,
    },
    /// A message from an agent.
    AgentMessage {
        /// The agent.
        agent_id: AgentId,
        /// The message.
        message: AgentMessage,
        /// The answer.
        reply: oneshot::Sender<Result<(), AgentError>>,
    },
    /// Several messages from one agent, handled in order.
    AgentMessages {
        /// The agent.
        agent_id: AgentId,
        /// The messages, in the order the agent sent them.
        messages: Vec<AgentMessage>,
        /// The answer: the first failure, if any.
        reply: oneshot::Sender<Result<(), BatchError>>,
    },
    /// A read-only query rendered to JSON (state, metrics, operator API).
    Query {
        /// What to render.
        query: Query,
        /// The answer.
        reply: oneshot::Sender<Json>,
    },
}

/// Why the driver could not be reached.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the master is shutting down")]
pub struct DriverGone;

/// A cheap handle to the driver, held by HTTP handlers.
#[derive(Clone)]
pub struct MasterHandle {
    tx: mpsc::Sender<Input>,
}

impl MasterHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, DriverGone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| DriverGone)?;
        rx.await.map_err(|_| DriverGone)
    }

    /// SUBSCRIBE.
    pub async fn subscribe(
        &self,
        framework_id: Option<FrameworkId>,
        info: FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Result<Result<Subscribed, CallError>, DriverGone> {
        self.ask(|reply| Input::Subscribe {
            framework_id,
            info,
            suppressed_roles,
            reply,
        })
        .await
    }

    /// Any other call.
    pub async fn call(
        &self,
        framework_id: FrameworkId,
        stream_id: String,
        call: Call,
    ) -> Result<Result<(), CallError>, DriverGone> {
        self.ask(|reply| Input::Call {
            framework_id,
            stream_id,
            call,
            reply,
        })
        .await
    }

    /// Checks that a framework is subscribed on `stream_id` (for ignored call types).
    pub async fn check_subscription(
        &self,
        framework_id: FrameworkId,
        stream_id: String,
    ) -> Result<Result<(), CallError>, DriverGone> {
        self.ask(|reply| Input::CheckSubscription {
            framework_id,
            stream_id,
            reply,
        })
        .await
    }

    /// Agent registration.
    pub async fn register_agent(
        &self,
        registration: AgentRegistration,
    ) -> Result<Result<AgentId, AgentError>, DriverGone> {
        self.ask(|reply| Input::RegisterAgent {
            registration: Box::new(registration),
            reply,
        })
        .await
    }

    /// Opens an agent's command stream.
    pub async fn open_agent_stream(
        &self,
        agent_id: AgentId,
    ) -> Result<Result<EventBody, AgentError>, DriverGone> {
        self.ask(|reply| Input::OpenAgentStream { agent_id, reply })
            .await
    }

    /// A message from an agent.
    pub async fn agent_message(
        &self,
        agent_id: AgentId,
        message: AgentMessage,
    ) -> Result<Result<(), AgentError>, DriverGone> {
        self.ask(|reply| Input::AgentMessage {
            agent_id,
            message,
            reply,
        })
        .await
    }

    /// Messages from an agent, handled in order in one pass.
    pub async fn agent_messages(
        &self,
        agent_id: AgentId,
        messages: Vec<AgentMessage>,
    ) -> Result<Result<(), BatchError>, DriverGone> {
        self.ask(|reply| Input::AgentMessages {
            agent_id,
            messages,
            reply,
        })
        .await
    }

    /// Renders a query.
    pub async fn query(&self, query: Query) -> Result<Json, DriverGone> {
        self.ask(|reply| Input::Query { query, reply }).await
    }
}

/// Sends an input when dropped (the end of a streamed HTTP body).
struct CloseGuard {
    tx: mpsc::Sender<Input>,
    input: Option<Input>,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let Some(input) = self.input.take() else {
            return;
        };
        match self.tx.try_send(input) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(input)) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let tx = self.tx.clone();
                    rt.spawn(async move {
                        let _ = tx.send(input).await;
                    });
                }
            }
        }
    }
}

/// A streamed response body: RecordIO records from the driver, with optional heartbeats; it
/// tells the driver when it is dropped.
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    heartbeat: Option<Interval>,
    /// Set by the driver when the subscriber fell too far behind: end now, drop the backlog.
    aborted: Arc<AtomicBool>,
    _guard: CloseGuard,
}

/// Most bytes [`EventBody`] joins into one chunk (one write on the connection).
pub const MAX_COALESCED_BYTES: usize = 256 * 1024;

impl EventBody {
    /// Joins `first` with the records already waiting behind it (up to
    /// [`MAX_COALESCED_BYTES`]), so a burst of records (the RUN_TASKs of one ACCEPT, the
    /// UPDATEs of one batch of agent messages) leaves in one chunk and one write instead of one
    /// each.
    fn coalesce(&mut self, first: Bytes) -> Bytes {
        let Ok(second) = self.rx.try_recv() else {
            return first;
        };
        let mut joined = BytesMut::with_capacity((first.len() + second.len()) * 4);
        joined.extend_from_slice(&first);
        joined.extend_from_slice(&second);
        while joined.len() < MAX_COALESCED_BYTES {
            match self.rx.try_recv() {
                Ok(next) => joined.extend_from_slice(&next),
                Err(_) => break,
            }
        }
        joined.freeze()
    }
}

impl Stream for EventBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.aborted.load(Ordering::Relaxed) {
            self.rx.close();
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(first)) => return Poll::Ready(Some(Ok(self.coalesce(first)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if let Some(hb) = self.heartbeat.as_mut() {
            if hb.poll_tick(cx).is_ready() {
                return Poll::Ready(Some(Ok(Bytes::from(recordio::encode(
                    v1::HEARTBEAT.as_bytes(),
                )))));
            }
        }
        Poll::Pending
    }
}

struct FrameworkStream {
    stream_id: String,
    tx: mpsc::Sender<Bytes>,
    style: ResourceStyle,
    aborted: Arc<AtomicBool>,
}

struct AgentStream {
    conn: u64,
    tx: mpsc::Sender<Bytes>,
}

/// Settings of the driver that are not the state machine's.
pub struct DriverSettings {
    /// Heartbeat interval of subscription streams.
    pub heartbeat: Duration,
    /// Flags shown in `/master/state`.
    pub flags: Vec<(String, String)>,
}

/// The driver's state.
pub struct Driver<A: Allocator> {
    master: Master<A>,
    store: Box<dyn MasterStore>,
    settings: DriverSettings,
    self_tx: mpsc::Sender<Input>,
    last_now: Time,
    framework_streams: HashMap<FrameworkId, FrameworkStream>,
    agent_streams: HashMap<AgentId, AgentStream>,
    agent_backlog: HashMap<AgentId, VecDeque<Bytes>>,
    next_conn: u64,
    pending_records: Vec<Record>,
    slow: Vec<(FrameworkId, String)>,
    dropped_slow: u64,
}

/// The wall clock as a [`Time`].
pub fn wall_clock() -> Time {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Time::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl<A: Allocator + Send + 'static> Driver<A> {
    /// A driver over `master`, returning it with the handle HTTP handlers use and the input
    /// receiver to pass to [`Driver::run`].
    pub fn new(
        master: Master<A>,
        store: Box<dyn MasterStore>,
        settings: DriverSettings,
        now: Time,
    ) -> (Self, MasterHandle, mpsc::Receiver<Input>) {
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let driver = Driver {
            master,
            store,
            settings,
            self_tx: tx.clone(),
            last_now: now,
            framework_streams: HashMap::new(),
            agent_streams: HashMap::new(),
            agent_backlog: HashMap::new(),
            next_conn: 0,
            pending_records: Vec::new(),
            slow: Vec::new(),
            dropped_slow: 0,
        };
        (driver, MasterHandle { tx }, rx)
    }

    fn now(&mut self) -> Time {
        let t = wall_clock();
        if t > self.last_now {
            self.last_now = t;
        }
        self.last_now
    }

    /// Runs until `shutdown` turns true or every handle is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Input>, mut shutdown: watch::Receiver<bool>) {
        let far = Duration::from_secs(3600);
        let sleep = tokio::time::sleep(far);
        tokio::pin!(sleep);
        let mut armed: Option<Time> = None;
        // Anything queued by recovery.
        self.drain();
        loop {
            let deadline = self.master.poll_timeout();
            if deadline != armed {
                armed = deadline;
                let at = match deadline {
                    Some(d) => {
                        let now = self.now();
                        // Capped: a far deadline (a long failover timeout) just fires early,
                        // which the core tolerates, and the timer is re-armed.
                        Instant::now() + d.saturating_duration_since(now).min(far)
                    }
                    None => Instant::now() + far,
                };
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                input = rx.recv() => {
                    let Some(input) = input else { break };
                    self.handle(input);
                }
                () = &mut sleep => {
                    let now = self.now();
                    self.master.handle_timeout(now);
                    self.drain();
                    // Force a re-arm even if the next deadline equals the old one.
                    armed = None;
                    if self.master.poll_timeout().is_some_and(|t| t <= now) {
                        // The core wants to run again right away; yield so inputs interleave.
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
        tracing::info!("master driver stopping");
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Subscribe {
                framework_id,
                info,
                suppressed_roles,
                reply,
            } => {
                let result = self
                    .master
                    .subscribe(now, framework_id, info, suppressed_roles);
                let answer = match result {
                    Ok(sub) => {
                        let (tx, rx) = mpsc::channel(FRAMEWORK_STREAM_CAPACITY);
                        let style = self
                            .master
                            .framework(&sub.framework_id)
                            .map(|f| ResourceStyle::of(&f.info))
                            .unwrap_or_default();
                        tracing::info!(framework = %sub.framework_id, stream = %sub.stream_id, "framework subscribed");
                        let aborted = Arc::new(AtomicBool::new(false));
                        self.framework_streams.insert(
                            sub.framework_id.clone(),
                            FrameworkStream {
                                stream_id: sub.stream_id.clone(),
                                tx,
                                style,
                                aborted: aborted.clone(),
                            },
                        );
                        let hb = self.settings.heartbeat;
                        let body = EventBody {
                            rx,
                            heartbeat: Some(tokio::time::interval_at(Instant::now() + hb, hb)),
                            aborted,
                            _guard: CloseGuard {
                                tx: self.self_tx.clone(),
                                input: Some(Input::StreamClosed {
                                    framework_id: sub.framework_id.clone(),
                                    stream_id: sub.stream_id.clone(),
                                }),
                            },
                        };
                        Ok(Subscribed {
                            framework_id: sub.framework_id,
                            stream_id: sub.stream_id,
                            body,
                        })
                    }
                    Err(e) => Err(e),
                };
                self.drain();
                let _ = reply.send(answer);
            }
            Input::Call {
                framework_id,
                stream_id,
                call,
                reply,
            } => {
                // The core's one subscription check decides; a call on a stream that just
                // closed is refused like upstream's (403), not quietly accepted.
                let result = self
                    .master
                    .handle_call(now, &framework_id, &stream_id, call);
                self.drain();
                let _ = reply.send(result);
            }
            Input::CheckSubscription {
                framework_id,
                stream_id,
                reply,
            } => {
                let result = self.master.check_subscription(&framework_id, &stream_id);
                let _ = reply.send(result);
            }
            Input::StreamClosed {
                framework_id,
                stream_id,
            } => {
                if self
                    .framework_streams
                    .get(&framework_id)
                    .is_some_and(|s| s.stream_id == stream_id)
                {
                    self.framework_streams.remove(&framework_id);
                }
                tracing::info!(framework = %framework_id, stream = %stream_id, "subscription stream closed");
                self.master
                    .disconnect_framework(now, &framework_id, &stream_id);
                self.drain();
            }
            Input::RegisterAgent {
                registration,
                reply,
            } => {
                let hostname = registration.hostname.clone();
                let result = self.master.register_agent(now, *registration);
                match &result {
                    Ok(id) => tracing::info!(agent = %id, %hostname, "agent registered"),
                    Err(e) => tracing::warn!(%hostname, error = %e, "agent registration refused"),
                }
                self.drain();
                let _ = reply.send(result);
            }
            Input::OpenAgentStream { agent_id, reply } => {
                let result = self.master.reconnect_agent(now, &agent_id);
                let answer = match result {
                    Ok(()) => {
                        let (tx, rx) = mpsc::channel(AGENT_STREAM_CAPACITY);
                        let conn = self.next_conn;
                        self.next_conn += 1;
                        if let Some(backlog) = self.agent_backlog.remove(&agent_id) {
                            for b in backlog {
                                let _ = tx.try_send(b);
                            }
                        }
                        self.agent_streams
                            .insert(agent_id.clone(), AgentStream { conn, tx });
                        tracing::info!(agent = %agent_id, conn, "agent stream opened");
                        Ok(EventBody {
                            rx,
                            heartbeat: None,
                            aborted: Arc::new(AtomicBool::new(false)),
                            _guard: CloseGuard {
                                tx: self.self_tx.clone(),
                                input: Some(Input::AgentStreamClosed {
                                    agent_id: agent_id.clone(),
                                    conn,
                                }),
                            },
                        })
                    }
                    Err(e) => Err(e),
                };
                self.drain();
                let _ = reply.send(answer);
            }
            Input::AgentStreamClosed { agent_id, conn } => {
                if self
                    .agent_streams
                    .get(&agent_id)
                    .is_some_and(|s| s.conn == conn)
                {
                    self.agent_streams.remove(&agent_id);
                    tracing::info!(agent = %agent_id, conn, "agent stream closed");
                    self.master.disconnect_agent(now, &agent_id);
                    self.drain();
                }
            }
            Input::AgentMessage {
                agent_id,
                message,
                reply,
            } => {
                let result = self.master.handle_agent(now, &agent_id, message);
                self.drain();
                let _ = reply.send(result);
            }
            Input::AgentMessages {
                agent_id,
                messages,
                reply,
            } => {
                let mut result = Ok(());
                for (index, message) in messages.into_iter().enumerate() {
                    match self.master.handle_agent(now, &agent_id, message) {
                        Ok(()) => {}
                        Err(error) => {
                            let fatal = !matches!(error, AgentError::Invalid(_));
                            if result.is_ok() {
                                result = Err(BatchError { index, error });
                            }
                            // An unknown or removed agent: the rest would fail the same way.
                            // An invalid message does not hold back the valid ones after it.
                            if fatal {
                                break;
                            }
                        }
                    }
                }
                self.drain();
                let _ = reply.send(result);
            }
            Input::Query { query, reply } => {
                let ctx = RenderContext {
                    now,
                    flags: &self.settings.flags,
                    dropped_slow_subscribers: self.dropped_slow,
                    framework_streams: self.framework_streams.len(),
                };
                let json = render::render(&self.master, &ctx, query);
                let _ = reply.send(json);
            }
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.master.poll_output() {
            match output {
                Output::Framework(fw, event) => {
                    let Some(stream) = self.framework_streams.get(&fw) else {
                        continue;
                    };
                    let bytes = match v1::event_bytes(&event, stream.style) {
                        Ok(b) => Bytes::from(recordio::encode(&b)),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot encode an event");
                            continue;
                        }
                    };
                    if let Err(e) = stream.tx.try_send(bytes) {
                        // Too slow (or already gone): drop the subscriber. Its body ends at its
                        // next poll without sending the backlog, and the framework is
                        // disconnected now rather than when the connection finally closes.
                        if matches!(e, mpsc::error::TrySendError::Full(_)) {
                            self.dropped_slow += 1;
                            tracing::warn!(framework = %fw, "subscriber too slow; closing its stream");
                        }
                        stream.aborted.store(true, Ordering::Relaxed);
                        if let Some(stream) = self.framework_streams.remove(&fw) {
                            self.slow.push((fw, stream.stream_id));
                        }
                    }
                }
                Output::CloseStream {
                    framework_id,
                    stream_id,
                } => {
                    if self
                        .framework_streams
                        .get(&framework_id)
                        .is_some_and(|s| s.stream_id == stream_id)
                    {
                        self.framework_streams.remove(&framework_id);
                    }
                }
                Output::Agent(agent, command) => self.send_agent(agent, &command),
                Output::Persist(record) => self.pending_records.push(record),
            }
        }
        if !self.pending_records.is_empty() {
            let records = std::mem::take(&mut self.pending_records);
            if let Err(e) = self.store.append(&records) {
                tracing::error!(error = %e, "cannot persist master records");
            }
        }
        if !self.slow.is_empty() {
            let now = self.now();
            for (fw, stream_id) in std::mem::take(&mut self.slow) {
                self.master.disconnect_framework(now, &fw, &stream_id);
            }
            self.drain();
        }
    }

    fn send_agent(&mut self, agent: AgentId, command: &AgentCommand) {
        let bytes = match serde_json::to_vec(command) {
            Ok(b) => Bytes::from(recordio::encode(&b)),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an agent command");
                return;
            }
        };
        if let Some(stream) = self.agent_streams.get(&agent) {
            match stream.tx.try_send(bytes) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped_slow += 1;
                    tracing::warn!(agent = %agent, "agent stream too slow; closing it");
                    self.agent_streams.remove(&agent);
                }
                Err(mpsc::error::TrySendError::Closed(b)) => {
                    self.agent_streams.remove(&agent);
                    self.backlog(agent, b);
                }
            }
        } else {
            self.backlog(agent, bytes);
        }
    }

    fn backlog(&mut self, agent: AgentId, bytes: Bytes) {
        if self.master.agent(&agent).is_none() {
            return;
        }
        let q = self.agent_backlog.entry(agent).or_default();
        q.push_back(bytes);
        while q.len() > AGENT_BACKLOG {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::store::MemoryStore;
    use futures::StreamExt;
    use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
    use mesos_core::ids::TaskId;
    use mesos_core::master::MasterConfig;

    fn body(rx: mpsc::Receiver<Bytes>) -> (EventBody, mpsc::Receiver<Input>) {
        let (tx, inputs) = mpsc::channel(4);
        let body = EventBody {
            rx,
            heartbeat: None,
            aborted: Arc::new(AtomicBool::new(false)),
            _guard: CloseGuard {
                tx,
                input: Some(Input::AgentStreamClosed {
                    agent_id: AgentId::new("a"),
                    conn: 0,
                }),
            },
        };
        (body, inputs)
    }

    #[tokio::test]
    async fn records_waiting_together_leave_in_one_chunk_in_order() {
        let (tx, rx) = mpsc::channel(16);
        let (mut body, mut inputs) = body(rx);
        for r in ["a", "bb", "ccc"] {
            tx.try_send(Bytes::from(recordio::encode(r.as_bytes())))
                .unwrap();
        }
        let chunk = body.next().await.unwrap().unwrap();
        assert_eq!(&chunk[..], b"1\na2\nbb3\nccc");
        // A lone record is passed on as it is.
        tx.try_send(Bytes::from_static(b"1\nd")).unwrap();
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"1\nd");
        drop(tx);
        assert!(body.next().await.is_none());
        drop(body);
        assert!(matches!(
            inputs.recv().await,
            Some(Input::AgentStreamClosed { .. })
        ));
    }

    #[tokio::test]
    async fn a_joined_chunk_is_bounded() {
        let (tx, rx) = mpsc::channel(64);
        let (mut body, _inputs) = body(rx);
        let record = Bytes::from(vec![b'x'; 100 * 1024]);
        for _ in 0..8 {
            tx.try_send(record.clone()).unwrap();
        }
        let mut sizes = Vec::new();
        drop(tx);
        while let Some(chunk) = body.next().await {
            sizes.push(chunk.unwrap().len());
        }
        // Records are never split; a chunk stops growing once it reaches the bound.
        assert_eq!(sizes.iter().sum::<usize>(), 8 * 100 * 1024);
        assert!(sizes.len() > 1, "{sizes:?}");
        assert!(
            sizes.iter().all(|s| *s < MAX_COALESCED_BYTES + 100 * 1024),
            "{sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_and_disconnected() {
        let now = wall_clock();
        let master = Master::new(
            MasterConfig::default(),
            HierarchicalAllocator::new(AllocatorConfig::default()),
            now,
        );
        let settings = DriverSettings {
            heartbeat: Duration::from_secs(15),
            flags: Vec::new(),
        };
        let (driver, handle, rx) =
            Driver::new(master, Box::new(MemoryStore::default()), settings, now);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(driver.run(rx, stop_rx));
        let info = FrameworkInfo {
            user: "u".into(),
            name: "slow".into(),
            ..FrameworkInfo::default()
        };
        let sub = handle
            .subscribe(None, info, Vec::new())
            .await
            .expect("driver")
            .expect("subscribed");
        let mut body = sub.body;
        // Never read the stream; ask for more updates than it buffers.
        let tasks = (0..FRAMEWORK_STREAM_CAPACITY + 100)
            .map(|i| (TaskId::new(format!("t{i}")), None))
            .collect();
        handle
            .call(
                sub.framework_id.clone(),
                sub.stream_id.clone(),
                Call::Reconcile { tasks },
            )
            .await
            .expect("driver")
            .expect("accepted");
        let metrics = handle.query(Query::Metrics).await.expect("driver");
        assert_eq!(metrics["master/dropped_slow_subscribers"], 1.0);
        assert_eq!(metrics["master/frameworks_connected"], 0.0);
        let state = handle.query(Query::State).await.expect("driver");
        assert_eq!(
            state["completed_frameworks"][0]["id"],
            sub.framework_id.as_str(),
            "failover_timeout 0: the disconnected framework is removed"
        );
        // The body ends at once instead of delivering the backlog.
        assert!(body.next().await.is_none());
        let _ = stop.send(true);
        task.await.expect("driver task");
    }
}
