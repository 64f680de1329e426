//! Chaos suite: native SDK clients (WebSocket, polling-only and auto) against the real
//! `chorus-server` binary on SQLite, through a TCP proxy that cuts connections at random, while
//! the server is killed and restarted several times. Checks: every publish acked and stored
//! exactly once, every client's stream gapless, ordered and caught up. Prints counts.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_sdk::client::{ClientConfig, ClientEvent, TransportMode};
use chorus_sdk::native::{MemoryStorage, NativeClient};
use chorus_sdk::wire::{self, EventId, Json, RoomName};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::ServerProcess;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const CLIENTS_PER_MODE: usize = 8;
const PUBLISHES_EACH: usize = 100;
const ROOM: &str = "chaos";

/// The real server on `db`, with limits loose enough for the chaos workload.
fn start_server(db: &std::path::Path) -> ServerProcess {
    let db = db.to_str().unwrap();
    ServerProcess::start(&[
        "--db",
        db,
        "--poll-wait-ms",
        "3000",
        "--drain-retry-ms",
        "200",
        "--publish-rate",
        "1000",
        "--retention-events",
        "100000",
    ])
}

/// A TCP proxy with a stable address in front of whatever server is current, able to cut
/// every connection it carries.
struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (target, tasks) = (Arc::clone(&upstream), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = *target.lock().unwrap();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            upstream,
            connections,
        }
    }

    /// Cuts one random live connection; returns whether there was one.
    fn cut_one(&self, rng: &mut SmallRng) -> bool {
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

    fn cut_all(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// What one client's app saw.
#[derive(Default)]
struct Seen {
    start: Option<u64>,
    stream: Vec<u64>,
    acked: BTreeMap<EventId, u64>,
    outbox: usize,
    own_confirmed: BTreeMap<EventId, usize>,
    problems: Vec<String>,
}

fn client_config(mode: TransportMode) -> ClientConfig {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)]
async fn clients_survive_cut_connections_and_server_restarts_in_every_transport_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chaos.db");
    let mut server = Some(start_server(&db));
    let proxy = Proxy::start(server.as_ref().unwrap().addr).await;
    let base = format!("http://{}", proxy.addr);
    let room = RoomName::parse(ROOM).unwrap();

    let modes = [
        TransportMode::WebSocket,
        TransportMode::Polling,
        TransportMode::Auto,
    ];
    let mut clients = Vec::new();
    let mut seen: Vec<Arc<Mutex<Seen>>> = Vec::new();
    let mut readers = Vec::new();
    for (n, mode) in modes
        .iter()
        .flat_map(|m| std::iter::repeat_n(*m, CLIENTS_PER_MODE))
        .enumerate()
    {
        let token = support::token(&format!("user{n}"));
        let (client, mut events) = NativeClient::start(
            &base,
            token,
            client_config(mode),
            Box::new(MemoryStorage::default()),
        );
        client.join(room.clone(), Json::null());
        clients.push(client);
        let record: Arc<Mutex<Seen>> = Arc::default();
        seen.push(Arc::clone(&record));
        // The app: records what it sees, checking order and uniqueness as events arrive.
        readers.push(tokio::spawn(async move {
            while let Some(event) = events.next().await {
                record.lock().unwrap().see(event);
            }
        }));
    }

    // Publishers and chaos run together.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut published: Vec<Vec<EventId>> = vec![Vec::new(); clients.len()];
    let (mut cuts, mut restarts) = (0, 0);
    for round in 0..PUBLISHES_EACH {
        for (index, client) in clients.iter().enumerate() {
            let body = Json::from_text(format!(r#"{{"client":{index},"n":{round}}}"#)).unwrap();
            published[index].push(client.publish(room.clone(), body).await.expect("queued"));
        }
        for _ in 0..3 {
            if proxy.cut_one(&mut rng) {
                cuts += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..80))).await;
        if round % 25 == 12 {
            // Kill (once: stop gracefully) the server; start it again on the same file.
            server.take().unwrap().stop(restarts == 1);
            proxy.cut_all();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let next = start_server(&db);
            *proxy.upstream.lock().unwrap() = next.addr;
            server = Some(next);
            restarts += 1;
        }
    }

    // Calm: wait until every outbox is empty and every stream reached the head.
    let current = support::Remote(server.as_ref().unwrap().addr);
    let expected = (clients.len() * PUBLISHES_EACH) as u64;
    let mut head = 0;
    for _ in 0..900 {
        head = room_head(&current).await;
        let done = seen.iter().all(|s| {
            let s = s.lock().unwrap();
            s.outbox == 0 && s.position() == Some(head)
        });
        if done && head == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for client in &clients {
        client.close();
    }

    // Every publish stored exactly once, under the seq its ack said.
    let stored = stored_ids(&current).await;
    let unique: BTreeSet<&String> = stored.values().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
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
            "client {index}: publishes left in the outbox"
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
    assert_eq!(head, expected, "the room holds exactly what was published");
    println!(
        "chaos: {} clients (ws/polling/auto), {expected} publishes, {delivered} deliveries, {cuts} cut connections, {restarts} server restarts: 0 lost, 0 duplicated, order kept",
        clients.len()
    );
}

impl Seen {
    fn see(&mut self, event: ClientEvent) {
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
    fn position(&self) -> Option<u64> {
        self.stream.last().copied().or(self.start)
    }
}

async fn room_head(server: &support::Remote) -> u64 {
    let auth = format!("Bearer {}", support::token("checker"));
    let response = support::http(
        server,
        "GET",
        &format!("/v1/rooms/{ROOM}/events?after=0&limit=1"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    response.json::<wire::EventsPage>().head
}

/// seq -> id of everything stored in the room.
async fn stored_ids(server: &support::Remote) -> BTreeMap<u64, String> {
    let auth = format!("Bearer {}", support::token("checker"));
    let mut stored = BTreeMap::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/rooms/{ROOM}/events?after={after}&limit=1000");
        let page: wire::EventsPage =
            support::http(server, "GET", &path, &[("Authorization", &auth)], None)
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
