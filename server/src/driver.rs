//! The hub driver: one tokio task that owns the [`Hub`] state machine, feeds it messages from
//! connection tasks, store outcomes and its single timer, and carries out what it asks for.
//!
//! It must stay thin: no protocol decisions are made here, only I/O. It is the one place that
//! reads the clock for the hub.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_sdk::wire::{ErrorCode, PresenceSnapshot, RoomName};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Identity;
use crate::hub::{Action, ConnId, Hub, Now, Payload, ReplayOutcome, encode_event};
use crate::store::{AppendDone, Store};

/// Events per history read while replaying.
const REPLAY_PAGE: usize = 256;

/// How the hub reaches one connection task.
#[derive(Debug)]
pub struct Outbox {
    /// Frames to send, bounded: a full queue makes the connection a slow consumer.
    pub frames: mpsc::Sender<Payload>,
    /// Asks the connection task to close with a WebSocket close code.
    pub close: oneshot::Sender<(u16, ErrorCode)>,
}

/// Messages to the hub task.
#[derive(Debug)]
pub enum HubMsg {
    /// An authenticated connection opened.
    Connect {
        /// Its id (from [`HubHandle::next_conn_id`]).
        conn: ConnId,
        /// Who it is.
        identity: Arc<Identity>,
        /// How to reach it.
        outbox: Outbox,
    },
    /// A decoded client frame.
    Frame {
        /// From whom.
        conn: ConnId,
        /// The frame.
        frame: chorus_sdk::wire::ClientFrame,
    },
    /// Proof of life without a frame (WebSocket ping).
    Activity {
        /// Which connection.
        conn: ConnId,
    },
    /// The connection is gone.
    Disconnect {
        /// Which connection.
        conn: ConnId,
    },
    /// A room's presence, for `GET /v1/rooms/{room}/presence`.
    Presence {
        /// Which room.
        room: RoomName,
        /// Where to answer (`None` when nobody is in the room on this node).
        reply: oneshot::Sender<Option<PresenceSnapshot>>,
    },
    /// Shut down: finish writes, send `draining`, close every connection.
    Drain {
        /// The reconnect hint.
        retry_after: Duration,
        /// Answered when done.
        done: oneshot::Sender<()>,
    },
    /// A room load requested by the hub finished (sent by the driver's own tasks).
    RoomLoaded(
        RoomName,
        Result<crate::store::RoomHead, crate::store::StoreError>,
    ),
    /// A history replay requested by the hub finished (sent by the driver's own tasks).
    ReplayDone(ConnId, RoomName, ReplayOutcome),
}

/// A cheap, cloneable handle to the hub task.
#[derive(Clone, Debug)]
pub struct HubHandle {
    tx: mpsc::Sender<HubMsg>,
    next_conn: Arc<AtomicU64>,
}

impl HubHandle {
    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a message; `false` when the hub has stopped.
    pub async fn send(&self, msg: HubMsg) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// The current presence of a room on this node.
    pub async fn presence(&self, room: RoomName) -> Option<PresenceSnapshot> {
        let (reply, answer) = oneshot::channel();
        self.send(HubMsg::Presence { room, reply }).await;
        answer.await.ok().flatten()
    }

    /// Drains the hub (see [`HubMsg::Drain`]) and waits until it is done.
    pub async fn drain(&self, retry_after: Duration) {
        let (done, wait) = oneshot::channel();
        if self.send(HubMsg::Drain { retry_after, done }).await {
            let _ = wait.await;
        }
    }
}

#[allow(clippy::disallowed_methods)] // The driver is where the hub's clock lives.
fn now() -> Now {
    // tokio's clock, so tests can pause and advance time.
    Now {
        instant: tokio::time::Instant::now().into_std(),
        unix_ms: crate::unix_ms_now(),
    }
}

