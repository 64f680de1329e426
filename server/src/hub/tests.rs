//! Hub tests on virtual time: scenario tables and a seeded deterministic simulation.
//!
//! The [`Harness`] plays the driver: it carries out the hub's actions against a
//! [`MemoryLog`] (immediately, or later when a test wants to interleave things) and renders
//! every transmitted frame as a short line, so tests read like protocol transcripts.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_sdk::wire::{ClientFrame, Json, RoomRight, ServerFrame, close_code};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::identity::Identity;
use crate::store::memory::MemoryLog;
use crate::store::{AppendDone, AppendRequest, Retention};

const EPOCH: u64 = 77;

struct Harness {
    hub: Hub,
    t0: Instant,
    elapsed: Duration,
    log: MemoryLog,
    frames: HashMap<ConnId, Vec<ServerFrame>>,
    closed: Vec<(ConnId, u16)>,
    completed: Vec<(u64, Result<AppendOutcome, String>)>,
    /// Backend stream steps answered (`Action::StreamDone`).
    streamed: Vec<(u64, StreamReply)>,
    /// When set, appends and replays wait in these queues until a test runs them.
    defer: bool,
    appends: VecDeque<AppendJob>,
    replays: VecDeque<(ConnId, RoomName, u64, u64)>,
    repairs: VecDeque<(RoomName, u64)>,
    /// When set, lock operations wait here until [`Harness::run_locks`] (a slow store).
    locks: Option<VecDeque<LockJob>>,
    /// The rooms the hub follows on the bus (its `Follow` and `Unfollow` actions).
    followed: BTreeSet<RoomName>,
    /// Everything the hub put out, in the order it did: each frame (recipient and exact
    /// text) and each action. Two runs of one simulation seed must produce the same one.
    transcript: Vec<String>,
}

impl Harness {
    fn new(config: HubConfig) -> Harness {
        Harness::with_retention(config, Retention::default())
    }

    fn with_retention(config: HubConfig, retention: Retention) -> Harness {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        Harness {
            hub: Hub::new(config),
            t0,
            elapsed: Duration::ZERO,
            log: MemoryLog::new(EPOCH, retention),
            frames: HashMap::new(),
            closed: Vec::new(),
            completed: Vec::new(),
            streamed: Vec::new(),
            defer: false,
            appends: VecDeque::new(),
            replays: VecDeque::new(),
            repairs: VecDeque::new(),
            locks: None,
            followed: BTreeSet::new(),
            transcript: Vec::new(),
        }
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.elapsed,
            unix_ms: 1_700_000_000_000 + self.elapsed.as_millis() as u64,
        }
    }

    fn connect(&mut self, conn: ConnId, user: &str) {
        self.connect_as(
            conn,
            Identity::new(
                user,
                Some(&user.to_uppercase()),
                &[("*", RoomRight::Publish)],
            ),
        );
    }

    fn connect_as(&mut self, conn: ConnId, identity: Identity) {
        let now = self.now();
        self.hub
            .handle_connect(now, conn, Arc::new(identity), ConnKind::Socket);
        self.pump();
    }

    fn send(&mut self, conn: ConnId, json: &str) {
        let frame =
            ClientFrame::decode(json).unwrap_or_else(|err| panic!("bad test frame {json}: {err}"));
        let now = self.now();
        self.hub.handle_frame(now, conn, frame);
        self.pump();
    }

    fn disconnect(&mut self, conn: ConnId) {
        let now = self.now();
        self.hub.handle_disconnect(now, conn);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        let end = self.elapsed + by;
        // Fire every timer at its own deadline, as a driver would.
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
        self.pump();
    }

    fn pump(&mut self) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.hub.poll_transmit() {
                idle = false;
                self.transcript
                    .push(format!("{} {}", transmit.conn, transmit.payload.as_str()));
                let frame = ServerFrame::decode(transmit.payload.as_str())
                    .expect("the hub sends valid frames");
                self.frames.entry(transmit.conn).or_default().push(frame);
            }
            while let Some(action) = self.hub.poll_action() {
                idle = false;
                self.transcript.push(format!("{action:?}"));
                match action {
                    Action::Append(job) if self.defer => self.appends.push_back(job),
                    Action::Append(job) => self.run_append(job),
                    Action::CheckLocks(room) => {
                        let now = self.now();
                        let locks = self.log.locks(&room, now.unix_ms);
                        self.hub.handle_locks_checked(now, room, Ok(locks));
                    }
                    Action::LoadRoom(room) => {
                        let now = self.now();
                        let locks = self.log.locks(&room, now.unix_ms);
                        self.hub.handle_locks_loaded(now, room.clone(), Ok(locks));
                        let head = self.log.read(&room, 0, 0, self.now().unix_ms).head;
                        self.hub.handle_room_loaded(now, room, Ok(head));
                    }
                    Action::Lock(job) if self.locks.is_some() => {
                        self.locks.as_mut().expect("checked").push_back(job);
                    }
                    Action::Lock(job) => {
                        // The store runs jobs in submission order: the appends queued before
                        // this lock operation go first.
                        while let Some(append) = self.appends.pop_front() {
                            self.run_append(append);
                        }
                        let result = Ok(self.log.lock(&job.request));
                        let now = self.now();
                        self.hub.handle_lock_done(now, LockDone { job, result });
                    }
                    Action::Replay {
                        conn,
                        room,
                        after,
                        until,
                    } if self.defer => self.replays.push_back((conn, room, after, until)),
                    Action::Replay {
                        conn,
                        room,
                        after,
                        until,
                    } => self.run_replay(conn, room, after, until),
                    Action::Follow(room) => {
                        self.followed.insert(room);
                    }
                    Action::Unfollow(room) => {
                        self.followed.remove(&room);
                    }
                    Action::Repair { room, after } if self.defer => {
                        self.repairs.push_back((room, after))
                    }
                    Action::Repair { room, after } => self.run_repair(room, after),
                    Action::Close { conn, code, .. } => self.closed.push((conn, code)),
                    Action::Signal { .. } => unreachable!("a one-node hub sends no signals"),
                    // A polling session's kept notice, recorded as if it was sent.
                    Action::Notice { conn, payload } => {
                        let frame = ServerFrame::decode(payload.as_str()).expect("valid frame");
                        self.frames.entry(conn).or_default().push(frame);
                    }
                    Action::Complete { ticket, result } => self
                        .completed
                        .push((ticket, result.map_err(|e| e.to_string()))),
                    Action::StreamDone { ticket, reply } => self.streamed.push((ticket, reply)),
                }
            }
            if idle {
                return;
            }
        }
    }

    fn run_append(&mut self, job: AppendJob) {
        let room = job.request.room.clone();
        let id = job.request.id.clone();
        let from = job.request.from.clone();
        let outcome = self.log.append(job.request, self.now().unix_ms);
        let now = self.now();
        self.hub.handle_append_done(
            now,
            AppendDone {
                origin: job.origin,
                room,
                id,
                from,
                result: Ok(outcome),
            },
        );
        self.pump();
    }

    fn run_repair(&mut self, room: RoomName, after: u64) {
        let page = self.log.read(&room, after, 256, self.now().unix_ms);
        let now = self.now();
        self.hub.handle_repaired(now, room, Ok(page));
        self.pump();
    }

    fn run_replay(&mut self, conn: ConnId, room: RoomName, after: u64, until: u64) {
        let page = self.log.read(&room, after, usize::MAX, self.now().unix_ms);
        let outcome = if page.head.covers_after(after) {
            for stored in page.events.into_iter().filter(|e| e.seq() <= until) {
                self.frames
                    .entry(conn)
                    .or_default()
                    .push(ServerFrame::Event(stored.event));
            }
            ReplayOutcome::Done
        } else {
            ReplayOutcome::NotCovered
        };
        let now = self.now();
        self.hub.handle_replay_done(now, conn, room, outcome);
        self.pump();
    }

    /// Runs the lock operations [`Harness::locks`] held, in order.
    fn run_locks(&mut self) {
        for job in self.locks.as_mut().map(std::mem::take).unwrap_or_default() {
            let result = Ok(self.log.lock(&job.request));
            let now = self.now();
            self.hub.handle_lock_done(now, LockDone { job, result });
            self.pump();
        }
    }

    fn run_deferred(&mut self) {
        while let Some(job) = self.appends.pop_front() {
            self.run_append(job);
        }
        while let Some((conn, room, after, until)) = self.replays.pop_front() {
            self.run_replay(conn, room, after, until);
        }
        while let Some((room, after)) = self.repairs.pop_front() {
            self.run_repair(room, after);
        }
    }

    /// Everything `conn` received since the last call, one short line per frame.
    fn take(&mut self, conn: ConnId) -> Vec<String> {
        self.frames
            .remove(&conn)
            .unwrap_or_default()
            .iter()
            .map(render)
            .collect()
    }
}

