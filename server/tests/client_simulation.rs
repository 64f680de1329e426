//! Deterministic simulation of many SDK client cores and the hub core over a seeded virtual
//! network: latency, cut connections, server restarts (history kept, like SQLite), page reloads
//! (outbox restored from storage) and offline flaps, with an attacker in every room who publishes
//! each other user's next event id first (ids travel in every event). Invariants checked after
//! the network heals: every publish acked and stored exactly once (the attacker's copies
//! neither replace nor swallow anyone's), only the user's own events confirmed as own, every
//! member's stream gapless, ordered and caught up, outboxes empty, presence converged.
//!
//! A failing seed prints itself: `CHORUS_CLIENT_SIM_SEED=<seed> CHORUS_CLIENT_SIM_SEEDS=1`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_sdk::client::{
    Client, ClientConfig, ClientEvent, OUTBOX_KEY, Output, Restored, TransportMode,
};
use chorus_sdk::wire::{
    ClientFrame, EventId, Join, Json, Publish, RoomName, RoomRight, ServerFrame,
};
use chorus_server::hub::{Action, ConnId, ConnKind, Hub, HubConfig, Now, ReplayOutcome};
use chorus_server::identity::Identity;
use chorus_server::store::memory::MemoryLog;
use chorus_server::store::{AppendDone, Retention};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ROOMS: [&str; 2] = ["doc:a", "doc:b"];
const TICK: Duration = Duration::from_millis(10);
/// The attacker's user id: a member of every room, connected straight to the hub.
const ATTACKER: &str = "mallory";

/// One direction of a socket: frames in order, each with its delivery time.
type Queue<T> = VecDeque<(Instant, T)>;

struct Link {
    client: usize,
    /// Set once the server accepted the socket.
    conn: Option<ConnId>,
    accept_at: Instant,
    to_server: Queue<ClientFrame>,
    to_client: Queue<ServerFrame>,
}

/// One app: a client core plus what the app saw, across reloads.
struct App {
    user: String,
    client: Client,
    storage: HashMap<&'static str, String>,
    rooms: Vec<RoomName>,
    online: bool,
    /// Per instance (reloads start a new one), per room: seqs delivered, in order.
    streams: Vec<BTreeMap<RoomName, Vec<u64>>>,
    /// Per instance, per room: where its live stream started (the first `Joined` cursor).
    starts: Vec<BTreeMap<RoomName, u64>>,
    published: Vec<EventId>,
    acked: BTreeMap<EventId, u64>,
    /// Per instance: how often each own publish was shown as confirmed.
    confirmed: Vec<BTreeMap<EventId, usize>>,
    presence: BTreeMap<RoomName, BTreeSet<String>>,
}

struct Sim {
    rng: SmallRng,
    t0: Instant,
    now: Instant,
    hub: Hub,
    log: MemoryLog,
    links: BTreeMap<u64, Link>,
    conn_links: HashMap<ConnId, u64>,
    next_conn: ConnId,
    apps: Vec<App>,
    /// The attacker's hub connection (it has no client core and no network delay).
    attacker: ConnId,
    counts: Counts,
}

/// What a run did, so a passing run can be seen to have done something.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    published: usize,
    delivered: usize,
    cuts: usize,
    restarts: usize,
    reloads: usize,
    offline_flaps: usize,
    /// Ids the attacker published before their owner did.
    ids_taken_first: usize,
}

fn client_config() -> ClientConfig {
    ClientConfig {
        transport: TransportMode::WebSocket,
        ..ClientConfig::default()
    }
}

