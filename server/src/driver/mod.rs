//! The hub driver: one tokio task that owns the [`Hub`] state machine, feeds it messages from
//! connection tasks, HTTP handlers, store outcomes and its single timer, and carries out what
//! it asks for.
//!
//! It must stay thin: no protocol decisions are made here, only I/O and bookkeeping of how to
//! reach each peer. It is the one place that reads the clock for the hub.
//!
//! What the other nodes on the store did arrives from the [`Bus`] as [`Inbound`] messages and
//! goes into the hub as they come ([`Hub::handle_stored`], [`Hub::handle_resynced`]). The hub's
//! [`Action::Follow`] makes the bus follow a room, and the room's load (the
//! [`Action::LoadRoom`] after it) waits until the follow is in place, so nothing stored after
//! the head the load reads goes unheard.
//!
//! Peers come in two kinds. A WebSocket has a bounded frame queue (full = slow consumer). A
//! polling session has no queue at all: frames that answer its own `POST` are collected into
//! that response, and everything else only bumps a wake-up counter that its held polls watch;
//! the poll then reads history and state itself. [`poll`] holds the driver's side of polling
//! and explains how a poll is answered end to end.

pub mod poll;
pub mod queue;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chorus_sdk::wire::{
    BackendStreamOp, ClientFrame, ErrorCode, EventId, PresenceSnapshot, RoomName, Stats,
};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, Inbound, Subscribed};
use crate::docs::compactor::Compactor;
use crate::hub::{
    Action, ConnId, ConnKind, Hub, LockDone, NOTICE_ROOM, NoticeFigures, NoticeOutcome,
    NoticeTarget, Now, Payload, PresenceLookup, ReplayOutcome, RoomView, StreamReply, encode_event,
    notice_room,
};
use crate::identity::Identity;
use crate::store::{AppendDone, AppendOutcome, AppendRequest, Page, PageLimit, Store, StoreError};
use poll::{
    PollLimits, PollRefusal, PollSession, PollTicket, SessionCounts, SessionKey, SessionRecord,
};
pub use queue::{FrameQueue, FrameReceiver, FrameSender};

/// Events per history read while replaying, and at most this many bytes of them (a page in
/// memory is bounded however large the events are).
const REPLAY_PAGE: PageLimit = PageLimit {
    events: 256,
    bytes: 1024 * 1024,
};

/// Events per repair read (see `hub::stored`): the hub reads on while it is behind.
const REPAIR_PAGE: PageLimit = PageLimit {
    events: 256,
    bytes: 1024 * 1024,
};

/// How the hub reaches one WebSocket connection task.
#[derive(Debug)]
pub struct SocketSender {
    /// Frames to send, bounded: a full queue makes the connection a slow consumer.
    pub frames: FrameSender,
    /// Asks the connection task to close with a WebSocket close code.
    pub close: oneshot::Sender<(u16, ErrorCode)>,
}