pub(super) fn render(frame: &ServerFrame) -> String {
    match frame {
        ServerFrame::Welcome(w) => format!("welcome {}", w.user),
        ServerFrame::Joined(j) => {
            let users: Vec<String> = j
                .presence
                .users
                .iter()
                .map(|u| format!("{}({})", u.user, u.conns.len()))
                .collect();
            let held = j
                .locks
                .as_ref()
                .map(|locks| wire::LockInfo::list(locks).unwrap());
            let locks: Vec<String> = held
                .unwrap_or_default()
                .iter()
                .map(|l| format!(" lock {}@{}", l.name, l.conn))
                .collect();
            format!(
                "joined {} head={} [{}] typing=[{}]{}{}",
                j.room,
                j.head,
                users.join(" "),
                j.typing.join(" "),
                locks.concat(),
                render_cursors(
                    &j.cursors
                        .as_ref()
                        .map(|list| chorus_sdk::wire::LiveCursor::read_list(list).unwrap())
                        .unwrap_or_default()
                )
            )
        }
        ServerFrame::Left(l) => format!("left {}", l.room),
        ServerFrame::Event(e) => {
            let seq = e.seq.map_or("~".to_owned(), |s| format!("#{s}"));
            format!(
                "event {} {seq} {} by {} {}",
                e.room,
                e.id,
                e.from,
                e.body.as_text()
            )
        }
        ServerFrame::Ack(a) => {
            let seq = a.seq.map_or("~".to_owned(), |s| format!("#{s}"));
            format!(
                "ack {} {} {seq}{}",
                a.room,
                a.id,
                if a.duplicate { " dup" } else { "" }
            )
        }
        ServerFrame::Nack(n) => {
            let room = n.room.as_ref().map_or("?".to_owned(), |r| r.to_string());
            let retry = n
                .retry_after_ms
                .map_or(String::new(), |ms| format!(" retry={ms}"));
            format!("nack {room} {} {}{retry}", n.id, n.code)
        }
        ServerFrame::Presence(p) => {
            let mut parts = vec![format!("presence {} v{}", p.room, p.version)];
            parts.extend(
                p.joins
                    .iter()
                    .map(|u| format!("+{}({})", u.user, u.conns.len())),
            );
            parts.extend(
                p.updates
                    .iter()
                    .map(|u| format!("~{}({})", u.user, u.conns.len())),
            );
            parts.extend(p.leaves.iter().map(|u| format!("-{u}")));
            parts.join(" ")
        }
        ServerFrame::Typing(t) => format!(
            "typing {} {} {}",
            t.room,
            t.user,
            if t.on { "on" } else { "off" }
        ),
        ServerFrame::Reset(r) => format!(
            "reset {} {} head={}",
            r.room,
            serde_json::to_string(&r.reason).unwrap(),
            r.head
        ),
        ServerFrame::Error(e) => format!(
            "error {}{}",
            e.code,
            e.room.as_ref().map_or(String::new(), |r| format!(" {r}"))
        ),
        ServerFrame::Lock(l) => {
            let lock = &l.lock;
            format!(
                "lock {} {} {} t+{} by {}@{} until+{}{}",
                l.room,
                l.change.as_str(),
                lock.name,
                lock.token.saturating_sub(1_700_000_000_000),
                lock.user,
                lock.conn,
                lock.until.saturating_sub(1_700_000_000_000),
                l.id.as_ref()
                    .map_or(String::new(), |id| format!(" re {id}"))
            )
        }
        ServerFrame::Pong(p) => format!("pong {:?}", p.nonce),
        ServerFrame::Authed(a) => format!("authed {}", a.user),
        ServerFrame::Notice(n) => format!("notice {} {} {}", n.id, n.level, n.body.as_text()),
        ServerFrame::Draining(d) => format!("draining {}", d.retry_after_ms),
        ServerFrame::Stream(frame) => {
            let s = frame.update().expect("a readable step");
            let chunks: Vec<&str> = s.chunks.iter().map(|c| c.as_text()).collect();
            let mut line = format!(
                "stream {} {} {} {:?}",
                frame.room,
                s.id,
                s.op.as_str(),
                s.kind
            );
            if !chunks.is_empty() {
                line.push_str(&format!(" n={} [{}]", s.n, chunks.join(",")));
            }
            if let Some(seq) = s.seq {
                line.push_str(&format!(" #{seq}"));
            }
            if let Some(code) = s.code {
                line.push_str(&format!(" {code}"));
            }
            line
        }
        ServerFrame::State(st) => {
            let mut parts = vec![format!("state {}", st.room)];
            if let Some(presence) = &st.presence {
                let users: Vec<String> = presence
                    .users
                    .iter()
                    .map(|u| format!("{}({})", u.user, u.conns.len()))
                    .collect();
                parts.push(format!("[{}]", users.join(" ")));
            }
            if let Some(typing) = &st.typing {
                parts.push(format!("typing=[{}]", typing.users.join(" ")));
            }
            let mut line = parts.join(" ");
            if let Some(cursors) = &st.cursors {
                let list = chorus_sdk::wire::LiveCursor::read_list(cursors).unwrap();
                line.push_str(&render_cursors(&list));
                if list.is_empty() {
                    line.push_str(" cursors=[]");
                }
            }
            line
        }
        ServerFrame::Cursor(notice) => {
            let c = chorus_sdk::wire::LiveCursor::read(&notice.cursor).unwrap();
            format!(
                "cursor {} {} {} {}",
                notice.room,
                c.conn,
                c.user,
                c.value.as_text()
            )
        }
    }
}

/// ` cursors=[conn:user:value ...]`, or nothing when there are none.
fn render_cursors(cursors: &[chorus_sdk::wire::LiveCursor]) -> String {
    if cursors.is_empty() {
        return String::new();
    }
    let each: Vec<String> = cursors
        .iter()
        .map(|c| format!("{}:{}:{}", c.conn, c.user, c.value.as_text()))
        .collect();
    format!(" cursors=[{}]", each.join(" "))
}

