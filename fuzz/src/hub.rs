//! `hub`: the hub core fed random operations from several connections (sockets and polling
//! sessions of four users with different grants) on virtual time, playing the driver and the
//! store (`MemoryLog`), with the store's work (appends, room loads, replays) run late, in
//! pieces, or failed.
//!
//! Checked after every step, on every frame the hub sends (and every replayed event the
//! "driver" streams):
//! - it decodes as a `ServerFrame`, goes only to a connection that is open (not disconnected,
//!   not closed by the hub), and says rightly whether it replies to the recipient's own frame;
//! - per connection and room, durable events arrive in strictly increasing seq order with no
//!   gap from the join point (the head in `joined`, the resume cursor when a replay follows,
//!   the head in a `reset`), and are exactly what the store holds at that seq; events,
//!   presence and typing reach members only; presence versions go up by one;
//! - every `publish` is answered exactly once (`ack`/`nack` marked with what it answers); an
//!   ack's seq holds that id; a `join` is answered by `joined` or an `error`;
//! - at the end, once the store has done all its work: every member has every event up to
//!   the store's head, nothing an open connection sent is left unanswered, and every backend
//!   publish completed once.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use chorus_sdk::wire::{
    ClientFrame, Cursor, ErrorCode, EventId, Json, RoomName, RoomRight, ServerFrame,
};
use chorus_server::hub::{Action, ConnId, ConnKind, Hub, HubConfig, Now, ReplayOutcome, Transmit};
use chorus_server::identity::Identity;
use chorus_server::store::memory::MemoryLog;
use chorus_server::store::{
    AppendDone, AppendJob, AppendOutcome, AppendRequest, Retention, StoreError,
};

const EPOCH: u64 = 77;
const ROOMS: [&str; 4] = ["r0", "r1", "r2", "@u3"];
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const SLOTS: usize = 5;

/// One step of the driver.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// A connection opens in a free slot (as a socket or a polling session).
    Connect {
        /// Which slot.
        slot: u8,
        /// Which user (each has other grants).
        user: u8,
        /// A polling session rather than a socket.
        poll: bool,
    },
    /// The connection in a slot closes.
    Disconnect {
        /// Which slot.
        slot: u8,
    },
    /// The connection in a slot does not read fast enough.
    SlowConsumer {
        /// Which slot.
        slot: u8,
    },
    /// The connection in a slot sends a frame.
    Send {
        /// Which slot.
        slot: u8,
        /// The frame.
        frame: Frame,
    },
    /// The connection in a slot sends any text that decodes as a frame.
    SendText {
        /// Which slot.
        slot: u8,
        /// The text.
        text: String,
    },
    /// Time passes; timers fire at their deadlines.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// The store finishes the oldest appends, in order.
    Append {
        /// How many.
        count: u8,
        /// Whether they fail.
        fail: bool,
    },
    /// The store finishes the oldest room load.
    LoadRoom {
        /// Whether it fails.
        fail: bool,
    },
    /// The driver finishes the oldest replay.
    Replay {
        /// 0: as the history allows; 1: not covered; 2: failed.
        outcome: u8,
    },
    /// A backend publishes through the REST API.
    BackendPublish {
        /// Which room.
        room: u8,
        /// Which id.
        id: u8,
    },
    /// The server shuts down gracefully.
    Drain,
}

/// A client frame, built from small numbers so that rooms, ids and cursors collide.
#[derive(Arbitrary, Debug)]
pub enum Frame {
    /// `join`, maybe resuming.
    Join {
        /// Which room.
        room: u8,
        /// A cursor: the right epoch or not, and a seq.
        resume: Option<(bool, u8)>,
        /// The presence meta (large ones are refused).
        meta: u8,
    },
    /// `leave`.
    Leave {
        /// Which room.
        room: u8,
    },
    /// `publish`.
    Publish {
        /// Which room.
        room: u8,
        /// Which id (few, so duplicates happen).
        id: u8,
        /// Stored or not.
        durable: bool,
        /// Conditional on the head.
        if_seq: Option<u8>,
    },
    /// `typing`.
    Typing {
        /// Which room.
        room: u8,
        /// On or off.
        on: bool,
    },
    /// `set_presence`.
    SetPresence {
        /// Which room.
        room: u8,
        /// The meta.
        meta: u8,
    },
    /// `ping`.
    Ping,
    /// `hello` on an authenticated connection.
    Hello,
}