/// Messages to the hub task.
#[derive(Debug)]
pub enum HubMsg {
    /// An authenticated WebSocket opened.
    Connect {
        /// Its id (from [`HubHandle::next_conn_id`]).
        conn: ConnId,
        /// Who it is.
        identity: Arc<Identity>,
        /// How to reach it.
        sender: SocketSender,
    },
    /// A decoded client frame from a WebSocket.
    Frame {
        /// From whom.
        conn: ConnId,
        /// The frame.
        frame: ClientFrame,
    },
    /// A WebSocket renewed its token with an `auth` frame; the driver verified it and checked
    /// that it is the same user's.
    Auth {
        /// Which connection.
        conn: ConnId,
        /// Who it is now (same user, maybe other grants and expiry).
        identity: Arc<Identity>,
    },
    /// Proof of life without a frame (WebSocket ping).
    Activity {
        /// Which connection.
        conn: ConnId,
    },
    /// The WebSocket is gone.
    Disconnect {
        /// Which connection.
        conn: ConnId,
    },
    /// Frames from a polling session's `POST`; answered with the frames that reply to them.
    PollSend {
        /// The session.
        session: SessionKey,
        /// Who it is.
        identity: Arc<Identity>,
        /// The client address's per-address key (`http::limits::address_key`).
        address: std::net::IpAddr,
        /// The frames, in order.
        frames: Vec<ClientFrame>,
        /// Where to answer.
        reply: oneshot::Sender<Result<Vec<Payload>, PollRefusal>>,
    },
    /// A polling request arrives with its session's shared record (Redis engine): adopt it
    /// before the request is handled (see `Driver::poll_adopt`).
    PollAdopt {
        /// The session.
        session: SessionKey,
        /// Who it is.
        identity: Arc<Identity>,
        /// The client address's per-address key.
        address: std::net::IpAddr,
        /// The session's rooms as recorded.
        record: SessionRecord,
        /// Answered once the session on this node matches the record.
        reply: oneshot::Sender<Result<Vec<Payload>, PollRefusal>>,
    },
    /// The session's record as this node has it, to share after a `POST`.
    PollRecord {
        /// The session.
        session: SessionKey,
        /// Where to answer (`None` when the session is not open here).
        reply: oneshot::Sender<Option<SessionRecord>>,
    },
    /// A long poll starts.
    PollOpen {
        /// The session.
        session: SessionKey,
        /// Who it is.
        identity: Arc<Identity>,
        /// The client address's per-address key (`http::limits::address_key`).
        address: std::net::IpAddr,
        /// The rooms it follows.
        rooms: Vec<RoomName>,
        /// Where to answer.
        reply: oneshot::Sender<Result<PollTicket, PollRefusal>>,
    },
    /// A long poll was woken and looks at its rooms again.
    PollView {
        /// The session's connection.
        conn: ConnId,
        /// The rooms.
        rooms: Vec<RoomName>,
        /// Where to answer (`None` when the session is gone).
        reply: oneshot::Sender<Option<Vec<Option<RoomView>>>>,
    },
    /// A backend publishes (REST, API key).
    BackendPublish {
        /// What to append.
        request: AppendRequest,
        /// Where to answer, after the event was fanned out.
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// A backend stream step (REST, API key; see `Hub::handle_backend_stream`).
    BackendStream {
        /// The room.
        room: RoomName,
        /// The stream's id.
        id: EventId,
        /// The producer.
        from: String,
        /// The step.
        op: BackendStreamOp,
        /// Where to answer (a `finish` after its result was fanned out).
        reply: oneshot::Sender<StreamReply>,
    },
    /// A room's presence, for `GET /v1/rooms/{room}/presence` (see `Hub::lookup_presence`:
    /// with several nodes, the answer may be to ask again shortly).
    Presence {
        /// Which room.
        room: RoomName,
        /// Where to answer.
        reply: oneshot::Sender<PresenceLookup>,
    },
    /// Counters for `/v1/stats` and `/metrics`.
    Stats {
        /// Where to answer.
        reply: oneshot::Sender<Stats>,
    },
    /// Shut down: finish writes, send `draining`, close every connection.
    Drain {
        /// The reconnect hint.
        retry_after: Duration,
        /// Answered when done.
        done: oneshot::Sender<()>,
    },
    /// The backend sends a notice (REST, API key; see `hub::notices`).
    Notice {
        /// To whom.
        target: NoticeTarget,
        /// The notice.
        notice: chorus_sdk::wire::Notice,
        /// Where to answer.
        reply: oneshot::Sender<NoticeOutcome>,
    },
    /// The notices a polling session keeps for its next long poll (taken: each is answered once).
    PollNotices {
        /// The session's connection.
        conn: ConnId,
        /// Where to answer.
        reply: oneshot::Sender<Vec<Payload>>,
    },
    /// Notice counts for `/metrics`.
    NoticeFigures {
        /// Where to answer.
        reply: oneshot::Sender<NoticeFigures>,
    },
    /// A room load requested by the hub finished (sent by the driver's own tasks).
    RoomLoaded(RoomName, Result<crate::store::RoomHead, StoreError>),
    /// A history replay requested by the hub finished (sent by the driver's own tasks).
    ReplayDone(ConnId, RoomName, ReplayOutcome),
    /// A repair read requested by the hub finished (sent by the driver's own tasks).
    Repaired(RoomName, Result<Page, StoreError>),
    /// A room's locks, read while it loads (sent by the driver's own tasks, before its
    /// `RoomLoaded`).
    LocksLoaded(
        RoomName,
        Result<Vec<chorus_sdk::wire::LockInfo>, StoreError>,
    ),
    /// A room's live locks, read for an [`Action::CheckLocks`] (sent by the driver's own tasks).
    LocksChecked(
        RoomName,
        Result<Vec<chorus_sdk::wire::LockInfo>, StoreError>,
    ),
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

    /// Sends a message built around a reply channel and waits for the answer; `None` when the
    /// hub has stopped.
    pub async fn ask<T>(&self, msg: impl FnOnce(oneshot::Sender<T>) -> HubMsg) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        if !self.send(msg(reply)).await {
            return None;
        }
        answer.await.ok()
    }