fn publish(room: &str, id: &str, body: &str) -> String {
    format!(r#"{{"type":"publish","room":"{room}","id":"{id}","body":{body}}}"#)
}

fn join(room: &str) -> String {
    format!(r#"{{"type":"join","room":"{room}"}}"#)
}

/// Two members of a room, both past their welcome and joined frames.
fn two_members() -> Harness {
    two_members_with(HubConfig::default())
}

fn two_members_with(config: HubConfig) -> Harness {
    let mut h = Harness::new(config);
    h.connect(1, "ana");
    h.connect(2, "ben");
    h.send(1, &join("r"));
    h.send(2, &join("r"));
    assert_eq!(
        h.take(1),
        [
            "welcome ana",
            "joined r head=0 [ana(1)] typing=[]",
            "presence r v2 +ben(1)"
        ]
    );
    assert_eq!(
        h.take(2),
        ["welcome ben", "joined r head=0 [ana(1) ben(1)] typing=[]"]
    );
    h
}

#[test]
fn publish_is_stored_fanned_out_to_everyone_then_acked() {
    let mut h = two_members();
    h.send(1, &publish("r", "a1", r#"{"t":"hi"}"#));
    assert_eq!(
        h.take(1),
        [r#"event r #1 a1 by ana {"t":"hi"}"#, "ack r a1 #1"]
    );
    assert_eq!(h.take(2), [r#"event r #1 a1 by ana {"t":"hi"}"#]);
    h.send(2, &publish("r", "b1", "2"));
    assert_eq!(h.take(1), ["event r #2 b1 by ben 2"]);
}

#[test]
fn from_is_the_authenticated_user_whatever_the_body_says() {
    let mut h = two_members();
    h.send(2, &publish("r", "x", r#"{"from":"ana"}"#));
    assert_eq!(h.take(1), [r#"event r #1 x by ben {"from":"ana"}"#]);
}

#[test]
fn a_duplicate_publish_is_acked_with_the_original_seq_and_delivered_once() {
    let mut h = two_members();
    h.send(1, &publish("r", "a1", "1"));
    h.send(1, &publish("r", "a2", "2"));
    h.take(1);
    h.take(2);
    h.send(1, &publish("r", "a1", "1"));
    assert_eq!(h.take(1), ["ack r a1 #1 dup"]);
    assert_eq!(h.take(2), Vec::<String>::new());
}

#[test]
fn if_seq_conflicts_when_the_head_moved() {
    let mut h = two_members();
    h.send(
        1,
        r#"{"type":"publish","room":"r","id":"a","body":1,"if_seq":0}"#,
    );
    h.send(
        2,
        r#"{"type":"publish","room":"r","id":"b","body":2,"if_seq":0}"#,
    );
    assert_eq!(h.take(2), ["event r #1 a by ana 1", "nack r b conflict"]);
    h.send(
        2,
        r#"{"type":"publish","room":"r","id":"b","body":2,"if_seq":1}"#,
    );
    assert_eq!(h.take(2), ["event r #2 b by ben 2", "ack r b #2"]);
}

#[test]
fn ephemeral_events_fan_out_without_seq_storage_or_echo() {
    let mut h = two_members();
    h.send(
        1,
        r#"{"type":"publish","room":"r","id":"cur","body":{"x":1},"durable":false}"#,
    );
    assert_eq!(h.take(1), ["ack r cur ~"]);
    assert_eq!(h.take(2), [r#"event r ~ cur by ana {"x":1}"#]);
    assert_eq!(
        h.log
            .read(&RoomName::parse("r").unwrap(), 0, 10, 0)
            .head
            .head,
        0,
        "nothing stored"
    );
}

#[test]
fn refusals_have_codes_and_change_nothing() {
    let mut h = two_members();
    h.connect_as(3, Identity::new("cal", None, &[("r", RoomRight::Read)]));
    h.take(3);
    h.send(3, &publish("r", "c", "1"));
    h.send(3, &join("secret"));
    h.send(3, &join("r"));
    h.send(3, &publish("r", "c", "1"));
    h.send(3, r#"{"type":"typing","room":"other","on":true}"#);
    h.send(3, r#"{"type":"hello","token":"again"}"#);
    assert_eq!(
        h.take(3),
        [
            "nack r c not_joined",
            "error forbidden secret",
            "joined r head=0 [ana(1) ben(1) cal(1)] typing=[]",
            "nack r c forbidden",
            "error not_joined other",
            "error bad_frame",
        ]
    );
    let big_meta = format!(
        r#"{{"type":"join","room":"big","meta":"{}"}}"#,
        "x".repeat(3000)
    );
    h.send(1, &big_meta);
    assert_eq!(
        h.take(1),
        ["presence r v3 +cal(1)", "error meta_too_large big"]
    );
    // The room still works for everyone.
    h.send(1, &publish("r", "ok", "1"));
    assert_eq!(h.take(3), ["event r #1 ok by ana 1"]);
}

#[test]
fn a_connection_may_join_only_so_many_rooms() {
    let mut h = Harness::new(HubConfig {
        max_rooms_per_conn: 2,
        ..HubConfig::default()
    });
    h.connect(1, "ana");
    for room in ["a", "b", "c"] {
        h.send(1, &join(room));
    }
    let frames = h.take(1);
    assert_eq!(frames.last().unwrap(), "error too_many_rooms c");
    h.send(1, r#"{"type":"leave","room":"a"}"#);
    h.send(1, &join("c"));
    assert_eq!(h.take(1), ["left a", "joined c head=0 [ana(1)] typing=[]"]);
}

#[test]
fn resume_replays_exactly_the_missed_events_with_live_ones_after() {
    let mut h = two_members();
    for n in 1..=3 {
        h.send(1, &publish("r", &format!("a{n}"), &n.to_string()));
    }
    h.disconnect(2);
    for n in 4..=5 {
        h.send(1, &publish("r", &format!("a{n}"), &n.to_string()));
    }
    h.take(1);
    h.frames.clear();
    // Ben reconnects with cursor 3; while his replay is in flight, two more events are stored.
    h.defer = true;
    h.connect(3, "ben");
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":3}}"#,
    );
    h.send(1, &publish("r", "a6", "6"));
    h.send(1, &publish("r", "a7", "7"));
    h.run_deferred();
    assert_eq!(
        h.take(3),
        [
            "welcome ben",
            "joined r head=5 [ana(1) ben(1)] typing=[]",
            "event r #4 a4 by ana 4",
            "event r #5 a5 by ana 5",
            "event r #6 a6 by ana 6",
            "event r #7 a7 by ana 7",
        ]
    );
    assert_eq!(
        h.take(1),
        [
            "presence r v3 ~ben(1)",
            "event r #6 a6 by ana 6",
            "ack r a6 #6",
            "event r #7 a7 by ana 7",
            "ack r a7 #7"
        ]
    );
}

#[test]
fn a_replay_interrupted_by_the_store_goes_on_later_without_a_reset() {
    let mut h = two_members();
    for n in 1..=3 {
        h.send(1, &publish("r", &format!("a{n}"), &n.to_string()));
    }
    h.disconnect(2);
    for n in 4..=6 {
        h.send(1, &publish("r", &format!("a{n}"), &n.to_string()));
    }
    h.take(1);
    h.frames.clear();
    h.defer = true;
    h.connect(3, "ben");
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":3}}"#,
    );
    // The store sends #4, then fails (Redis restarting); a live event comes meanwhile.
    let (conn, room, after, until) = h.replays.pop_front().expect("a replay");
    assert_eq!((conn, after, until), (3, 3, 6));
    let page = h.log.read(&room, after, 1, h.now().unix_ms);
    for stored in page.events {
        h.frames
            .entry(conn)
            .or_default()
            .push(ServerFrame::Event(stored.event));
    }
    let now = h.now();
    h.hub
        .handle_replay_done(now, conn, room, ReplayOutcome::Interrupted { after: 4 });
    h.pump();
    h.send(1, &publish("r", "a7", "7"));
    h.run_deferred();
    assert!(h.replays.is_empty(), "no retry before its time");
    // After the retry delay the replay goes on from #4.
    h.advance(crate::hub::REPLAY_RETRY);
    assert_eq!(h.replays.front().map(|r| (r.2, r.3)), Some((4, 6)));
    h.run_deferred();
    assert_eq!(
        h.take(3),
        [
            "welcome ben",
            "joined r head=6 [ana(1) ben(1)] typing=[]",
            "event r #4 a4 by ana 4",
            "event r #5 a5 by ana 5",
            "event r #6 a6 by ana 6",
            "event r #7 a7 by ana 7",
        ]
    );
}

#[test]
fn a_cursor_the_history_cannot_serve_gets_reset_then_live_events() {
    let retention = Retention {
        max_events: 3,
        ..Retention::default()
    };
    let mut h = Harness::with_retention(HubConfig::default(), retention);
    h.connect(1, "ana");
    h.send(1, &join("r"));
    for n in 1..=6 {
        h.send(1, &publish("r", &format!("a{n}"), "0"));
    }
    h.connect(2, "ben");
    h.send(
        2,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":1}}"#,
    );
    h.send(
        2,
        r#"{"type":"join","room":"s","resume":{"epoch":12,"seq":1}}"#,
    );
    h.send(
        2,
        r#"{"type":"join","room":"t","resume":{"epoch":77,"seq":9}}"#,
    );
    h.send(1, &publish("r", "a7", "0"));
    assert_eq!(
        h.take(2),
        [
            "welcome ben",
            "joined r head=6 [ana(1) ben(1)] typing=[]",
            r#"reset r "history_trimmed" head=6"#,
            "joined s head=0 [ben(1)] typing=[]",
            r#"reset s "epoch_changed" head=0"#,
            "joined t head=0 [ben(1)] typing=[]",
            r#"reset t "cursor_ahead" head=0"#,
            "event r #7 a7 by ana 0",
        ]
    );
}

#[test]
fn presence_joins_tabs_and_leaves_after_the_grace_period() {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1, "ben");
    h.send(1, &join("r"));
    h.connect(2, "ana");
    h.connect(3, "ana");
    h.send(2, &join("r"));
    h.send(3, r#"{"type":"join","room":"r","meta":{"color":"red"}}"#);
    h.take(1);
    h.disconnect(2);
    assert_eq!(
        h.take(1),
        ["presence r v4 ~ana(1)"],
        "closing one tab is an update"
    );
    h.disconnect(3);
    h.advance(Duration::from_millis(4900));
    assert_eq!(
        h.take(1),
        Vec::<String>::new(),
        "nothing during the grace period"
    );
    h.advance(Duration::from_millis(100));
    assert_eq!(h.take(1), ["presence r v5 -ana"]);

    // A reconnect within the grace period shows no leave at all.
    h.connect(4, "ana");
    h.send(4, &join("r"));
    h.disconnect(4);
    h.advance(Duration::from_secs(2));
    h.connect(5, "ana");
    h.send(5, &join("r"));
    h.advance(Duration::from_secs(10));
    assert_eq!(
        h.take(1),
        ["presence r v6 +ana(1)", "presence r v7 ~ana(1)"]
    );
    // Metas update; an explicit leave is immediate.
    h.send(
        5,
        r#"{"type":"presence","room":"r","meta":{"status":"away"}}"#,
    );
    h.send(5, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(h.take(1), ["presence r v8 ~ana(1)", "presence r v9 -ana"]);
    assert_eq!(
        h.hub
            .presence(&RoomName::parse("r").unwrap())
            .unwrap()
            .users
            .len(),
        1
    );
}

#[test]
fn typing_fans_out_refreshes_and_expires_without_refresh() {
    let mut h = two_members();
    h.send(1, r#"{"type":"typing","room":"r","on":true}"#);
    h.advance(Duration::from_secs(4));
    h.send(1, r#"{"type":"typing","room":"r","on":true}"#);
    h.advance(Duration::from_secs(4));
    assert_eq!(
        h.take(2),
        ["typing r ana on", "typing r ana on"],
        "refreshed, so not expired at 8 s"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.take(2),
        ["typing r ana off"],
        "expired 6 s after the last refresh"
    );
    h.send(1, r#"{"type":"typing","room":"r","on":true}"#);
    h.send(1, r#"{"type":"typing","room":"r","on":false}"#);
    h.send(1, r#"{"type":"typing","room":"r","on":true}"#);
    h.disconnect(1);
    assert_eq!(
        h.take(2),
        [
            "typing r ana on",
            "typing r ana off",
            "typing r ana on",
            "typing r ana off"
        ]
    );
    assert_eq!(
        h.take(1),
        Vec::<String>::new(),
        "typing is not echoed to its sender"
    );
}

#[test]
fn typing_and_presence_frames_are_rate_limited_per_connection_and_no_op_typing_is_dropped() {
    let mut h = two_members_with(HubConfig {
        signal_rate: 2.0,
        signal_burst: 3.0,
        ..HubConfig::default()
    });
    let typing = |on: bool| format!(r#"{{"type":"typing","room":"r","on":{on}}}"#);
    let presence = |n: u32| format!(r#"{{"type":"presence","room":"r","meta":{{"n":{n}}}}}"#);
    // Refreshes right after the last one change nothing: dropped, and free.
    for _ in 0..1000 {
        h.send(1, &typing(true));
    }
    h.send(1, &typing(false));
    h.send(1, &typing(false));
    h.send(1, &presence(1));
    // The same meta again changes nothing: dropped, and free too.
    for _ in 0..1000 {
        h.send(1, &presence(1));
    }
    let own = h.take(1);
    assert!(
        own.len() == 1 && own[0].starts_with("presence r"),
        "within the budget: no error, only the presence everyone gets: {own:?}"
    );
    let seen = h.take(2);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(&seen[..2], ["typing r ana on", "typing r ana off"]);
    assert!(seen[2].starts_with("presence r"), "{seen:?}");
    // The budget is spent: dropped, with one error for the whole burst.
    for n in 2..100 {
        h.send(1, &presence(n));
        h.send(1, &typing(n % 2 == 0));
    }
    assert_eq!(h.take(1), ["error rate_limited r"]);
    assert_eq!(
        h.take(2),
        Vec::<String>::new(),
        "nothing reaches the others"
    );
    // A token comes back after 1/rate seconds; the next burst is told again.
    h.advance(Duration::from_millis(500));
    h.send(1, &presence(100));
    h.send(1, &presence(101));
    assert_eq!(h.take(2).len(), 1);
    assert_eq!(h.take(1)[1..], ["error rate_limited r"]);
    // A refresh a sixth of the TTL after the last forwarded one goes through.
    let mut h = two_members();
    h.send(1, &typing(true));
    h.advance(Duration::from_millis(999));
    h.send(1, &typing(true));
    h.advance(Duration::from_millis(1));
    h.send(1, &typing(true));
    assert_eq!(h.take(2), ["typing r ana on", "typing r ana on"]);
}

/// A presence change carries the user's whole entry, every connection's meta, to every member:
/// so a user's tabs together have one connection's budget per room. Their changes beyond it
/// are held, not dropped (no tab hears an error: each is within its own budget): a member who
/// joins meanwhile sees them, and one update brings them all when a token is back.
#[test]
fn a_users_tabs_share_one_presence_budget_per_room_and_held_changes_arrive_together() {
    let mut h = two_members_with(HubConfig {
        signal_rate: 2.0,
        signal_burst: 3.0,
        ..HubConfig::default()
    });
    for tab in [3, 4] {
        h.connect(tab, "ana");
        h.send(tab, &join("r"));
    }
    for conn in [1, 2, 3, 4] {
        h.take(conn);
    }
    let presence = |n: ConnId| format!(r#"{{"type":"presence","room":"r","meta":{{"n":{n}}}}}"#);
    let updates = |h: &mut Harness, conn: ConnId| -> Vec<(u64, Vec<String>)> {
        let frames = h.frames.remove(&conn).unwrap_or_default();
        let diffs = frames.iter().filter_map(|frame| match frame {
            ServerFrame::Presence(diff) => Some(diff),
            _ => None,
        });
        diffs
            .map(|diff| {
                let metas = diff.updates.iter().flat_map(|user| &user.conns);
                let metas = metas.map(|c| c.meta.as_text().to_owned()).collect();
                (diff.version, metas)
            })
            .collect()
    };
    // Three changes from each tab: every tab within its own budget, nine in all.
    for round in 0..3 {
        for tab in [1, 3, 4] {
            h.send(tab, &presence(round * 10 + tab));
        }
    }
    for tab in [1, 3, 4] {
        let own = h.take(tab);
        assert!(own.iter().all(|f| f.starts_with("presence r")), "{own:?}");
    }
    let seen = updates(&mut h, 2);
    assert_eq!(
        seen.len(),
        3,
        "the user's budget, not three times it: {seen:?}"
    );
    let first = seen[0].0;
    assert_eq!(
        seen.iter().map(|u| u.0).collect::<Vec<_>>(),
        [first, first + 1, first + 2]
    );
    // Someone who joins now sees the latest metas at once.
    h.connect(5, "cat");
    h.send(5, &join("r"));
    let room = RoomName::parse("r").unwrap();
    let snapshot = h.hub.presence(&room).expect("open");
    let ana: Vec<_> = snapshot.users[0]
        .conns
        .iter()
        .map(|c| c.meta.as_text())
        .collect();
    assert_eq!(ana, [r#"{"n":21}"#, r#"{"n":23}"#, r#"{"n":24}"#]);
    h.take(2);
    // A token is back after 1/rate: one update, one version, every held change in it.
    h.advance(Duration::from_millis(499));
    assert_eq!(updates(&mut h, 2), []);
    h.advance(Duration::from_millis(1));
    let flushed = updates(&mut h, 2);
    let latest = [r#"{"n":21}"#, r#"{"n":23}"#, r#"{"n":24}"#]
        .map(String::from)
        .to_vec();
    assert_eq!(
        flushed,
        [(first + 4, latest.clone())],
        "after cat's join (v{})",
        first + 3
    );
    assert_eq!(updates(&mut h, 5), [(first + 4, latest)]);
    h.advance(Duration::from_secs(10));
    assert_eq!(updates(&mut h, 2), [], "nothing is held any more");
}

/// A join is told to the whole room, so joins of rooms not joined yet draw from a bucket of
/// their own: leaving and joining again without end is refused with `rate_limited`, the
/// others hear nothing of the refused joins, and a token comes back with time.
#[test]
fn joins_are_rate_limited_per_connection() {
    let mut h = two_members_with(HubConfig {
        join_rate: 2.0,
        join_burst: 3.0,
        ..HubConfig::default()
    });
    // Ana's first join took one token.
    for _ in 0..3 {
        h.send(1, r#"{"type":"leave","room":"r"}"#);
        h.send(1, &join("r"));
    }
    let own = h.take(1);
    let joined = own.iter().filter(|f| f.starts_with("joined r")).count();
    assert_eq!(joined, 2, "{own:?}");
    assert_eq!(own.last().map(String::as_str), Some("error rate_limited r"));
    let seen = h.take(2);
    assert_eq!(
        seen.len(),
        5,
        "two leaves and joins, then the last leave: {seen:?}"
    );
    h.advance(Duration::from_millis(500));
    h.send(1, &join("r"));
    assert!(h.take(1)[0].starts_with("joined r"), "a token came back");
}

/// A join of a room already joined re-sends the whole snapshot, so it draws from the join
/// budget as a first join does (one token, a new meta included): a flood of them gets a few
/// snapshots and a `rate_limited` for each of the rest, and costs the others nothing.
#[test]
fn joining_again_draws_from_the_join_budget() {
    let mut h = two_members_with(HubConfig {
        join_rate: 2.0,
        join_burst: 3.0,
        ..HubConfig::default()
    });
    // Ana's first join took one token.
    for n in 0..1000 {
        h.send(
            1,
            &format!(r#"{{"type":"join","room":"r","meta":{{"n":{}}}}}"#, n % 2),
        );
    }
    let own = h.take(1);
    let snapshots = own.iter().filter(|f| f.starts_with("joined r")).count();
    let refused = own.iter().filter(|f| *f == "error rate_limited r").count();
    assert_eq!((snapshots, refused), (2, 998), "{:?}", &own[..6]);
    assert_eq!(
        h.take(2)
            .iter()
            .filter(|f| f.starts_with("presence r"))
            .count(),
        2,
        "one presence change per admitted join, none past the budget"
    );
    h.advance(Duration::from_millis(500));
    h.send(1, &join("r"));
    let own = h.take(1);
    assert!(
        own.iter().any(|f| f.starts_with("joined r")),
        "a token came back: {own:?}"
    );
}

#[test]
fn silent_connections_are_closed_after_two_heartbeats_and_cleaned_up() {
    let mut h = two_members_with(HubConfig {
        typing_ttl: Duration::from_secs(600),
        ..HubConfig::default()
    });
    h.send(1, r#"{"type":"typing","room":"r","on":true}"#);
    for _ in 0..3 {
        h.advance(Duration::from_secs(10));
        h.send(2, r#"{"type":"ping","nonce":1}"#);
    }
    assert_eq!(h.closed, [(1, close_code::IDLE_TIMEOUT)]);
    assert_eq!(h.hub.connection_count(), 1);
    h.advance(Duration::from_secs(6));
    assert_eq!(
        h.take(2),
        [
            "typing r ana on",
            "pong Some(1)",
            "pong Some(1)",
            "typing r ana off",
            "pong Some(1)",
            "presence r v3 -ana"
        ]
    );
}

#[test]
fn a_replaying_member_that_falls_too_far_behind_is_closed_as_slow() {
    let mut h = Harness::new(HubConfig {
        replay_buffer: 2,
        ..HubConfig::default()
    });
    h.connect(1, "ana");
    h.send(1, &join("r"));
    h.send(1, &publish("r", "a0", "0"));
    h.defer = true;
    h.connect(2, "ben");
    h.send(
        2,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":0}}"#,
    );
    for n in 1..=3 {
        h.send(1, &publish("r", &format!("a{n}"), "0"));
        let job = h.appends.pop_front().unwrap();
        h.run_append(job);
    }
    assert_eq!(h.closed, [(2, close_code::SLOW_CONSUMER)]);
    assert_eq!(h.hub.connection_count(), 1);
}

#[test]
fn draining_acks_what_was_submitted_refuses_the_rest_then_closes_everyone() {
    let mut h = two_members();
    h.defer = true;
    // Submitted before the drain, stored during it: still acked before the goodbye.
    h.send(1, &publish("r", "before", "1"));
    h.hub.handle_drain(Duration::from_millis(1500));
    h.pump();
    assert_eq!(h.take(1), ["draining 1500"]);
    assert_eq!(h.take(2), ["draining 1500"]);
    assert_eq!(
        h.closed,
        [],
        "connections stay open until the drain completes"
    );
    // A publish during the drain is refused, with the hint in its message; nothing is stored.
    h.send(2, &publish("r", "during", "2"));
    assert_eq!(h.take(2), ["nack r during draining retry=1500"]);
    let nack = h
        .transcript
        .iter()
        .rev()
        .find(|line| line.contains("\"nack\""))
        .unwrap();
    assert!(nack.contains("reconnect in 1500 ms"), "{nack}");
    assert_eq!(h.appends.len(), 1, "only the publish from before the drain");
    // So is a backend publish, and a new connection is told and closed at once.
    let now = h.now();
    let request = AppendRequest {
        room: RoomName::parse("r").unwrap(),
        id: chorus_sdk::wire::EventId::parse("rest").unwrap(),
        from: "system".into(),
        at: now.unix_ms,
        body: Json::null(),
        if_seq: None,
        if_lock: None,
    };
    h.hub.handle_backend_publish(now, 7, request);
    h.connect(3, "cy");
    assert_eq!(h.take(3), ["draining 1500"]);
    assert_eq!(h.closed, [(3, close_code::SERVICE_RESTART)]);
    assert!(matches!(&h.completed[..], [(7, Err(_))]));
    // The store answers what was submitted before; then the drain completes.
    h.run_deferred();
    assert_eq!(h.take(1), ["event r #1 before by ana 1", "ack r before #1"]);
    assert_eq!(h.take(2), ["event r #1 before by ana 1"]);
    h.hub.handle_drain_complete();
    h.pump();
    assert_eq!(
        h.closed,
        [
            (3, close_code::SERVICE_RESTART),
            (1, close_code::SERVICE_RESTART),
            (2, close_code::SERVICE_RESTART)
        ]
    );
    assert_eq!(h.hub.connection_count(), 0);
}

#[test]
fn publishes_sent_while_the_room_loads_wait_for_it() {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1, "ana");
    let frame = ClientFrame::decode(&join("r")).unwrap();
    let now = h.now();
    h.hub.handle_frame(now, 1, frame);
    let frame = ClientFrame::decode(&publish("r", "early", "1")).unwrap();
    h.hub.handle_frame(now, 1, frame);
    // Before the room is loaded nothing is appended; the room is followed before it loads.
    assert!(matches!(h.hub.poll_action(), Some(Action::Follow(_))));
    assert!(matches!(h.hub.poll_action(), Some(Action::LoadRoom(_))));
    assert!(h.hub.poll_action().is_none());
    let head = h.log.read(&RoomName::parse("r").unwrap(), 0, 0, 0).head;
    h.hub
        .handle_room_loaded(now, RoomName::parse("r").unwrap(), Ok(head));
    h.pump();
    assert_eq!(
        h.take(1),
        [
            "welcome ana",
            "joined r head=0 [ana(1)] typing=[]",
            "event r #1 early by ana 1",
            "ack r early #1"
        ]
    );
}

#[test]
fn a_room_that_cannot_be_loaded_refuses_its_joins_and_publishes() {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1, "ana");
    let now = h.now();
    h.hub
        .handle_frame(now, 1, ClientFrame::decode(&join("r")).unwrap());
    h.hub.handle_frame(
        now,
        1,
        ClientFrame::decode(&publish("r", "p", "1")).unwrap(),
    );
    let room = RoomName::parse("r").unwrap();
    h.hub.handle_room_loaded(
        now,
        room,
        Err(crate::store::StoreError::Backend("disk on fire".into())),
    );
    h.pump();
    assert_eq!(
        h.take(1),
        [
            "welcome ana",
            "error storage_unavailable r",
            "nack r p storage_unavailable"
        ]
    );
    h.send(1, &join("r"));
    assert_eq!(
        h.take(1),
        ["joined r head=0 [ana(1)] typing=[]"],
        "a later join tries again"
    );
}

// ---------------------------------------------------------------------------------------------
// Deterministic simulation
// ---------------------------------------------------------------------------------------------

/// What one simulated client knows, kept across its reconnections.
#[derive(Default)]
struct SimClient {
    user: String,
    conn: Option<ConnId>,
    /// Rooms the client wants to be in, with its cursor (`None` until first joined).
    rooms: BTreeMap<RoomName, Option<u64>>,
    /// The app-level stream: seqs delivered per room, in delivery order.
    delivered: BTreeMap<RoomName, Vec<u64>>,
    /// Local presence per room, applied from snapshots and diffs.
    presence: BTreeMap<RoomName, (u64, BTreeMap<String, usize>)>,
    next_id: u64,
    acked: Vec<(RoomName, String, u64)>,
    /// Locks as this client was told, per room: name -> (token, holder's conn, held).
    locks: BTreeMap<RoomName, BTreeMap<String, (u64, String, bool)>>,
    /// The largest token each lock was ever granted with, as this client saw it.
    granted: BTreeMap<(RoomName, String), u64>,
    /// Grants this client was told ended (released or expired), by (room, name, token).
    ended: BTreeSet<(RoomName, String, u64)>,
    /// Fenced publishes sent stating a grant this client already knew had ended.
    fenced_dead: BTreeSet<String>,
    /// Lock request ids sent.
    lock_ids: u64,
    /// Rooms joined on the current connection (`joined` received since it opened).
    joined_now: BTreeSet<RoomName>,
    /// The live cursor this client set per room on its current connection.
    own_cursors: BTreeMap<RoomName, String>,
    /// The others' live cursors per room as this client sees them: wire conn id -> value.
    cursors: BTreeMap<RoomName, BTreeMap<String, String>>,
}

const SIM_ROOMS: [&str; 3] = ["r0", "r1", "r2"];

/// Runs one seed; its transcript (see [`Harness::transcript`]) when every invariant held.
fn simulate(seed: u64, steps: usize) -> Result<Vec<String>, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let retention = Retention {
        max_events: 10_000,
        max_age: Duration::from_secs(1 << 30),
    };
    let mut h = Harness::with_retention(HubConfig::default(), retention);
    h.defer = true;
    let mut clients: Vec<SimClient> = (0..6)
        .map(|n| SimClient {
            user: format!("u{}", n % 4),
            ..SimClient::default()
        })
        .collect();
    let mut next_conn: ConnId = 1;

    for step in 0..steps {
        let who = rng.random_range(0..clients.len());
        let roll = rng.random_range(0..100);
        let client = &mut clients[who];
        match (client.conn, roll) {
            (None, _) => {
                reconnect(&mut h, client, next_conn);
                next_conn += 1;
            }
            (Some(conn), 0..=9) => {
                let room = SIM_ROOMS[rng.random_range(0..SIM_ROOMS.len())];
                let room_name = RoomName::parse(room).unwrap();
                if let std::collections::btree_map::Entry::Vacant(entry) =
                    client.rooms.entry(room_name)
                {
                    entry.insert(None);
                    h.send(conn, &join(room));
                }
            }
            (Some(conn), 10..=12) => {
                if let Some(room) = client.rooms.keys().next().cloned() {
                    client.rooms.remove(&room);
                    client.presence.remove(&room);
                    client.joined_now.remove(&room);
                    client.own_cursors.remove(&room);
                    client.cursors.remove(&room);
                    h.send(conn, &format!(r#"{{"type":"leave","room":"{room}"}}"#));
                }
            }
            (Some(conn), 13..=18) => {
                client.conn = None;
                h.disconnect(conn);
            }
            (Some(conn), 22..=24) if !client.joined_now.is_empty() => {
                let joined: Vec<&RoomName> = client.joined_now.iter().collect();
                let room = joined[rng.random_range(0..joined.len())].clone();
                let value = ["null", "1", "2", "[3]"][rng.random_range(0..4)];
                if value == "null" {
                    client.own_cursors.remove(&room);
                } else {
                    client.own_cursors.insert(room.clone(), value.to_owned());
                }
                h.send(
                    conn,
                    &format!(r#"{{"type":"cursor","room":"{room}","value":{value}}}"#),
                );
            }
            (Some(conn), 19..=24) => {
                let room = SIM_ROOMS[rng.random_range(0..SIM_ROOMS.len())];
                let on = rng.random_bool(0.7);
                h.send(
                    conn,
                    &format!(r#"{{"type":"typing","room":"{room}","on":{on}}}"#),
                );
            }
            (Some(conn), 61..=64) => {
                // Acquire (or renew, when this connection holds it) a lock with a short TTL.
                if let Some(room) = client.rooms.keys().next().cloned() {
                    client.lock_ids += 1;
                    let ttl = rng.random_range(200..4000);
                    let name = ["a", "b"][rng.random_range(0..2)];
                    let mine = format!("n-{conn}");
                    let token = client
                        .locks
                        .get(&room)
                        .and_then(|locks| locks.get(name))
                        .filter(|(_, holder, held)| {
                            *held && *holder == mine && rng.random_bool(0.5)
                        })
                        .map_or(String::new(), |(token, _, _)| {
                            format!(r#","token":{token}"#)
                        });
                    h.send(
                        conn,
                        &format!(
                            r#"{{"type":"lock","room":"{room}","id":"L{}-{who}","name":"{name}","ttl_ms":{ttl}{token}}}"#,
                            client.lock_ids
                        ),
                    );
                }
            }
            (Some(conn), 65..=66) => {
                // Release a lock, stating the token this client last heard of.
                if let Some((room, name, token)) = client.locks.iter().find_map(|(room, locks)| {
                    locks
                        .iter()
                        .next()
                        .map(|(name, (token, _, _))| (room.clone(), name.clone(), *token))
                }) {
                    client.lock_ids += 1;
                    h.send(
                        conn,
                        &format!(
                            r#"{{"type":"unlock","room":"{room}","id":"L{}-{who}","name":"{name}","token":{token}}}"#,
                            client.lock_ids
                        ),
                    );
                }
            }
            (Some(conn), 67..=69) => {
                // A fenced publish stating the last token heard of a lock (maybe long gone).
                if let Some((room, name, token)) = client.locks.iter().find_map(|(room, locks)| {
                    locks
                        .iter()
                        .next()
                        .map(|(name, (token, _, _))| (room.clone(), name.clone(), *token))
                }) {
                    // Ids of their own: a plain publish retrying an old id never reuses one.
                    client.lock_ids += 1;
                    let id = format!("F{}-{who}", client.lock_ids);
                    if client.ended.contains(&(room.clone(), name.clone(), token)) {
                        client.fenced_dead.insert(id.clone());
                    }
                    h.send(
                        conn,
                        &format!(
                            r#"{{"type":"publish","room":"{room}","id":"{id}","body":0,"if_lock":{{"name":"{name}","token":{token}}}}}"#
                        ),
                    );
                }
            }
            (Some(conn), 25..=60) => {
                if let Some(room) = client
                    .rooms
                    .keys()
                    .nth(rng.random_range(0..client.rooms.len().max(1)))
                    .cloned()
                {
                    // Sometimes republish an old id, as a client retrying after a lost ack would.
                    let id = if client.next_id > 0 && rng.random_bool(0.15) {
                        rng.random_range(0..client.next_id)
                    } else {
                        client.next_id += 1;
                        client.next_id - 1
                    };
                    h.send(
                        conn,
                        &publish(room.as_str(), &format!("{}-{who}-{id}", client.user), "0"),
                    );
                }
            }
            (Some(_), 70..=84) => {
                // Let the store and pending replays make progress (in order, as a real store does).
                let n = rng.random_range(0..=h.appends.len());
                for _ in 0..n {
                    let job = h.appends.pop_front().unwrap();
                    h.run_append(job);
                }
                if !h.replays.is_empty() && rng.random_bool(0.7) {
                    let (conn, room, after, until) = h.replays.pop_front().unwrap();
                    h.run_replay(conn, room, after, until);
                }
            }
            (Some(_), _) => h.advance(Duration::from_millis(rng.random_range(0..3000))),
        }
        absorb(&mut h, &mut clients).map_err(|err| format!("seed {seed}, step {step}: {err}"))?;
    }

    // Settle: everyone reconnects and resumes, all pending work finishes, grace periods pass.
    for client in clients.iter_mut().filter(|c| c.conn.is_none()) {
        reconnect(&mut h, client, next_conn);
        next_conn += 1;
    }
    h.run_deferred();
    // Wait out grace periods and typing TTLs while every client keeps its connection alive.
    for _ in 0..6 {
        for client in &clients {
            if let Some(conn) = client.conn {
                h.send(conn, r#"{"type":"ping"}"#);
            }
        }
        h.advance(Duration::from_secs(2));
    }
    absorb(&mut h, &mut clients).map_err(|err| format!("seed {seed}, settling: {err}"))?;
    if let Some(client) = clients.iter().find(|c| c.conn.is_none()) {
        return Err(format!(
            "seed {seed}: {} lost its connection while settling",
            client.user
        ));
    }
    check_converged(&mut h, &clients).map_err(|err| format!("seed {seed}, at the end: {err}"))?;
    Ok(h.transcript)
}

/// Opens a new connection for `client` and rejoins its rooms, resuming from its cursors.
fn reconnect(h: &mut Harness, client: &mut SimClient, conn: ConnId) {
    client.conn = Some(conn);
    // The server forgot everything of the old connection; the new one starts afresh.
    client.joined_now.clear();
    client.own_cursors.clear();
    client.cursors.clear();
    h.connect(conn, &client.user);
    for (room, cursor) in &client.rooms {
        let resume = cursor.map_or(String::new(), |seq| {
            format!(r#","resume":{{"epoch":{EPOCH},"seq":{seq}}}"#)
        });
        h.send(
            conn,
            &format!(r#"{{"type":"join","room":"{room}"{resume}}}"#),
        );
    }
}

/// Delivers transmitted frames to the simulated clients, checking per-frame invariants.
fn absorb(h: &mut Harness, clients: &mut [SimClient]) -> Result<(), String> {
    let by_conn: HashMap<ConnId, usize> = clients
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.conn.map(|conn| (conn, i)))
        .collect();
    for (conn, frames) in std::mem::take(&mut h.frames) {
        let Some(&who) = by_conn.get(&conn) else {
            continue;
        };
        let client = &mut clients[who];
        for frame in frames {
            if std::env::var("CHORUS_SIM_TRACE").is_ok_and(|u| u == client.user || u == "all") {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{who} conn {conn}: {}", render(&frame));
                }
            }
            match frame {
                ServerFrame::Joined(joined) => {
                    let Some(cursor) = client.rooms.get_mut(&joined.room) else {
                        continue;
                    };
                    if cursor.is_none() {
                        *cursor = Some(joined.head);
                    }
                    client.joined_now.insert(joined.room.clone());
                    let list = joined.cursors.clone().unwrap_or_else(Json::empty_list);
                    let seen = chorus_sdk::wire::LiveCursor::read_list(&list)
                        .map_err(|err| format!("unreadable cursors: {err}"))?
                        .iter()
                        .map(|c| (c.conn.clone(), c.value.as_text().to_owned()))
                        .collect();
                    client.cursors.insert(joined.room.clone(), seen);
                    let users = joined
                        .presence
                        .users
                        .iter()
                        .map(|u| (u.user.clone(), u.conns.len()))
                        .collect();
                    let held = joined
                        .locks
                        .as_ref()
                        .map(|l| wire::LockInfo::list(l).unwrap());
                    let locks = held
                        .unwrap_or_default()
                        .iter()
                        .map(|l| (l.name.to_string(), (l.token, l.conn.clone(), true)))
                        .collect();
                    client
                        .presence
                        .insert(joined.room.clone(), (joined.presence.version, users));
                    client.locks.insert(joined.room, locks);
                }
                ServerFrame::Lock(notice) => {
                    let (room, lock) = (notice.room, notice.lock);
                    let name = lock.name.to_string();
                    if notice.change == chorus_sdk::wire::LockChange::Granted {
                        let seen = client
                            .granted
                            .entry((room.clone(), name.clone()))
                            .or_default();
                        if lock.token <= *seen {
                            return Err(format!(
                                "{} saw lock {room}/{name} granted with #{} after #{seen}",
                                client.user, lock.token
                            ));
                        }
                        *seen = lock.token;
                    }
                    let held = notice.change.held();
                    if !held {
                        client
                            .ended
                            .insert((room.clone(), name.clone(), lock.token));
                    }
                    client
                        .locks
                        .entry(room)
                        .or_default()
                        .insert(name, (lock.token, lock.conn, held));
                }
                ServerFrame::Reset(reset) => {
                    return Err(format!(
                        "unexpected reset {reset:?} (history is never trimmed here)"
                    ));
                }
                ServerFrame::Event(event) => {
                    let Some(Some(cursor)) = client.rooms.get_mut(&event.room) else {
                        continue;
                    };
                    let seq = event.seq.ok_or("a durable event without seq")?;
                    if seq != *cursor + 1 {
                        return Err(format!(
                            "{} got {} #{seq} after #{cursor}: a gap or a duplicate",
                            client.user, event.room
                        ));
                    }
                    *cursor = seq;
                    client.delivered.entry(event.room).or_default().push(seq);
                }
                ServerFrame::Ack(ack) if client.fenced_dead.contains(ack.id.as_str()) => {
                    return Err(format!(
                        "{} stated a grant it knew had ended, and {} was stored anyway",
                        client.user, ack.id
                    ));
                }
                ServerFrame::Ack(ack) => {
                    if let Some(seq) = ack.seq {
                        client.acked.push((ack.room, ack.id.to_string(), seq));
                    }
                }
                ServerFrame::Presence(diff) => {
                    let Some((version, users)) = client.presence.get_mut(&diff.room) else {
                        continue;
                    };
                    if diff.version != *version + 1 {
                        return Err(format!(
                            "presence of {} jumped from v{version} to v{}",
                            diff.room, diff.version
                        ));
                    }
                    *version = diff.version;
                    for user in diff.joins.iter().chain(&diff.updates) {
                        users.insert(user.user.clone(), user.conns.len());
                    }
                    for user in &diff.leaves {
                        users.remove(user);
                    }
                }
                ServerFrame::Cursor(notice) => {
                    if !client.joined_now.contains(&notice.room) {
                        continue; // A notice sent before its leave: the room is gone here.
                    }
                    let cursor = chorus_sdk::wire::LiveCursor::read(&notice.cursor)
                        .map_err(|err| format!("unreadable cursor: {err}"))?;
                    let seen = client.cursors.entry(notice.room).or_default();
                    match cursor.value.as_text() {
                        "null" => seen.remove(&cursor.conn),
                        value => seen.insert(cursor.conn, value.to_owned()),
                    };
                }
                // A publish overtaken by the client's own leave is refused; nothing else is.
                ServerFrame::Nack(nack)
                    if nack.code == chorus_sdk::wire::ErrorCode::NotJoined
                        && nack
                            .room
                            .as_ref()
                            .is_some_and(|r| !client.rooms.contains_key(r)) => {}
                // Lock refusals are expected (held by someone else, a stale token, a lock
                // request in a room being left).
                ServerFrame::Nack(nack)
                    if matches!(
                        nack.code,
                        chorus_sdk::wire::ErrorCode::LockHeld
                            | chorus_sdk::wire::ErrorCode::LockLost
                    ) || (nack.id.as_str().starts_with('L')
                        && nack.code == chorus_sdk::wire::ErrorCode::NotJoined) => {}
                ServerFrame::Nack(nack) => return Err(format!("unexpected nack {nack:?}")),
                _ => {}
            }
        }
    }
    // The hub's view of every open room's locks is the store's, at every step.
    let now = h.now();
    let mut open: Vec<&RoomName> = h.hub.rooms.keys().collect();
    open.sort();
    for room in open {
        let store = h.log.locks(room, now.unix_ms);
        let hub = h.hub.held_locks(room);
        if store != hub {
            return Err(format!("{room}: hub locks {hub:?}, store {store:?}"));
        }
    }
    // A connection the hub closed (idle, slow) is gone for its client too, after its last frames.
    for (conn, _) in std::mem::take(&mut h.closed) {
        if let Some(client) = clients.iter_mut().find(|c| c.conn == Some(conn)) {
            client.conn = None;
        }
    }
    Ok(())
}

fn check_converged(h: &mut Harness, clients: &[SimClient]) -> Result<(), String> {
    for room in SIM_ROOMS {
        let room = RoomName::parse(room).unwrap();
        let page = h.log.read(&room, 0, usize::MAX, h.now().unix_ms);
        let ids: BTreeSet<String> = page.events.iter().map(|e| e.event.id.to_string()).collect();
        if ids.len() != page.events.len() {
            return Err(format!("{room}: an id was stored twice"));
        }
        let stored: BTreeMap<u64, String> = page
            .events
            .iter()
            .map(|e| (e.seq(), e.event.id.to_string()))
            .collect();
        for client in clients {
            for (acked_room, id, seq) in &client.acked {
                if *acked_room == room && stored.get(seq) != Some(id) {
                    return Err(format!(
                        "ack of {id} said #{seq} but the store has {:?}",
                        stored.get(seq)
                    ));
                }
            }
            let Some(Some(cursor)) = client.rooms.get(&room) else {
                continue;
            };
            if *cursor != page.head.head {
                return Err(format!(
                    "{} is at #{cursor} of {room}, head is #{}",
                    client.user, page.head.head
                ));
            }
        }
        // Presence converged: the hub and every member agree on who is here, and it is right.
        let snapshot = h.hub.presence(&room).map(|s| s.users).unwrap_or_default();
        let hub_view: BTreeMap<String, usize> = snapshot
            .iter()
            .map(|u| (u.user.clone(), u.conns.len()))
            .collect();
        let mut truth: BTreeMap<String, usize> = BTreeMap::new();
        for client in clients.iter().filter(|c| c.rooms.contains_key(&room)) {
            *truth.entry(client.user.clone()).or_default() += 1;
        }
        if hub_view != truth {
            return Err(format!(
                "{room}: hub presence {hub_view:?}, expected {truth:?}"
            ));
        }
        // Every grant lapsed or ended while settling, and every member was told.
        if !h.log.locks(&room, h.now().unix_ms).is_empty() {
            return Err(format!("{room}: a lock outlived every TTL"));
        }
        for client in clients.iter().filter(|c| c.rooms.contains_key(&room)) {
            let held: Vec<&String> = client
                .locks
                .get(&room)
                .map(|locks| locks.iter().filter(|(_, l)| l.2).map(|(n, _)| n).collect())
                .unwrap_or_default();
            if !held.is_empty() {
                return Err(format!("{room}: {} still sees {held:?} held", client.user));
            }
        }
        for client in clients.iter().filter(|c| c.rooms.contains_key(&room)) {
            let local = &client
                .presence
                .get(&room)
                .ok_or("a member without presence")?
                .1;
            if *local != truth {
                return Err(format!(
                    "{room}: {} sees {local:?}, expected {truth:?}",
                    client.user
                ));
            }
        }
        // Live cursors converged: every member sees every other member's latest cursor, and
        // nobody's who left or whose connection died.
        let cursors: BTreeMap<String, String> = clients
            .iter()
            .filter_map(|c| {
                let value = c.own_cursors.get(&room)?;
                Some((format!("n-{}", c.conn?), value.clone()))
            })
            .collect();
        for client in clients.iter().filter(|c| c.rooms.contains_key(&room)) {
            let mut expected = cursors.clone();
            expected.remove(&format!("n-{}", client.conn.unwrap_or(0)));
            let seen = client.cursors.get(&room).cloned().unwrap_or_default();
            if seen != expected {
                return Err(format!(
                    "{room}: {} sees cursors {seen:?}, expected {expected:?}",
                    client.user
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn simulation_keeps_order_loses_nothing_doubles_nothing_and_presence_converges() {
    let seeds: u64 = std::env::var("CHORUS_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let first: u64 = std::env::var("CHORUS_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // How often the runs met each lock case (each must happen, or the checks check nothing).
    let mut cases: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in first..first + seeds {
        match simulate(seed, 400) {
            Err(err) => panic!(
                "{err}\nreplay with: CHORUS_SIM_SEED={seed} CHORUS_SIM_SEEDS=1 cargo test -p chorus-server simulation"
            ),
            Ok(transcript) => {
                for line in &transcript {
                    for case in [
                        r#""change":"granted""#,
                        r#""change":"renewed""#,
                        r#""change":"released""#,
                        r#""change":"expired""#,
                        "lock_held",
                        "lock_lost",
                        "Orphan",
                    ] {
                        if line.contains(case) {
                            *cases.entry(case).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    if seeds >= 100 {
        assert_eq!(cases.len(), 7, "every lock case happened: {cases:?}");
    }
}

#[test]
fn a_simulation_seed_replays_exactly() {
    // Nothing in the hub may depend on hash order (e.g. which of a dropped connection's rooms
    // it leaves first): one seed run twice puts out the same frames and actions in the same
    // order. Every run of a hash-ordered container gets fresh random keys, so a leak shows.
    for seed in 0..40 {
        let first = simulate(seed, 400).unwrap();
        let second = simulate(seed, 400).unwrap();
        assert!(
            first.len() > 100,
            "seed {seed}: a transcript worth comparing"
        );
        if let Some(step) =
            (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i))
        {
            panic!(
                "seed {seed} diverged at output {step}:\n  {:?}\n  {:?}",
                first.get(step),
                second.get(step)
            );
        }
    }
}

#[test]
fn the_simulation_notices_a_broken_hub() {
    // A hub that forgets to buffer live events during replay must be caught: drop one event on
    // the floor and check that the invariants fail.
    let mut h = Harness::new(HubConfig::default());
    let mut clients = vec![SimClient {
        user: "a".into(),
        conn: Some(1),
        ..SimClient::default()
    }];
    clients[0]
        .rooms
        .insert(RoomName::parse("r0").unwrap(), None);
    h.connect(1, "a");
    h.send(1, &join("r0"));
    h.send(1, &publish("r0", "x", "0"));
    h.send(1, &publish("r0", "y", "0"));
    let mut frames = h.frames.remove(&1).unwrap();
    frames.retain(|f| !matches!(f, ServerFrame::Event(e) if e.seq == Some(1)));
    h.frames.insert(1, frames);
    assert!(absorb(&mut h, &mut clients).unwrap_err().contains("gap"));
}

#[test]
fn leaving_and_rejoining_during_a_replay_never_lets_old_events_follow_the_new_join() {
    let mut h = two_members();
    for n in 1..=3 {
        h.send(1, &publish("r", &format!("a{n}"), "0"));
    }
    h.take(1);
    h.defer = true;
    h.connect(3, "cal");
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":1}}"#,
    );
    h.send(3, r#"{"type":"leave","room":"r"}"#);
    h.send(3, &join("r"));
    h.run_deferred();
    assert_eq!(
        h.take(3),
        [
            "welcome cal",
            "joined r head=3 [ana(1) ben(1) cal(1)] typing=[]",
            "event r #2 a2 by ana 0",
            "event r #3 a3 by ana 0",
            "left r",
            "joined r head=3 [ana(1) ben(1) cal(1)] typing=[]",
        ]
    );
}

/// Publishes sent after a join that waits for an old replay to end are held for it, a
/// burst's worth at most: the rest are refused at once, so a client that never reads cannot
/// pile them up in the hub.
#[test]
fn publishes_waiting_for_a_replay_to_end_are_capped_at_a_burst() {
    let mut h = Harness::new(HubConfig {
        publish_burst: 2.0,
        ..HubConfig::default()
    });
    h.connect(1, "ana");
    h.send(1, &join("r"));
    h.send(1, &publish("r", "a1", "0"));
    h.defer = true;
    h.connect(3, "cal");
    h.send(
        3,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":0}}"#,
    );
    h.send(3, r#"{"type":"leave","room":"r"}"#);
    h.send(3, &join("r"));
    for n in 1..=4 {
        h.send(3, &publish("r", &format!("c{n}"), "0"));
    }
    assert_eq!(
        h.take(3)[2..],
        [
            "nack r c3 rate_limited retry=250",
            "nack r c4 rate_limited retry=250"
        ]
    );
    h.run_deferred();
    h.defer = false;
    h.run_deferred();
    let seen = h.take(3);
    assert!(seen.contains(&"ack r c1 #2".to_string()), "{seen:?}");
    assert!(seen.contains(&"ack r c2 #3".to_string()), "{seen:?}");
}

#[test]
fn leaving_or_vanishing_while_a_room_loads_refuses_queued_publishes_and_frees_the_room() {
    let mut h = Harness::new(HubConfig::default());
    h.connect(1, "ana");
    h.connect(2, "ben");
    let now = h.now();
    let room = RoomName::parse("r").unwrap();
    h.hub
        .handle_frame(now, 1, ClientFrame::decode(&join("r")).unwrap());
    h.hub.handle_frame(
        now,
        1,
        ClientFrame::decode(&publish("r", "queued", "1")).unwrap(),
    );
    h.hub.handle_frame(
        now,
        1,
        ClientFrame::decode(r#"{"type":"leave","room":"r"}"#).unwrap(),
    );
    h.hub
        .handle_frame(now, 2, ClientFrame::decode(&join("r")).unwrap());
    h.hub.handle_disconnect(now, 2);
    while h.hub.poll_action().is_some() {}
    let head = h.log.read(&room, 0, 0, 0).head;
    h.hub.handle_room_loaded(now, room, Ok(head));
    h.pump();
    assert_eq!(
        h.take(1),
        ["welcome ana", "nack r queued not_joined", "left r"]
    );
    assert_eq!(
        h.hub.room_count(),
        0,
        "nobody is left, so the room is not kept"
    );
    assert_eq!(
        h.log
            .read(&RoomName::parse("r").unwrap(), 0, 10, 0)
            .head
            .head,
        0,
        "nothing was stored"
    );
}

#[test]
fn publishing_faster_than_the_token_bucket_allows_is_refused_then_recovers() {
    let mut h = two_members_with(HubConfig {
        publish_rate: 2.0,
        publish_burst: 3.0,
        ..HubConfig::default()
    });
    for n in 0..4 {
        h.send(1, &publish("r", &format!("p{n}"), "0"));
    }
    let acks: Vec<String> = h
        .take(1)
        .into_iter()
        .filter(|f| f.starts_with("ack") || f.starts_with("nack"))
        .collect();
    assert_eq!(
        acks,
        [
            "ack r p0 #1",
            "ack r p1 #2",
            "ack r p2 #3",
            "nack r p3 rate_limited retry=500"
        ]
    );
    h.advance(Duration::from_millis(500));
    h.send(1, &publish("r", "p3", "0"));
    assert_eq!(
        h.take(1),
        ["event r #4 p3 by ana 0", "ack r p3 #4"],
        "one token back after 1/rate seconds"
    );
}

#[test]
fn backend_publishes_fan_out_and_complete_their_request() {
    let mut h = two_members();
    let at = h.now().unix_ms;
    let request = |id: &str| AppendRequest {
        room: RoomName::parse("r").unwrap(),
        id: wire::EventId::parse(id).unwrap(),
        from: "system".into(),
        at,
        body: Json::from_text("1").unwrap(),
        if_seq: None,
        if_lock: None,
    };
    let now = h.now();
    h.hub.handle_backend_publish(now, 7, request("b1"));
    h.pump();
    h.hub.handle_backend_publish(now, 8, request("b1"));
    h.pump();
    assert_eq!(h.take(1), ["event r #1 b1 by system 1"]);
    assert_eq!(h.take(2), ["event r #1 b1 by system 1"]);
    assert!(matches!(&h.completed[0], (7, Ok(AppendOutcome::Stored(s))) if s.seq() == 1));
    assert!(matches!(
        &h.completed[1],
        (8, Ok(AppendOutcome::Duplicate { seq: 1 }))
    ));
}

#[test]
fn polling_sessions_count_in_presence_never_replay_and_expire_on_their_own_timeout() {
    let mut h = two_members();
    h.send(1, &publish("r", "a", "0"));
    h.take(1);
    h.take(2);
    let now = h.now();
    h.hub.handle_connect(
        now,
        9,
        Arc::new(Identity::new("pol", None, &[("*", RoomRight::Publish)])),
        ConnKind::Poll,
    );
    assert_eq!(h.hub.connections_by_kind(), (2, 1));
    h.send(
        9,
        r#"{"type":"join","room":"r","resume":{"epoch":77,"seq":0}}"#,
    );
    assert_eq!(
        h.take(9),
        [
            "welcome pol",
            "joined r head=1 [ana(1) ben(1) pol(1)] typing=[]"
        ],
        "no replay, no reset"
    );
    assert_eq!(h.take(1), ["presence r v3 +pol(1)"]);
    let view = h.hub.room_view(&RoomName::parse("r").unwrap(), 9).unwrap();
    assert!(view.member);
    let typing_before = view.typing.version;
    h.send(9, r#"{"type":"typing","room":"r","on":true}"#);
    let view = h.hub.room_view(&RoomName::parse("r").unwrap(), 9).unwrap();
    assert_eq!(
        (view.typing.version, view.typing.users.clone()),
        (typing_before + 1, vec!["pol".to_owned()])
    );
    assert!(
        !h.hub
            .room_view(&RoomName::parse("r").unwrap(), 42)
            .unwrap()
            .member
    );
    // Sockets ping; the polling session goes quiet. Sockets would be closed after 30 s, the
    // session after its own 40 s timeout.
    for _ in 0..7 {
        h.advance(Duration::from_secs(5));
        h.send(1, r#"{"type":"ping"}"#);
        h.send(2, r#"{"type":"ping"}"#);
    }
    assert_eq!(
        h.closed,
        Vec::<(ConnId, u16)>::new(),
        "35 s of silence is fine for a polling session"
    );
    // The session goes 40 s after its last request, to the millisecond (not at the next
    // heartbeat's sweep).
    h.advance(Duration::from_millis(4_999));
    assert_eq!(h.closed, Vec::<(ConnId, u16)>::new());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed, [(9, close_code::IDLE_TIMEOUT)]);
    assert_eq!(
        h.hub.connections_by_kind(),
        (2, 0),
        "the session no longer counts"
    );
}

#[test]
fn a_polling_session_expires_on_its_timeout_not_at_the_next_heartbeat() {
    // A 3 s session timeout with the default 15 s heartbeat: the session goes 3 s after its
    // last request, however far the next heartbeat tick is (it once lingered about 16 s).
    let config = HubConfig {
        poll_session_timeout: Duration::from_secs(3),
        ..HubConfig::default()
    };
    assert_eq!(config.heartbeat, Duration::from_secs(15));
    let mut h = Harness::new(config);
    let now = h.now();
    let identity = Arc::new(Identity::new("pol", None, &[("*", RoomRight::Publish)]));
    h.hub.handle_connect(now, 9, identity, ConnKind::Poll);
    h.send(9, &join("r"));
    h.take(9);
    // A request 2 s in moves the deadline to 5 s.
    h.advance(Duration::from_secs(2));
    let now = h.now();
    h.hub.handle_activity(now, 9);
    h.advance(Duration::from_millis(2_999));
    assert_eq!(h.closed, Vec::<(ConnId, u16)>::new(), "4.999 s: alive");
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed, [(9, close_code::IDLE_TIMEOUT)], "5 s: gone");
    assert_eq!(h.hub.connections_by_kind(), (0, 0));
    assert!(h.hub.poll_timeout().is_some(), "presence grace still runs");
}

#[test]
fn transmits_say_whether_they_reply_to_the_recipient() {
    let mut h = Harness::new(HubConfig::default());
    let now = h.now();
    let everyone = |user: &str| Arc::new(Identity::new(user, None, &[("*", RoomRight::Publish)]));
    h.hub
        .handle_connect(now, 1, everyone("ana"), ConnKind::Poll);
    h.hub
        .handle_connect(now, 2, everyone("ben"), ConnKind::Socket);
    let mut seen = Vec::new();
    let mut step = |h: &mut Harness, conn: ConnId, json: &str| {
        h.hub
            .handle_frame(now, conn, ClientFrame::decode(json).unwrap());
        loop {
            while let Some(t) = h.hub.poll_transmit() {
                let kind = ServerFrame::decode(t.payload.as_str()).unwrap().kind();
                seen.push(format!(
                    "{} {kind} {}",
                    t.conn,
                    if t.reply { "reply" } else { "other" }
                ));
            }
            match h.hub.poll_action() {
                Some(Action::LoadRoom(room)) => {
                    let head = h.log.read(&room, 0, 0, 0).head;
                    h.hub.handle_room_loaded(now, room, Ok(head));
                }
                Some(Action::Append(job)) => {
                    let (room, id) = (job.request.room.clone(), job.request.id.clone());
                    let from = job.request.from.clone();
                    let result = Ok(h.log.append(job.request, 0));
                    h.hub.handle_append_done(
                        now,
                        AppendDone {
                            origin: job.origin,
                            room,
                            id,
                            from,
                            result,
                        },
                    );
                }
                Some(_) => {}
                None => break,
            }
        }
    };
    step(&mut h, 1, &join("r"));
    step(&mut h, 2, &join("r"));
    step(&mut h, 1, &publish("r", "x", "1"));
    assert_eq!(
        seen,
        [
            "1 welcome reply",
            "2 welcome reply",
            "1 joined reply",
            "1 presence other",
            "2 joined reply",
            "1 event other",
            "2 event other",
            "1 ack reply",
        ]
    );
}

#[test]
fn publishes_waiting_for_their_room_are_charged_once_against_the_rate_limit() {
    let mut h = Harness::new(HubConfig {
        publish_rate: 0.001,
        publish_burst: 3.0,
        ..HubConfig::default()
    });
    h.connect(1, "ana");
    let now = h.now();
    h.hub
        .handle_frame(now, 1, ClientFrame::decode(&join("r")).unwrap());
    for n in 0..3 {
        let frame = ClientFrame::decode(&publish("r", &format!("p{n}"), "0")).unwrap();
        h.hub.handle_frame(now, 1, frame);
    }
    h.pump();
    let answers: Vec<String> = h
        .take(1)
        .into_iter()
        .filter(|f| f.starts_with("ack") || f.starts_with("nack"))
        .collect();
    assert_eq!(
        answers,
        ["ack r p0 #1", "ack r p1 #2", "ack r p2 #3"],
        "the burst covers the three publishes, however long the room took to load"
    );
    h.send(1, &publish("r", "p3", "0"));
    assert!(
        h.take(1)[0].starts_with("nack r p3 rate_limited"),
        "the burst is spent"
    );
}

#[test]
fn the_hub_owes_a_connection_answers_until_its_joins_and_publishes_have_them() {
    let mut h = Harness::new(HubConfig::default());
    let now = h.now();
    let everyone = Arc::new(Identity::new("pol", None, &[("*", RoomRight::Publish)]));
    h.hub.handle_connect(now, 1, everyone, ConnKind::Poll);
    assert!(!h.hub.owes_answers(1));
    // A batch that cancels a join while its room loads, then joins and publishes elsewhere.
    for json in [
        join("r"),
        r#"{"type":"leave","room":"r"}"#.to_owned(),
        join("s"),
        publish("s", "x", "1"),
    ] {
        h.hub
            .handle_frame(now, 1, ClientFrame::decode(&json).unwrap());
    }
    assert!(h.hub.owes_answers(1), "room s is loading");
    h.defer = true;
    h.pump();
    assert!(h.hub.owes_answers(1), "the publish is in the store");
    h.run_deferred();
    assert!(!h.hub.owes_answers(1));
    assert_eq!(
        h.take(1),
        [
            "welcome pol",
            "left r",
            "joined s head=0 [pol(1)] typing=[]",
            "event s #1 x by pol 1",
            "ack s x #1"
        ]
    );
    // Joining a loading room twice is owed (and answered) once the room is open.
    for json in [join("t"), join("t")] {
        h.hub
            .handle_frame(now, 1, ClientFrame::decode(&json).unwrap());
    }
    assert!(h.hub.owes_answers(1));
    h.pump();
    assert!(!h.hub.owes_answers(1));
    assert_eq!(h.take(1), ["joined t head=0 [pol(1)] typing=[]"]);
}

#[test]
fn publishes_during_the_drain_are_refused_with_draining_and_the_reconnect_hint() {
    let mut h = two_members();
    h.connect(3, "cy");
    let now = h.now();
    // Cy's publish waits for its room to load when the drain begins: it will not be stored.
    for json in [join("q"), publish("q", "waiting", "1")] {
        h.hub
            .handle_frame(now, 3, ClientFrame::decode(&json).unwrap());
    }
    h.hub.handle_drain(Duration::from_millis(1500));
    h.pump();
    assert_eq!(h.take(1), ["draining 1500"]);
    assert_eq!(
        h.take(3),
        [
            "welcome cy",
            "nack q waiting draining retry=1500",
            "draining 1500",
            // Connections stay open until the drain completes; a join may still finish.
            "joined q head=0 [cy(1)] typing=[]"
        ]
    );
    // A publish arriving after the drain began is answered, not dropped.
    h.send(1, &publish("r", "late", "1"));
    assert_eq!(h.take(1), ["nack r late draining retry=1500"]);
    assert_eq!(
        h.log
            .read(&RoomName::parse("r").unwrap(), 0, 10, 0)
            .head
            .head,
        0
    );
}

#[test]
fn a_new_token_replaces_the_grants_and_leaves_the_rooms_it_no_longer_grants() {
    let mut h = two_members();
    h.send(1, &join("lobby"));
    h.take(1);
    h.take(2);
    // Issue 14: a polling session kept the grants of the token that opened it.
    let reader = Identity::new("ana", None, &[("r", RoomRight::Read)]);
    let now = h.now();
    h.hub.handle_token(now, 1, Arc::new(reader));
    h.pump();
    assert_eq!(h.take(1), ["error forbidden lobby", "left lobby"]);
    h.send(1, &publish("r", "a", "1"));
    assert_eq!(h.take(1), ["nack r a forbidden"]);
    assert_eq!(
        h.take(2),
        Vec::<String>::new(),
        "ana is still in r, reading"
    );
    h.send(1, &join("lobby"));
    assert_eq!(h.take(1), ["error forbidden lobby"]);
}

#[path = "tests_stored.rs"]
mod stored;

#[path = "tests_cursors.rs"]
mod cursors;
#[path = "tests_locks.rs"]
mod locks;
#[path = "tests_notices.rs"]
mod notices;
#[path = "tests_streams.rs"]
pub(super) mod streams;
