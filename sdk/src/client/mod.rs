//! The sans-IO client core: one state machine that the browser SDK, the native driver, the
//! Leptos app, the load generator and the tests all drive.
//!
//! It performs no I/O, reads no clock and has no entropy source of its own: time comes in as
//! `now`, randomness from a seeded [`Rng`](rng::Rng), and everything it wants done comes out.
//!
//! # Contract
//!
//! - Inputs: the `handle_*` methods (transport results, platform signals, timers) and the app
//!   API ([`Client::join`], [`Client::publish`], ...). Each takes `now`. An extra
//!   [`Client::handle_timeout`] is harmless.
//! - Outputs: after every input, take [`Client::poll_outputs`] (open/send/close a socket, make
//!   an HTTP call, save to storage; carrying them out may feed the core again, so take until
//!   none are left) and [`Client::poll_events`] (what the app should know), then arm one timer at
//!   [`Client::poll_timeout`].
//! - Sockets and HTTP calls carry ids (`link`, `request`); results for ids the core no longer
//!   cares about are ignored, so a driver never has to cancel anything in a hurry.
//!
//! # What it does
//!
//! Connects (WebSocket first; in `Auto` mode falls back to HTTP long polling when the socket
//! does not complete its first round trip in time, remembers that for a while, probes the
//! socket in the background and upgrades when it works; a socket refused outright is probed
//! again as soon as polling works, since a restarting server refuses it too), reconnects with jittered backoff,
//! detects dead sockets by heartbeat, rejoins rooms from their cursors, keeps an outbox of
//! publishes until acked (persisted through [`Output::Save`]), merges incoming events
//! idempotently (see [`timeline`]), reconciles optimistic publishes by id, and keeps presence
//! and typing per room.

mod api;
pub mod backoff;
mod map;
pub mod outbox;
pub mod rng;
pub mod room;
pub mod timeline;

pub use api::{
    Badge, ClientConfig, ClientEvent, ConnectionState, FailReason, HttpCall, HttpResult,
    OUTBOX_KEY, Output, PublishError, Restored, TRANSPORT_KEY, Transport, TransportMode,
};
pub(crate) use map::Map;
use std::time::Duration;

use crate::text::decimal;
use crate::time::{Instant, millis};

use crate::wire::{
    self, ClientFrame, Cursor, ErrorCode, Event, EventId, Json, OutboxRecord, PollCursor,
    PollQuery, PresenceUser, ResetReason, RoomName, ServerFrame, StoredOutbox, close_code,
};
use backoff::Backoff;
use outbox::Outbox;
use rng::Rng;
use room::{DiffOutcome, Presence, TypingIn, TypingOut};
use timeline::Timeline;

#[derive(Debug)]
struct Room {
    meta: Json,
    timeline: Timeline,
    presence: Presence,
    typing_in: TypingIn,
    typing_out: TypingOut,
    /// A history fetch to repair a gap is under way.
    repairing: Option<u64>,
}

#[derive(Debug)]
struct SocketLink {
    link: u64,
    welcomed: bool,
    /// Before `welcome`: give up at this time. After: ping at this time.
    deadline: Instant,
    heartbeat: Duration,
    last_heard: Instant,
}

#[derive(Debug)]
struct PollLink {
    /// Identifies this polling attempt (the outbox resends everything on a new one).
    link: u64,
    connected: bool,
    send_in_flight: Option<(u64, Instant)>,
    poll_in_flight: Option<(u64, Instant)>,
    queued: Vec<ClientFrame>,
    /// A WebSocket tried in the background (Auto mode): the link, and its deadline.
    probe: Option<(u64, Instant)>,
    next_probe: Option<Instant>,
    /// Polling because a socket was refused at once, which a server that is down (or
    /// restarting) causes as well as a proxy blocking WebSocket: once polling works, the
    /// socket is probed at once, and polling is remembered only if that probe fails too.
    unsure: bool,
}

#[derive(Debug)]
enum Phase {
    /// Waiting to (re)connect.
    Waiting {
        next: Instant,
    },
    Offline,
    NeedToken,
    Failed,
    Closed,
    Socket(SocketLink),
    Polling(PollLink),
}

/// The client state machine. See the module docs for the driving contract.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    rng: Rng,
    clock_origin: (Instant, u64),
    token: String,
    /// A token was refused and replaced; the next refusal is final.
    token_refreshed: bool,
    phase: Phase,
    /// In `Auto` mode: use polling first until this Unix time.
    polling_until_ms: u64,
    retry_hint: Option<Duration>,
    next_id: u64,
    id_prefix: String,
    session: String,
    user: Option<String>,
    rooms: Map<RoomName, Room>,
    outbox: Outbox,
    /// The outbox changed since it was last handed out to be saved.
    outbox_unsaved: bool,
    /// Own publishes shown as pending and not yet seen come back, with their seq once acked.
    pending: Map<EventId, (OutboxRecord, Option<u64>)>,
    backoff: Backoff,
    retry_refused_at: Option<Instant>,
    outputs: Vec<Output>,
    events: Vec<ClientEvent>,
    state: ConnectionState,
}

