//! The hub: a sans-IO state machine for rooms, membership, fan-out, presence, typing and
//! connection liveness.
//!
//! It performs no I/O, reads no clock and has no entropy source: the driver
//! (`crate::driver`) feeds it inputs with the current time and carries out what it asks for.
//!
//! # Contract
//!
//! - Inputs are the `handle_*` methods. Each takes the current [`Now`]. An extra
//!   [`Hub::handle_timeout`] is harmless.
//! - After every input the driver drains [`Hub::poll_transmit`] (frames to send, in order) and
//!   then [`Hub::poll_action`] (appends, room loads, replays, closes) until both are empty, and
//!   re-arms one timer at [`Hub::poll_timeout`].
//! - The hub never assigns seqs: durable publishes become [`Action::Append`]; the store's
//!   outcome comes back through [`Hub::handle_append_done`] and only then is the event fanned out
//!   and acknowledged (see `crate::store`).
//! - Broadcast frames are serialized once per event; every member gets a clone of the same
//!   [`Payload`].
//!
//! # Joining and resuming without gaps or doubles
//!
//! A room is *loaded* (its epoch and head read from the store) when its first member joins.
//! A joiner with a resume cursor behind the head becomes a *replaying* member: the driver streams
//! history `(cursor, head]` straight into the connection's queue while the hub buffers the room's
//! live events with seq > head for that member; when the replay is done the buffer follows.
//! Seqs are strictly increasing, so the boundary has neither a gap nor a double.

mod presence;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_sdk::wire::{
    self, Ack, Cursor, ErrorCode, Event, Join, Joined, Json, Left, Nack, Ping, PresenceDiff,
    PresenceSnapshot, Publish, Reset, ResetReason, RoomName, ServerFrame, TypingNotice, Welcome,
    close_code,
};

use crate::auth::Identity;
use crate::store::{
    AppendDone, AppendJob, AppendOutcome, AppendRequest, Origin, RoomHead, StoreError, StoredEvent,
};
use presence::{Arrival, Change, Presence};

/// A connection's id inside this server process.
pub type ConnId = u64;

/// A serialized frame, cheap to clone (shared bytes).
pub type Payload = axum::extract::ws::Utf8Bytes;

/// The current time, as the hub needs it: monotonic for deadlines, wall clock for timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time for timers and liveness.
    pub instant: Instant,
    /// Milliseconds since the Unix epoch, stamped on events and presence.
    pub unix_ms: u64,
}

/// Tunables of the hub.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// How often clients must send something; silence for twice as long closes the connection.
    pub heartbeat: Duration,
    /// How long a user whose last connection dropped still shows as present.
    pub presence_grace: Duration,
    /// How long a `typing` on lasts without a refresh.
    pub typing_ttl: Duration,
    /// Largest presence meta, in bytes of JSON.
    pub max_meta_bytes: usize,
    /// Most rooms one connection may be in.
    pub max_rooms_per_conn: usize,
    /// Most live frames buffered for one member while its history replay runs.
    pub replay_buffer: usize,
    /// Prefix of this process's connection ids on the wire.
    pub node: String,
    /// A polling session without a request for this long is gone (presence leaves after grace).
    pub poll_session_timeout: Duration,
    /// Sustained publishes per second per connection.
    pub publish_rate: f64,
    /// Publishes a connection may burst above the rate.
    pub publish_burst: f64,
    /// Where every room's presence and typing versions start. The driver sets it from the
    /// clock, so versions after a restart never repeat ones a polling client saw before.
    pub version_base: u64,
}

impl Default for HubConfig {
    fn default() -> HubConfig {
        HubConfig {
            heartbeat: Duration::from_secs(15),
            presence_grace: Duration::from_secs(5),
            typing_ttl: Duration::from_secs(6),
            max_meta_bytes: 2048,
            max_rooms_per_conn: 100,
            replay_buffer: 4096,
            node: "n".into(),
            poll_session_timeout: Duration::from_secs(40),
            publish_rate: 50.0,
            publish_burst: 200.0,
            version_base: 0,
        }
    }
}

/// A frame to send to one connection.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// The recipient.
    pub conn: ConnId,
    /// The serialized frame.
    pub payload: Payload,
    /// Whether it answers the recipient's own frame (welcome, joined, left, ack, nack, error,
    /// pong, reset) rather than reporting what others did. Polling sessions return replies in
    /// the response to their `POST` and only use other frames as a wake-up.
    pub reply: bool,
    /// The client frame this reply is the answer to, when the client waits for one (a polling
    /// `POST` is answered once each of its joins and durable publishes has its answer).
    pub answers: Option<Answered>,
}

/// A client frame that waits for its answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Answered {
    /// A `join`, answered by `joined` or by an `error` refusing it.
    Join(RoomName),
    /// A durable `publish`, answered by `ack` or `nack`.
    Publish(RoomName, wire::EventId),
}

