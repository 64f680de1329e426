//! Federation tests: two or three hubs wired together in one process, on one virtual clock,
//! sharing one store, with a network between them that a test can slow down, cut or make
//! lossy. The [`Cluster`] plays every node's driver and the bus: it carries each
//! [`Action::Signal`] to every other node's [`Hub::handle_signal`] (the bus delivers a node's
//! signals to the others in the order it sent them, never back to itself).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_sdk::wire::{ClientFrame, RoomRight, ServerFrame};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::tests::render;
use super::*;
use crate::identity::Identity;
use crate::store::memory::MemoryLog;
use crate::store::{AppendDone, Retention, StoreError};

const NAMES: [&str; 3] = ["a", "b", "c"];

/// Which signals the network loses: `(sender, signal) -> lost`.
type Loss = Box<dyn FnMut(usize, &RoomSignal) -> bool>;

struct Node {
    hub: Hub,
    frames: HashMap<ConnId, Vec<ServerFrame>>,
}

/// A signal on its way: when it arrives, who sent it, about which room.
struct InFlight {
    at: Duration,
    from: usize,
    room: RoomName,
    bytes: Bytes,
}

struct Cluster {
    nodes: Vec<Node>,
    t0: Instant,
    elapsed: Duration,
    /// The store every node shares (Redis, in production).
    log: MemoryLog,
    /// Signals in flight, in the order they were sent (equal latency keeps that order).
    wire: VecDeque<InFlight>,
    latency: Duration,
    /// Nodes cut off from the others (dead, as far as they can tell): what they send is lost.
    silenced: BTreeSet<usize>,
    loss: Option<Loss>,
    /// Signals sent, by node.
    sent: Vec<usize>,
    /// When carried ([`Cluster::carry_events`]): the stored events each node has yet to hear
    /// from the bus, which [`Cluster::deliver_events`] hands over (so a test picks their order
    /// against the signals', as two Redis connections may).
    bus: Option<Vec<VecDeque<StoredEvent>>>,
    /// The store fails every [`Action::CheckLocks`].
    locks_unreadable: bool,
    /// [`Action::CheckLocks`] asked, by node.
    lock_checks: Vec<usize>,
    /// When set, lock checks wait here (node, room, when the store read them) for
    /// [`Cluster::answer_lock_checks`], as a slow store's answers do.
    deferred_checks: Option<Vec<(usize, RoomName, u64)>>,
}

fn config(node: usize) -> HubConfig {
    HubConfig {
        node: NAMES[node].into(),
        federated: true,
        // Each node's versions start elsewhere, as real nodes' clocks make them.
        version_base: 1000 * (node as u64 + 1),
        // Clients here send no pings: keep the dead-socket sweep out of these tests.
        heartbeat: Duration::from_secs(3600),
        ..HubConfig::default()
    }
}

impl Cluster {
    fn new(nodes: usize) -> Cluster {
        Cluster::with((0..nodes).map(config).collect())
    }

    fn with(configs: Vec<HubConfig>) -> Cluster {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        Cluster {
            sent: vec![0; configs.len()],
            nodes: configs
                .into_iter()
                .map(|config| Node {
                    hub: Hub::new(config),
                    frames: HashMap::new(),
                })
                .collect(),
            t0,
            elapsed: Duration::ZERO,
            log: MemoryLog::new(7, Retention::default()),
            wire: VecDeque::new(),
            latency: Duration::ZERO,
            silenced: BTreeSet::new(),
            loss: None,
            bus: None,
            locks_unreadable: false,
            lock_checks: vec![0; NAMES.len()],
            deferred_checks: None,
        }
    }

    /// From now on, every event a node stores is queued for the other nodes' bus.
    fn carry_events(&mut self) {
        self.bus = Some(vec![VecDeque::new(); self.nodes.len()]);
    }

    /// Answers every deferred lock check with the locks the store had when it was asked.
    fn answer_lock_checks(&mut self) {
        let checks = self.deferred_checks.as_mut().map(std::mem::take);
        for (node, room, read_at) in checks.unwrap_or_default() {
            let now = self.now();
            let locks = Ok(self.log.locks(&room, read_at));
            self.nodes[node].hub.handle_locks_checked(now, room, locks);
            self.settle(node);
        }
    }