impl Frame {
    fn text(&self) -> String {
        let room = |n: &u8| ROOMS[usize::from(*n) % ROOMS.len()];
        let meta = |n: &u8| {
            if *n > 240 {
                format!(r#"{{"big":"{}"}}"#, "x".repeat(100))
            } else {
                format!(r#"{{"n":{n}}}"#)
            }
        };
        match self {
            Frame::Join {
                room: r,
                resume,
                meta: m,
            } => {
                let resume = resume.map_or(String::new(), |(right_epoch, seq)| {
                    let epoch = if right_epoch { EPOCH } else { EPOCH + 1 };
                    format!(r#","resume":{{"epoch":{epoch},"seq":{seq}}}"#)
                });
                format!(
                    r#"{{"type":"join","room":"{}","meta":{}{resume}}}"#,
                    room(r),
                    meta(m)
                )
            }
            Frame::Leave { room: r } => format!(r#"{{"type":"leave","room":"{}"}}"#, room(r)),
            Frame::Publish {
                room: r,
                id,
                durable,
                if_seq,
            } => {
                let if_seq = if_seq.map_or(String::new(), |s| format!(r#","if_seq":{s}"#));
                format!(
                    r#"{{"type":"publish","room":"{}","id":"e{}","body":{{"k":1}},"durable":{durable}{if_seq}}}"#,
                    room(r),
                    id % 8
                )
            }
            Frame::Typing { room: r, on } => {
                format!(r#"{{"type":"typing","room":"{}","on":{on}}}"#, room(r))
            }
            Frame::SetPresence { room: r, meta: m } => format!(
                r#"{{"type":"presence","room":"{}","meta":{}}}"#,
                room(r),
                meta(m)
            ),
            Frame::Ping => r#"{"type":"ping","nonce":7}"#.to_owned(),
            Frame::Hello => r#"{"type":"hello","token":"t"}"#.to_owned(),
        }
    }
}

/// What the checks know about one open connection.
struct Conn {
    kind: ConnKind,
    /// Rooms it is a member of, as the frames it received say.
    rooms: HashMap<RoomName, Membership>,
    /// Joins sent and not answered yet, with the cursors they carried.
    joins: HashMap<RoomName, JoinsInFlight>,
    /// Publishes sent and not answered yet.
    publishes: HashMap<(RoomName, EventId), usize>,
}

#[derive(Default)]
struct JoinsInFlight {
    resumes: Vec<Cursor>,
    /// Cleared by a `leave` sent after it: a join overtaken by a leave may go unanswered.
    awaiting: bool,
}

struct Membership {
    /// The seqs the next durable event may have (one, once known).
    next: BTreeSet<u64>,
    presence_version: u64,
}

struct Sim {
    hub: Hub,
    t0: Instant,
    elapsed: Duration,
    log: MemoryLog,
    slots: [Option<ConnId>; SLOTS],
    next_conn: ConnId,
    conns: HashMap<ConnId, Conn>,
    appends: VecDeque<AppendJob>,
    loads: VecDeque<RoomName>,
    replays: VecDeque<(ConnId, RoomName, u64, u64)>,
    /// What the store holds: (room, seq) → id.
    stored: HashMap<(RoomName, u64), EventId>,
    tickets: BTreeMap<u64, bool>,
    next_ticket: u64,
}

/// Runs one sequence of operations, then lets the store finish its work, checking the
/// invariants throughout; panics when one does not hold.
pub fn run(ops: &[Op]) {
    let mut sim = Sim::new();
    for op in ops {
        sim.step(op);
    }
    sim.settle();
}

fn config() -> HubConfig {
    HubConfig {
        heartbeat: Duration::from_secs(10),
        presence_grace: Duration::from_secs(3),
        typing_ttl: Duration::from_secs(4),
        max_meta_bytes: 64,
        max_rooms_per_conn: 3,
        replay_buffer: 4,
        publish_rate: 5.0,
        publish_burst: 8.0,
        ..HubConfig::default()
    }
}

fn identity(user: &str) -> Identity {
    let grants: &[(&str, RoomRight)] = match user {
        "u0" => &[("*", RoomRight::Publish)],
        "u1" => &[("*", RoomRight::Publish), ("@*", RoomRight::Read)],
        "u2" => &[("r0", RoomRight::Read), ("r1", RoomRight::Publish)],
        _ => &[],
    };
    Identity::new(user, Some(user), grants)
}

impl Sim {
    fn new() -> Sim {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        let retention = Retention {
            max_events: 1 << 20,
            max_age: Duration::from_secs(1 << 30),
        };
        Sim {
            hub: Hub::new(config()),
            t0,
            elapsed: Duration::ZERO,
            log: MemoryLog::new(EPOCH, retention),
            slots: [None; SLOTS],
            next_conn: 1,
            conns: HashMap::new(),
            appends: VecDeque::new(),
            loads: VecDeque::new(),
            replays: VecDeque::new(),
            stored: HashMap::new(),
            tickets: BTreeMap::new(),
            next_ticket: 1,
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.elapsed,
            unix_ms: 1_700_000_000_000 + self.elapsed.as_millis() as u64,
        }
    }

    fn slot(&self, slot: u8) -> Option<ConnId> {
        self.slots[usize::from(slot) % SLOTS]
    }

    fn step(&mut self, op: &Op) {
        let now = self.now();
        match op {
            Op::Connect { slot, user, poll } => {
                let index = usize::from(*slot) % SLOTS;
                if self.slots[index].is_some() {
                    return;
                }
                let conn = self.next_conn;
                self.next_conn += 1;
                self.slots[index] = Some(conn);
                let kind = if *poll {
                    ConnKind::Poll
                } else {
                    ConnKind::Socket
                };
                self.conns.insert(
                    conn,
                    Conn {
                        kind,
                        rooms: HashMap::new(),
                        joins: HashMap::new(),
                        publishes: HashMap::new(),
                    },
                );
                let who = identity(USERS[usize::from(*user) % USERS.len()]);
                self.hub.handle_connect(now, conn, Arc::new(who), kind);
            }
            Op::Disconnect { slot } => {
                let Some(conn) = self.slot(*slot) else { return };
                self.forget(conn);
                self.hub.handle_disconnect(now, conn);
            }
            Op::SlowConsumer { slot } => {
                let Some(conn) = self.slot(*slot) else { return };
                self.hub.handle_slow_consumer(now, conn);
            }
            Op::Send { slot, frame } => {
                let text = frame.text();
                let decoded = ClientFrame::decode(&text);
                let frame = decoded.unwrap_or_else(|err| panic!("generated {text}: {err}"));
                self.send(*slot, frame);
            }
            Op::SendText { slot, text } => {
                // What the edge does: text that is not a frame is answered there, never
                // reaching the hub.
                if let Ok(frame) = ClientFrame::decode(text) {
                    self.send(*slot, frame);
                }
            }
            Op::Advance { ms } => self.advance(Duration::from_millis(u64::from(*ms))),
            Op::Append { count, fail } => {
                for _ in 0..*count {
                    let Some(job) = self.appends.pop_front() else {
                        break;
                    };
                    self.run_append(job, *fail);
                }
            }
            Op::LoadRoom { fail } => {
                if let Some(room) = self.loads.pop_front() {
                    let result = if *fail {
                        Err(StoreError::Backend("the fuzzer says no".into()))
                    } else {
                        Ok(self.log.read(&room, 0, 0, now.unix_ms).head)
                    };
                    self.hub.handle_room_loaded(now, room, result);
                }
            }
            Op::Replay { outcome } => {
                if let Some(replay) = self.replays.pop_front() {
                    self.run_replay(replay, *outcome);
                }
            }
            Op::BackendPublish { room, id } => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.tickets.insert(ticket, false);
                let request = AppendRequest {
                    room: RoomName::parse(ROOMS[usize::from(*room) % ROOMS.len()])
                        .expect("a valid room"),
                    id: EventId::parse(&format!("b{}", id % 8)).expect("a valid id"),
                    from: "backend".into(),
                    at: now.unix_ms,
                    body: Json::from_text("1").expect("JSON"),
                    if_seq: None,
                    if_lock: None,
                };
                self.hub.handle_backend_publish(now, ticket, request);
            }
            Op::Drain => self.hub.handle_drain(Duration::from_secs(1)),
        }
        self.pump();
    }

    /// A connection that is gone for the driver: nothing may be sent to it any more.
    fn forget(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        for slot in &mut self.slots {
            if *slot == Some(conn) {
                *slot = None;
            }
        }
    }

    fn send(&mut self, slot: u8, frame: ClientFrame) {
        let Some(conn) = self.slot(slot) else { return };
        let state = self
            .conns
            .get_mut(&conn)
            .expect("slots hold open connections");
        match &frame {
            ClientFrame::Join(join) => {
                let joins = state.joins.entry(join.room.clone()).or_default();
                joins.resumes.extend(join.resume);
                joins.awaiting = true;
            }
            ClientFrame::Leave(leave) => {
                if let Some(joins) = state.joins.get_mut(&leave.room) {
                    joins.awaiting = false;
                }
            }
            ClientFrame::Publish(publish) => {
                *state
                    .publishes
                    .entry((publish.room.clone(), publish.id.clone()))
                    .or_default() += 1;
            }
            _ => {}
        }
        let now = self.now();
        self.hub.handle_frame(now, conn, frame);
    }

    fn advance(&mut self, by: Duration) {
        let end = self.elapsed + by;
        while let Some(at) = self.hub.poll_timeout() {
            let at = at.duration_since(self.t0);
            if at > end {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            let now = self.now();
            self.hub.handle_timeout(now);
            self.pump();
        }
        self.elapsed = end;
        let now = self.now();
        self.hub.handle_timeout(now);
    }

    /// Drains the hub's outputs, checking each frame; actions wait in queues for their ops.
    fn pump(&mut self) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.hub.poll_transmit() {
                idle = false;
                self.receive(transmit);
            }
            while let Some(action) = self.hub.poll_action() {
                idle = false;
                match action {
                    Action::Append(job) => self.appends.push_back(job),
                    Action::LoadRoom(room) => self.loads.push_back(room),
                    Action::Replay {
                        conn,
                        room,
                        after,
                        until,
                    } => {
                        assert!(
                            after < until,
                            "an empty replay of {room}: ({after}, {until}]"
                        );
                        self.replays.push_back((conn, room, after, until));
                    }
                    // The fuzzer drives no backend streams.
                    Action::StreamDone { .. } => unreachable!("no backend stream steps"),
                    Action::Complete { ticket, .. } => {
                        let done = self.tickets.get_mut(&ticket).expect("a known ticket");
                        assert!(!*done, "ticket {ticket} completed twice");
                        *done = true;
                    }
                    Action::Close { conn, .. } => {
                        assert!(
                            self.conns.contains_key(&conn),
                            "closing {conn}, which is not open"
                        );
                        self.forget(conn);
                    }
                    // One node: nobody else stores, so there is nothing to follow, and a
                    // repair (never asked for without another node) reads the log at once.
                    Action::Follow(_) | Action::Unfollow(_) => {}
                    Action::Repair { room, after } => {
                        let now = self.now();
                        let page = self.log.read(&room, after, 256, now.unix_ms);
                        self.hub.handle_repaired(now, room, Ok(page));
                    }
                    Action::Signal { room, .. } => {
                        panic!("a one-node hub signalled other nodes about {room}")
                    }
                    Action::CheckLocks(room) => {
                        panic!("a one-node hub asked the store about {room}'s locks")
                    }
                    // Lock operations are answered at once by the log, the store's rule.
                    Action::Lock(job) => {
                        let now = self.now();
                        let result = Ok(self.log.lock(&job.request));
                        let done = chorus_server::hub::LockDone { job, result };
                        self.hub.handle_lock_done(now, done);
                    }
                    Action::Notice { conn, .. } => {
                        panic!("a notice for {conn}, though nobody sent one")
                    }
                }
            }
            if idle {
                return;
            }
        }
    }

    fn run_append(&mut self, job: AppendJob, fail: bool) {
        let now = self.now();
        let room = job.request.room.clone();
        let id = job.request.id.clone();
        let from = job.request.from.clone();
        let result = if fail {
            Err(StoreError::Backend("the fuzzer says no".into()))
        } else {
            let outcome = self.log.append(job.request, now.unix_ms);
            if let AppendOutcome::Stored(stored) = &outcome {
                let seq = stored.seq();
                assert_eq!(stored.epoch, EPOCH);
                self.stored.insert((room.clone(), seq), id.clone());
            }
            Ok(outcome)
        };
        let done = AppendDone {
            origin: job.origin,
            room,
            id,
            from,
            result,
        };
        self.hub.handle_append_done(now, done);
        self.pump();
    }

    fn run_replay(&mut self, (conn, room, after, until): (ConnId, RoomName, u64, u64), how: u8) {
        let now = self.now();
        let page = self.log.read(&room, after, usize::MAX, now.unix_ms);
        let outcome = match how % 3 {
            0 if page.head.covers_after(after) => ReplayOutcome::Done,
            0 | 1 => ReplayOutcome::NotCovered,
            // The store failed before anything was sent: the hub goes on later from `after`.
            _ => ReplayOutcome::Interrupted { after },
        };
        if outcome == ReplayOutcome::Done && self.conns.contains_key(&conn) {
            for stored in page.events.into_iter().filter(|e| e.seq() <= until) {
                self.check_frame(conn, &ServerFrame::Event(stored.event));
            }
        }
        self.hub.handle_replay_done(now, conn, room, outcome);
        self.pump();
    }

    fn receive(&mut self, transmit: Transmit) {
        let frame = ServerFrame::decode(transmit.payload.as_str())
            .unwrap_or_else(|err| panic!("the hub sent {}: {err}", transmit.payload.as_str()));
        let reply = matches!(
            frame,
            ServerFrame::Welcome(_)
                | ServerFrame::Joined(_)
                | ServerFrame::Left(_)
                | ServerFrame::Ack(_)
                | ServerFrame::Nack(_)
                | ServerFrame::Error(_)
                | ServerFrame::Pong(_)
                | ServerFrame::Reset(_)
        );
        // `draining` is news to a connection that was open, and the answer to one that
        // connects while the hub drains (its opening request gets it): either flag is right.
        let either = matches!(frame, ServerFrame::Draining(_));
        assert!(
            either || transmit.reply == reply,
            "reply flag {} of {}",
            transmit.reply,
            transmit.payload.as_str()
        );
        self.check_frame(transmit.conn, &frame);
    }

    fn check_frame(&mut self, conn: ConnId, frame: &ServerFrame) {
        let text = frame.encode();
        let Some(state) = self.conns.get_mut(&conn) else {
            panic!("{text} sent to connection {conn}, which is gone");
        };
        // What a frame answers is in the frame itself: an `ack`/`nack` names its publish, a
        // refusal of a join names its room.
        let publish = match frame {
            ServerFrame::Ack(a) => Some((a.room.clone(), a.id.clone())),
            ServerFrame::Nack(n) => {
                let Some(room) = n.room.clone() else {
                    panic!("{text}: a nack of a well-formed publish names its room");
                };
                Some((room, n.id.clone()))
            }
            _ => None,
        };
        if let Some(key) = publish {
            let pending = state.publishes.get_mut(&key);
            let Some(pending) = pending.filter(|n| **n > 0) else {
                panic!("{text} answers a publish that was not sent or was answered already");
            };
            *pending -= 1;
        }
        if let ServerFrame::Error(e) = frame
            && let Some(room) = &e.room
            && matches!(
                e.code,
                ErrorCode::Forbidden
                    | ErrorCode::TooManyRooms
                    | ErrorCode::MetaTooLarge
                    | ErrorCode::StorageUnavailable
            )
            && state.joins.get(room).is_some_and(|j| j.awaiting)
        {
            // A join refused (a member joining again may be refused, its new meta too large,
            // and stays in).
            state.joins.remove(room);
        }
        match frame {
            ServerFrame::Joined(joined) => {
                let in_flight = state.joins.remove(&joined.room).unwrap_or_default();
                assert_eq!(joined.epoch, EPOCH);
                if let Some(membership) = state.rooms.get_mut(&joined.room) {
                    // Joining again re-sends the room's state; the stream goes on.
                    assert!(joined.presence.version >= membership.presence_version);
                    membership.presence_version = joined.presence.version;
                } else {
                    let mut next: BTreeSet<u64> = [joined.head + 1].into();
                    if state.kind == ConnKind::Socket {
                        next.extend(
                            in_flight
                                .resumes
                                .iter()
                                .filter(|c| c.epoch == joined.epoch && c.seq <= joined.head)
                                .map(|c| c.seq + 1),
                        );
                    }
                    state.rooms.insert(
                        joined.room.clone(),
                        Membership {
                            next,
                            presence_version: joined.presence.version,
                        },
                    );
                }
            }
            ServerFrame::Reset(reset) => {
                assert_eq!(reset.epoch, EPOCH);
                let membership = state
                    .rooms
                    .get_mut(&reset.room)
                    .unwrap_or_else(|| panic!("{text} for a room the connection is not in"));
                membership.next = [reset.head + 1].into();
            }
            ServerFrame::Left(left) => {
                state.rooms.remove(&left.room);
            }
            ServerFrame::Event(event) => {
                let membership = state
                    .rooms
                    .get_mut(&event.room)
                    .unwrap_or_else(|| panic!("{text} for a room the connection is not in"));
                if let Some(seq) = event.seq {
                    assert!(
                        membership.next.contains(&seq),
                        "{text}: expected seq {:?} (a gap, a double or out of order)",
                        membership.next
                    );
                    membership.next = [seq + 1].into();
                    assert_eq!(
                        self.stored.get(&(event.room.clone(), seq)),
                        Some(&event.id),
                        "{text} is not what the store holds"
                    );
                }
            }
            ServerFrame::Presence(diff) => {
                let membership = state
                    .rooms
                    .get_mut(&diff.room)
                    .unwrap_or_else(|| panic!("{text} for a room the connection is not in"));
                assert_eq!(
                    diff.version,
                    membership.presence_version + 1,
                    "{text}: presence versions go up by one"
                );
                membership.presence_version = diff.version;
            }
            ServerFrame::Typing(typing) => {
                assert!(
                    state.rooms.contains_key(&typing.room),
                    "{text} for a room the connection is not in"
                );
            }
            ServerFrame::Ack(ack) => {
                if let Some(seq) = ack.seq {
                    assert_eq!(
                        self.stored.get(&(ack.room.clone(), seq)),
                        Some(&ack.id),
                        "{text}: the store holds another event at that seq"
                    );
                }
            }
            _ => {}
        }
    }

    /// The store and the driver finish all their work; then nothing is left unanswered.
    fn settle(&mut self) {
        loop {
            if let Some(room) = self.loads.pop_front() {
                let now = self.now();
                let head = self.log.read(&room, 0, 0, now.unix_ms).head;
                self.hub.handle_room_loaded(now, room, Ok(head));
                self.pump();
            } else if let Some(job) = self.appends.pop_front() {
                self.run_append(job, false);
            } else if let Some(replay) = self.replays.pop_front() {
                self.run_replay(replay, 0);
            } else {
                break;
            }
        }
        let now_ms = self.now().unix_ms;
        for (conn, state) in &self.conns {
            // Every member has everything the store holds: nothing was lost at the end of a
            // stream (a live event dropped after a replay, say) with nothing after it to show it.
            for (room, membership) in &state.rooms {
                let head = self.log.read(room, 0, 0, now_ms).head.head;
                assert!(
                    membership.next.contains(&(head + 1)),
                    "connection {conn} in {room}: expected next {:?}, the store's head is {head}",
                    membership.next
                );
            }
            for ((room, id), pending) in &state.publishes {
                assert_eq!(
                    *pending, 0,
                    "connection {conn}: publish {id} to {room} unanswered"
                );
            }
            for (room, joins) in &state.joins {
                assert!(
                    !joins.awaiting,
                    "connection {conn}: join of {room} unanswered"
                );
            }
        }
        for (ticket, done) in &self.tickets {
            assert!(done, "backend publish {ticket} never completed");
        }
    }
}
