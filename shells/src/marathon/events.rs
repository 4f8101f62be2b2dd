//! The event bus behind `GET /v2/events`: every Marathon event is rendered once and handed to
//! each attached reader through a bounded queue. A reader that falls behind by more than the
//! queue holds is dropped (its stream ends) rather than buffered without bound.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde_json::{json, Value as Json};
use tokio::sync::broadcast;

/// Events a reader may fall behind before it is dropped.
pub const READER_QUEUE: usize = 4096;

/// One rendered event.
#[derive(Clone, Debug)]
pub struct BusEvent {
    /// `eventType`.
    pub kind: Arc<str>,
    /// The `data` JSON (with `eventType` and `timestamp`).
    pub data: Arc<str>,
}

/// The bus (cheap to clone).
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<BusEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(READER_QUEUE)
    }
}

impl EventBus {
    /// A bus whose readers may lag `capacity` events.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus { tx }
    }

    /// Publishes an event JSON; it must carry `eventType` (and `timestamp`, added when missing).
    pub fn publish(&self, mut event: Json, now_iso: &str) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let kind = event
            .get("eventType")
            .and_then(Json::as_str)
            .unwrap_or("unknown")
            .to_string();
        if let Json::Object(m) = &mut event {
            m.entry("timestamp").or_insert_with(|| json!(now_iso));
        }
        let _ = self.tx.send(BusEvent {
            kind: kind.into(),
            data: event.to_string().into(),
        });
    }

    /// Readers attached now.
    pub fn readers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// A new reader.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
}

/// The SSE response for one reader: `event_stream_attached` first, then the bus's events whose
/// type is in `filter` (all when empty), keep-alive comments in between.
pub fn sse_stream(
    bus: &EventBus,
    filter: Vec<String>,
    remote: String,
    now_iso: String,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut rx = bus.subscribe();
    let attached = json!({
        "remoteAddress": remote,
        "eventType": "event_stream_attached",
        "timestamp": now_iso,
    })
    .to_string();
    let wants = move |kind: &str| filter.is_empty() || filter.iter().any(|f| f == kind);
    // A small channel between the bus and the socket: a stalled socket stalls the forwarding
    // task, whose broadcast queue then overflows and drops it.
    let (tx, out) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(64);
    let first = wants("event_stream_attached").then(|| {
        SseEvent::default()
            .event("event_stream_attached")
            .data(attached)
    });
    tokio::spawn(async move {
        if let Some(f) = first {
            if tx.send(Ok(f)).await.is_err() {
                return;
            }
        }
        loop {
            match rx.recv().await {
                Ok(ev) if wants(&ev.kind) => {
                    let item = SseEvent::default().event(&*ev.kind).data(&*ev.data);
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "dropping a slow /v2/events reader");
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(out))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagging_reader_sees_lagged() {
        let bus = EventBus::new(2);
        let mut rx = bus.subscribe();
        for i in 0..5 {
            bus.publish(json!({"eventType": "x", "n": i}), "t");
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }

    #[tokio::test]
    async fn events_get_a_timestamp() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        bus.publish(
            json!({"eventType": "deployment_success", "id": "d"}),
            "2026-01-01T00:00:00.000Z",
        );
        let e = rx.recv().await.unwrap();
        assert_eq!(&*e.kind, "deployment_success");
        let v: Json = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["timestamp"], "2026-01-01T00:00:00.000Z");
    }
}