    /// Hands `node` every stored event queued for it, in order.
    fn deliver_events(&mut self, node: usize) {
        let queued = self.bus.as_mut().map(|bus| std::mem::take(&mut bus[node]));
        for stored in queued.unwrap_or_default() {
            let now = self.now();
            self.nodes[node].hub.handle_stored(now, stored);
            self.pump(node);
        }
        self.deliver_due();
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.elapsed,
            unix_ms: 1_700_000_000_000 + self.elapsed.as_millis() as u64,
        }
    }

    fn connect(&mut self, node: usize, conn: ConnId, user: &str) {
        let identity = Identity::new(
            user,
            Some(&user.to_uppercase()),
            &[("*", RoomRight::Publish)],
        );
        let now = self.now();
        self.nodes[node]
            .hub
            .handle_connect(now, conn, Arc::new(identity), ConnKind::Socket);
        self.settle(node);
    }

    fn send(&mut self, node: usize, conn: ConnId, json: &str) {
        let frame = ClientFrame::decode(json).unwrap_or_else(|e| panic!("bad frame {json}: {e}"));
        let now = self.now();
        self.nodes[node].hub.handle_frame(now, conn, frame);
        self.settle(node);
    }

    /// Connects `conn` of `user` on `node` and joins room `r` (its frames are taken).
    fn join(&mut self, node: usize, conn: ConnId, user: &str) {
        self.connect(node, conn, user);
        self.send(node, conn, &join("r"));
        self.take(node, conn);
    }

    fn disconnect(&mut self, node: usize, conn: ConnId) {
        let now = self.now();
        self.nodes[node].hub.handle_disconnect(now, conn);
        self.settle(node);
    }

    fn drain(&mut self, node: usize) {
        self.nodes[node].hub.handle_drain(Duration::from_secs(1));
        self.settle(node);
    }

    /// Runs `node`'s outputs, then delivers every signal due by now (and what they cause).
    fn settle(&mut self, node: usize) {
        self.pump(node);
        self.deliver_due();
    }

    fn pump(&mut self, node: usize) {
        loop {
            let mut idle = true;
            while let Some(transmit) = self.nodes[node].hub.poll_transmit() {
                idle = false;
                let frame = ServerFrame::decode(transmit.payload.as_str()).expect("valid frame");
                let frames = &mut self.nodes[node].frames;
                frames.entry(transmit.conn).or_default().push(frame);
            }
            while let Some(action) = self.nodes[node].hub.poll_action() {
                idle = false;
                let now = self.now();
                match action {
                    // Notices travel as they are, never lost (see `tests_notices.rs`).
                    Action::Signal { room, bytes } if room.as_str() == super::NOTICE_ROOM => {
                        self.wire.push_back(InFlight {
                            at: self.elapsed + self.latency,
                            from: node,
                            room,
                            bytes,
                        });
                    }
                    Action::Notice { conn, payload } => {
                        let frame = ServerFrame::decode(payload.as_str()).expect("valid frame");
                        let frames = &mut self.nodes[node].frames;
                        frames.entry(conn).or_default().push(frame);
                    }
                    Action::CheckLocks(room) => {
                        self.lock_checks[node] += 1;
                        if let Some(checks) = self.deferred_checks.as_mut() {
                            checks.push((node, room, now.unix_ms));
                            continue;
                        }
                        let locks = if self.locks_unreadable {
                            Err(StoreError::Backend("down".into()))
                        } else {
                            Ok(self.log.locks(&room, now.unix_ms))
                        };
                        self.nodes[node].hub.handle_locks_checked(now, room, locks);
                    }
                    Action::LoadRoom(room) => {
                        let locks = Ok(self.log.locks(&room, now.unix_ms));
                        self.nodes[node]
                            .hub
                            .handle_locks_loaded(now, room.clone(), locks);
                        let head = self.log.read(&room, 0, 0, now.unix_ms).head;
                        self.nodes[node].hub.handle_room_loaded(now, room, Ok(head));
                    }
                    Action::Lock(job) => {
                        let result = Ok(self.log.lock(&job.request));
                        self.nodes[node]
                            .hub
                            .handle_lock_done(now, LockDone { job, result });
                    }
                    Action::Append(job) => {
                        let (room, id) = (job.request.room.clone(), job.request.id.clone());
                        let from = job.request.from.clone();
                        let result = Ok(self.log.append(job.request, now.unix_ms));
                        if let (Some(bus), Ok(AppendOutcome::Stored(stored))) =
                            (self.bus.as_mut(), &result)
                        {
                            for (to, queue) in bus.iter_mut().enumerate() {
                                if to != node {
                                    queue.push_back(stored.clone());
                                }
                            }
                        }
                        let done = AppendDone {
                            origin: job.origin,
                            room,
                            id,
                            from,
                            result,
                        };
                        self.nodes[node].hub.handle_append_done(now, done);
                    }
                    Action::Signal { room, bytes } => {
                        self.sent[node] += 1;
                        let signal = RoomSignal::decode(NAMES[node], &bytes).expect("valid");
                        let lost = self.silenced.contains(&node)
                            || self.loss.as_mut().is_some_and(|loss| loss(node, &signal));
                        if !lost {
                            self.wire.push_back(InFlight {
                                at: self.elapsed + self.latency,
                                from: node,
                                room,
                                bytes,
                            });
                        }
                    }
                    Action::Repair { room, after } => {
                        let page = self.log.read(&room, after, 256, now.unix_ms);
                        self.nodes[node].hub.handle_repaired(now, room, Ok(page));
                    }
                    // Stored events are carried only when a test asks (`carry_events`), to
                    // every node, followed or not.
                    Action::Follow(_)
                    | Action::Unfollow(_)
                    | Action::Replay { .. }
                    | Action::Complete { .. }
                    | Action::StreamDone { .. }
                    | Action::Close { .. } => {}
                }
            }
            if idle {
                return;
            }
        }
    }

    fn deliver_due(&mut self) {
        while self.wire.front().is_some_and(|s| s.at <= self.elapsed) {
            let signal = self.wire.pop_front().expect("checked");
            let now = self.now();
            for to in (0..self.nodes.len()).filter(|&to| to != signal.from) {
                let hub = &mut self.nodes[to].hub;
                if signal.room.as_str() == super::NOTICE_ROOM {
                    hub.handle_notice_signal(NAMES[signal.from], &signal.bytes)
                        .expect("nodes understand each other's notices");
                } else {
                    hub.handle_signal(now, signal.room.clone(), NAMES[signal.from], &signal.bytes)
                        .expect("nodes understand each other");
                }
                self.pump(to);
            }
        }
    }

    /// Moves virtual time on, firing every node's timers and delivering every signal at its
    /// own moment, in order.
    fn advance(&mut self, by: Duration) {
        let end = self.elapsed + by;
        loop {
            let timers = self.nodes.iter().filter_map(|n| n.hub.poll_timeout());
            let next_timer = timers.min().map(|at| at.duration_since(self.t0));
            let next_signal = self.wire.front().map(|s| s.at);
            let Some(next) = [next_timer, next_signal].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.elapsed = self.elapsed.max(next);
            for node in 0..self.nodes.len() {
                let now = self.now();
                self.nodes[node].hub.handle_timeout(now);
                self.pump(node);
            }
            self.deliver_due();
        }
        self.elapsed = end;
    }

    /// What `conn` on `node` received since the last call, one line per frame (presence
    /// versions left out: each node counts its own).
    fn take(&mut self, node: usize, conn: ConnId) -> Vec<String> {
        let frames = self.nodes[node].frames.remove(&conn).unwrap_or_default();
        frames.iter().map(render).map(without_version).collect()
    }

    /// Room `r`'s presence on `node`: each user with its connections' wire ids.
    fn presence(&self, node: usize) -> Vec<String> {
        let room = RoomName::parse("r").unwrap();
        let Some(snapshot) = self.nodes[node].hub.presence(&room) else {
            return vec![];
        };
        snapshot
            .users
            .iter()
            .map(|u| {
                let conns: Vec<&str> = u.conns.iter().map(|c| c.conn.as_str()).collect();
                format!("{}[{}]", u.user, conns.join(" "))
            })
            .collect()
    }

    /// Like [`Cluster::presence`], with each connection's meta, connections sorted as text.
    fn presence_with_metas(&self, node: usize) -> Vec<String> {
        let room = RoomName::parse("r").unwrap();
        let Some(snapshot) = self.nodes[node].hub.presence(&room) else {
            return vec![];
        };
        snapshot
            .users
            .iter()
            .map(|u| {
                let mut conns: Vec<String> = u
                    .conns
                    .iter()
                    .map(|c| format!("{}={}", c.conn, c.meta.as_text()))
                    .collect();
                conns.sort();
                format!("{}[{}]", u.user, conns.join(" "))
            })
            .collect()
    }

    fn view(&self, node: usize, conn: ConnId) -> RoomView {
        let room = RoomName::parse("r").unwrap();
        self.nodes[node].hub.room_view(&room, conn).expect("open")
    }
}

