//! Chaos suite: native SDK clients (WebSocket, polling-only and auto) against the real
//! `chorus-server` binary on SQLite, through a TCP proxy that cuts connections at random, while
//! the server is killed and restarted several times. Checks: every publish acked and stored
//! exactly once, every client's stream gapless, ordered and caught up. Prints counts.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_sdk::client::TransportMode;
use chorus_sdk::wire::{EventId, Json, RoomName};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::ServerProcess;
use support::chaos::{Proxy, Seen, check_clients, room_head, start_recorded_client, stored_ids};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)]
async fn clients_survive_cut_connections_and_server_restarts_in_every_transport_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chaos.db");
    let mut server = Some(start_server(&db));
    let proxy = Proxy::start(vec![server.as_ref().unwrap().addr]).await;
    let base = format!("http://{}", proxy.addr);
    let room = RoomName::parse(ROOM).unwrap();

    let modes = [
        TransportMode::WebSocket,
        TransportMode::Polling,
        TransportMode::Auto,
    ];
    let mut clients = Vec::new();
    let mut seen: Vec<Arc<Mutex<Seen>>> = Vec::new();
    for (n, mode) in modes
        .iter()
        .flat_map(|m| std::iter::repeat_n(*m, CLIENTS_PER_MODE))
        .enumerate()
    {
        let user = format!("user{n}");
        let (client, record) = start_recorded_client(&base, &user, mode, &room);
        clients.push(client);
        seen.push(record);
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
            proxy.set_upstream(0, next.addr);
            server = Some(next);
            restarts += 1;
        }
    }

    // Calm: wait until every outbox is empty and every stream reached the head.
    let current = support::Remote(server.as_ref().unwrap().addr);
    let expected = (clients.len() * PUBLISHES_EACH) as u64;
    let mut head = 0;
    for _ in 0..900 {
        head = room_head(&current, ROOM).await;
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
    let stored = stored_ids(&current, ROOM).await;
    let unique: BTreeSet<&String> = stored.values().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let delivered = check_clients(&seen, &published, &stored, head);
    assert_eq!(head, expected, "the room holds exactly what was published");
    println!(
        "chaos: {} clients (ws/polling/auto), {expected} publishes, {delivered} deliveries, {cuts} cut connections, {restarts} server restarts: 0 lost, 0 duplicated, order kept",
        clients.len()
    );
}
