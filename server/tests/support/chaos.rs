//! What the chaos tests share: a TCP proxy (a load balancer that can cut every connection it
//! carries), the record of what one client's app saw (checking order and uniqueness as events
//! arrive), the client tuning for fast recovery, and reads of a room's stored history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_sdk::client::{ClientConfig, ClientEvent, TransportMode};
use chorus_sdk::wire::{self, EventId};
use rand::Rng;
use rand::rngs::SmallRng;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{Remote, http, token};

/// A TCP proxy with a stable address in front of one or more servers: each new connection
/// goes to the next upstream in turn (round robin, no stickiness), skipping one that refuses.
/// It can cut every connection it carries.
pub struct Proxy {
    pub addr: SocketAddr,
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstreams: Vec<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstreams = Arc::new(Mutex::new(upstreams));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (targets, tasks) = (Arc::clone(&upstreams), Arc::clone(&connections));
        tokio::spawn(async move {
            let mut turn = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let order: Vec<SocketAddr> = {
                    let targets = targets.lock().unwrap();
                    turn = turn.wrapping_add(1);
                    (0..targets.len())
                        .map(|n| targets[(turn + n) % targets.len()])
                        .collect()
                };
                let task = tokio::spawn(async move {
                    for to in order {
                        if let Ok(mut outbound) = TcpStream::connect(to).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            upstreams,
            connections,
        }
    }

    /// Replaces upstream `index` (a restarted server listens on a new port).
    pub fn set_upstream(&self, index: usize, addr: SocketAddr) {
        self.upstreams.lock().unwrap()[index] = addr;
    }

    /// Cuts one random live connection; returns whether there was one.
    pub fn cut_one(&self, rng: &mut SmallRng) -> bool {
        let mut connections = self.connections.lock().unwrap();
        connections.retain(|task| !task.is_finished());
        if connections.is_empty() {
            return false;
        }
        let index = rng.random_range(0..connections.len());
        let victim = connections.swap_remove(index);
        victim.abort();
        true
    }

    pub fn cut_all(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// What one client's app saw.
#[derive(Default)]
pub struct Seen {
    pub start: Option<u64>,
    pub stream: Vec<u64>,
    pub acked: BTreeMap<EventId, u64>,
    pub outbox: usize,
    pub own_confirmed: BTreeMap<EventId, usize>,
    pub problems: Vec<String>,
    /// The latest events other than stored events, acks and presence, for a failure's message.
    pub recent: std::collections::VecDeque<String>,
}

impl Seen {
    pub fn see(&mut self, event: ClientEvent) {
        if !matches!(
            event,
            ClientEvent::Event { .. } | ClientEvent::Acked { .. } | ClientEvent::Presence { .. }
        ) {
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(format!("{event:?}"));
        }
        match event {
            ClientEvent::Joined { cursor, .. } => {
                self.start.get_or_insert(cursor.seq);
            }
            ClientEvent::Event { event, own } => {
                let Some(seq) = event.seq else { return };
                if own {
                    *self.own_confirmed.entry(event.id.clone()).or_default() += 1;
                }
                let last = self.position().unwrap_or(0);
                if seq <= last {
                    if !own {
                        self.problems
                            .push(format!("#{seq} delivered again after #{last}"));
                    }
                } else {
                    if seq != last + 1 {
                        self.problems.push(format!("gap: #{seq} after #{last}"));
                    }
                    self.stream.push(seq);
                }
            }
            ClientEvent::Acked { id, seq, .. } => {
                self.acked.insert(id, seq);
            }
            ClientEvent::Outbox { queued } => self.outbox = queued,
            ClientEvent::PublishFailed { id, code, .. } => {
                self.problems.push(format!("{id} failed: {code}"))
            }
            ClientEvent::Expired { id, .. } => self.problems.push(format!("{id} expired")),
            ClientEvent::Reset { reason, .. } => self.problems.push(format!("reset: {reason:?}")),
            _ => {}
        }
    }

    /// The last seq the app has, counting from where it joined.
    pub fn position(&self) -> Option<u64> {
        self.stream.last().copied().or(self.start)
    }
}

/// Checks what every client's app saw against the room's stored history (`stored`: seq -> id)
/// once the calm is over: no problems (gaps, doubles, failures, resets), an empty outbox, the
/// stream caught up to `head`, each of its publishes (`published[client]`) acked under the seq
/// that holds it, and no own publish shown twice. Returns how many events were delivered.
pub fn check_clients(
    seen: &[Arc<Mutex<Seen>>],
    published: &[Vec<EventId>],
    stored: &BTreeMap<u64, String>,
    head: u64,
) -> usize {
    let mut delivered = 0;
    for (index, record) in seen.iter().enumerate() {
        let record = record.lock().unwrap();
        assert!(
            record.problems.is_empty(),
            "client {index}: {:?}",
            record.problems
        );
        assert_eq!(
            record.outbox, 0,
            "client {index}: publishes left; its latest events: {:#?}",
            record.recent
        );
        assert_eq!(
            record.position(),
            Some(head),
            "client {index} did not catch up to #{head}"
        );
        for id in &published[index] {
            let seq = record
                .acked
                .get(id)
                .unwrap_or_else(|| panic!("client {index}: {id} never acked"));
            assert_eq!(
                stored.get(seq).map(String::as_str),
                Some(id.as_str()),
                "client {index}: ack of {id}"
            );
        }
        assert!(
            record.own_confirmed.values().all(|&n| n == 1),
            "client {index}: an own publish shown twice"
        );
        delivered += record.stream.len();
    }
    delivered
}

/// Starts a native client of `user` on `base` in `mode`, joins `room`, and records what its
/// app sees (checking order and uniqueness as events arrive) until the client closes.
pub fn start_recorded_client(
    base: &str,
    user: &str,
    mode: TransportMode,
    room: &chorus_sdk::wire::RoomName,
) -> (chorus_sdk::native::NativeClient, Arc<Mutex<Seen>>) {
    let (client, mut events) = chorus_sdk::native::NativeClient::start(
        base,
        token(user),
        client_config(mode),
        Box::new(chorus_sdk::native::MemoryStorage::default()),
    );
    client.join(room.clone(), chorus_sdk::wire::Json::null());
    let record: Arc<Mutex<Seen>> = Arc::default();
    let app = Arc::clone(&record);
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            app.lock().unwrap().see(event);
        }
    });
    (client, record)
}

/// A client that recovers fast: short backoff, socket timeout and polls.
pub fn client_config(mode: TransportMode) -> ClientConfig {
    let mut config = ClientConfig {
        transport: mode,
        ..ClientConfig::default()
    };
    config.backoff.base = Duration::from_millis(100);
    config.backoff.cap = Duration::from_millis(1000);
    config.socket_timeout = Duration::from_secs(2);
    config.poll_wait = Duration::from_secs(3);
    config.probe_every = Duration::from_secs(2);
    config
}

/// The room's head, read over REST.
pub async fn room_head(server: &Remote, room: &str) -> u64 {
    let auth = format!("Bearer {}", token("checker"));
    let response = http(
        server,
        "GET",
        &format!("/v1/rooms/{room}/events?after=0&limit=1"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    response.json::<wire::EventsPage>().head
}

/// seq -> id of everything stored in the room.
pub async fn stored_ids(server: &Remote, room: &str) -> BTreeMap<u64, String> {
    let auth = format!("Bearer {}", token("checker"));
    let mut stored = BTreeMap::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/rooms/{room}/events?after={after}&limit=1000");
        let page: wire::EventsPage = http(server, "GET", &path, &[("Authorization", &auth)], None)
            .await
            .json();
        for event in &page.events {
            stored.insert(event.seq.unwrap(), event.id.to_string());
        }
        match page.next_after {
            Some(next) => after = next,
            None => return stored,
        }
    }
}
