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
//! # Where things are
//!
//! This file is the map: the types the driver sees, the hub's state, the outputs, the queries,
//! [`Hub::handle_frame`] (which frame goes where), timers and drain. The rest, by seam:
//!
//! - `connection.rs` — connect, liveness, disconnect, slow consumers, the dead-connection sweep.
//! - `membership.rs` — join (room loads, resume replays), leave, rejoin after an orphaned replay;
//!   how a resume has neither gaps nor doubles.
//! - `publish.rs` — admitting publishes (rate limit, grants), appends, acks and nacks.
//! - `stored.rs` — stored events (this node's appends, other nodes' from the bus) fanned out once
//!   and in seq order: gaps held and repaired from the store, lost lineages reset.
//! - `typing_and_presence.rs` — `typing` and `set_presence` frames and their broadcasts.
//! - `live_cursors.rs` — `cursor` frames: each member's live cursor, coalesced per connection,
//!   fanned out, dropped when its connection goes; carried across nodes like presence.
//! - `presence.rs` — one room's presence: users aggregating connections, lingering in grace.
//! - `federation.rs` — several nodes as one hub: the [`RoomSignal`]s nodes exchange about
//!   presence, typing and ephemeral events ([`Action::Signal`], [`Hub::handle_signal`]), the
//!   periodic refresh and the lease.
//! - `payload.rs` — [`Payload`], a serialized frame, and [`encode`]/[`encode_event`].
//! - `notices.rs` — notices from the backend to everyone, a user or one connection, on this
//!   node and (federated) the others ([`Hub::handle_notice`], [`Hub::handle_notice_signal`]).
//! - `streams.rs` — streams: live chunks, coalesced, a late joiner's catch-up, the finish as one
//!   durable append, the abandon timeout, other nodes' copies.

mod connection;
mod federation;
mod live_cursors;
mod locks;
mod membership;
mod notices;
mod observe;
mod payload;
mod presence;
mod publish;
mod stored;
mod streams;
mod typing_and_presence;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_sdk::wire::{
    self, ErrorCode, Join, Pong, PresenceSnapshot, Publish, RoomName, ServerFrame, close_code,
};
use litemap::LiteMap;

use crate::identity::Identity;
use crate::store::{AppendJob, AppendOutcome, StoreError, StoredEvent};
pub use federation::{ConnState, RoomSignal, RoomVersions, SIGNAL_VERSION, SignalError};
pub use live_cursors::CursorState;
pub use locks::{LockDone, LockJob, MAX_LOCK_TTL, lock_version};
use membership::Rejoin;
pub use notices::{
    NOTICE_ROOM, NoticeFigures, NoticeOutcome, NoticeSignalError, NoticeTarget, notice_room,
};
pub use observe::{OBSERVE_KEEP, OBSERVE_SETTLE, PresenceLookup};
pub use payload::{Payload, encode, encode_event};
use presence::Presence;
use publish::TokenBucket;
pub use publish::draining_message;
use stored::Gaps;
pub use stored::MAX_HELD;
use streams::{RoomStreams, StreamKey};
pub use streams::{StreamRefusal, StreamReply};

