//! Multi-node chaos: three `chorus-server` processes on one Redis (AOF, `appendfsync always`),
//! native SDK clients in every transport mode spread over them by a round-robin proxy that cuts
//! connections at random, and a backend publishing over REST to any node — while one node at a
//! time is killed (SIGKILL) and started again, and Redis itself is killed and restarted once.
//! Checks: every acked publish stored exactly once under its acked seq, every client's stream
//! gapless and ordered and caught up, and presence converging on every node once the killed
//! nodes' lease ran out. Prints the figures.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_sdk::client::TransportMode;
use chorus_sdk::wire::{self, EventId, Json, RoomName};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::chaos::{Proxy, Seen, check_clients, room_head, start_recorded_client, stored_ids};
use support::redis::{Durability, RedisServer};
use support::{Remote, ServerProcess};

const NODES: usize = 3;
const CLIENTS_PER_MODE: usize = 6;
const ROUNDS: usize = 60;
const ROOM: &str = "chaos-nodes";
const API_KEY: &str = "chaos-backend-key";

/// One node on `redis`, with limits loose enough for the chaos workload.
fn start_node(redis: &str) -> ServerProcess {
    ServerProcess::start(&[
        "--redis",
        redis,
        "--api-key",
        API_KEY,
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

/// A backend publish over REST to `node`; `Some(seq)` when stored (or a duplicate of a stored one).
async fn backend_publish(node: &Remote, id: &str, n: usize) -> Option<u64> {
    let body = format!(r#"{{"id":"{id}","body":{{"backend":{n}}},"from":"backend"}}"#);
    let auth = format!("Bearer {API_KEY}");
    let path = format!("/v1/rooms/{ROOM}/events");
    let headers = [("Authorization", auth.as_str())];
    let request = support::http(node, "POST", &path, &headers, Some(&body));
    let response = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .ok()?;
    if response.status != 200 {
        return None;
    }
    let stored: serde_json::Value = response.json();
    stored["seq"].as_u64()
}

/// The users present in the room as `node` sees it, with their connection counts.
async fn presence(node: &Remote) -> Option<BTreeMap<String, usize>> {
    let auth = format!("Bearer {API_KEY}");
    let path = format!("/v1/rooms/{ROOM}/presence");
    let headers = [("Authorization", auth.as_str())];
    let request = support::http(node, "GET", &path, &headers, None);
    let response = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .ok()?;
    if response.status != 200 {
        return None;
    }
    let snapshot: wire::PresenceSnapshot = response.json();
    Some(
        snapshot
            .users
            .into_iter()
            .map(|user| (user.user, user.conns.len()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout, clippy::disallowed_methods)] // Figures; wall-clock durations.
async fn three_nodes_lose_and_double_nothing_through_node_kills_and_a_redis_restart() {
    let mut redis = RedisServer::start_with(Durability::AofAlways);
    let url = redis.url();
    let mut nodes: Vec<ServerProcess> = (0..NODES).map(|_| start_node(&url)).collect();
    let proxy = Proxy::start(nodes.iter().map(|node| node.addr).collect()).await;
    let base = format!("http://{}", proxy.addr);
    let room = RoomName::parse(ROOM).unwrap();

    let modes = [
        TransportMode::WebSocket,
        TransportMode::Polling,
        TransportMode::Auto,
    ];
    let mut clients = Vec::new();
    let mut seen: Vec<Arc<Mutex<Seen>>> = Vec::new();
    let mut socket_users = BTreeSet::new();
    for (n, mode) in modes
        .iter()
        .flat_map(|m| std::iter::repeat_n(*m, CLIENTS_PER_MODE))
        .enumerate()
    {
        let user = format!("user{n}");
        if mode == TransportMode::WebSocket {
            socket_users.insert(user.clone());
        }
        let (client, record) = start_recorded_client(&base, &user, mode, &room);
        clients.push(client);
        seen.push(record);
    }

    let mut rng = SmallRng::seed_from_u64(11);
    let mut published: Vec<Vec<EventId>> = vec![Vec::new(); clients.len()];
    let mut backend: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let (mut cuts, mut kills, mut redis_restarts) = (0, 0, 0);
    for round in 0..ROUNDS {
        for (index, client) in clients.iter().enumerate() {
            let body = Json::from_text(format!(r#"{{"client":{index},"n":{round}}}"#)).unwrap();
            published[index].push(client.publish(room.clone(), body).await.expect("queued"));
        }
        // The backend publishes through whichever node it picks; a refused publish is retried
        // with the same id during the calm below.
        let id = format!("backend-{round}");
        let node = Remote(nodes[rng.random_range(0..NODES)].addr);
        backend.insert(id.clone(), backend_publish(&node, &id, round).await);
        for _ in 0..3 {
            if proxy.cut_one(&mut rng) {
                cuts += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..80))).await;
        if round % 15 == 7 {
            // SIGKILL one node; start it again (on a new port) after a moment.
            let victim = kills % NODES;
            let old = std::mem::replace(&mut nodes[victim], start_node(&url));
            old.stop(false);
            proxy.set_upstream(victim, nodes[victim].addr);
            kills += 1;
        }
        if round == 30 {
            redis.restart();
            redis_restarts += 1;
        }
    }

    // Calm: the backend's refused publishes again (same ids), then every outbox empty and every
    // stream at the head.
    let any = Remote(nodes[0].addr);
    for (n, (id, seq)) in backend.iter_mut().enumerate() {
        for _ in 0..50 {
            if seq.is_some() {
                break;
            }
            *seq = backend_publish(&any, id, n).await;
            if seq.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(seq.is_some(), "the backend publish {id} was never stored");
    }
    let expected = (clients.len() * ROUNDS + ROUNDS) as u64;
    let mut head = 0;
    for _ in 0..900 {
        head = room_head(&any, ROOM).await;
        let done = seen.iter().all(|s| {
            let s = s.lock().unwrap();
            s.outbox == 0 && s.position() == Some(head)
        });
        if done && head == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Presence converges on every node: every client's user, and each WebSocket user with
    // exactly its one live connection (the connections it had on killed nodes are gone once
    // their lease ran out).
    let users: BTreeSet<String> = (0..clients.len()).map(|n| format!("user{n}")).collect();
    let calm = Instant::now();
    let mut views = Vec::new();
    for _ in 0..300 {
        views.clear();
        for node in &nodes {
            views.push(presence(&Remote(node.addr)).await);
        }
        let converged = views.iter().all(|view| {
            view.as_ref().is_some_and(|view| {
                view.keys().cloned().collect::<BTreeSet<_>>() == users
                    && socket_users.iter().all(|user| view.get(user) == Some(&1))
            })
        });
        if converged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged_after = calm.elapsed();
    for client in &clients {
        client.close();
    }

    let stored = stored_ids(&any, ROOM).await;
    let unique: BTreeSet<&String> = stored.values().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    for (id, seq) in &backend {
        assert_eq!(
            stored.get(&seq.unwrap()).map(String::as_str),
            Some(id.as_str()),
            "backend publish {id}"
        );
    }
    let delivered = check_clients(&seen, &published, &stored, head);
    assert_eq!(head, expected, "the room holds exactly what was published");
    for (node, view) in views.iter().enumerate() {
        let view = view.as_ref().expect("every node answers presence");
        assert_eq!(
            view.keys().cloned().collect::<BTreeSet<_>>(),
            users,
            "node {node}'s presence"
        );
        for user in &socket_users {
            assert_eq!(
                view.get(user),
                Some(&1),
                "node {node}: {user}'s connections"
            );
        }
    }
    println!(
        "chaos across nodes: {NODES} nodes, {} clients (ws/polling/auto), {expected} publishes ({ROUNDS} from the backend), {delivered} deliveries, {cuts} cut connections, {kills} node kills, {redis_restarts} Redis restart: 0 lost, 0 duplicated, order kept; presence converged {:.1} s after the calm began",
        clients.len(),
        converged_after.as_secs_f64()
    );
}