impl Sim {
    fn new(seed: u64, apps: usize) -> Sim {
        #[allow(clippy::disallowed_methods)] // The origin of virtual time.
        let t0 = Instant::now();
        let mut sim = Sim {
            rng: SmallRng::seed_from_u64(seed),
            t0,
            now: t0,
            hub: Hub::new(HubConfig::default()),
            log: MemoryLog::new(
                11,
                Retention {
                    max_events: 1_000_000,
                    max_age: Duration::from_secs(1 << 30),
                },
            ),
            links: BTreeMap::new(),
            conn_links: HashMap::new(),
            next_conn: 1,
            apps: Vec::new(),
            attacker: 0,
            counts: Counts::default(),
        };
        sim.connect_attacker();
        for n in 0..apps {
            let user = format!("user{}", n % (apps / 2).max(1)); // Two tabs per user.
            let client = Client::new(
                client_config(),
                "token".into(),
                t0,
                1_700_000_000_000,
                seed * 1000 + n as u64,
                Restored::default(),
            );
            let rooms: Vec<RoomName> = ROOMS
                .iter()
                .filter(|_| sim.rng.random_bool(0.8))
                .map(|r| RoomName::parse(*r).unwrap())
                .collect();
            let mut app = App {
                user,
                client,
                storage: HashMap::new(),
                rooms,
                online: true,
                streams: vec![BTreeMap::new()],
                published: Vec::new(),
                acked: BTreeMap::new(),
                confirmed: vec![BTreeMap::new()],
                starts: vec![BTreeMap::new()],
                presence: BTreeMap::new(),
            };
            for room in app.rooms.clone() {
                app.client.join(
                    t0,
                    room,
                    Json::from_text(format!(r#"{{"tab":{n}}}"#)).unwrap(),
                );
            }
            sim.apps.push(app);
        }
        sim
    }

    /// Connects the attacker to the hub and joins it to every room.
    fn connect_attacker(&mut self) {
        self.attacker = self.next_conn;
        self.next_conn += 1;
        let identity = Identity::new(ATTACKER, None, &[("*", RoomRight::Publish)]);
        let now = self.hub_now();
        self.hub
            .handle_connect(now, self.attacker, Arc::new(identity), ConnKind::Socket);
        for room in ROOMS {
            let join = Join {
                room: RoomName::parse(room).unwrap(),
                meta: Json::null(),
                resume: None,
            };
            self.hub
                .handle_frame(now, self.attacker, ClientFrame::Join(join));
        }
    }

    /// The attacker saw a frame: for another user's event, it publishes that user's next id
    /// (the SDK's ids are `<prefix>-<counter>`) at once, before the owner does.
    fn attacker_sees(&mut self, frame: ServerFrame) {
        let ServerFrame::Event(event) = frame else {
            return;
        };
        if event.from == ATTACKER || event.seq.is_none() {
            return;
        }
        let Some((prefix, counter)) = event.id.as_str().rsplit_once('-') else {
            return;
        };
        let Ok(counter) = counter.parse::<u64>() else {
            return;
        };
        let next = EventId::parse(format!("{prefix}-{}", counter + 1)).unwrap();
        if self.apps.iter().any(|app| app.published.contains(&next)) {
            return; // Too late: the owner published it already.
        }
        self.counts.ids_taken_first += 1;
        let publish = Publish {
            room: event.room,
            id: next,
            body: Json::from_text(r#""not yours""#).unwrap(),
            durable: true,
            if_seq: None,
            if_lock: None,
        };
        let now = self.hub_now();
        self.hub
            .handle_frame(now, self.attacker, ClientFrame::Publish(publish));
    }

    fn latency(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(1..40))
    }

    fn hub_now(&self) -> Now {
        Now {
            instant: self.now,
            unix_ms: 1_700_000_000_000 + self.now.duration_since(self.t0).as_millis() as u64,
        }
    }

    /// Runs everything due at the current time until nothing changes.
    fn settle_tick(&mut self) {
        for _ in 0..100 {
            let mut busy = false;
            busy |= self.drive_clients();
            busy |= self.deliver();
            busy |= self.drive_hub();
            if !busy {
                return;
            }
        }
    }

    fn drive_clients(&mut self) -> bool {
        let mut busy = false;
        for index in 0..self.apps.len() {
            let now = self.now;
            if self.apps[index]
                .client
                .poll_timeout()
                .is_some_and(|at| at <= now)
            {
                self.apps[index].client.handle_timeout(now);
            }
            loop {
                let outputs = self.apps[index].client.poll_outputs();
                if outputs.is_empty() {
                    break;
                }
                busy = true;
                for output in outputs {
                    self.client_output(index, output);
                }
            }
            for event in self.apps[index].client.poll_events() {
                self.app_event(index, event);
            }
        }
        busy
    }

    fn client_output(&mut self, index: usize, output: Output) {
        match output {
            Output::OpenSocket { link, .. } => {
                let accept_at = self.now + self.latency();
                let link_state = Link {
                    client: index,
                    conn: None,
                    accept_at,
                    to_server: VecDeque::new(),
                    to_client: VecDeque::new(),
                };
                self.links.insert(link, link_state);
            }
            Output::Send { link, frame } => {
                let latency = self.latency();
                if let Some(state) = self.links.get_mut(&link) {
                    let at = state
                        .to_server
                        .back()
                        .map_or(self.now + latency, |(last, _)| {
                            (*last).max(self.now + latency)
                        });
                    state.to_server.push_back((at, frame));
                }
            }
            Output::CloseSocket { link } => self.cut_with(link, None),
            Output::Save { key, value } => {
                self.apps[index].storage.insert(key, value);
            }
            Output::Http { .. } => {} // WebSocket only in this simulation.
        }
    }

    fn app_event(&mut self, index: usize, event: ClientEvent) {
        let app = &mut self.apps[index];
        match event {
            ClientEvent::Event { event, own } => {
                let Some(seq) = event.seq else { return };
                assert!(
                    !own || event.from == app.user,
                    "{}'s event {} shown as own to {}",
                    event.from,
                    event.id,
                    app.user
                );
                if own {
                    *app.confirmed
                        .last_mut()
                        .unwrap()
                        .entry(event.id.clone())
                        .or_default() += 1;
                }
                let start = app
                    .starts
                    .last()
                    .unwrap()
                    .get(&event.room)
                    .copied()
                    .unwrap_or(0);
                let stream = app
                    .streams
                    .last_mut()
                    .unwrap()
                    .entry(event.room)
                    .or_default();
                if seq <= stream.last().copied().unwrap_or(start) {
                    // Only an own publish may be confirmed behind the stream (its echo was
                    // skipped, e.g. a reloaded page joined after it was stored).
                    assert!(
                        own,
                        "event #{seq} arrived behind the stream without being own"
                    );
                    return;
                }
                stream.push(seq);
                self.counts.delivered += 1;
            }
            ClientEvent::Acked { id, seq, .. } => {
                if let Some(previous) = app.acked.insert(id.clone(), seq) {
                    assert_eq!(previous, seq, "{id} acked twice with different seqs");
                }
            }
            ClientEvent::Joined { room, cursor } => {
                app.starts
                    .last_mut()
                    .unwrap()
                    .entry(room)
                    .or_insert(cursor.seq);
            }
            ClientEvent::Presence { room, users } => {
                app.presence
                    .insert(room, users.into_iter().map(|u| u.user).collect());
            }
            ClientEvent::PublishFailed { id, code, .. } => {
                panic!("publish {id} failed with {code}")
            }
            ClientEvent::Expired { id, .. } => panic!("publish {id} expired"),
            ClientEvent::Reset { room, reason, .. } => {
                panic!("unexpected reset of {room}: {reason:?}")
            }
            _ => {}
        }
    }

    /// Moves frames whose time has come, and accepts sockets.
    fn deliver(&mut self) -> bool {
        let mut busy = false;
        let now = self.now;
        let links: Vec<u64> = self.links.keys().copied().collect();
        for link in links {
            let Some(state) = self.links.get_mut(&link) else {
                continue;
            };
            if state.conn.is_none() && state.accept_at <= now {
                let conn = self.next_conn;
                self.next_conn += 1;
                state.conn = Some(conn);
                self.conn_links.insert(conn, link);
                let client = state.client;
                self.apps[client].client.handle_socket_open(now, link);
                let user = self.apps[client].user.clone();
                let identity = Identity::new(&user, None, &[("*", RoomRight::Publish)]);
                let now = self.hub_now();
                self.hub
                    .handle_connect(now, conn, Arc::new(identity), ConnKind::Socket);
                busy = true;
            }
            let Some(state) = self.links.get_mut(&link) else {
                continue;
            };
            let Some(conn) = state.conn else { continue };
            let mut to_server = Vec::new();
            while state.to_server.front().is_some_and(|(at, _)| *at <= now) {
                to_server.push(state.to_server.pop_front().unwrap().1);
            }
            let mut to_client = Vec::new();
            while state.to_client.front().is_some_and(|(at, _)| *at <= now) {
                to_client.push(state.to_client.pop_front().unwrap().1);
            }
            let client = state.client;
            busy |= !to_server.is_empty() || !to_client.is_empty();
            for frame in to_server {
                let now = self.hub_now();
                self.hub.handle_frame(now, conn, frame);
            }
            for frame in to_client {
                self.apps[client]
                    .client
                    .handle_socket_frame(now, link, frame);
            }
        }
        busy
    }

    fn drive_hub(&mut self) -> bool {
        let mut busy = false;
        let now = self.hub_now();
        if self.hub.poll_timeout().is_some_and(|at| at <= self.now) {
            self.hub.handle_timeout(now);
        }
        loop {
            let mut idle = true;
            while let Some(transmit) = self.hub.poll_transmit() {
                idle = false;
                let frame = ServerFrame::decode(transmit.payload.as_str()).unwrap();
                self.send_to_client(transmit.conn, frame);
            }
            while let Some(action) = self.hub.poll_action() {
                idle = false;
                match action {
                    Action::Append(job) => {
                        let (room, id) = (job.request.room.clone(), job.request.id.clone());
                        let from = job.request.from.clone();
                        let outcome = self.log.append(job.request, now.unix_ms);
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
                    }
                    Action::LoadRoom(room) => {
                        let head = self.log.read(&room, 0, 0, now.unix_ms).head;
                        self.hub.handle_room_loaded(now, room, Ok(head));
                    }
                    Action::Replay {
                        conn,
                        room,
                        after,
                        until,
                    } => {
                        let page = self.log.read(&room, after, usize::MAX, now.unix_ms);
                        for stored in page.events.into_iter().filter(|e| e.seq() <= until) {
                            self.send_to_client(conn, ServerFrame::Event(stored.event));
                        }
                        self.hub
                            .handle_replay_done(now, conn, room, ReplayOutcome::Done);
                    }
                    Action::Close { conn, .. } if conn == self.attacker => {
                        self.hub.handle_disconnect(now, conn);
                        self.connect_attacker();
                    }
                    Action::Close { conn, code, .. } => {
                        if let Some(&link) = self.conn_links.get(&conn) {
                            self.cut_with(link, Some(code));
                        }
                    }
                    Action::Complete { .. } | Action::StreamDone { .. } => {}
                    // One node: nobody else stores, so there is nothing to follow.
                    Action::Follow(_) | Action::Unfollow(_) => {}
                    Action::Repair { room, after } => {
                        let page = self.log.read(&room, after, 256, now.unix_ms);
                        self.hub.handle_repaired(now, room, Ok(page));
                    }
                    Action::Signal { .. } => unreachable!("a one-node hub sends no signals"),
                    Action::CheckLocks(_) => unreachable!("a one-node hub expires by its clock"),
                    Action::Lock(job) => {
                        let result = Ok(self.log.lock(&job.request));
                        self.hub
                            .handle_lock_done(now, chorus_server::hub::LockDone { job, result });
                    }
                    // The simulation sends no notices.
                    Action::Notice { .. } => unreachable!("nobody sends notices here"),
                }
            }
            if idle {
                return busy;
            }
            busy = true;
        }
    }

    fn send_to_client(&mut self, conn: ConnId, frame: ServerFrame) {
        if conn == self.attacker {
            return self.attacker_sees(frame);
        }
        let latency = self.latency();
        let Some(&link) = self.conn_links.get(&conn) else {
            return;
        };
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let at = state
            .to_client
            .back()
            .map_or(self.now + latency, |(last, _)| {
                (*last).max(self.now + latency)
            });
        state.to_client.push_back((at, frame));
    }

    /// Cuts a socket: frames in flight are lost; the server learns it, and the client too
    /// unless it closed the socket itself (`client_code` is `None`).
    fn cut_with(&mut self, link: u64, client_code: Option<u16>) {
        let Some(state) = self.links.remove(&link) else {
            return;
        };
        if let Some(conn) = state.conn {
            self.conn_links.remove(&conn);
            let now = self.hub_now();
            self.hub.handle_disconnect(now, conn);
        }
        if let Some(code) = client_code {
            self.apps[state.client]
                .client
                .handle_socket_closed(self.now, link, Some(code));
        }
    }

    fn restart_server(&mut self) {
        let links: Vec<u64> = self.links.keys().copied().collect();
        for link in links {
            if let Some(state) = self.links.remove(&link) {
                self.apps[state.client]
                    .client
                    .handle_socket_closed(self.now, link, Some(1006));
            }
        }
        self.conn_links.clear();
        self.hub = Hub::new(HubConfig::default());
        self.connect_attacker();
    }

    fn reload(&mut self, index: usize) {
        let links: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.client == index)
            .map(|(&k, _)| k)
            .collect();
        for link in links {
            self.cut_with(link, None);
        }
        let app = &mut self.apps[index];
        let restored = Restored {
            outbox: app.storage.get(OUTBOX_KEY).cloned(),
            transport: None,
        };
        let seed = self.rng.random();
        app.client = Client::new(
            client_config(),
            "token".into(),
            self.now,
            1_700_000_000_000,
            seed,
            restored,
        );
        app.streams.push(BTreeMap::new());
        app.confirmed.push(BTreeMap::new());
        app.starts.push(BTreeMap::new());
        for room in app.rooms.clone() {
            app.client.join(self.now, room, Json::null());
        }
        // Ids published by the old instance will be confirmed by the new one (from its outbox).
    }

    fn random_op(&mut self) {
        let index = self.rng.random_range(0..self.apps.len());
        match self.rng.random_range(0..1000) {
            0..=59 => {
                let app = &mut self.apps[index];
                if let Some(room) = app.rooms.first().cloned() {
                    let room = if app.rooms.len() > 1 && self.rng.random_bool(0.5) {
                        app.rooms[1].clone()
                    } else {
                        room
                    };
                    let body = Json::from_text(format!("{}", self.rng.random::<u32>())).unwrap();
                    if let Ok(id) = app.client.publish(self.now, room, body) {
                        app.published.push(id);
                        self.counts.published += 1;
                    }
                }
            }
            60..=69 => {
                let links: Vec<u64> = self.links.keys().copied().collect();
                if !links.is_empty() {
                    let link = links[self.rng.random_range(0..links.len())];
                    self.cut_with(link, Some(1006));
                    self.counts.cuts += 1;
                }
            }
            70..=71 => {
                let app = &mut self.apps[index];
                app.online = !app.online;
                app.client.handle_online(self.now, app.online);
                self.counts.offline_flaps += 1;
            }
            72 => {
                self.reload(index);
                self.counts.reloads += 1;
            }
            73 if self.rng.random_bool(0.2) => {
                self.restart_server();
                self.counts.restarts += 1;
            }
            _ => {}
        }
    }

    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.random_op();
            self.settle_tick();
            self.now += TICK;
        }
        // Heal: everyone online, then time for reconnects, replays, outboxes and grace periods.
        for index in 0..self.apps.len() {
            if !self.apps[index].online {
                self.apps[index].online = true;
                self.apps[index].client.handle_online(self.now, true);
            }
        }
        // Nothing random happens now, so jump from one due thing to the next.
        let end = self.now + Duration::from_secs(60);
        while self.now < end {
            self.settle_tick();
            let next = self.next_due().unwrap_or(end).min(end);
            self.now = next.max(self.now + Duration::from_millis(1));
        }
    }

    /// The earliest time anything is due: a timer, a frame, a socket accept.
    fn next_due(&self) -> Option<Instant> {
        let timers = self
            .apps
            .iter()
            .filter_map(|a| a.client.poll_timeout())
            .chain(self.hub.poll_timeout());
        let network = self.links.values().flat_map(|l| {
            let accept = l.conn.is_none().then_some(l.accept_at);
            accept
                .into_iter()
                .chain(l.to_server.front().map(|(at, _)| *at))
                .chain(l.to_client.front().map(|(at, _)| *at))
        });
        timers.chain(network).min()
    }

    fn check(&mut self) -> Result<(), String> {
        let rooms: Vec<RoomName> = ROOMS.iter().map(|r| RoomName::parse(*r).unwrap()).collect();
        let heads: BTreeMap<RoomName, u64> = rooms
            .into_iter()
            .map(|r| (r.clone(), self.log_head(&r)))
            .collect();
        // Stored exactly once: the log holds exactly as many of the apps' events as the apps
        // published (a repeated id would make it hold more), and every publish is among them
        // (below), under its sender: the attacker's copies of an id are its own events.
        let mut stored_ids: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut stored = 0;
        for room in heads.keys().cloned().collect::<Vec<_>>() {
            for event in self.log_read(&room) {
                let key = (event.event.from.clone(), event.event.id.to_string());
                if stored_ids.insert(key, event.seq()).is_some() {
                    return Err(format!("{} stored twice by one sender", event.event.id));
                }
                stored += usize::from(event.event.from != ATTACKER);
            }
        }
        let published: usize = self.apps.iter().map(|app| app.published.len()).sum();
        if stored != published {
            return Err(format!(
                "the log holds {stored} events, the apps published {published}"
            ));
        }
        for (index, app) in self.apps.iter().enumerate() {
            if app.client.outbox_len() != 0 {
                return Err(format!(
                    "app {index}: {} publishes still in the outbox",
                    app.client.outbox_len()
                ));
            }
            for id in &app.published {
                let Some(&seq) = stored_ids.get(&(app.user.clone(), id.to_string())) else {
                    return Err(format!("app {index}: publish {id} was lost"));
                };
                if let Some(&acked) = app.acked.get(id)
                    && acked != seq
                {
                    return Err(format!(
                        "app {index}: {id} acked as #{acked} but stored as #{seq}"
                    ));
                }
            }
            for (instance, confirmed) in app.confirmed.iter().enumerate() {
                for (id, count) in confirmed {
                    if *count > 1 {
                        return Err(format!(
                            "app {index} instance {instance}: own publish {id} shown {count} times"
                        ));
                    }
                }
            }
            for (segment, stream) in app.streams.iter().enumerate() {
                for (room, seqs) in stream {
                    let start = app.starts[segment].get(room).copied().unwrap_or(0);
                    let starts_right = seqs.first().is_none_or(|&first| first == start + 1);
                    if !starts_right || seqs.windows(2).any(|w| w[1] != w[0] + 1) {
                        return Err(format!(
                            "app {index} segment {segment}: {room} stream has a gap or double: {seqs:?}"
                        ));
                    }
                }
            }
            for room in &app.rooms {
                let head = heads[room];
                let cursor = app.client.cursor(room).map(|c| c.seq);
                if cursor != Some(head) {
                    return Err(format!(
                        "app {index}: {room} cursor is {cursor:?}, head is {head}"
                    ));
                }
            }
        }
        for room in heads.keys() {
            let truth: BTreeSet<String> = self
                .apps
                .iter()
                .filter(|a| a.rooms.contains(room))
                .map(|a| a.user.clone())
                .chain([ATTACKER.to_owned()])
                .collect();
            for (index, app) in self
                .apps
                .iter()
                .enumerate()
                .filter(|(_, a)| a.rooms.contains(room))
            {
                let seen = app.presence.get(room).cloned().unwrap_or_default();
                if seen != truth {
                    return Err(format!(
                        "app {index}: presence of {room} is {seen:?}, expected {truth:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn log_head(&mut self, room: &RoomName) -> u64 {
        self.log_read(room).last().map_or(0, |e| e.seq())
    }

    fn log_read(&mut self, room: &RoomName) -> Vec<chorus_server::store::StoredEvent> {
        let now_ms = self.hub_now().unix_ms;
        self.log.read(room, 0, usize::MAX, now_ms).events
    }
}

fn simulate(seed: u64) -> Result<Counts, String> {
    let mut sim = Sim::new(seed, 6);
    sim.run(3000); // 30 s of virtual time with random trouble, then 60 s to heal.
    sim.check().map(|()| sim.counts)
}

#[test]
fn clients_and_hub_lose_nothing_double_nothing_and_converge_under_trouble() {
    let seeds: u64 = std::env::var("CHORUS_CLIENT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let first: u64 = std::env::var("CHORUS_CLIENT_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut total = Counts::default();
    for seed in first..first + seeds {
        match simulate(seed) {
            Ok(counts) => {
                total.published += counts.published;
                total.delivered += counts.delivered;
                total.cuts += counts.cuts;
                total.restarts += counts.restarts;
                total.reloads += counts.reloads;
                total.offline_flaps += counts.offline_flaps;
                total.ids_taken_first += counts.ids_taken_first;
            }
            Err(err) => panic!(
                "seed {seed}: {err}\nreplay with: CHORUS_CLIENT_SIM_SEED={seed} CHORUS_CLIENT_SIM_SEEDS=1 cargo test -p chorus-server --test client_simulation"
            ),
        }
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{seeds} seeds: {total:?}");
    }
    assert!(
        total.published > 0 && total.cuts > 0 && total.reloads > 0 && total.ids_taken_first > 0,
        "the workload did something: {total:?}"
    );
}