/// A connection's id inside this server process.
pub type ConnId = u64;

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
    /// Sustained `typing` and `set_presence` frames per second per connection (together).
    pub signal_rate: f64,
    /// Those frames a connection may burst above the rate.
    pub signal_burst: f64,
    /// Sustained joins per second per connection: each is told to the whole room or re-sends
    /// its whole state, so a connection may not leave and join again without end.
    pub join_rate: f64,
    /// Joins a connection may burst above the rate (a new connection joins all its rooms).
    pub join_burst: f64,
    /// Where every room's presence and typing versions start. The driver sets it from the
    /// clock, so versions after a restart never repeat ones a polling client saw before.
    pub version_base: u64,
    /// How long an event past a gap in a room's seqs waits for the gap to fill from the bus
    /// before the hub reads the missing events from the store ([`Action::Repair`]).
    pub gap_wait: Duration,
    /// Whether other nodes share this hub's rooms (the Redis engine): presence, typing and
    /// ephemeral events then also go out as [`Action::Signal`]. False on one node (SQLite,
    /// memory), where the hub never emits a signal.
    pub federated: bool,
    /// How often a federated hub re-announces every open room's presence to the other nodes
    /// (and checks their leases), so a lost signal heals.
    pub federation_refresh: Duration,
    /// How long a node may stay silent in a room before its connections there leave. Must
    /// be a few `federation_refresh` periods, so one lost refresh does not end a lease.
    pub federation_lease: Duration,
    /// Largest live cursor value, in bytes of JSON.
    pub max_cursor_bytes: usize,
    /// At most one broadcast of one connection's cursor per this interval (the latest value
    /// goes at its end): what a client sending faster than the SDK's 50 ms throttle gets.
    pub cursor_interval: Duration,
    /// Largest stream chunk, in bytes of JSON.
    pub stream_max_chunk_bytes: usize,
    /// Most bytes of chunks one stream keeps: a text stream's together (its result is one
    /// event of about that size), a progress stream's last.
    pub stream_max_bytes: usize,
    /// Most open streams in one room.
    pub stream_max_per_room: usize,
    /// Most locks held at once in one room (a `lock` for another one is refused).
    pub max_locks_per_room: usize,
    /// Most rooms a federated node opens at once only to answer presence lookups (see
    /// `observe.rs`); a lookup of another such room is refused until one is forgotten.
    pub max_observed_rooms: usize,
    /// Most open streams one connection may produce.
    pub stream_max_per_conn: usize,
    /// A stream whose producer sends nothing for this long fails (`stream_abandoned`).
    pub stream_timeout: Duration,
    /// Coalescing: a stream sends its members at most one frame per this period; chunks
    /// arriving faster wait for the next one and go together.
    pub stream_flush: Duration,
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
            signal_rate: 10.0,
            signal_burst: 20.0,
            join_rate: 10.0,
            join_burst: 100.0,
            version_base: 0,
            gap_wait: Duration::from_millis(100),
            federated: false,
            federation_refresh: Duration::from_secs(5),
            federation_lease: Duration::from_secs(15),
            max_cursor_bytes: 1024,
            cursor_interval: Duration::from_millis(40),
            stream_max_chunk_bytes: 4096,
            stream_max_bytes: 64 * 1024,
            stream_max_per_room: 16,
            max_locks_per_room: 256,
            max_observed_rooms: 1024,
            stream_max_per_conn: 4,
            stream_timeout: Duration::from_secs(30),
            stream_flush: Duration::from_millis(10),
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
}