    /// The current presence of a room: on several nodes, everyone's, also where nobody of
    /// the room is on this node (see `Hub::lookup_presence`; at most [`PRESENCE_LOOKUPS`]
    /// waits of up to `hub::OBSERVE_SETTLE`, after which it answers what it has: nobody).
    /// `Err(Busy)` when this node observes as many rooms as it may.
    pub async fn presence(&self, room: RoomName) -> Result<Option<PresenceSnapshot>, Busy> {
        // Bounded: a room that cannot be opened (its store fails) answers what is known.
        for _ in 0..PRESENCE_LOOKUPS {
            let room = room.clone();
            match self.ask(|reply| HubMsg::Presence { room, reply }).await {
                None => break,
                Some(PresenceLookup::Ready(presence)) => return Ok(presence),
                Some(PresenceLookup::Pending(wait)) => tokio::time::sleep(wait).await,
                Some(PresenceLookup::Busy) => return Err(Busy),
            }
        }
        Ok(None)
    }

    /// Drains the hub (see [`HubMsg::Drain`]) and waits until it is done.
    pub async fn drain(&self, retry_after: Duration) {
        self.ask(|done| HubMsg::Drain { retry_after, done }).await;
    }
}

/// How many times a presence lookup asks the hub while a room opens to observe it.
pub const PRESENCE_LOOKUPS: usize = 10;

#[allow(clippy::disallowed_methods)] // The driver is where the hub's clock lives.
fn now() -> Now {
    // tokio's clock, so tests can pause and advance time.
    Now {
        instant: tokio::time::Instant::now().into_std(),
        unix_ms: crate::clock::unix_ms_now(),
    }
}

/// How long a drain waits for the store's answers to lock operations asked during it.
const DRAIN_LOCKS_LIMIT: Duration = Duration::from_secs(5);

/// A presence lookup refused: the node observes as many rooms as it may.
#[derive(Debug)]
pub struct Busy;