impl Answered {
    /// What answers `frame`, if the hub answers it (later, possibly: after storing or
    /// loading): the hub marks that reply's [`Transmit::answers`] with the same value.
    pub fn awaited(frame: &wire::ClientFrame) -> Option<Answered> {
        match frame {
            wire::ClientFrame::Publish(p) if p.durable => {
                Some(Answered::Publish(p.room.clone(), p.id.clone()))
            }
            wire::ClientFrame::Join(join) => Some(Answered::Join(join.room.clone())),
            _ => None,
        }
    }
}

/// Work the driver must do for the hub.
#[derive(Debug)]
pub enum Action {
    /// Submit to the store; feed the outcome to [`Hub::handle_append_done`].
    Append(AppendJob),
    /// Read the room's head; feed it to [`Hub::handle_room_loaded`].
    LoadRoom(RoomName),
    /// Send the room's events in `(after, until]` to `conn`, in order, after everything already
    /// transmitted to it; then call [`Hub::handle_replay_done`]. If the history no longer covers
    /// `after`, send nothing and report [`ReplayOutcome::NotCovered`].
    Replay {
        /// The member.
        conn: ConnId,
        /// The room.
        room: RoomName,
        /// The client's last seq.
        after: u64,
        /// The room's head when the member joined.
        until: u64,
    },
    /// A backend publish ([`Hub::handle_backend_publish`]) finished; answer its request.
    Complete {
        /// The ticket the request was submitted with.
        ticket: u64,
        /// What the store did (the event was already fanned out if stored).
        result: Result<AppendOutcome, StoreError>,
    },
    /// Close the connection with this WebSocket close code; the hub has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// A code from [`wire::close_code`].
        code: u16,
        /// Why, as a wire error code (used as the close reason).
        reason: ErrorCode,
    },
}

/// A room as a poll sees it (see [`Hub::room_view`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomView {
    /// Whether the asking connection is a member.
    pub member: bool,
    /// Presence with its version.
    pub presence: PresenceSnapshot,
    /// Typing with its version.
    pub typing: wire::TypingSnapshot,
}

/// How a history replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// All events in the range were sent.
    Done,
    /// The history no longer reaches back to the cursor (trimmed); nothing was sent.
    NotCovered,
    /// The history could not be read; nothing more will be sent.
    Failed,
}

struct Conn {
    identity: Arc<Identity>,
    wire_id: String,
    kind: ConnKind,
    last_seen: Instant,
    /// Rooms joined or being joined.
    rooms: HashSet<RoomName>,
    publish_budget: TokenBucket,
}

/// How a client is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnKind {
    /// A WebSocket: frames are pushed; silent for two heartbeats means dead.
    Socket,
    /// A polling session: the client pulls history and state itself, so the hub never replays
    /// to it; it is gone after [`HubConfig::poll_session_timeout`] without a request.
    Poll,
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

enum RoomState {
    /// Waiting for the store to report the head.
    Loading {
        joins: Vec<(ConnId, Join)>,
        early: Vec<StoredEvent>,
        publishes: Vec<(ConnId, Publish)>,
    },
    /// Ready: `head` is the newest seq fanned out.
    Open { epoch: u64, head: u64 },
}

#[derive(Default)]
struct Room {
    state: Option<RoomState>,
    /// Ordered by connection id, so fan-out order is deterministic (no hidden entropy).
    members: BTreeMap<ConnId, Member>,
    presence: Presence,
    /// Who is typing: user -> (expiry, the connection that said so).
    typing: HashMap<String, (Instant, ConnId)>,
    /// Increases whenever the set of typing users changes (polling clients compare it).
    typing_version: u64,
}

enum Member {
    Live,
    Replaying { until: u64, buffered: Vec<Payload> },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    PresenceLeave(RoomName, String),
    TypingExpiry(RoomName, String),
}

/// The hub state machine. See the module docs for the driving contract.
pub struct Hub {
    config: HubConfig,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomName, Room>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    next_sweep: Option<Instant>,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    draining: bool,
    /// Replays still streaming for memberships that were left. Their `left` frame, and any
    /// rejoin of the same room by the same connection (kept here), wait until the replay ends,
    /// so no replayed event can arrive after them.
    orphaned_replays: HashMap<(ConnId, RoomName), Rejoin>,
    /// How many of `conns` are polling sessions (kept, so counting is O(1)).
    poll_sessions: usize,
}

/// A rejoin (and the publishes sent after it) waiting for an orphaned replay to end.
#[derive(Default)]
struct Rejoin {
    join: Option<Join>,
    publishes: Vec<Publish>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("conns", &self.conns.len())
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

/// Serializes one frame.
pub fn encode(frame: &ServerFrame) -> Payload {
    Payload::from(frame.encode())
}

/// Serializes a stored event as the `event` frame clients receive.
pub fn encode_event(stored: &StoredEvent) -> Payload {
    encode(&ServerFrame::Event(stored.event.clone()))
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            config,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            timers: BinaryHeap::new(),
            next_sweep: None,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            draining: false,
            orphaned_replays: HashMap::new(),
            poll_sessions: 0,
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    // -----------------------------------------------------------------------------------------
    // Outputs
    // -----------------------------------------------------------------------------------------

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next piece of work for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Hub::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        [timer, self.next_sweep].into_iter().flatten().min()
    }