/// Work the driver must do for the hub.
#[derive(Debug)]
pub enum Action {
    /// Submit to the store; feed the outcome to [`Hub::handle_append_done`].
    Append(AppendJob),
    /// Read the room's head; feed it to [`Hub::handle_room_loaded`].
    LoadRoom(RoomName),
    /// Read the room's live locks now and feed them to [`Hub::handle_locks_checked`]: with
    /// several nodes, a grant whose `until` passed on this node's clock expires only once the
    /// store no longer has it live (see `locks.rs`).
    CheckLocks(RoomName),
    /// The room opened here: hear what other nodes store in it (and their signals) from now on,
    /// before the [`Action::LoadRoom`] that follows reads its head.
    Follow(RoomName),
    /// The room is no longer open here: stop hearing about it.
    Unfollow(RoomName),
    /// Read the room's history after `after` (a bounded page) and feed it to
    /// [`Hub::handle_repaired`]: events are missing between the room's head and what it heard.
    Repair {
        /// The room.
        room: RoomName,
        /// The room's head: read the events after it.
        after: u64,
    },
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
    /// Submit a lock operation to the store ([`crate::store::Store::lock`], queued at once, in
    /// order with appends); feed its answer to [`Hub::handle_lock_done`].
    Lock(LockJob),
    /// Send these bytes (an encoded [`RoomSignal`]) to every other node following `room`;
    /// they feed them to their [`Hub::handle_signal`]. Only a federated hub emits this.
    Signal {
        /// The room it is about.
        room: RoomName,
        /// The encoded signal.
        bytes: Bytes,
    },
    /// A notice for a polling session: keep it (a few at most) for the session's next long
    /// poll, and wake the polls it holds. (A WebSocket gets its notices as a [`Transmit`].)
    Notice {
        /// The session's connection.
        conn: ConnId,
        /// The `notice` frame.
        payload: Payload,
    },
    /// A backend stream step ([`Hub::handle_backend_stream`]) is done; answer its request.
    StreamDone {
        /// The ticket the request was submitted with.
        ticket: u64,
        /// What it came to.
        reply: StreamReply,
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
    /// The locks held, with their version.
    pub locks: wire::LockSnapshot,
    /// The live cursors (the asking connection's own left out) with their version.
    pub cursors: wire::CursorSnapshot,
    /// The room's stream version.
    pub stream_version: u64,
    /// The room's stream frames, each with the stream version it brings a client to: a
    /// `finish` or `fail` of each stream that ended lately, then a `start` with everything so
    /// far of each open stream (at the current version). A poll sends those past its cursor's.
    pub streams: Vec<(u64, ServerFrame)>,
}

/// How a history replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// All events in the range were sent.
    Done,
    /// The history no longer reaches back to the cursor (trimmed before or while replaying);
    /// nothing more will be sent.
    NotCovered,
    /// The history could not be read (the store is unreachable for now) after the events up to
    /// `after` were sent. The hub tries again from there after [`REPLAY_RETRY`], and the
    /// member stays replaying meanwhile (live events are buffered, as during any replay): a
    /// store that is down for a moment costs the client a delay, not a `reset`.
    Interrupted {
        /// The last seq sent (the replay's own `after` if none was).
        after: u64,
    },
}

/// How long a replay interrupted by a failed read waits before it goes on.
pub const REPLAY_RETRY: Duration = Duration::from_millis(250);