impl Client {
    /// A client that starts connecting at the first [`Client::handle_timeout`].
    ///
    /// `unix_ms` is the wall clock at `now` (for outbox timestamps); `seed` comes from the
    /// platform's entropy (tests: a constant).
    pub fn new(
        config: ClientConfig,
        token: String,
        now: Instant,
        unix_ms: u64,
        seed: u64,
        restored: Restored,
    ) -> Client {
        let mut rng = Rng::new(seed);
        let id_prefix = rng.token(10);
        let session = rng.token(16);
        let stored = restored
            .outbox
            .as_deref()
            .map(StoredOutbox::decode)
            .unwrap_or_default();
        let polling_until_ms = restored
            .transport
            .as_deref()
            .and_then(|value| value.strip_prefix("polling-until:"))
            .and_then(wire::json::parse_u64)
            .unwrap_or(0);
        // After a reload, what still waits is pending again, and shown as such.
        let mut pending = Map::new();
        let mut events = Vec::new();
        for record in &stored.entries {
            pending.insert(record.id.clone(), (record.clone(), None));
            events.push(ClientEvent::Pending {
                room: record.room.clone(),
                id: record.id.clone(),
                body: record.body.clone(),
            });
        }
        if !events.is_empty() {
            events.push(ClientEvent::Outbox {
                pending: stored.entries.len(),
            });
        }
        let transport = match config.transport {
            TransportMode::Polling => Transport::Polling,
            _ => Transport::WebSocket,
        };
        Client {
            outbox: Outbox::new(config.outbox, stored),
            outbox_unsaved: false,
            backoff: Backoff::new(config.backoff),
            config,
            rng,
            clock_origin: (now, unix_ms),
            token,
            token_refreshed: false,
            phase: Phase::Waiting { next: now },
            polling_until_ms,
            retry_hint: None,
            next_id: 0,
            id_prefix,
            session,
            user: None,
            rooms: Map::new(),
            pending,
            retry_refused_at: None,
            outputs: Vec::new(),
            events,
            state: ConnectionState::Connecting { transport },
        }
    }

    // -----------------------------------------------------------------------------------------
    // Outputs and queries
    // -----------------------------------------------------------------------------------------

    /// What the driver must do, in order (empty when nothing is waiting).
    pub fn poll_outputs(&mut self) -> Vec<Output> {
        let mut outputs = std::mem::take(&mut self.outputs);
        // The outbox is saved once per drain, whatever number of changes led to it, and before
        // anything else goes out (a publish is on disk before it is on the wire).
        if self.outbox_unsaved {
            self.outbox_unsaved = false;
            let save = Output::Save {
                key: OUTBOX_KEY,
                value: self.outbox.stored().encode(),
            };
            outputs.insert(0, save);
        }
        outputs
    }