    // -----------------------------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------------------------

    /// A room's presence, if anyone is in it on this node.
    pub fn presence(&self, room: &RoomName) -> Option<PresenceSnapshot> {
        self.rooms.get(room).map(|r| r.presence.snapshot())
    }

    /// Number of open connections of either kind.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Open connections by kind: (sockets, polling sessions).
    pub fn connections_by_kind(&self) -> (usize, usize) {
        (self.conns.len() - self.poll_sessions, self.poll_sessions)
    }

    /// Distinct users with at least one connection.
    pub fn user_count(&self) -> usize {
        self.conns
            .values()
            .map(|c| c.identity.user.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// What a poll needs to know about a room: whether `conn` is a member, and the room's
    /// presence and typing state with their versions. `None` when the room is not open here.
    pub fn room_view(&self, room: &RoomName, conn: ConnId) -> Option<RoomView> {
        let state = self.rooms.get(room)?;
        let Some(RoomState::Open { .. }) = state.state else {
            return None;
        };
        let mut typing: Vec<String> = state.typing.keys().cloned().collect();
        typing.sort_unstable();
        Some(RoomView {
            member: state.members.contains_key(&conn),
            presence: state.presence.snapshot(),
            typing: wire::TypingSnapshot {
                version: state.typing_version,
                users: typing,
            },
        })
    }

    /// Number of rooms with members (or lingering presence) on this node.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    // -----------------------------------------------------------------------------------------
    // Inputs
    // -----------------------------------------------------------------------------------------

    /// An authenticated connection opened; it is greeted with `welcome`.
    pub fn handle_connect(
        &mut self,
        now: Now,
        conn: ConnId,
        identity: Arc<Identity>,
        kind: ConnKind,
    ) {
        let wire_id = format!("{}-{conn}", self.config.node);
        let welcome = Welcome {
            conn: wire_id.clone(),
            user: identity.user.clone(),
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            protocol: wire::PROTOCOL_VERSION.into(),
        };
        self.send(conn, &ServerFrame::Welcome(welcome));
        self.conns.insert(
            conn,
            Conn {
                identity,
                wire_id,
                kind,
                last_seen: now.instant,
                rooms: HashSet::new(),
                publish_budget: TokenBucket::full(self.config.publish_burst, now.instant),
            },
        );
        if kind == ConnKind::Poll {
            self.poll_sessions += 1;
        }
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.instant + self.config.heartbeat);
        }
    }

    /// A backend publishes to a room (REST, API key). The outcome comes back as
    /// [`Action::Complete`] with `ticket`, after the event was fanned out.
    pub fn handle_backend_publish(&mut self, _now: Now, ticket: u64, request: AppendRequest) {
        self.actions.push_back(Action::Append(AppendJob {
            origin: Origin::Request(ticket),
            request,
        }));
    }