/// Starts the hub task.
pub fn spawn(
    hub: Hub,
    store: Arc<dyn Store>,
    docs: Compactor,
    outcomes: mpsc::UnboundedReceiver<AppendDone>,
    bus: Arc<dyn Bus>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    limits: PollLimits,
) -> HubHandle {
    let (tx, rx) = mpsc::channel(4096);
    let (lock_answers, lock_answered) = mpsc::unbounded_channel();
    let handle = HubHandle {
        tx: tx.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    // Notices from the other nodes arrive on the reserved room's signal channel, followed
    // for as long as the node runs (see `hub::notices`).
    if hub.config().federated {
        drop(bus.follow(&notice_room()));
    }
    let driver = Driver {
        hub,
        store,
        docs,
        bus,
        follows: HashMap::new(),
        limits,
        next_conn: Arc::clone(&handle.next_conn),
        peers: HashMap::new(),
        sessions: HashMap::new(),
        session_counts: SessionCounts::default(),
        collecting: Vec::new(),
        backend: HashMap::new(),
        stream_calls: HashMap::new(),
        next_ticket: 0,
        counters: Counters::default(),
        loopback: tx,
        lock_answers,
        locks_pending: 0,
    };
    let task = tokio::spawn(driver.run(rx, outcomes, inbound, lock_answered));
    // A hub that panicked would leave the node answering `draining` to everything while its
    // health check says ok: the process ends instead, so its supervisor starts it again (and
    // with several nodes, clients move to the others).
    tokio::spawn(async move {
        if let Err(err) = task.await
            && err.is_panic()
        {
            tracing::error!("the hub task panicked; aborting the process");
            std::process::abort();
        }
    });
    handle
}

/// A connection as the driver reaches it. A polling session is boxed: the map of peers then
/// holds 16 bytes per WebSocket instead of a session's size.
enum Peer {
    Socket(SocketSender),
    Poll(Box<PollSession>),
}

#[derive(Default)]
struct Counters {
    peak_sockets: u64,
    events_total: u64,
    /// (time, events_total) about once a second, for the recent rate.
    samples: VecDeque<(Instant, u64)>,
    /// Distinct users, counted at most once a second (it walks every connection, and
    /// `/metrics` and `/readyz` need no credentials): when, and how many.
    users: Option<(Instant, u64)>,
}

struct Driver {
    hub: Hub,
    store: Arc<dyn Store>,
    /// The shared documents' compactor, told of every document update stored here.
    docs: Compactor,
    bus: Arc<dyn Bus>,
    /// Follows asked of the bus whose room load has not started yet (it waits for them).
    follows: HashMap<RoomName, Subscribed>,
    limits: PollLimits,
    next_conn: Arc<AtomicU64>,
    peers: HashMap<ConnId, Peer>,
    /// Polling sessions' hub connections (see [`poll`]).
    sessions: HashMap<SessionKey, ConnId>,
    /// Open polling sessions per user and per address, for [`PollLimits`].
    session_counts: SessionCounts,
    /// Polling sessions with a `POST` waiting for replies.
    collecting: Vec<ConnId>,
    backend: HashMap<u64, oneshot::Sender<Result<AppendOutcome, StoreError>>>,
    /// Backend stream steps waiting for their answer (tickets shared with `backend`).
    stream_calls: HashMap<u64, oneshot::Sender<StreamReply>>,
    next_ticket: u64,
    counters: Counters,
    /// For tasks the driver spawns to report back.
    loopback: mpsc::Sender<HubMsg>,
    /// The store's answers to lock operations, apart from the inbox: a drain closes the
    /// inbox and then still waits for them ([`Driver::drain`]).
    lock_answers: mpsc::UnboundedSender<LockDone>,
    /// Lock operations asked of the store and not answered yet.
    locks_pending: usize,
}

impl Driver {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<HubMsg>,
        mut outcomes: mpsc::UnboundedReceiver<AppendDone>,
        mut inbound: mpsc::UnboundedReceiver<Inbound>,
        mut lock_answered: mpsc::UnboundedReceiver<LockDone>,
    ) {
        loop {
            let deadline = self.hub.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(HubMsg::Drain { retry_after, done }) => {
                        self.drain(retry_after, &mut inbox, &mut outcomes, &mut lock_answered)
                            .await;
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                Some(outcome) = outcomes.recv() => self.append_done(outcome),
                Some(heard) = inbound.recv() => self.heard(heard),
                Some(done) = lock_answered.recv() => self.lock_done(done),
                () = sleep_until(deadline) => self.hub.handle_timeout(now()),
            }
            self.flush_outputs();
        }
    }

    /// Shuts down without losing an ack, in four steps:
    ///
    /// 1. The hub tells every connection `draining`; from here on it refuses publishes
    ///    (`nack draining`), backend publishes and new connections, so nothing new is stored.
    /// 2. The store finishes every append submitted before, and each outcome is fed to the hub,
    ///    which acks it; connections stay open meanwhile.
    /// 3. The inbox is closed, and what is already in it is handled by the draining hub (a
    ///    publish gets its nack, a connection its `draining` and close). A connection task
    ///    whose message is refused after this point answers for itself (see `http::ws`).
    ///    Then every lock operation asked meanwhile (a holder that left or dropped) is
    ///    answered, so that the members and the other nodes hear of it.
    /// 4. The hub closes every connection (1012) after its last frames.
    ///
    /// Each connection task writes what is queued for it, then the close frame; the server
    /// waits for those tasks before it exits (see [`crate::RunningServer::shutdown`]).
    async fn drain(
        &mut self,
        retry_after: Duration,
        inbox: &mut mpsc::Receiver<HubMsg>,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
        lock_answered: &mut mpsc::UnboundedReceiver<LockDone>,
    ) {
        self.hub.handle_drain(retry_after);
        self.flush_outputs();
        self.store.flush().await;
        while let Ok(outcome) = outcomes.try_recv() {
            self.append_done(outcome);
        }
        self.flush_outputs();
        inbox.close();
        while let Some(msg) = inbox.recv().await {
            match msg {
                HubMsg::Drain { done, .. } => {
                    let _ = done.send(());
                }
                msg => self.handle(msg),
            }
            self.flush_outputs();
        }
        let answered = async {
            while self.locks_pending > 0 {
                let Some(done) = lock_answered.recv().await else {
                    break;
                };
                self.lock_done(done);
                self.flush_outputs();
            }
        };
        // Bounded, like the sockets' close: a store that never answers does not hold the exit.
        if tokio::time::timeout(DRAIN_LOCKS_LIMIT, answered)
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.locks_pending,
                "lock operations unanswered at exit"
            );
        }
        self.hub.handle_drain_complete();
        self.flush_outputs();
    }

    fn lock_done(&mut self, done: LockDone) {
        self.locks_pending -= 1;
        self.hub.handle_lock_done(now(), done);
    }

    fn append_done(&mut self, outcome: AppendDone) {
        if let Ok(AppendOutcome::Stored(stored)) = &outcome.result {
            self.counters.events_total += 1;
            if let Some(doc) = crate::docs::doc_of(&stored.event.body) {
                self.docs.stored(stored.event.room.clone(), doc);
            }
        }
        self.hub.handle_append_done(now(), outcome);
    }

    fn heard(&mut self, heard: Inbound) {
        let now = now();
        match heard {
            Inbound::Stored(stored) => self.hub.handle_stored(now, stored),
            Inbound::Resynced(rooms) => self.hub.handle_resynced(now, rooms),
            // Presence, typing and ephemeral events of another node (`hub::federation`). A
            // signal the hub refuses (a node of another version, bad bytes) changes nothing.
            Inbound::Signal {
                room,
                from_node,
                bytes,
            } if room.as_str() == NOTICE_ROOM => {
                if let Err(err) = self.hub.handle_notice_signal(&from_node, &bytes) {
                    tracing::warn!("{err}");
                }
            }
            Inbound::Signal {
                room,
                from_node,
                bytes,
            } => {
                if let Err(err) = self.hub.handle_signal(now, room, &from_node, &bytes) {
                    tracing::warn!(%from_node, "signal refused: {err}");
                }
            }
        }
    }

    fn handle(&mut self, msg: HubMsg) {
        let now = now();
        match msg {
            HubMsg::Connect {
                conn,
                identity,
                sender,
            } => {
                self.peers.insert(conn, Peer::Socket(sender));
                self.hub
                    .handle_connect(now, conn, identity, ConnKind::Socket);
                let (sockets, _) = self.hub.connections_by_kind();
                self.counters.peak_sockets = self.counters.peak_sockets.max(sockets as u64);
            }
            HubMsg::Frame { conn, frame } => self.hub.handle_frame(now, conn, frame),
            HubMsg::Auth { conn, identity } => self.hub.handle_auth(now, conn, identity),
            HubMsg::Activity { conn } => self.hub.handle_activity(now, conn),
            HubMsg::Disconnect { conn } => {
                self.peers.remove(&conn);
                self.hub.handle_disconnect(now, conn);
            }
            HubMsg::PollSend {
                session,
                identity,
                address,
                frames,
                reply,
            } => self.poll_send(now, session, identity, address, frames, reply),
            HubMsg::PollOpen {
                session,
                identity,
                address,
                rooms,
                reply,
            } => {
                if let Some(answer) = self.poll_open(now, session, identity, address, &rooms) {
                    let _ = reply.send(answer);
                }
            }
            HubMsg::PollAdopt {
                session,
                identity,
                address,
                record,
                reply,
            } => self.poll_adopt(now, session, identity, address, record, reply),
            HubMsg::PollRecord { session, reply } => {
                let _ = reply.send(self.session_record(&session));
            }
            HubMsg::PollView { conn, rooms, reply } => {
                let _ = reply.send(self.poll_view(conn, &rooms));
            }
            HubMsg::BackendPublish { request, reply } => {
                self.next_ticket += 1;
                self.backend.insert(self.next_ticket, reply);
                self.hub
                    .handle_backend_publish(now, self.next_ticket, request);
            }
            HubMsg::BackendStream {
                room,
                id,
                from,
                op,
                reply,
            } => {
                self.next_ticket += 1;
                self.stream_calls.insert(self.next_ticket, reply);
                self.hub
                    .handle_backend_stream(now, self.next_ticket, room, id, from, op);
            }
            HubMsg::Presence { room, reply } => {
                let _ = reply.send(self.hub.lookup_presence(now, &room));
            }
            HubMsg::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            HubMsg::Notice {
                target,
                notice,
                reply,
            } => {
                let _ = reply.send(self.hub.handle_notice(&target, notice));
            }
            HubMsg::PollNotices { conn, reply } => {
                let _ = reply.send(self.take_poll_notices(conn));
            }
            HubMsg::NoticeFigures { reply } => {
                let _ = reply.send(self.hub.notice_figures());
            }
            HubMsg::RoomLoaded(room, result) => self.hub.handle_room_loaded(now, room, result),
            HubMsg::ReplayDone(conn, room, outcome) => {
                self.hub.handle_replay_done(now, conn, room, outcome)
            }
            HubMsg::Repaired(room, result) => self.hub.handle_repaired(now, room, result),
            HubMsg::LocksLoaded(room, result) => self.hub.handle_locks_loaded(now, room, result),
            HubMsg::LocksChecked(room, result) => self.hub.handle_locks_checked(now, room, result),
            HubMsg::Drain { .. } => unreachable!("handled in run"),
        }
    }

    fn stats(&mut self) -> Stats {
        let (sockets, polls) = self.hub.connections_by_kind();
        let now = now().instant;
        let samples = &mut self.counters.samples;
        if samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            samples.push_back((now, self.counters.events_total));
            while samples.len() > 10 {
                samples.pop_front();
            }
        }
        let events_per_second = match samples.front() {
            Some((at, total)) if now.duration_since(*at) > Duration::ZERO => {
                (self.counters.events_total - total) as f64 / now.duration_since(*at).as_secs_f64()
            }
            _ => 0.0,
        };
        Stats {
            connections: sockets as u64,
            peak_connections: self.counters.peak_sockets,
            polling_sessions: polls as u64,
            rooms: self.hub.room_count() as u64,
            users: self.user_count(now),
            events_per_second,
            events_total: self.counters.events_total,
            nodes: None,
        }
    }

    /// The distinct users, counted again when the last count is a second old.
    fn user_count(&mut self, now: Instant) -> u64 {
        match self.counters.users {
            Some((at, users)) if now.duration_since(at) < Duration::from_secs(1) => users,
            _ => {
                let users = self.hub.user_count() as u64;
                self.counters.users = Some((now, users));
                users
            }
        }
    }

    /// Carries out everything the hub asked for, until it asks for nothing more.
    fn flush_outputs(&mut self) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.hub.poll_transmit() {
                idle = false;
                match self.peers.get_mut(&transmit.conn) {
                    Some(Peer::Socket(sender)) => {
                        if let Err(queue::TrySendError::Full(_)) =
                            sender.frames.try_send(transmit.payload)
                        {
                            self.hub.handle_slow_consumer(now(), transmit.conn);
                        }
                    }
                    Some(Peer::Poll(session)) => session.deliver(transmit),
                    None => {}
                }
            }
            while let Some(action) = self.hub.poll_action() {
                idle = false;
                self.perform(action);
            }
            if idle {
                break;
            }
        }
        self.answer_complete_posts();
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Append(job) => self.store.submit(job),
            Action::Lock(job) => {
                // Queued now, in order with the appends; answered whenever the store is done.
                let answer = self.store.lock(job.request.clone());
                let answers = self.lock_answers.clone();
                self.locks_pending += 1;
                tokio::spawn(async move {
                    let result = answer.await;
                    let _ = answers.send(LockDone { job, result });
                });
            }
            Action::Follow(room) => {
                let subscribed = self.bus.follow(&room);
                self.follows.insert(room, subscribed);
            }
            // The notice room stays followed while the node runs, even should a room of that
            // name open and close here (see `hub::notices`).
            Action::Unfollow(room) if room.as_str() == NOTICE_ROOM => {
                self.follows.remove(&room);
            }
            Action::Unfollow(room) => {
                self.follows.remove(&room);
                self.bus.unfollow(&room);
            }
            Action::Repair { room, after } => {
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                tokio::spawn(async move {
                    let result = store.read_bounded(&room, after, REPAIR_PAGE).await;
                    let _ = loopback.send(HubMsg::Repaired(room, result)).await;
                });
            }
            Action::LoadRoom(room) => {
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                let subscribed = self.follows.remove(&room).unwrap_or_default();
                tokio::spawn(async move {
                    // Heard from here on: the head read next misses nothing stored after it.
                    subscribed.wait().await;
                    // The locks first, so the joins the head answers list them; lock changes
                    // after this read are heard (the follow is in place).
                    let locks = store.locks(&room, crate::clock::unix_ms_now()).await;
                    let _ = loopback
                        .send(HubMsg::LocksLoaded(room.clone(), locks))
                        .await;
                    let result = store.read(&room, 0, 0).await.map(|page| page.head);
                    let _ = loopback.send(HubMsg::RoomLoaded(room, result)).await;
                });
            }
            Action::CheckLocks(room) => {
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                tokio::spawn(async move {
                    let locks = store.locks(&room, crate::clock::unix_ms_now()).await;
                    let _ = loopback.send(HubMsg::LocksChecked(room, locks)).await;
                });
            }
            Action::Replay {
                conn,
                room,
                after,
                until,
            } => {
                let Some(Peer::Socket(sender)) = self.peers.get(&conn) else {
                    return;
                };
                let frames = sender.frames.clone();
                let store = Arc::clone(&self.store);
                let loopback = self.loopback.clone();
                tokio::spawn(async move {
                    let outcome = replay(&*store, &frames, &room, after, until).await;
                    let _ = loopback.send(HubMsg::ReplayDone(conn, room, outcome)).await;
                });
            }
            Action::Complete { ticket, result } => {
                if let Some(reply) = self.backend.remove(&ticket) {
                    let _ = reply.send(result);
                } else if let Some(reply) = self.stream_calls.remove(&ticket) {
                    let _ = reply.send(StreamReply::Finished(result));
                }
            }
            Action::StreamDone {
                ticket,
                reply: answer,
            } => {
                if let Some(reply) = self.stream_calls.remove(&ticket) {
                    let _ = reply.send(answer);
                }
            }
            Action::Close { conn, code, reason } => match self.peers.remove(&conn) {
                Some(Peer::Socket(sender)) => {
                    let _ = sender.close.send((code, reason));
                }
                Some(Peer::Poll(session)) => self.forget_session(*session),
                None => {}
            },
            // Only a federated hub (the Redis engine's) signals; the bus carries it to the
            // other nodes following the room, in order.
            Action::Signal { room, bytes } => self.bus.signal(&room, bytes),
            Action::Notice { conn, payload } => {
                if let Some(Peer::Poll(session)) = self.peers.get_mut(&conn) {
                    session.keep_notice(payload);
                }
            }
        }
    }
}

pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Streams `(after, until]` into the connection's queue, waiting for room (real backpressure).
async fn replay(
    store: &dyn Store,
    frames: &FrameSender,
    room: &RoomName,
    after: u64,
    until: u64,
) -> ReplayOutcome {
    let mut cursor = after;
    let mut first = true;
    while cursor < until {
        let page = match store.read_bounded(room, cursor, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(%room, "replay interrupted after #{cursor}: {err}");
                return ReplayOutcome::Interrupted { after: cursor };
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
            return ReplayOutcome::NotCovered;
        }
        for stored in page.events.iter().take_while(|event| event.seq() <= until) {
            if frames.send(encode_event(stored)).await.is_err() {
                // The connection is gone; nobody is listening (the hub hears of it and forgets
                // the member, so the retry it would schedule finds nothing to do).
                return ReplayOutcome::Interrupted { after: cursor };
            }
            cursor = stored.seq();
        }
    }
    ReplayOutcome::Done
}