struct Conn {
    identity: Arc<Identity>,
    wire_id: String,
    kind: ConnKind,
    last_seen: Instant,
    /// Rooms joined or being joined, in name order: when the connection drops, its rooms are
    /// left in this order, so the frames that follow are the same on every run (a hash set's
    /// order would differ between runs and a simulation seed would not replay exactly). A
    /// sorted `Vec`: a `BTreeSet` allocates a node for 11 names for a connection's first room.
    rooms: LiteMap<RoomName, ()>,
    publish_budget: TokenBucket,
    /// Durable publishes handed to the store whose outcome has not come back yet.
    appends_in_flight: usize,
    /// `typing` and `set_presence` frames (see `typing_and_presence`).
    signal_budget: TokenBucket,
    /// Whether this burst's `rate_limited` error for those frames was sent.
    signal_refused: bool,
    /// Joins (first or again).
    join_budget: TokenBucket,
    /// Lock requests handed to the store whose answer has not come back yet.
    locks_in_flight: usize,
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

enum RoomLoad {
    /// Waiting for the store to report the head.
    Loading {
        joins: Vec<(ConnId, Join)>,
        early: Vec<StoredEvent>,
        publishes: Vec<(ConnId, Publish)>,
    },
    /// Ready: `head` is the newest seq fanned out; `oldest` the oldest seq kept when the room
    /// was loaded (retention may have dropped more since: a replay finds that when it reads).
    Open { epoch: u64, head: u64, oldest: u64 },
}

#[derive(Default)]
struct Room {
    state: Option<RoomLoad>,
    /// Ordered by connection id, so fan-out order is deterministic (no hidden entropy).
    members: BTreeMap<ConnId, Member>,
    presence: Presence,
    /// Who is typing: user -> (expiry, who said so).
    typing: HashMap<String, (Instant, Typist)>,
    /// Increases whenever the set of typing users changes (polling clients compare it).
    typing_version: u64,
    /// Events past a gap, and acks waiting for them (see `stored`).
    gaps: Gaps,
    /// When each other node last sent a signal about this room (see `federation.rs`).
    heard: HashMap<Arc<str>, Instant>,
    /// When this node asked the others for their state in this room (it opened it).
    synced_at: Option<Instant>,
    /// Until when the room stays open for presence lookups without members (see `observe.rs`).
    observed_until: Option<Instant>,
    /// The room's locks as this node last heard of them, by name (see `locks.rs`).
    locks: BTreeMap<wire::EventId, locks::HubLock>,
    /// Acquires of locks handed to the store whose answer has not come back yet (they count
    /// against `HubConfig::max_locks_per_room` with the locks held).
    acquiring: usize,
    /// An [`Action::CheckLocks`] is in flight.
    checking_locks: bool,
    /// Every member's live cursor (see `live_cursors.rs`).
    cursors: live_cursors::RoomCursors,
    /// Open streams and the ones that ended lately (see `streams.rs`).
    streams: RoomStreams,
}

impl Room {
    /// A room opening on this node, in `state`: its presence and typing versions start at
    /// `base` ([`HubConfig::version_base`]).
    fn opening(base: u64, state: Option<RoomLoad>) -> Room {
        Room {
            state,
            presence: Presence::starting_at(base),
            typing_version: base,
            ..Room::default()
        }
    }

    /// Takes another node's versions where they are higher (see `federation.rs`).
    fn raise_versions(&mut self, presence: u64, typing: u64) {
        self.presence.raise_version(presence);
        self.typing_version = self.typing_version.max(typing);
    }
}

/// Who said a user is typing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Typist {
    /// A connection on this node.
    Local(ConnId),
    /// Another node (its `HubConfig::node`).
    Remote(Arc<str>),
}

impl Typist {
    /// The local connection to leave out of the broadcast (it knows it is typing).
    fn local(&self) -> Option<ConnId> {
        match self {
            Typist::Local(conn) => Some(*conn),
            Typist::Remote(_) => None,
        }
    }
}

enum Member {
    Live,
    Replaying { until: u64, buffered: Vec<Payload> },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    PresenceLeave(RoomName, String),
    TypingExpiry(RoomName, String),
    /// A polling session may have gone silent: expire it if it has, or look again at its new
    /// deadline. One such timer per session is pending at any time (it re-arms itself), so a
    /// session expires exactly [`HubConfig::poll_session_timeout`] after its last request.
    PollSessionExpiry(ConnId),
    /// A gap in a room's seqs has had [`HubConfig::gap_wait`] to fill: repair it if it is open.
    RepairGap(RoomName),
    /// A replay was interrupted after `u64`: go on from there if the member still replays.
    RetryReplay(ConnId, RoomName, u64),
    /// A room opened to observe its presence may be forgotten (see `observe.rs`).
    ObserveEnd(RoomName),
    /// A lock's grant may have reached its `until` (see `locks.rs`).
    LockExpiry(RoomName, wire::EventId),
    /// A connection's cursor coalescing interval ended: broadcast its latest value.
    CursorFlush(RoomName, ConnId),
    /// A user's presence budget in a room has a token again: announce its held meta changes.
    PresenceFlush(RoomName, String),
    /// A stream's coalesced chunks are due (see `streams.rs`).
    StreamFlush(RoomName, StreamKey),
    /// A stream's producer may have gone silent: fail the stream if it has.
    StreamTimeout(RoomName, StreamKey),
}