    /// A frame arrived from a connection (any frame also proves it is alive).
    pub fn handle_frame(&mut self, now: Now, conn: ConnId, frame: wire::ClientFrame) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        state.last_seen = now.instant;
        match frame {
            wire::ClientFrame::Hello(_) => self.send_error(
                conn,
                ErrorCode::BadFrame,
                "this connection is already authenticated",
                None,
            ),
            wire::ClientFrame::Join(join) => self.join(now, conn, join),
            wire::ClientFrame::Leave(leave) => self.leave(now, conn, leave.room),
            wire::ClientFrame::Publish(publish) => self.publish(now, conn, publish),
            wire::ClientFrame::Typing(typing) => self.typing(now, conn, typing.room, typing.on),
            wire::ClientFrame::SetPresence(update) => {
                self.set_presence(conn, update.room, update.meta)
            }
            wire::ClientFrame::Ping(ping) => {
                self.send(conn, &ServerFrame::Pong(Ping { nonce: ping.nonce }))
            }
        }
    }

    /// The connection is alive (e.g. a WebSocket-level ping) without sending a frame.
    pub fn handle_activity(&mut self, now: Now, conn: ConnId) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.last_seen = now.instant;
        }
    }

    /// The connection closed. Its presence lingers for the grace period.
    pub fn handle_disconnect(&mut self, now: Now, conn: ConnId) {
        self.drop_conn(now, conn);
    }

    /// The connection's outbound queue is full: close it (it can resume to catch up).
    pub fn handle_slow_consumer(&mut self, now: Now, conn: ConnId) {
        if self.drop_conn(now, conn) {
            self.actions.push_back(Action::Close {
                conn,
                code: close_code::SLOW_CONSUMER,
                reason: ErrorCode::SlowConsumer,
            });
        }
    }

    /// The store reported a room's head (or failed to).
    pub fn handle_room_loaded(
        &mut self,
        now: Now,
        room_name: RoomName,
        result: Result<RoomHead, StoreError>,
    ) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(RoomState::Loading { .. }) = room.state else {
            return;
        };
        let Some(RoomState::Loading {
            joins,
            early,
            publishes,
        }) = room.state.take()
        else {
            unreachable!()
        };
        match result {
            Ok(head) => {
                room.state = Some(RoomState::Open {
                    epoch: head.epoch,
                    head: head.head,
                });
                for (conn, join) in joins {
                    self.complete_join(now, conn, join);
                }
                for stored in early {
                    self.fan_out(now, stored);
                }
                for (conn, publish) in publishes {
                    self.publish(now, conn, publish);
                }
                // Everyone who waited may have gone while the room loaded.
                self.forget_room_if_idle(&room_name);
            }
            Err(err) => {
                self.rooms.remove(&room_name);
                let message = format!("could not open room {room_name}: {err}");
                for (conn, _) in joins {
                    if let Some(state) = self.conns.get_mut(&conn) {
                        state.rooms.remove(&room_name);
                    }
                    self.refuse_join(
                        conn,
                        ErrorCode::StorageUnavailable,
                        &message,
                        room_name.clone(),
                    );
                }
                for (conn, publish) in publishes {
                    self.send_nack(
                        conn,
                        publish.room,
                        publish.id,
                        ErrorCode::StorageUnavailable,
                        message.clone(),
                        None,
                    );
                }
            }
        }
    }

    /// The store finished an append.
    pub fn handle_append_done(&mut self, now: Now, done: AppendDone) {
        let conn = match done.origin {
            Origin::Conn(conn) => conn,
            Origin::Request(ticket) => {
                if let Ok(AppendOutcome::Stored(stored)) = &done.result {
                    self.fan_out(now, stored.clone());
                }
                self.actions.push_back(Action::Complete {
                    ticket,
                    result: done.result,
                });
                return;
            }
        };
        match done.result {
            Ok(AppendOutcome::Stored(stored)) => {
                let seq = stored.seq();
                self.fan_out(now, stored);
                self.send_ack(conn, done.room, done.id, Some(seq), false);
            }
            Ok(AppendOutcome::Duplicate { seq }) => {
                self.send_ack(conn, done.room, done.id, Some(seq), true)
            }
            Ok(AppendOutcome::Conflict { head }) => {
                let message = format!("the room's head is {head}: someone published first");
                self.send_nack(
                    conn,
                    done.room,
                    done.id,
                    ErrorCode::Conflict,
                    message,
                    Some(head),
                );
            }
            Err(err) => {
                let message = format!("{err}; nothing was stored, retry with the same id");
                self.send_nack(
                    conn,
                    done.room,
                    done.id,
                    ErrorCode::StorageUnavailable,
                    message,
                    None,
                );
            }
        }
    }

    /// A replay requested by [`Action::Replay`] ended.
    pub fn handle_replay_done(
        &mut self,
        now: Now,
        conn: ConnId,
        room_name: RoomName,
        outcome: ReplayOutcome,
    ) {
        if let Some(rejoin) = self.orphaned_replays.remove(&(conn, room_name.clone())) {
            self.send(conn, &ServerFrame::Left(Left { room: room_name }));
            if let Some(join) = rejoin.join {
                self.join(now, conn, join);
            }
            for publish in rejoin.publishes {
                self.publish(now, conn, publish);
            }
            return;
        }
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(Some(RoomState::Open { epoch, .. })) = Some(&room.state) else {
            return;
        };
        let epoch = *epoch;
        let Some(member) = room.members.get_mut(&conn) else {
            return;
        };
        let Member::Replaying { until, buffered } = std::mem::replace(member, Member::Live) else {
            return;
        };
        let reason = match outcome {
            ReplayOutcome::Done => None,
            ReplayOutcome::NotCovered => Some(ResetReason::HistoryTrimmed),
            ReplayOutcome::Failed => Some(ResetReason::HistoryUnavailable),
        };
        if let Some(reason) = reason {
            self.send(
                conn,
                &ServerFrame::Reset(Reset {
                    room: room_name,
                    reason,
                    epoch,
                    head: until,
                }),
            );
        }
        for payload in buffered {
            self.transmits.push_back(Transmit {
                reply: false,
                answers: None,
                conn,
                payload,
            });
        }
    }

    /// Timers: presence grace, typing expiry, dead-connection sweep.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now.instant {
                break;
            }
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::PresenceLeave(room_name, user) => {
                    let Some(room) = self.rooms.get_mut(&room_name) else {
                        continue;
                    };
                    if let Some(change) = room.presence.expire(&user, now.instant) {
                        self.broadcast_presence(&room_name, change, None);
                    }
                    self.forget_room_if_idle(&room_name);
                }
                Timer::TypingExpiry(room_name, user) => {
                    let Some(room) = self.rooms.get_mut(&room_name) else {
                        continue;
                    };
                    if let Some(&(until, typist)) = room.typing.get(&user)
                        && until <= now.instant
                    {
                        room.typing.remove(&user);
                        room.typing_version += 1;
                        self.broadcast_typing(&room_name, user, false, Some(typist));
                        self.forget_room_if_idle(&room_name);
                    }
                }
            }
        }
        if self.next_sweep.is_some_and(|at| at <= now.instant) {
            self.sweep_dead_connections(now);
        }
    }

    /// The server is shutting down: tell every connection when to come back, then close it.
    pub fn handle_drain(&mut self, retry_after: Duration) {
        self.draining = true;
        let payload = encode(&ServerFrame::Draining(wire::Draining {
            retry_after_ms: retry_after.as_millis() as u64,
        }));
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.transmits.push_back(Transmit {
                reply: false,
                answers: None,
                conn,
                payload: payload.clone(),
            });
            self.actions.push_back(Action::Close {
                conn,
                code: close_code::SERVICE_RESTART,
                reason: ErrorCode::Draining,
            });
        }
        self.conns.clear();
        self.poll_sessions = 0;
        self.rooms.clear();
        self.timers.clear();
        self.orphaned_replays.clear();
        self.next_sweep = None;
    }

    // -----------------------------------------------------------------------------------------
    // Frame handlers
    // -----------------------------------------------------------------------------------------

    fn join(&mut self, now: Now, conn: ConnId, join: Join) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, join.room.clone())) {
            waiting.join = Some(join);
            return;
        }
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let room_name = join.room.clone();
        if !state.identity.can_join(&room_name) {
            let message = format!("your token grants no access to room {room_name}");
            return self.refuse_join(conn, ErrorCode::Forbidden, &message, room_name);
        }
        if join.meta.len() > self.config.max_meta_bytes {
            let message = format!(
                "presence meta is {} bytes; the limit is {}",
                join.meta.len(),
                self.config.max_meta_bytes
            );
            return self.refuse_join(conn, ErrorCode::MetaTooLarge, &message, room_name);
        }
        if state.rooms.contains(&room_name) {
            // Joining again refreshes the meta and re-sends the room's state; no replay.
            let joined_already = self
                .rooms
                .get(&room_name)
                .is_some_and(|room| room.members.contains_key(&conn));
            if joined_already {
                self.set_presence(conn, room_name.clone(), join.meta);
                self.send_joined(conn, &room_name);
            }
            return;
        }
        if state.rooms.len() >= self.config.max_rooms_per_conn {
            let message = format!(
                "a connection may be in at most {} rooms; leave one first",
                self.config.max_rooms_per_conn
            );
            return self.refuse_join(conn, ErrorCode::TooManyRooms, &message, room_name);
        }
        self.conns
            .get_mut(&conn)
            .expect("checked above")
            .rooms
            .insert(room_name.clone());
        let base = self.config.version_base;
        let room = self.rooms.entry(room_name.clone()).or_insert_with(|| Room {
            presence: Presence::starting_at(base),
            typing_version: base,
            ..Room::default()
        });
        match &mut room.state {
            Some(RoomState::Open { .. }) => self.complete_join(now, conn, join),
            Some(RoomState::Loading { joins, .. }) => joins.push((conn, join)),
            None => {
                room.state = Some(RoomState::Loading {
                    joins: vec![(conn, join)],
                    early: Vec::new(),
                    publishes: Vec::new(),
                });
                self.actions.push_back(Action::LoadRoom(room_name));
            }
        }
    }

    fn complete_join(&mut self, now: Now, conn: ConnId, join: Join) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if !state.rooms.contains(&join.room) {
            return; // Left again (or disconnected) while the room was loading.
        }
        let identity = Arc::clone(&state.identity);
        let wire_id = state.wire_id.clone();
        let kind = state.kind;
        let room_name = join.room;
        let room = self
            .rooms
            .get_mut(&room_name)
            .expect("joins are only completed for existing rooms");
        let Some(RoomState::Open { epoch, head }) = room.state else {
            return;
        };
        let change = room.presence.add(Arrival {
            user: &identity.user,
            name: identity.name.as_deref(),
            conn,
            wire_id: &wire_id,
            meta: join.meta,
            since: now.unix_ms,
        });
        if let Some(change) = change {
            self.broadcast_presence(&room_name, change, None);
        }
        let room = self.rooms.get_mut(&room_name).expect("still there");
        // Polling sessions carry their cursors in every poll; the hub never replays to them.
        let resume = if kind == ConnKind::Poll {
            None
        } else {
            join.resume
        };
        let member = match resume {
            Some(Cursor {
                epoch: their_epoch,
                seq,
            }) if their_epoch == epoch && seq < head => {
                self.actions.push_back(Action::Replay {
                    conn,
                    room: room_name.clone(),
                    after: seq,
                    until: head,
                });
                Member::Replaying {
                    until: head,
                    buffered: Vec::new(),
                }
            }
            _ => Member::Live,
        };
        room.members.insert(conn, member);
        self.send_joined(conn, &room_name);
        let reset = match resume {
            Some(cursor) if cursor.epoch != epoch => Some(ResetReason::EpochChanged),
            Some(cursor) if cursor.seq > head => Some(ResetReason::CursorAhead),
            _ => None,
        };
        if let Some(reason) = reset {
            self.send(
                conn,
                &ServerFrame::Reset(Reset {
                    room: room_name,
                    reason,
                    epoch,
                    head,
                }),
            );
        }
    }

    fn send_joined(&mut self, conn: ConnId, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let Some(RoomState::Open { epoch, head }) = room.state else {
            return;
        };
        let mut typing: Vec<String> = room.typing.keys().cloned().collect();
        typing.sort_unstable();
        let joined = Joined {
            room: room_name.clone(),
            epoch,
            head,
            presence: room.presence.snapshot(),
            typing,
        };
        let answers = Some(Answered::Join(room_name.clone()));
        self.send_answer(conn, &ServerFrame::Joined(joined), answers);
    }

    fn leave(&mut self, now: Now, conn: ConnId, room_name: RoomName) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, room_name.clone())) {
            // Leaving again before the deferred rejoin happened cancels it; the one `left`
            // frame sent when the replay ends answers both leaves.
            waiting.join = None;
            let overtaken = std::mem::take(&mut waiting.publishes);
            self.refuse_overtaken_publishes(conn, overtaken);
            return;
        }
        let removed = self
            .conns
            .get_mut(&conn)
            .is_some_and(|state| state.rooms.remove(&room_name));
        let replaying = self
            .rooms
            .get(&room_name)
            .and_then(|room| room.members.get(&conn))
            .is_some_and(|member| matches!(member, Member::Replaying { .. }));
        if removed {
            self.remove_member(now, conn, &room_name, false);
        }
        if replaying {
            self.orphaned_replays
                .insert((conn, room_name), Rejoin::default());
        } else {
            // Leaving a room one is not in is not an error: the outcome is the same.
            self.send(conn, &ServerFrame::Left(Left { room: room_name }));
        }
    }

    fn publish(&mut self, now: Now, conn: ConnId, publish: Publish) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, publish.room.clone()))
            && waiting.join.is_some()
        {
            waiting.publishes.push(publish);
            return;
        }
        if !self.conns.contains_key(&conn) {
            return;
        }
        let from = match self.admit_publish(now, conn, &publish) {
            Ok(from) => from,
            Err((code, message)) => {
                return self.send_nack(conn, publish.room, publish.id, code, message, None);
            }
        };
        let room = self
            .rooms
            .get_mut(&publish.room)
            .expect("admitted publishes are to existing rooms");
        if let Some(RoomState::Loading { publishes, .. }) = &mut room.state {
            publishes.push((conn, publish));
            return;
        }
        if !publish.durable {
            let event = Event {
                room: publish.room.clone(),
                seq: None,
                id: publish.id.clone(),
                from,
                at: now.unix_ms,
                body: publish.body,
            };
            let payload = encode(&ServerFrame::Event(event));
            for &member in room.members.keys() {
                if member != conn {
                    self.transmits.push_back(Transmit {
                        reply: false,
                        answers: None,
                        conn: member,
                        payload: payload.clone(),
                    });
                }
            }
            return self.send_ack(conn, publish.room, publish.id, None, false);
        }
        let request = AppendRequest {
            room: publish.room,
            id: publish.id,
            from,
            at: now.unix_ms,
            body: publish.body,
            if_seq: publish.if_seq,
        };
        self.actions.push_back(Action::Append(AppendJob {
            origin: Origin::Conn(conn),
            request,
        }));
    }

    /// Checks a publish from a known connection against the rate limit, membership, grants and
    /// shutdown; returns the publisher's user id, or why it is refused.
    fn admit_publish(
        &mut self,
        now: Now,
        conn: ConnId,
        publish: &Publish,
    ) -> Result<String, (ErrorCode, String)> {
        let (rate, burst) = (self.config.publish_rate, self.config.publish_burst);
        let state = self
            .conns
            .get_mut(&conn)
            .expect("the caller checked the connection");
        if let Err(wait) = state.publish_budget.take(now.instant, rate, burst) {
            let retry = wait.as_millis().max(1);
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "at most {rate} publishes per second (bursts of {burst}); retry in {retry} ms"
                ),
            ));
        }
        // `Conn::rooms` and `rooms` agree, so a joined room exists; check both anyway.
        if !state.rooms.contains(&publish.room) || !self.rooms.contains_key(&publish.room) {
            return Err((
                ErrorCode::NotJoined,
                format!("join room {} before publishing to it", publish.room),
            ));
        }
        if !state.identity.can_publish(&publish.room) {
            return Err((
                ErrorCode::Forbidden,
                format!(
                    "your token does not grant publishing to room {}",
                    publish.room
                ),
            ));
        }
        if self.draining {
            return Err((
                ErrorCode::Draining,
                "the server is shutting down; publish again after reconnecting".to_owned(),
            ));
        }
        Ok(state.identity.user.clone())
    }

    fn typing(&mut self, now: Now, conn: ConnId, room_name: RoomName, on: bool) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let user = state.identity.user.clone();
        let Some(room) = self
            .rooms
            .get_mut(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before signalling typing in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        if on {
            let until = now.instant + self.config.typing_ttl;
            if room.typing.insert(user.clone(), (until, conn)).is_none() {
                room.typing_version += 1;
            }
            self.timers.push(Reverse((
                until,
                Timer::TypingExpiry(room_name.clone(), user.clone()),
            )));
            // Every refresh is forwarded: receivers expire typing locally unless refreshed.
            self.broadcast_typing(&room_name, user, true, Some(conn));
        } else if room.typing.remove(&user).is_some() {
            room.typing_version += 1;
            self.broadcast_typing(&room_name, user, false, Some(conn));
        }
    }

    fn set_presence(&mut self, conn: ConnId, room_name: RoomName, meta: Json) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if meta.len() > self.config.max_meta_bytes {
            let message = format!(
                "presence meta is {} bytes; the limit is {}",
                meta.len(),
                self.config.max_meta_bytes
            );
            return self.send_error(conn, ErrorCode::MetaTooLarge, &message, Some(room_name));
        }
        let user = state.identity.user.clone();
        let Some(room) = self
            .rooms
            .get_mut(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before updating presence in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        if let Some(change) = room.presence.set_meta(&user, conn, meta) {
            self.broadcast_presence(&room_name, change, None);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------------------------

    /// Fans a stored event out to the room's members, in seq order, once.
    fn fan_out(&mut self, now: Now, stored: StoredEvent) {
        let seq = stored.seq();
        let room_name = stored.event.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let (epoch, head) = match &mut room.state {
            Some(RoomState::Loading { early, .. }) => return early.push(stored),
            Some(RoomState::Open { epoch, head }) => (epoch, head),
            None => return,
        };
        if stored.epoch != *epoch || seq <= *head {
            // Already delivered (or from a history lineage this room no longer follows).
            return;
        }
        if seq != *head + 1 {
            tracing::warn!(room = %room_name, head = *head, seq, "the store reported a gap in a room's seqs");
        }
        *head = seq;
        let payload = encode_event(&stored);
        let mut overflowed = Vec::new();
        for (&conn, member) in room.members.iter_mut() {
            match member {
                Member::Live => self.transmits.push_back(Transmit {
                    reply: false,
                    answers: None,
                    conn,
                    payload: payload.clone(),
                }),
                Member::Replaying { until, buffered } => {
                    if seq > *until {
                        buffered.push(payload.clone());
                        if buffered.len() > self.config.replay_buffer {
                            overflowed.push(conn);
                        }
                    }
                }
            }
        }
        for conn in overflowed {
            self.handle_slow_consumer(now, conn);
        }
    }

    /// Forgets a connection everywhere; returns whether it was known.
    fn drop_conn(&mut self, now: Now, conn: ConnId) -> bool {
        let Some(state) = self.conns.remove(&conn) else {
            return false;
        };
        if state.kind == ConnKind::Poll {
            self.poll_sessions -= 1;
        }
        self.orphaned_replays
            .retain(|(orphan, _), _| *orphan != conn);
        for room_name in state.rooms {
            self.remove_member_of(now, conn, &state.identity.user, &room_name, true);
        }
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
        true
    }

    fn remove_member(&mut self, now: Now, conn: ConnId, room_name: &RoomName, linger: bool) {
        let Some(user) = self
            .conns
            .get(&conn)
            .map(|state| state.identity.user.clone())
        else {
            return;
        };
        self.remove_member_of(now, conn, &user, room_name, linger);
    }

    fn remove_member_of(
        &mut self,
        now: Now,
        conn: ConnId,
        user: &str,
        room_name: &RoomName,
        linger: bool,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if let Some(RoomState::Loading {
            joins, publishes, ..
        }) = &mut room.state
        {
            joins.retain(|(c, _)| *c != conn);
            let (theirs, others): (Vec<_>, Vec<_>) = std::mem::take(publishes)
                .into_iter()
                .partition(|(c, _)| *c == conn);
            *publishes = others;
            self.refuse_overtaken_publishes(conn, theirs.into_iter().map(|(_, p)| p));
        }
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        room.members.remove(&conn);
        let typing_by_this_conn = room.typing.get(user).is_some_and(|(_, by)| *by == conn);
        if typing_by_this_conn {
            room.typing.remove(user);
            room.typing_version += 1;
        }
        let linger_until = linger.then(|| now.instant + self.config.presence_grace);
        let change = room.presence.remove(user, conn, linger_until);
        if let Some(deadline) = linger_until {
            self.timers.push(Reverse((
                deadline,
                Timer::PresenceLeave(room_name.clone(), user.to_owned()),
            )));
        }
        if typing_by_this_conn {
            self.broadcast_typing(room_name, user.to_owned(), false, None);
        }
        if let Some(change) = change {
            self.broadcast_presence(room_name, change, None);
        }
        self.forget_room_if_idle(room_name);
    }

    /// Drops a room from memory once nobody is in it; it is reloaded from the store on demand.
    fn forget_room_if_idle(&mut self, room_name: &RoomName) {
        let idle = self.rooms.get(room_name).is_some_and(|room| {
            room.members.is_empty()
                && room.presence.is_empty()
                && room.typing.is_empty()
                && matches!(room.state, Some(RoomState::Open { .. }))
        });
        if idle {
            self.rooms.remove(room_name);
        }
    }

    fn sweep_dead_connections(&mut self, now: Now) {
        let socket_limit = self.config.heartbeat * 2;
        let poll_limit = self.config.poll_session_timeout;
        let mut dead: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let limit = match c.kind {
                    ConnKind::Socket => socket_limit,
                    ConnKind::Poll => poll_limit,
                };
                now.instant.duration_since(c.last_seen) >= limit
            })
            .map(|(&id, _)| id)
            .collect();
        dead.sort_unstable();
        for conn in dead {
            if self.drop_conn(now, conn) {
                self.actions.push_back(Action::Close {
                    conn,
                    code: close_code::IDLE_TIMEOUT,
                    reason: ErrorCode::IdleTimeout,
                });
            }
        }
        self.next_sweep = (!self.conns.is_empty()).then(|| now.instant + self.config.heartbeat);
    }

    fn broadcast_presence(&mut self, room_name: &RoomName, change: Change, except: Option<ConnId>) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let mut diff = PresenceDiff {
            room: room_name.clone(),
            version: room.presence.version(),
            joins: vec![],
            updates: vec![],
            leaves: vec![],
        };
        match change {
            Change::Join(user) => diff.joins.push(user),
            Change::Update(user) => diff.updates.push(user),
            Change::Leave(user) => diff.leaves.push(user),
        }
        let payload = encode(&ServerFrame::Presence(diff));
        for &conn in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                answers: None,
                conn,
                payload: payload.clone(),
            });
        }
    }

    fn broadcast_typing(
        &mut self,
        room_name: &RoomName,
        user: String,
        on: bool,
        except: Option<ConnId>,
    ) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let payload = encode(&ServerFrame::Typing(TypingNotice {
            room: room_name.clone(),
            user,
            on,
        }));
        for &conn in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                answers: None,
                conn,
                payload: payload.clone(),
            });
        }
    }

    /// Nacks publishes that were waiting for a room the connection has left since.
    fn refuse_overtaken_publishes(
        &mut self,
        conn: ConnId,
        publishes: impl IntoIterator<Item = Publish>,
    ) {
        for publish in publishes {
            let message = format!(
                "room {} was left before this publish could be sent",
                publish.room
            );
            self.send_nack(
                conn,
                publish.room,
                publish.id,
                ErrorCode::NotJoined,
                message,
                None,
            );
        }
    }

    fn send(&mut self, conn: ConnId, frame: &ServerFrame) {
        self.send_answer(conn, frame, None);
    }

    fn send_answer(&mut self, conn: ConnId, frame: &ServerFrame, answers: Option<Answered>) {
        self.transmits.push_back(Transmit {
            reply: true,
            answers,
            conn,
            payload: encode(frame),
        });
    }

    fn send_error(&mut self, conn: ConnId, code: ErrorCode, message: &str, room: Option<RoomName>) {
        self.send(conn, &ServerFrame::error(code, message, room));
    }

    /// Answers a `join` with an error.
    fn refuse_join(&mut self, conn: ConnId, code: ErrorCode, message: &str, room: RoomName) {
        let answers = Some(Answered::Join(room.clone()));
        self.send_answer(
            conn,
            &ServerFrame::error(code, message, Some(room)),
            answers,
        );
    }

    fn send_ack(
        &mut self,
        conn: ConnId,
        room: RoomName,
        id: wire::EventId,
        seq: Option<u64>,
        duplicate: bool,
    ) {
        let answers = Answered::Publish(room.clone(), id.clone());
        let ack = Ack {
            room,
            id,
            seq,
            duplicate,
        };
        self.answer_publish(conn, &ServerFrame::Ack(ack), answers);
    }

    fn send_nack(
        &mut self,
        conn: ConnId,
        room: RoomName,
        id: wire::EventId,
        code: ErrorCode,
        message: String,
        head: Option<u64>,
    ) {
        let answers = Answered::Publish(room.clone(), id.clone());
        let nack = Nack {
            room,
            id,
            code,
            message,
            head,
        };
        self.answer_publish(conn, &ServerFrame::Nack(nack), answers);
    }

    /// Sends a publish's `ack` or `nack`, unless its connection has gone meanwhile (a durable
    /// publish is answered after storing).
    fn answer_publish(&mut self, conn: ConnId, frame: &ServerFrame, answers: Answered) {
        if self.conns.contains_key(&conn) {
            self.send_answer(conn, frame, Some(answers));
        }
    }
}

#[cfg(test)]
mod tests;