/// Starts the hub task.
pub fn spawn(
    hub: Hub,
    store: Arc<dyn Store>,
    outcomes: mpsc::UnboundedReceiver<AppendDone>,
) -> HubHandle {
    let (tx, rx) = mpsc::channel(4096);
    let handle = HubHandle {
        tx: tx.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let driver = Driver {
        hub,
        store,
        outboxes: HashMap::new(),
        loopback: tx,
    };
    tokio::spawn(driver.run(rx, outcomes));
    handle
}

struct Driver {
    hub: Hub,
    store: Arc<dyn Store>,
    outboxes: HashMap<ConnId, Outbox>,
    /// For tasks the driver spawns to report back.
    loopback: mpsc::Sender<HubMsg>,
}

impl Driver {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<HubMsg>,
        mut outcomes: mpsc::UnboundedReceiver<AppendDone>,
    ) {
        loop {
            let deadline = self.hub.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(HubMsg::Drain { retry_after, done }) => {
                        // Every publish already submitted gets its ack before the goodbye.
                        self.store.flush().await;
                        while let Ok(outcome) = outcomes.try_recv() {
                            self.hub.handle_append_done(now(), outcome);
                        }
                        self.hub.handle_drain(retry_after);
                        self.flush_outputs();
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                Some(outcome) = outcomes.recv() => self.hub.handle_append_done(now(), outcome),
                () = sleep_until(deadline) => self.hub.handle_timeout(now()),
            }
            self.flush_outputs();
        }
    }

    fn handle(&mut self, msg: HubMsg) {
        let now = now();
        match msg {
            HubMsg::Connect {
                conn,
                identity,
                outbox,
            } => {
                self.outboxes.insert(conn, outbox);
                self.hub.handle_connect(now, conn, identity);
            }
            HubMsg::Frame { conn, frame } => self.hub.handle_frame(now, conn, frame),
            HubMsg::Activity { conn } => self.hub.handle_activity(now, conn),
            HubMsg::Disconnect { conn } => {
                self.outboxes.remove(&conn);
                self.hub.handle_disconnect(now, conn);
            }
            HubMsg::Presence { room, reply } => {
                let _ = reply.send(self.hub.presence(&room));
            }
            HubMsg::RoomLoaded(room, result) => self.hub.handle_room_loaded(now, room, result),
            HubMsg::ReplayDone(conn, room, outcome) => {
                self.hub.handle_replay_done(now, conn, room, outcome)
            }
            HubMsg::Drain { .. } => unreachable!("handled in run"),
        }
    }

    /// Carries out everything the hub asked for, until it asks for nothing more.
    fn flush_outputs(&mut self) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.hub.poll_transmit() {
                idle = false;
                let Some(outbox) = self.outboxes.get(&transmit.conn) else {
                    continue;
                };
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    outbox.frames.try_send(transmit.payload)
                {
                    self.hub.handle_slow_consumer(now(), transmit.conn);
                }
            }
            while let Some(action) = self.hub.poll_action() {
                idle = false;
                self.perform(action);
            }
            if idle {
                return;
            }
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Append(job) => self.store.submit(job),
            Action::LoadRoom(room) => {
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                tokio::spawn(async move {
                    let result = store.read(&room, 0, 0).await.map(|page| page.head);
                    let _ = loopback.send(HubMsg::RoomLoaded(room, result)).await;
                });
            }
            Action::Replay {
                conn,
                room,
                after,
                until,
            } => {
                let Some(outbox) = self.outboxes.get(&conn) else {
                    return;
                };
                let frames = outbox.frames.clone();
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                tokio::spawn(async move {
                    let outcome = replay(&*store, &frames, &room, after, until).await;
                    let _ = loopback.send(HubMsg::ReplayDone(conn, room, outcome)).await;
                });
            }
            Action::Close { conn, code, reason } => {
                if let Some(outbox) = self.outboxes.remove(&conn) {
                    let _ = outbox.close.send((code, reason));
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Streams `(after, until]` into the connection's queue, waiting for room (real backpressure).
async fn replay(
    store: &dyn Store,
    frames: &mpsc::Sender<Payload>,
    room: &RoomName,
    after: u64,
    until: u64,
) -> ReplayOutcome {
    let mut cursor = after;
    let mut first = true;
    while cursor < until {
        let page = match store.read(room, cursor, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(%room, "replay failed: {err}");
                return ReplayOutcome::Failed;
            }
        };
        if first && !page.head.covers_after(after) {
            return ReplayOutcome::NotCovered;
        }
        first = false;
        if page
            .events
            .first()
            .is_none_or(|event| event.seq() != cursor + 1)
        {
            // Trimmed while replaying: the client must start over.
            return ReplayOutcome::Failed;
        }
        for stored in page.events.iter().take_while(|event| event.seq() <= until) {
            if frames.send(encode_event(stored)).await.is_err() {
                return ReplayOutcome::Failed; // The connection is gone; nobody is listening.
            }
            cursor = stored.seq();
        }
    }
    ReplayOutcome::Done
}