/// The hub state machine. See the module docs for the driving contract.
pub struct Hub {
    config: HubConfig,
    /// Boxed: the map has 1.1 to 2.3 slots per connection, each then a pointer, not a `Conn`.
    conns: HashMap<ConnId, Box<Conn>>,
    rooms: HashMap<RoomName, Room>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    next_sweep: Option<Instant>,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    /// Set by [`Hub::handle_drain`]: the reconnect hint. Publishes and connections arriving
    /// after it are refused with it.
    draining: Option<Duration>,
    /// Replays still streaming for memberships that were left. Their `left` frame, and any
    /// rejoin of the same room by the same connection (kept here), wait until the replay ends,
    /// so no replayed event can arrive after them.
    orphaned_replays: HashMap<(ConnId, RoomName), Rejoin>,
    /// Rooms with an `observed_until` (see `observe.rs`).
    observed_rooms: usize,
    /// How many of `conns` are polling sessions (kept, so counting is O(1)).
    poll_sessions: usize,
    /// `HubConfig::node`, shared by every presence key of this node's connections.
    node_id: Arc<str>,
    /// When a federated hub next re-announces its rooms and checks leases.
    next_refresh: Option<Instant>,
    /// Notices sent and delivered, for `/metrics` (see `notices.rs`).
    notice_figures: NoticeFigures,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("conns", &self.conns.len())
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            node_id: config.node.as_str().into(),
            next_refresh: None,
            config,
            conns: HashMap::new(),
            rooms: HashMap::new(),
            timers: BinaryHeap::new(),
            next_sweep: None,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            draining: None,
            orphaned_replays: HashMap::new(),
            observed_rooms: 0,
            poll_sessions: 0,
            notice_figures: NoticeFigures::default(),
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
        [timer, self.next_sweep, self.next_refresh]
            .into_iter()
            .flatten()
            .min()
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
        let Some(RoomLoad::Open { .. }) = state.state else {
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
            locks: self.lock_snapshot(room),
            cursors: state.cursors.snapshot(Some(&self.local_key(conn))),
            stream_version: state.streams.version(),
            streams: self.stream_view(room),
        })
    }

    /// Whether the hub still owes `conn` the answer to a frame it sent: a `join` whose room is
    /// loading (`joined` or an `error` follows), or a publish waiting for its room or in the
    /// store (`ack` or `nack` follows). A polling `POST` is answered once this is false.
    pub fn owes_answers(&self, conn: ConnId) -> bool {
        let Some(state) = self.conns.get(&conn) else {
            return false;
        };
        // A room the connection is in (or joining) that is still loading holds its join and
        // any publishes it sent there since.
        state.appends_in_flight > 0
            || state.locks_in_flight > 0
            || state.rooms.keys().any(|room| {
                self.rooms
                    .get(room)
                    .is_some_and(|r| matches!(r.state, Some(RoomLoad::Loading { .. })))
            })
    }

    /// The rooms `conn` is in (or joining), in name order, each with its presence meta (`null`
    /// while the room loads). What a polling session's record holds (see `driver::poll`).
    pub fn conn_rooms(&self, conn: ConnId) -> Vec<(RoomName, wire::Json)> {
        let Some(state) = self.conns.get(&conn) else {
            return Vec::new();
        };
        state
            .rooms
            .keys()
            .map(|room| {
                let meta = self
                    .rooms
                    .get(room)
                    .and_then(|r| {
                        r.presence
                            .meta_of(&state.identity.user, &self.local_key(conn))
                    })
                    .cloned()
                    .unwrap_or_else(wire::Json::null);
                (room.clone(), meta)
            })
            .collect()
    }

    /// Number of rooms with members (or lingering presence) on this node.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    // -----------------------------------------------------------------------------------------
    // Inputs (the others: connect, activity, disconnect and slow consumers in `connection.rs`;
    // room loads and replays in `membership.rs`; backend publishes and appends in `publish.rs`)
    // -----------------------------------------------------------------------------------------

    /// A frame arrived from a connection (any frame also proves it is alive).
    pub fn handle_frame(&mut self, now: Now, conn: ConnId, frame: wire::ClientFrame) {
        let frame = match (self.draining, frame) {
            // Not lost, not left unanswered: the client publishes again after reconnecting.
            (Some(retry_after), wire::ClientFrame::Publish(publish)) => {
                return self.refuse_draining(conn, publish, retry_after);
            }
            (_, frame) => frame,
        };
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
            // The WebSocket driver verifies an `auth` frame's token and hands the identity to
            // `handle_auth`; one that reaches the hub came some other way (polling answers it
            // at its edge), where it has no meaning.
            wire::ClientFrame::Auth(_) => self.send_error(
                conn,
                ErrorCode::BadFrame,
                "auth renews a WebSocket's token; this connection sends its token with every request",
                None,
            ),
            wire::ClientFrame::Join(join) => self.join(now, conn, join),
            wire::ClientFrame::Leave(leave) => self.leave(now, conn, leave.room),
            wire::ClientFrame::Publish(publish) => self.publish(now, conn, publish),
            wire::ClientFrame::Typing(typing) => self.typing(now, conn, typing.room, typing.on),
            wire::ClientFrame::SetPresence(update) => {
                self.set_presence(now, conn, update.room, update.meta)
            }
            wire::ClientFrame::Ping(ping) => {
                self.send(conn, &ServerFrame::Pong(Pong { nonce: ping.nonce }))
            }
            wire::ClientFrame::Lock(request) => self.lock_request(now, conn, request),
            wire::ClientFrame::Unlock(request) => self.unlock_request(now, conn, request),
            wire::ClientFrame::SetCursor(frame) => self.set_cursor(now, conn, frame),
            wire::ClientFrame::Stream(op) => self.stream_frame(now, conn, op),
        }
    }

    /// Timers: presence grace, typing expiry, polling session expiry, dead-socket sweep.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now.instant {
                break;
            }
            let Some(Reverse((at, timer))) = self.timers.pop() else {
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
                    if let Some((until, typist)) = room.typing.get(&user)
                        && *until <= now.instant
                    {
                        let except = typist.local();
                        room.typing.remove(&user);
                        room.typing_version += 1;
                        self.broadcast_typing(&room_name, user, false, except);
                        self.forget_room_if_idle(&room_name);
                    }
                }
                Timer::PollSessionExpiry(conn) => self.expire_poll_session(now, conn),
                Timer::ObserveEnd(room_name) => self.end_observation(now, &room_name),
                Timer::RepairGap(room_name) => self.repair_gap_timer(&room_name),
                Timer::RetryReplay(conn, room_name, after) => {
                    self.retry_replay(now, conn, room_name, after)
                }
                Timer::LockExpiry(room_name, name) => self.expire_lock(now, &room_name, &name, at),
                Timer::CursorFlush(room_name, conn) => {
                    self.cursor_flush_timer(now, &room_name, conn)
                }
                Timer::PresenceFlush(room_name, user) => {
                    self.presence_flush_timer(now, &room_name, user)
                }
                Timer::StreamFlush(room_name, key) => self.stream_flush_timer(now, &room_name, key),
                Timer::StreamTimeout(room_name, key) => {
                    self.stream_timeout_timer(now, &room_name, key)
                }
            }
        }
        if self.next_sweep.is_some_and(|at| at <= now.instant) {
            self.sweep_dead_connections(now);
        }
        if self.next_refresh.is_some_and(|at| at <= now.instant) {
            self.refresh_federation(now);
        }
    }

    /// The server is shutting down. Every connection is told when to come back (`draining`);
    /// from now on every publish is refused (`nack draining`), nothing new is stored, and a
    /// connection that opens is told `draining` and closed at once. Connections stay open
    /// until [`Hub::handle_drain_complete`], so the publishes they sent before get their acks.
    pub fn handle_drain(&mut self, retry_after: Duration) {
        if self.draining.is_some() {
            return;
        }
        self.draining = Some(retry_after);
        // The other nodes hear at once that this node's connections are going.
        self.announce_bye();
        // Publishes waiting for a room to load will not be stored: refuse them before goodbye.
        let mut waiting = Vec::new();
        for room in self.rooms.values_mut() {
            if let Some(RoomLoad::Loading { publishes, .. }) = &mut room.state {
                waiting.append(publishes);
            }
        }
        // In a fixed order (rooms are a hash map); each room's publishes keep theirs.
        waiting.sort_by(|(a, p), (b, q)| (a, &p.room).cmp(&(b, &q.room)));
        for (conn, publish) in waiting {
            self.refuse_draining(conn, publish, retry_after);
        }
        let payload = draining_payload(retry_after);
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.transmits.push_back(Transmit {
                reply: false,
                conn,
                payload: payload.clone(),
            });
        }
    }

    /// The drain is complete: every append submitted before [`Hub::handle_drain`] has had
    /// its outcome fed in (so every stored publish is acked). Closes every connection (1012).
    pub fn handle_drain_complete(&mut self) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.actions.push_back(Action::Close {
                conn,
                code: close_code::SERVICE_RESTART,
                reason: ErrorCode::Draining,
            });
        }
        self.conns.clear();
        self.poll_sessions = 0;
        let mut rooms: Vec<RoomName> = self.rooms.drain().map(|(name, _)| name).collect();
        rooms.sort_unstable();
        self.actions.extend(rooms.into_iter().map(Action::Unfollow));
        self.timers.clear();
        self.orphaned_replays.clear();
        self.observed_rooms = 0;
        self.next_sweep = None;
        self.next_refresh = None;
    }

    // -----------------------------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------------------------

    /// Drops a room from memory once nobody is in it and no publish waits on it (it is
    /// reloaded from the store on demand), and stops following it. Other nodes' connections
    /// and typists do not keep a room here: with no member of its own, a node forgets the room
    /// and what it knew of the others.
    fn forget_room_if_idle(&mut self, room_name: &RoomName) {
        let node = &*self.node_id;
        let federated = self.config.federated;
        let idle = self.rooms.get(room_name).is_some_and(|room| {
            // Cheapest first: a room with members is the common case.
            room.members.is_empty()
                && room.observed_until.is_none()
                && room.gaps.is_idle()
                && room.streams.is_idle()
                && matches!(room.state, Some(RoomLoad::Open { .. }))
                && room
                    .typing
                    .values()
                    .all(|(_, typist)| matches!(typist, Typist::Remote(_)))
                && (room.presence.is_empty() || (federated && !room.presence.has_conns_of(node)))
        });
        if idle {
            self.rooms.remove(room_name);
            // Its last word there: nobody of this node is left in the room (should a `gone`
            // have been lost, this heals it before the lease would).
            self.signal(room_name, &RoomSignal::Bye);
            self.actions.push_back(Action::Unfollow(room_name.clone()));
        }
    }

    /// How this node's connection `conn` is known in presence.
    fn local_key(&self, conn: ConnId) -> presence::ConnKey {
        presence::ConnKey {
            node: Arc::clone(&self.node_id),
            conn,
        }
    }

    fn send(&mut self, conn: ConnId, frame: &ServerFrame) {
        self.transmits.push_back(Transmit {
            reply: true,
            conn,
            payload: encode(frame),
        });
    }

    fn send_error(&mut self, conn: ConnId, code: ErrorCode, message: &str, room: Option<RoomName>) {
        self.send(conn, &ServerFrame::error(code, message, room));
    }
}

/// The `draining` frame.
fn draining_payload(retry_after: Duration) -> Payload {
    encode(&ServerFrame::Draining(wire::Draining {
        retry_after_ms: retry_after.as_millis() as u64,
    }))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_federation;