    /// What the app should know, in order (empty when nothing happened).
    pub fn poll_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    /// When [`Client::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        match &self.phase {
            Phase::Waiting { next } => consider(Some(*next)),
            Phase::Socket(socket) => consider(Some(socket.deadline)),
            Phase::Polling(poll) => {
                consider(poll.send_in_flight.map(|(_, at)| at));
                consider(poll.poll_in_flight.map(|(_, at)| at));
                consider(poll.probe.map(|(_, at)| at));
                consider(poll.next_probe);
            }
            Phase::Offline | Phase::NeedToken | Phase::Failed | Phase::Closed => {}
        }
        for room in self.rooms.values() {
            consider(room.typing_in.next_expiry());
            consider(room.typing_out.next_timeout());
        }
        consider(self.outbox.next_expiry_ms().map(|ms| self.instant_of(ms)));
        consider(self.retry_refused_at);
        next
    }

    /// The current connection state.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// Publishes waiting for their ack.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// A room's presence, if the room is joined.
    pub fn presence(&self, room: &RoomName) -> Option<Vec<PresenceUser>> {
        self.rooms.get(room).map(|r| r.presence.users())
    }

    /// A room's cursor, if it has one.
    pub fn cursor(&self, room: &RoomName) -> Option<Cursor> {
        self.rooms.get(room).and_then(|r| r.timeline.cursor())
    }

    /// The authenticated user, once welcomed.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    // -----------------------------------------------------------------------------------------
    // App API
    // -----------------------------------------------------------------------------------------

    /// Joins `room` with this presence meta (or updates the meta of a joined room).
    pub fn join(&mut self, now: Instant, room: RoomName, meta: Json) {
        let entry = self.rooms.get_or_insert_with(room.clone(), || Room {
            meta: Json::null(),
            timeline: Timeline::default(),
            presence: Presence::default(),
            typing_in: TypingIn::default(),
            typing_out: TypingOut::default(),
            repairing: None,
        });
        entry.meta = meta.clone();
        let resume = entry.timeline.cursor();
        self.send_frame(ClientFrame::Join(wire::Join { room, meta, resume }));
        self.pump_polling(now);
    }

    /// Leaves `room`.
    pub fn leave(&mut self, now: Instant, room: RoomName) {
        if self.rooms.remove(&room).is_some() {
            self.send_frame(ClientFrame::Leave(wire::Leave { room }));
            self.pump_polling(now);
        }
    }

    /// Publishes a durable event: shown at once as [`ClientEvent::Pending`], queued in the
    /// outbox (so it survives disconnects and reloads), sent when connected, retried until acked.
    pub fn publish(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
    ) -> Result<EventId, PublishError> {
        self.publish_with(now, room, body, None)
    }

    /// Like [`Client::publish`], stored only if the room's head is still `if_seq`.
    pub fn publish_with(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
        if_seq: Option<u64>,
    ) -> Result<EventId, PublishError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(PublishError::Closed);
        }
        if !self.rooms.contains_key(&room) {
            return Err(PublishError::NotJoined(room));
        }
        let id = self.next_event_id();
        let record = OutboxRecord {
            room: room.clone(),
            id: id.clone(),
            body: body.clone(),
            if_seq,
            created_ms: self.unix_ms(now),
        };
        self.outbox.push(record.clone())?;
        let stop_typing = self
            .rooms
            .get_mut(&room)
            .and_then(|state| state.typing_out.stop());
        self.pending.insert(id.clone(), (record, None));
        self.events.push(ClientEvent::Pending {
            room: room.clone(),
            id: id.clone(),
            body,
        });
        self.outbox_changed();
        if let Some(on) = stop_typing {
            self.send_frame(ClientFrame::Typing(wire::Typing { room, on }));
        }
        self.flush_outbox();
        self.pump_polling(now);
        Ok(id)
    }

    /// Publishes an ephemeral event (cursor, progress): sent now if connected, never queued.
    pub fn publish_ephemeral(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
    ) -> Result<EventId, PublishError> {
        if !self.rooms.contains_key(&room) {
            return Err(PublishError::NotJoined(room));
        }
        if !matches!(self.state, ConnectionState::Connected { .. }) {
            return Err(PublishError::Offline);
        }
        let id = self.next_event_id();
        self.send_frame(ClientFrame::Publish(wire::Publish {
            room,
            id: id.clone(),
            body,
            durable: false,
            if_seq: None,
        }));
        self.pump_polling(now);
        Ok(id)
    }

    /// The user typed (`true`) or stopped (`false`) in `room`; throttled and auto-stopped.
    pub fn set_typing(&mut self, now: Instant, room: RoomName, on: bool) {
        let typing = self.config.typing;
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        if let Some(on) = state.typing_out.set(on, now, &typing) {
            self.send_frame(ClientFrame::Typing(wire::Typing { room, on }));
            self.pump_polling(now);
        }
    }

    /// Replaces this client's presence meta in `room`.
    pub fn set_presence(&mut self, now: Instant, room: RoomName, meta: Json) {
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        state.meta = meta.clone();
        self.send_frame(ClientFrame::SetPresence(wire::SetPresence { room, meta }));
        self.pump_polling(now);
    }

    /// Closes the client for good.
    pub fn close(&mut self, now: Instant) {
        let _ = now;
        self.drop_transport(true);
        self.phase = Phase::Closed;
        self.set_state(ConnectionState::Closed);
    }

    // -----------------------------------------------------------------------------------------
    // Platform signals
    // -----------------------------------------------------------------------------------------

    /// The platform reports the network went away (`false`) or came back (`true`).
    pub fn handle_online(&mut self, now: Instant, online: bool) {
        match (online, &self.phase) {
            (false, Phase::Closed | Phase::Failed | Phase::Offline) => {}
            (false, _) => {
                self.drop_transport(false);
                self.phase = Phase::Offline;
                self.set_state(ConnectionState::Offline);
            }
            (true, Phase::Offline | Phase::Waiting { .. }) => {
                // Back online: retry at once, with a fresh backoff.
                self.backoff.reset();
                self.phase = Phase::Waiting { next: now };
                self.handle_timeout(now);
            }
            (true, _) => {}
        }
    }

    /// The page became visible (`true`) or hidden: a waiting reconnect starts at once.
    pub fn handle_visible(&mut self, now: Instant, visible: bool) {
        if visible && matches!(self.phase, Phase::Waiting { .. }) {
            self.phase = Phase::Waiting { next: now };
            self.handle_timeout(now);
        }
    }

    /// A fresh token (after [`ClientEvent::TokenNeeded`], or any time).
    pub fn handle_token(&mut self, now: Instant, token: String) {
        self.token = token;
        if matches!(self.phase, Phase::NeedToken) {
            self.phase = Phase::Waiting { next: now };
            self.handle_timeout(now);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Transport results
    // -----------------------------------------------------------------------------------------

    /// The socket `link` is open.
    pub fn handle_socket_open(&mut self, now: Instant, link: u64) {
        // The token went in the subprotocol header; the server greets with `welcome`.
        let _ = (now, link);
    }

    /// A frame arrived on socket `link`.
    pub fn handle_socket_frame(&mut self, now: Instant, link: u64, frame: ServerFrame) {
        if let Phase::Polling(poll) = &self.phase
            && poll.probe.is_some_and(|(probe, _)| probe == link)
        {
            if matches!(frame, ServerFrame::Welcome(_)) {
                self.upgrade(now, link, frame);
            }
            return;
        }
        let Phase::Socket(socket) = &mut self.phase else {
            return;
        };
        if socket.link != link {
            return;
        }
        socket.last_heard = now;
        if !socket.welcomed {
            match &frame {
                ServerFrame::Welcome(welcome) => {
                    socket.welcomed = true;
                    socket.heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(1000));
                    socket.deadline = now + socket.heartbeat / 2;
                    self.connected(now, Transport::WebSocket);
                }
                ServerFrame::Error(error)
                    if matches!(
                        error.code,
                        ErrorCode::Unauthenticated | ErrorCode::TokenExpired
                    ) =>
                {
                    let message = error.message.clone();
                    self.auth_refused(now, message);
                    return;
                }
                _ => {}
            }
        }
        self.handle_frame(now, frame);
    }

    /// Socket `link` closed (or failed to open), with the close code if there was one.
    pub fn handle_socket_closed(&mut self, now: Instant, link: u64, code: Option<u16>) {
        if let Phase::Polling(poll) = &mut self.phase
            && poll.probe.is_some_and(|(probe, _)| probe == link)
        {
            return self.probe_failed(now);
        }
        let Phase::Socket(socket) = &self.phase else {
            return;
        };
        if socket.link != link {
            return;
        }
        let welcomed = socket.welcomed;
        // The driver closed it already: forget it without asking for another close.
        self.phase = Phase::Offline;
        if code == Some(close_code::UNAUTHENTICATED) {
            return self.auth_refused(now, "the server refused the token".into());
        }
        if !welcomed && self.config.transport == TransportMode::Auto {
            // The socket never worked: try polling right away (unsure why it failed).
            return self.start_polling(now, true);
        }
        self.reconnect_later(now);
    }

    /// An HTTP call finished.
    pub fn handle_http_response(&mut self, now: Instant, request: u64, result: HttpResult) {
        // History fetches (gap repair) work on any transport.
        let result = match result {
            HttpResult::Page(page) => return self.history_page(request, page),
            other => other,
        };
        if let Some(room) = self
            .rooms
            .iter_mut()
            .map(|(_, room)| room)
            .find(|r| r.repairing == Some(request))
        {
            room.repairing = None; // The repair failed; the next gap tries again.
            return;
        }
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        let is_send = poll.send_in_flight.is_some_and(|(id, _)| id == request);
        let is_poll = poll.poll_in_flight.is_some_and(|(id, _)| id == request);
        if !is_send && !is_poll {
            return;
        }
        if is_send {
            poll.send_in_flight = None;
        } else {
            poll.poll_in_flight = None;
        }
        match result {
            HttpResult::Frames(frames) => {
                if is_send && !poll.connected {
                    poll.connected = true;
                    if self.config.transport == TransportMode::Auto {
                        if poll.unsure {
                            poll.next_probe = Some(now);
                        } else {
                            poll.next_probe = Some(now + self.config.probe_every);
                            self.remember_polling(now);
                        }
                    }
                    self.connected(now, Transport::Polling);
                }
                for frame in frames {
                    self.handle_frame(now, frame);
                }
                self.pump_polling(now);
            }
            HttpResult::Refused { status: 401, code } => {
                let message = ["the server refused the token (", code.as_str(), ")"].concat();
                self.auth_refused(now, message)
            }
            HttpResult::Refused { .. } | HttpResult::Failed | HttpResult::Page(_) => {
                self.reconnect_later(now)
            }
        }
    }

    /// Timers: connection attempts, socket deadlines and heartbeats, HTTP timeouts, probes,
    /// typing, outbox expiry, publish retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Waiting { next } if *next <= now => self.attempt(now),
            Phase::Socket(socket) if socket.deadline <= now => {
                if !socket.welcomed {
                    // No first round trip in time.
                    let link = socket.link;
                    self.outputs.push(Output::CloseSocket { link });
                    if self.config.transport == TransportMode::Auto {
                        self.start_polling(now, false);
                    } else {
                        self.reconnect_later(now);
                    }
                } else if now.duration_since(socket.last_heard) >= socket.heartbeat * 2 {
                    // Silent for two heartbeats: the socket is dead even if nobody said so.
                    let link = socket.link;
                    self.outputs.push(Output::CloseSocket { link });
                    self.reconnect_later(now);
                } else {
                    socket.deadline = now + socket.heartbeat / 2;
                    let link = socket.link;
                    self.outputs.push(Output::Send {
                        link,
                        frame: ClientFrame::Ping(wire::Ping { nonce: None }),
                    });
                }
            }
            Phase::Polling(poll) => {
                let expired = |slot: &Option<(u64, Instant)>| slot.is_some_and(|(_, at)| at <= now);
                if expired(&poll.send_in_flight) || expired(&poll.poll_in_flight) {
                    return self.reconnect_later(now);
                }
                if let Some((link, at)) = poll.probe
                    && at <= now
                {
                    self.outputs.push(Output::CloseSocket { link });
                    self.probe_failed(now);
                } else if poll.probe.is_none() && poll.next_probe.is_some_and(|at| at <= now) {
                    let link = self.rng.next_u64();
                    poll.next_probe = None;
                    poll.probe = Some((link, now + self.config.socket_timeout));
                    self.outputs.push(Output::OpenSocket {
                        link,
                        token: self.token.clone(),
                    });
                }
            }
            _ => {}
        }
        self.room_timers(now);
        self.expire_outbox(now);
        if self.retry_refused_at.is_some_and(|at| at <= now) {
            self.retry_refused_at = None;
            self.flush_outbox();
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connection lifecycle
    // -----------------------------------------------------------------------------------------

    fn attempt(&mut self, now: Instant) {
        let polling = match self.config.transport {
            TransportMode::Polling => true,
            TransportMode::WebSocket => false,
            TransportMode::Auto => self.polling_until_ms > self.unix_ms(now),
        };
        if polling {
            return self.start_polling(now, false);
        }
        let link = self.rng.next_u64();
        self.phase = Phase::Socket(self.new_socket(link, now));
        self.outputs.push(Output::OpenSocket {
            link,
            token: self.token.clone(),
        });
        self.set_state(ConnectionState::Connecting {
            transport: Transport::WebSocket,
        });
    }

    /// A socket that must deliver `welcome` within the socket timeout.
    fn new_socket(&self, link: u64, now: Instant) -> SocketLink {
        SocketLink {
            link,
            welcomed: false,
            deadline: now + self.config.socket_timeout,
            // Replaced by the server's value in `welcome`.
            heartbeat: Duration::from_secs(15),
            last_heard: now,
        }
    }

    /// Connects by polling; `unsure`: see [`PollLink::unsure`].
    fn start_polling(&mut self, now: Instant, unsure: bool) {
        let link = self.rng.next_u64();
        self.phase = Phase::Polling(PollLink {
            link,
            connected: false,
            send_in_flight: None,
            poll_in_flight: None,
            queued: Vec::new(),
            probe: None,
            next_probe: None,
            unsure,
        });
        self.set_state(ConnectionState::Connecting {
            transport: Transport::Polling,
        });
        // The first POST joins every room (and says the outbox); its answer means connected.
        let joins: Vec<ClientFrame> = self.join_frames();
        if let Phase::Polling(poll) = &mut self.phase {
            poll.queued.extend(joins);
        }
        self.flush_outbox();
        self.pump_polling(now);
    }

    fn join_frames(&self) -> Vec<ClientFrame> {
        let mut frames = Vec::with_capacity(self.rooms.len());
        for (room, state) in self.rooms.iter() {
            frames.push(ClientFrame::Join(wire::Join {
                room: room.clone(),
                meta: state.meta.clone(),
                resume: state.timeline.cursor(),
            }));
        }
        frames
    }

    fn connected(&mut self, now: Instant, transport: Transport) {
        self.backoff.connected(now);
        self.token_refreshed = false;
        self.retry_hint = None;
        self.set_state(ConnectionState::Connected { transport });
        if transport == Transport::WebSocket {
            for frame in self.join_frames() {
                self.send_frame(frame);
            }
            self.flush_outbox();
        }
    }

    /// The probe socket was welcomed while polling: move everything onto it.
    fn upgrade(&mut self, now: Instant, link: u64, welcome: ServerFrame) {
        // Leave the polling session's rooms so presence does not show it until it expires.
        self.leave_polling_session();
        self.polling_until_ms = 0;
        self.outputs.push(Output::Save {
            key: TRANSPORT_KEY,
            value: String::new(),
        });
        self.phase = Phase::Socket(self.new_socket(link, now));
        // The socket is connected from here on: `welcome` sends the joins and the outbox.
        self.handle_socket_frame(now, link, welcome);
    }

    /// The background socket failed (closed or silent): polling it is, remembered, with the
    /// next probe later.
    fn probe_failed(&mut self, now: Instant) {
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        poll.probe = None;
        poll.next_probe = Some(now + self.config.probe_every);
        if std::mem::take(&mut poll.unsure) {
            self.remember_polling(now);
        }
    }

    fn remember_polling(&mut self, now: Instant) {
        self.polling_until_ms = self.unix_ms(now) + millis(self.config.remember_fallback);
        self.outputs.push(Output::Save {
            key: TRANSPORT_KEY,
            value: ["polling-until:", &decimal(self.polling_until_ms)].concat(),
        });
    }

    fn reconnect_later(&mut self, now: Instant) {
        self.drop_transport(false);
        let next = match self.retry_hint.take() {
            Some(hint) => now + hint + self.rng.below(hint / 2),
            None => self.backoff.next_attempt(now, &mut self.rng),
        };
        self.phase = Phase::Waiting { next };
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.backoff.attempt(),
            next_attempt: next,
        });
    }

    fn auth_refused(&mut self, now: Instant, message: String) {
        self.drop_transport(false);
        if self.token_refreshed {
            self.phase = Phase::Failed;
            return self.set_state(ConnectionState::Failed {
                reason: FailReason::AuthRefused(message),
            });
        }
        self.token_refreshed = true;
        self.phase = Phase::NeedToken;
        self.events.push(ClientEvent::TokenNeeded);
        // The retry waits for the token, not for a backoff step: none is taken.
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.backoff.attempt(),
            next_attempt: now,
        });
    }

    /// Forgets the current transport (closing a socket), keeping rooms and the outbox.
    fn drop_transport(&mut self, goodbye: bool) {
        match std::mem::replace(&mut self.phase, Phase::Offline) {
            Phase::Socket(socket) => self.outputs.push(Output::CloseSocket { link: socket.link }),
            Phase::Polling(poll) => {
                if let Some((link, _)) = poll.probe {
                    self.outputs.push(Output::CloseSocket { link });
                }
                if goodbye {
                    self.leave_polling_session();
                }
            }
            _ => {}
        }
    }

    /// `POST /v1/poll` with these frames for this client's polling session; returns the request id.
    fn post_frames(&mut self, frames: Vec<ClientFrame>) -> u64 {
        let request = self.rng.next_u64();
        let body = wire::PollSend {
            session: self.session.clone(),
            frames,
        };
        self.outputs.push(Output::Http {
            request,
            token: self.token.clone(),
            call: HttpCall::PollSend(body),
        });
        request
    }

    /// Leaves every room from the polling session (best effort, the answer is not awaited), so
    /// presence does not keep showing the session until it expires.
    fn leave_polling_session(&mut self) {
        if !self.rooms.is_empty() {
            let mut leaves = Vec::with_capacity(self.rooms.len());
            for room in self.rooms.keys() {
                leaves.push(ClientFrame::Leave(wire::Leave { room: room.clone() }));
            }
            self.post_frames(leaves);
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state.clone();
            self.events.push(ClientEvent::State(state));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    /// Sends a frame on the current transport; while not connected it is dropped, because
    /// everything that matters is re-sent on connect (joins with metas, the outbox).
    fn send_frame(&mut self, frame: ClientFrame) {
        match &mut self.phase {
            Phase::Socket(socket) if socket.welcomed => {
                let link = socket.link;
                self.outputs.push(Output::Send { link, frame });
            }
            Phase::Polling(poll) => poll.queued.push(frame),
            _ => {}
        }
    }

    fn flush_outbox(&mut self) {
        let link = match &self.phase {
            Phase::Socket(socket) if socket.welcomed => socket.link,
            Phase::Polling(poll) => poll.link,
            _ => return,
        };
        for record in self.outbox.unsent(link) {
            self.send_frame(ClientFrame::Publish(wire::Publish {
                room: record.room,
                id: record.id,
                body: record.body,
                durable: true,
                if_seq: record.if_seq,
            }));
        }
    }

    /// Issues the next polling requests: queued frames as one POST, and a long poll.
    fn pump_polling(&mut self, now: Instant) {
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        let batch = (poll.send_in_flight.is_none() && !poll.queued.is_empty())
            .then(|| std::mem::take(&mut poll.queued));
        if let Some(frames) = batch {
            let request = self.post_frames(frames);
            let deadline = now + self.config.http_timeout;
            if let Phase::Polling(poll) = &mut self.phase {
                poll.send_in_flight = Some((request, deadline));
            }
        }
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        if poll.connected && poll.poll_in_flight.is_none() && !self.rooms.is_empty() {
            let request = self.rng.next_u64();
            poll.poll_in_flight = Some((
                request,
                now + self.config.poll_wait + self.config.http_timeout,
            ));
            let mut rooms = Vec::with_capacity(self.rooms.len());
            for (room, state) in self.rooms.iter() {
                rooms.push(PollCursor {
                    room: room.clone(),
                    cursor: state.timeline.cursor(),
                    presence_version: state.presence.version(),
                    typing_version: state.typing_in.version(),
                });
            }
            let query = PollQuery {
                session: self.session.clone(),
                wait_ms: Some(millis(self.config.poll_wait)),
                rooms,
            };
            self.outputs.push(Output::Http {
                request,
                token: self.token.clone(),
                call: HttpCall::Poll {
                    query: query.encode(),
                },
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------------------------

    fn handle_frame(&mut self, now: Instant, frame: ServerFrame) {
        match frame {
            ServerFrame::Welcome(welcome) => {
                self.user = Some(welcome.user.clone());
                self.events
                    .push(ClientEvent::Welcome { user: welcome.user });
            }
            ServerFrame::Joined(joined) => {
                let Some(room) = self.rooms.get_mut(&joined.room) else {
                    return;
                };
                room.timeline.joined(joined.epoch, joined.head);
                let cursor = room.timeline.cursor().expect("positioned by joined");
                self.apply_presence(&joined.room, joined.presence);
                self.apply_typing(now, &joined.room, joined.typing, None);
                self.events.push(ClientEvent::Joined {
                    room: joined.room,
                    cursor,
                });
            }
            ServerFrame::Event(event) => self.receive_event(event),
            ServerFrame::Ack(ack) => self.acked(ack),
            ServerFrame::Nack(nack) => self.nacked(now, nack),
            ServerFrame::Presence(diff) => {
                let room_name = diff.room.clone();
                let Some(room) = self.rooms.get_mut(&room_name) else {
                    return;
                };
                match room.presence.diff(diff) {
                    DiffOutcome::Applied => {
                        let users = room.presence.users();
                        self.events.push(ClientEvent::Presence {
                            room: room_name,
                            users,
                        });
                    }
                    DiffOutcome::OutOfSync => {
                        // A change was missed: joining again re-sends the snapshot (no replay).
                        let meta = room.meta.clone();
                        self.send_frame(ClientFrame::Join(wire::Join {
                            room: room_name,
                            meta,
                            resume: None,
                        }));
                    }
                    DiffOutcome::Stale => {}
                }
            }
            ServerFrame::Typing(typing) => {
                if Some(&typing.user) == self.user.as_ref() {
                    return; // Own typing from another tab.
                }
                let Some(room) = self.rooms.get_mut(&typing.room) else {
                    return;
                };
                let changed = if typing.on {
                    room.typing_in
                        .on(typing.user, now, self.config.typing.incoming_ttl)
                } else {
                    room.typing_in.off(&typing.user)
                };
                if changed {
                    let users = room.typing_in.users();
                    self.events.push(ClientEvent::Typing {
                        room: typing.room,
                        users,
                    });
                }
            }
            ServerFrame::State(state) => {
                if let Some(presence) = state.presence {
                    self.apply_presence(&state.room, presence);
                }
                if let Some(typing) = state.typing {
                    self.apply_typing(now, &state.room, typing.users, Some(typing.version));
                }
            }
            ServerFrame::Reset(reset) => {
                self.reset_room(reset.room, reset.epoch, reset.head, reset.reason);
            }
            ServerFrame::Error(error) => {
                if error.code == ErrorCode::NotJoined
                    && let Some(room_name) = &error.room
                    && let (Some(room), Phase::Polling(_)) =
                        (self.rooms.get(room_name), &self.phase)
                {
                    // The polling session lost its membership (e.g. another node): join again.
                    let frame = ClientFrame::Join(wire::Join {
                        room: room_name.clone(),
                        meta: room.meta.clone(),
                        resume: None,
                    });
                    self.send_frame(frame);
                    return;
                }
                self.events.push(ClientEvent::Error {
                    code: error.code,
                    message: error.message,
                    room: error.room,
                });
            }
            ServerFrame::Draining(draining) => {
                self.retry_hint = Some(Duration::from_millis(draining.retry_after_ms))
            }
            ServerFrame::Left(_) | ServerFrame::Pong(_) => {}
        }
    }

    /// Replaces a room's presence with a snapshot; tells the app if anything changed.
    fn apply_presence(&mut self, room_name: &RoomName, snapshot: wire::PresenceSnapshot) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.presence.snapshot(snapshot) {
            self.events.push(ClientEvent::Presence {
                room: room_name.clone(),
                users: room.presence.users(),
            });
        }
    }

    /// Replaces who is typing in a room (this user left out); `version` is the server's, when
    /// it sent one (polling). Tells the app if anything changed.
    fn apply_typing(
        &mut self,
        now: Instant,
        room_name: &RoomName,
        users: Vec<String>,
        version: Option<u64>,
    ) {
        let ttl = self.config.typing.incoming_ttl;
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let version = version.unwrap_or(room.typing_in.version());
        let me = self.user.as_deref();
        if room.typing_in.replace(users, me, version, now, ttl) {
            self.events.push(ClientEvent::Typing {
                room: room_name.clone(),
                users: room.typing_in.users(),
            });
        }
    }

    fn receive_event(&mut self, event: Event) {
        let room_name = event.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if event.seq.is_none() {
            self.events.push(ClientEvent::Event { event, own: false });
            return;
        }
        let merge = room.timeline.receive(event);
        let repair = merge
            .gap
            .filter(|_| room.repairing.is_none() && matches!(self.phase, Phase::Socket(_)));
        for event in merge.deliver {
            let own = self.pending.remove(&event.id).is_some();
            self.events.push(ClientEvent::Event { event, own });
        }
        if let Some(cursor) = repair {
            // Missing events on a socket: fetch them from history (held ones wait meanwhile).
            let request = self.rng.next_u64();
            if let Some(room) = self.rooms.get_mut(&room_name) {
                room.repairing = Some(request);
            }
            let call = HttpCall::History {
                room: room_name,
                after: cursor.seq,
            };
            self.outputs.push(Output::Http {
                request,
                token: self.token.clone(),
                call,
            });
        }
    }

    fn history_page(&mut self, request: u64, page: wire::EventsPage) {
        let Some(room) = self.rooms.get_mut(&page.room) else {
            return;
        };
        if room.repairing != Some(request) {
            return;
        }
        room.repairing = None;
        let cursor = room.timeline.cursor();
        if let Some(reason) = match cursor {
            Some(c) if c.epoch != page.epoch => Some(ResetReason::EpochChanged),
            Some(c) if page.oldest > c.seq + 1 => Some(ResetReason::HistoryTrimmed),
            _ => None,
        } {
            return self.reset_room(page.room, page.epoch, page.head, reason);
        }
        for event in page.events {
            self.receive_event(event);
        }
    }

    fn acked(&mut self, ack: wire::Ack) {
        let Some(seq) = ack.seq else { return }; // Ephemeral.
        if self.outbox.remove(&ack.id).is_none() {
            return;
        }
        self.events.push(ClientEvent::Acked {
            room: ack.room.clone(),
            id: ack.id.clone(),
            seq,
        });
        self.outbox_changed();
        if let Some((_, acked_seq)) = self.pending.get_mut(&ack.id) {
            *acked_seq = Some(seq);
        }
        // If the event itself can no longer arrive (already behind the cursor), confirm it now.
        self.confirm_passed_pending(&ack.room);
    }

    /// The room's history can not be resumed: start again from `head` in `epoch`, tell the
    /// app, and confirm own publishes the new position has passed (their echo will not come).
    fn reset_room(&mut self, room_name: RoomName, epoch: u64, head: u64, reason: ResetReason) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        room.timeline.reset(epoch, head);
        self.events.push(ClientEvent::Reset {
            room: room_name.clone(),
            reason,
        });
        self.confirm_passed_pending(&room_name);
    }

    /// Confirms acked pending publishes of `room` whose seq the timeline has already passed
    /// (their echo was skipped by a reset, or arrived before they were pending): each is shown
    /// as the server's copy, rebuilt from the outbox record and the acked seq.
    fn confirm_passed_pending(&mut self, room: &RoomName) {
        let Some(cursor) = self.rooms.get(room).and_then(|r| r.timeline.cursor()) else {
            return;
        };
        // In seq order: the earliest passed one first, until none is left (there are few).
        while let Some((seq, id)) = self
            .pending
            .iter()
            .filter(|(_, (record, _))| &record.room == room)
            .filter_map(|(id, (_, seq))| seq.filter(|&seq| seq <= cursor.seq).map(|seq| (seq, id)))
            .min()
            .map(|(seq, id)| (seq, id.clone()))
        {
            let Some((record, _)) = self.pending.remove(&id) else {
                break;
            };
            let event = Event {
                room: record.room,
                seq: Some(seq),
                id: record.id,
                from: self.user.clone().unwrap_or_default(),
                at: record.created_ms,
                body: record.body,
            };
            self.events.push(ClientEvent::Event { event, own: true });
        }
    }

    fn nacked(&mut self, now: Instant, nack: wire::Nack) {
        match nack.code {
            ErrorCode::RateLimited | ErrorCode::StorageUnavailable | ErrorCode::Draining => {
                // Passing conditions: keep it and send it again shortly.
                self.outbox.resend(&nack.id);
                let at = now + self.config.retry_refused_after;
                self.retry_refused_at = Some(self.retry_refused_at.map_or(at, |t| t.min(at)));
            }
            _ => {
                if self.outbox.remove(&nack.id).is_some() {
                    self.pending.remove(&nack.id);
                    self.outbox_changed();
                    self.events.push(ClientEvent::PublishFailed {
                        room: nack.room,
                        id: nack.id,
                        code: nack.code,
                        message: nack.message,
                    });
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers and helpers
    // -----------------------------------------------------------------------------------------

    fn room_timers(&mut self, now: Instant) {
        let mut typing_off = Vec::new();
        for (name, room) in self.rooms.iter_mut() {
            if room.typing_in.expire(now) {
                self.events.push(ClientEvent::Typing {
                    room: name.clone(),
                    users: room.typing_in.users(),
                });
            }
            if let Some(on) = room.typing_out.timeout(now) {
                typing_off.push(ClientFrame::Typing(wire::Typing {
                    room: name.clone(),
                    on,
                }));
            }
        }
        for frame in typing_off {
            self.send_frame(frame);
        }
        self.pump_polling(now);
    }

    fn expire_outbox(&mut self, now: Instant) {
        let expired = self.outbox.expire(self.unix_ms(now));
        if expired.is_empty() {
            return;
        }
        for record in expired {
            self.pending.remove(&record.id);
            self.events.push(ClientEvent::Expired {
                room: record.room,
                id: record.id,
            });
        }
        self.outbox_changed();
    }

    fn outbox_changed(&mut self) {
        self.outbox_unsaved = true;
        self.events.push(ClientEvent::Outbox {
            pending: self.outbox.len(),
        });
    }

    /// A fresh id for an own publish: this client's random prefix and a counter.
    fn next_event_id(&mut self) -> EventId {
        self.next_id += 1;
        EventId::parse([&self.id_prefix, "-", &decimal(self.next_id)].concat())
            .expect("generated ids are valid")
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let (origin, origin_ms) = self.clock_origin;
        origin_ms + millis(now.saturating_duration_since(origin))
    }

    fn instant_of(&self, unix_ms: u64) -> Instant {
        let (origin, origin_ms) = self.clock_origin;
        origin + Duration::from_millis(unix_ms.saturating_sub(origin_ms))
    }
}

#[cfg(test)]
pub(crate) mod tests;