fn without_version(line: String) -> String {
    match line.strip_prefix("presence r v") {
        Some(rest) => format!(
            "presence r{}",
            rest.trim_start_matches(|c: char| c.is_ascii_digit())
        ),
        None => line,
    }
}

fn join(room: &str) -> String {
    format!(r#"{{"type":"join","room":"{room}"}}"#)
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_user_on_two_nodes_is_one_user_with_two_connections_everywhere() {
    let mut c = Cluster::new(3);
    c.join(0, 1, "ana");
    c.connect(1, 2, "ana");
    c.send(1, 2, &join("r"));
    assert_eq!(
        c.take(1, 2),
        [
            "welcome ana",
            "joined r head=0 [ana(1)] typing=[]",
            "presence r ~ana(2)"
        ],
        "the node that opens the room asks the others; what they have follows the joined frame"
    );
    assert_eq!(
        c.take(0, 1),
        ["state r [ana(2)]"],
        "a second tab, on another node (whose versions were ahead: the whole presence)"
    );
    let version = c.view(0, 1).presence.version;
    c.join(1, 3, "ben");
    assert_eq!(
        c.take(0, 1),
        ["state r [ana(2) ben(1)]"],
        "node b answered node a's sync after changing: its versions are still ahead"
    );
    assert!(
        c.view(0, 1).presence.version > version,
        "a change merged from another node is a new version for polling clients"
    );
    for node in [0, 1] {
        assert_eq!(
            c.presence(node),
            ["ana[a-1 b-2]", "ben[b-3]"],
            "node {node}"
        );
    }
    assert_eq!(
        c.presence(2),
        Vec::<String>::new(),
        "a node without members has no room"
    );
    c.connect(2, 4, "cat");
    c.send(2, 4, &join("r"));
    assert_eq!(
        c.take(2, 4),
        [
            "welcome cat",
            "joined r head=0 [cat(1)] typing=[]",
            "presence r +ana(1)", // Node a's answer,
            "presence r ~ana(2)", // then node b's.
            "presence r +ben(1)"
        ],
        "a late joiner on a third node sees the others' members at once, not at the next refresh"
    );
    for node in [0, 1, 2] {
        assert_eq!(
            c.presence(node),
            ["ana[a-1 b-2]", "ben[b-3]", "cat[c-4]"],
            "node {node}"
        );
    }
    let meta = r#"{"type":"presence","room":"r","meta":{"x":1}}"#;
    c.send(1, 2, meta);
    assert_eq!(c.take(2, 4), ["presence r ~ana(2)"]);
    let on_c = c.nodes[2]
        .hub
        .presence(&RoomName::parse("r").unwrap())
        .unwrap();
    let ana = &on_c.users[0];
    assert_eq!(ana.conns[1].conn, "b-2");
    assert_eq!(ana.conns[1].meta.as_text(), r#"{"x":1}"#, "metas travel");
    assert_eq!(ana.name.as_deref(), Some("ANA"));
}

#[test]
fn a_dropped_connection_lingers_for_the_grace_period_on_every_node() {
    let mut c = Cluster::new(2);
    let grace = HubConfig::default().presence_grace;
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.take(1, 2);
    c.disconnect(0, 1);
    c.advance(grace - SECOND);
    assert_eq!(
        c.take(1, 2),
        Vec::<String>::new(),
        "no flicker within grace"
    );
    assert_eq!(
        c.presence(1),
        ["ana[a-1]", "ben[b-2]"],
        "ana lingers on node b"
    );
    c.advance(SECOND);
    assert_eq!(c.take(1, 2), ["presence r -ana"]);
    assert_eq!(c.presence(1), ["ben[b-2]"]);

    // Back within grace, on the other node: an update, never a leave and a join.
    c.join(0, 3, "cat");
    c.take(1, 2);
    c.disconnect(0, 3);
    c.advance(grace / 2);
    c.join(1, 4, "cat");
    c.advance(grace * 2);
    assert_eq!(c.take(1, 2), ["presence r ~cat(1)"]);
    assert_eq!(c.presence(1), ["ben[b-2]", "cat[b-4]"]);
    assert_eq!(
        c.presence(0),
        Vec::<String>::new(),
        "node a has no member left: no room"
    );

    // An explicit leave is immediate everywhere.
    c.join(0, 5, "dan");
    c.take(1, 2);
    c.send(1, 4, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(c.take(0, 5), ["presence r -cat"]);
    assert_eq!(c.presence(0), ["ben[b-2]", "dan[a-5]"]);
}

#[test]
fn a_silent_node_loses_its_connections_after_the_lease_and_a_live_one_never_does() {
    let mut c = Cluster::new(2);
    let config = HubConfig::default();
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.advance(config.federation_lease * 4);
    assert_eq!(
        c.presence(1),
        ["ana[a-1]", "ben[b-2]"],
        "refreshes keep the lease"
    );
    c.take(1, 2);
    c.silenced.insert(0); // Node a dies (or is cut off): nothing more comes from it.
    c.advance(config.federation_lease - SECOND);
    assert_eq!(c.presence(1), ["ana[a-1]", "ben[b-2]"], "within the lease");
    c.advance(config.federation_refresh + SECOND);
    assert_eq!(c.take(1, 2), ["presence r -ana"], "gone by lease + refresh");
    assert_eq!(c.presence(1), ["ben[b-2]"]);
    c.silenced.clear(); // Node a is back: its next refresh brings ana back.
    c.advance(config.federation_refresh);
    assert_eq!(c.take(1, 2), ["presence r +ana(1)"]);
}

#[test]
fn lost_signals_heal_at_the_next_refresh() {
    let mut c = Cluster::new(2);
    let config = HubConfig::default();
    c.join(1, 2, "ben");
    c.join(0, 5, "eve");
    c.loss = Some(Box::new(|_, signal| {
        !matches!(signal, RoomSignal::State { .. })
    }));
    c.join(0, 1, "ana");
    assert_eq!(
        c.presence(1),
        ["ben[b-2]", "eve[a-5]"],
        "the join's signal was lost"
    );
    c.send(
        0,
        1,
        r#"{"type":"presence","room":"r","meta":{"away":true}}"#,
    );
    c.take(1, 2);
    c.advance(config.federation_refresh);
    assert_eq!(
        c.take(1, 2),
        ["state r [ana(1) ben(1) eve(1)]"],
        "healed by the refresh (node a's versions moved on meanwhile: the whole presence)"
    );
    let on_b = c.nodes[1]
        .hub
        .presence(&RoomName::parse("r").unwrap())
        .unwrap();
    assert_eq!(on_b.users[0].conns[0].meta.as_text(), r#"{"away":true}"#);

    // A lost leave heals too: the refresh no longer lists ana, who then lingers and goes.
    c.send(0, 1, r#"{"type":"leave","room":"r"}"#);
    c.take(1, 2);
    assert_eq!(c.presence(1), ["ana[a-1]", "ben[b-2]", "eve[a-5]"]);
    c.advance(config.federation_refresh + config.presence_grace);
    assert_eq!(
        c.take(1, 2),
        ["state r [ben(1) eve(1)]"],
        "ana left (node a's refresh carried its higher version: the whole presence)"
    );
    assert_eq!(c.presence(1), ["ben[b-2]", "eve[a-5]"]);
}

#[test]
fn typing_crosses_nodes_and_expires_there_without_a_refresh() {
    let mut c = Cluster::new(2);
    let ttl = HubConfig::default().typing_ttl;
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.take(0, 1);
    c.take(1, 2);
    let on = r#"{"type":"typing","room":"r","on":true}"#;
    let off = r#"{"type":"typing","room":"r","on":false}"#;
    let version = c.view(1, 2).typing.version;
    c.send(0, 1, on);
    assert_eq!(c.take(1, 2), ["typing r ana on"]);
    assert_eq!(c.view(1, 2).typing.users, ["ana"]);
    assert!(c.view(1, 2).typing.version > version);
    c.send(0, 1, off);
    assert_eq!(c.take(1, 2), ["typing r ana off"]);
    assert!(c.view(1, 2).typing.users.is_empty());

    c.send(0, 1, on);
    c.advance(ttl - SECOND);
    assert_eq!(c.take(1, 2), ["typing r ana on"]);
    c.advance(SECOND);
    assert_eq!(
        c.take(1, 2),
        ["typing r ana off"],
        "expired on node b as well"
    );
    assert_eq!(
        c.take(0, 1),
        Vec::<String>::new(),
        "the typist hears nothing of itself"
    );

    // A typist that drops stops typing everywhere at once.
    c.send(1, 2, on);
    assert_eq!(c.take(0, 1), ["typing r ben on"]);
    c.disconnect(1, 2);
    assert_eq!(c.take(0, 1), ["typing r ben off"]);
}

#[test]
fn an_ephemeral_event_reaches_every_member_on_every_node_once_and_is_never_stored() {
    let mut c = Cluster::new(3);
    c.join(0, 1, "ana");
    c.join(0, 2, "ann");
    c.join(1, 3, "ben");
    c.join(2, 4, "cat");
    c.join(2, 5, "cid");
    for (node, conn) in [(0, 1), (0, 2), (1, 3), (2, 4), (2, 5)] {
        c.take(node, conn);
    }
    let publish = r#"{"type":"publish","room":"r","id":"e1","body":"hi","durable":false}"#;
    c.send(0, 1, publish);
    assert_eq!(c.take(0, 1), ["ack r e1 ~"], "acked at once");
    for (node, conn) in [(0, 2), (1, 3), (2, 4), (2, 5)] {
        assert_eq!(
            c.take(node, conn),
            [r#"event r ~ e1 by ana "hi""#],
            "node {node} conn {conn}"
        );
    }
    let room = RoomName::parse("r").unwrap();
    assert_eq!(c.log.read(&room, 0, 10, 0).events.len(), 0, "never stored");
}

#[test]
fn a_draining_node_announces_its_departures_instead_of_waiting_for_the_lease() {
    let mut c = Cluster::new(2);
    let config = HubConfig::default();
    c.join(0, 1, "ana");
    c.join(0, 2, "ann");
    c.join(1, 3, "ben");
    c.take(1, 3);
    c.drain(0);
    c.advance(config.presence_grace / 2);
    assert_eq!(
        c.presence(1),
        ["ana[a-1]", "ann[a-2]", "ben[b-3]"],
        "lingering"
    );
    c.join(1, 4, "ana"); // Reconnected to the node that stays: no flicker.
    c.advance(config.presence_grace);
    assert_eq!(c.take(1, 3), ["presence r ~ana(1)", "presence r -ann"]);
    let sent = c.sent[0];
    c.advance(config.federation_lease * 2);
    assert_eq!(
        c.sent[0], sent,
        "a draining node says nothing after its bye"
    );
    assert_eq!(c.presence(1), ["ana[b-4]", "ben[b-3]"]);
}

#[test]
fn a_one_node_hub_sends_no_signals() {
    let mut c = Cluster::with(vec![HubConfig::default()]);
    c.join(0, 1, "ana");
    c.join(0, 2, "ben");
    c.send(0, 1, r#"{"type":"typing","room":"r","on":true}"#);
    c.send(0, 1, r#"{"type":"presence","room":"r","meta":1}"#);
    c.send(
        0,
        1,
        r#"{"type":"publish","room":"r","id":"e","body":1,"durable":false}"#,
    );
    c.disconnect(0, 2);
    c.advance(Duration::from_secs(60));
    c.drain(0);
    assert_eq!(c.sent[0], 0);
    assert_eq!(
        c.nodes[0].hub.poll_timeout(),
        None,
        "and arms no refresh timer"
    );
}

#[test]
fn bad_signals_are_refused_with_an_error_and_change_nothing() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    let room = RoomName::parse("r").unwrap();
    let before = c.nodes[0].hub.presence(&room);
    let event_with_seq = r#"{"v":1,"signal":{"event":{"frame":{"type":"event","room":"r","seq":4,"id":"e","from":"x","at":1,"body":1}}}}"#;
    let other_room = r#"{"v":1,"signal":{"event":{"frame":{"type":"event","room":"q","id":"e","from":"x","at":1,"body":1}}}}"#;
    let big = format!(
        r#"{{"v":1,"signal":{{"conn":{{"conn":1,"wire":"b-1","user":"u","meta":"{}","since":1}}}}}}"#,
        "x".repeat(HubConfig::default().max_meta_bytes)
    );
    let cases: [(&[u8], &str); 7] = [
        (b"\xff\x00", "malformed"),
        (b"{}", "malformed"),
        (br#"{"v":2,"signal":"bye"}"#, "version 2"),
        (br#"{"v":1,"signal":"shout"}"#, "unknown variant"),
        (event_with_seq.as_bytes(), "ephemeral event of its room"),
        (other_room.as_bytes(), "ephemeral event of its room"),
        (big.as_bytes(), "over the size limit"),
    ];
    for (bytes, expect) in cases {
        let now = c.now();
        let err = c.nodes[0]
            .hub
            .handle_signal(now, room.clone(), "b", bytes)
            .expect_err("refused");
        assert!(err.to_string().contains(expect), "{err}");
        assert!(err.to_string().contains("node b"), "{err}");
    }
    c.pump(0);
    assert_eq!(c.take(0, 1), Vec::<String>::new());
    assert_eq!(c.nodes[0].hub.presence(&room), before);
    let heard = &c.nodes[0].hub.rooms[&room].heard;
    assert!(heard.is_empty(), "a refused signal does not renew a lease");
}

#[test]
fn signals_round_trip_through_their_encoding() {
    let state = RoomSignal::State {
        conns: vec![ConnState {
            conn: 3,
            wire: "a-3".into(),
            user: "ana".into(),
            name: None,
            meta: chorus_sdk::wire::Json::from_text(r#"{"k":[1]}"#).unwrap(),
            since: 9,
        }],
        sync: true,
    };
    let bytes = state.encode();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"v":1,"signal":{"state":{"conns":[{"conn":3,"wire":"a-3","user":"ana","meta":{"k":[1]},"since":9}],"sync":true}}}"#
    );
    assert_eq!(RoomSignal::decode("a", &bytes).unwrap(), state);
    let bye = RoomSignal::Bye.encode();
    assert_eq!(&bye[..], br#"{"v":1,"signal":"bye"}"#);
}

/// Random joins, leaves, drops, reconnects and meta changes on three nodes over a lossy
/// network with latency; once the network heals, every node that has the room shows the
/// same presence (users, connections and metas), and it is the truth.
#[test]
fn presence_and_cursors_converge_on_every_node_over_a_lossy_network() {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// One client connection: its user, whether it is in room `r`, its meta and live cursor
    /// there.
    struct Tab {
        user: &'static str,
        joined: bool,
        meta: String,
        cursor: Option<String>,
    }

    for seed in 0..50 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut c = Cluster::new(3);
        c.latency = Duration::from_millis(rng.random_range(0..300));
        let lossy = Arc::new(AtomicBool::new(true));
        let mut loss_rng = SmallRng::seed_from_u64(seed + 1000);
        let flag = Arc::clone(&lossy);
        c.loss = Some(Box::new(move |_, _| {
            flag.load(Ordering::Relaxed) && loss_rng.random_bool(0.3)
        }));
        let users = ["ana", "ben", "cat", "dan"];
        let mut tabs: BTreeMap<(usize, ConnId), Tab> = BTreeMap::new();
        let mut next_conn = 1;
        for _ in 0..60 {
            let joined: Vec<(usize, ConnId)> = tabs
                .iter()
                .filter(|(_, tab)| tab.joined)
                .map(|(key, _)| *key)
                .collect();
            let any_joined =
                (!joined.is_empty()).then(|| joined[rng.random_range(0..joined.len())]);
            match (rng.random_range(0..5), any_joined) {
                (0 | 1, _) | (_, None) => {
                    let node = rng.random_range(0..3);
                    let user = users[rng.random_range(0..users.len())];
                    c.join(node, next_conn, user);
                    let meta = "null".to_owned();
                    tabs.insert(
                        (node, next_conn),
                        Tab {
                            user,
                            joined: true,
                            meta,
                            cursor: None,
                        },
                    );
                    next_conn += 1;
                }
                (2, Some((node, conn))) => {
                    c.disconnect(node, conn);
                    tabs.remove(&(node, conn));
                }
                (3, Some((node, conn))) => {
                    c.send(node, conn, r#"{"type":"leave","room":"r"}"#);
                    tabs.get_mut(&(node, conn)).expect("known").joined = false;
                }
                (4, Some((node, conn))) if rng.random_bool(0.5) => {
                    let value = ["null", "[1]", "[2]"][rng.random_range(0..3)];
                    let frame = format!(r#"{{"type":"cursor","room":"r","value":{value}}}"#);
                    c.send(node, conn, &frame);
                    let tab = tabs.get_mut(&(node, conn)).expect("known");
                    tab.cursor = (value != "null").then(|| value.to_owned());
                }
                (_, Some((node, conn))) => {
                    let meta = rng.random_range(0..3).to_string();
                    let frame = format!(r#"{{"type":"presence","room":"r","meta":{meta}}}"#);
                    c.send(node, conn, &frame);
                    tabs.get_mut(&(node, conn)).expect("known").meta = meta;
                }
            }
            c.advance(Duration::from_millis(rng.random_range(0..3000)));
        }
        lossy.store(false, Ordering::Relaxed);
        let config = HubConfig::default();
        // A node's last signal in a room (its `bye` when it forgets the room) may have been
        // lost: then only the lease heals it.
        let lease = config.federation_lease + config.federation_refresh;
        c.advance(lease + config.presence_grace + c.latency * 2 + SECOND);

        let mut truth: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (&(node, conn), tab) in tabs.iter().filter(|(_, tab)| tab.joined) {
            let line = format!("{}-{conn}={}", NAMES[node], tab.meta);
            truth.entry(tab.user).or_default().push(line);
        }
        let truth: Vec<String> = truth
            .into_iter()
            .map(|(user, mut conns)| {
                conns.sort();
                format!("{user}[{}]", conns.join(" "))
            })
            .collect();
        let cursor_truth: Vec<String> = tabs
            .iter()
            .filter(|(_, tab)| tab.joined)
            .filter_map(|(&(node, conn), tab)| {
                let value = tab.cursor.as_ref()?;
                Some(format!("{}-{conn}:{}:{value}", NAMES[node], tab.user))
            })
            .collect();
        let mut cursor_versions = BTreeSet::new();
        for node in 0..3 {
            if tabs.iter().any(|(&(n, _), tab)| n == node && tab.joined) {
                assert_eq!(
                    c.presence_with_metas(node),
                    truth,
                    "seed {seed} node {node}"
                );
                let view = c.view(node, 0).cursors;
                let mut shown: Vec<String> = chorus_sdk::wire::LiveCursor::read_list(&view.cursors)
                    .unwrap()
                    .iter()
                    .map(|l| format!("{}:{}:{}", l.conn, l.user, l.value.as_text()))
                    .collect();
                shown.sort();
                let mut expected = cursor_truth.clone();
                expected.sort();
                assert_eq!(shown, expected, "seed {seed} node {node}: cursors");
                cursor_versions.insert(view.version);
            } else {
                assert_eq!(
                    c.presence(node),
                    Vec::<String>::new(),
                    "seed {seed} node {node}"
                );
            }
        }
        assert!(
            cursor_versions.len() <= 1,
            "seed {seed}: every node names the same cursors with one version"
        );
    }
}

/// Presence and typing versions agree across nodes (what lets a poll be held on any node).
mod versions;

/// Presence lookups on a node without members in the room (the backend REST API).
mod observe;

/// Streams across nodes when a stream's signals and its stored result arrive in either order.
mod streams;

/// Locks across nodes when changes to one grant arrive out of the store's order.
mod locks;

/// Publishes across nodes: a duplicate's answer follows its event.
mod publish;

/// Locks across nodes: a grant on node a is seen on node b; node a dies (silenced, its timers
/// stopped); node b still sees the grant expire at its `until` on its own clock, its member
/// takes the lock with a larger token, and the dead node's holder's fenced write is refused
/// by the shared store.
#[test]
fn a_lock_held_on_a_dead_node_expires_everywhere_and_its_holders_writes_are_refused() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "ana");
    c.join(1, 2, "ben");
    c.take(0, 1);
    c.take(1, 2);
    let lock = |id: &str| {
        format!(r#"{{"type":"lock","room":"r","id":"{id}","name":"doc","ttl_ms":3000}}"#)
    };
    c.send(0, 1, &lock("L1"));
    assert_eq!(
        c.take(0, 1),
        ["lock r granted doc t+0 by ana@a-1 until+3000 re L1"]
    );
    assert_eq!(
        c.take(1, 2),
        ["lock r granted doc t+0 by ana@a-1 until+3000"]
    );
    c.send(1, 2, &lock("L2"));
    assert_eq!(c.take(1, 2), ["nack r L2 lock_held"]);
    // A member joining on node b after the grant hears of it from the store.
    c.connect(1, 3, "cy");
    c.send(1, 3, &join("r"));
    assert_eq!(
        c.take(1, 3)[1],
        "joined r head=0 [ana(1) ben(1) cy(1)] typing=[] lock doc@a-1"
    );

    // Node a dies: nothing it sends arrives any more, and its clock stops mattering.
    c.silenced.insert(0);
    let dead = c.nodes.remove(0);
    c.nodes.insert(
        0,
        Node {
            hub: Hub::new(config(0)),
            frames: HashMap::new(),
        },
    );
    c.take(1, 2);
    c.advance(3 * SECOND);
    assert_eq!(
        c.take(1, 2),
        ["lock r expired doc t+0 by ana@a-1 until+3000"]
    );
    c.send(1, 2, &lock("L3"));
    assert_eq!(
        c.take(1, 2),
        ["lock r granted doc t+3000 by ben@b-2 until+6000 re L3"]
    );
    // The dead holder's write, had it reached the store late, is refused.
    let now = c.now();
    let mut stale = crate::store::contract::request_from("ana", "r", "late", now.unix_ms, None);
    stale.if_lock = Some(chorus_sdk::wire::LockFence {
        name: chorus_sdk::wire::EventId::parse("doc").unwrap(),
        token: 1_700_000_000_000,
    });
    match c.log.append(stale, now.unix_ms) {
        AppendOutcome::LockLost { current } => {
            assert_eq!(current.map(|g| g.user), Some("ben".to_owned()))
        }
        other => panic!("expected lock_lost, got {other:?}"),
    }
    drop(dead);
}
/// Live cursors across nodes.
mod cursors;
#[path = "tests_federation_notices.rs"]
mod notices;
