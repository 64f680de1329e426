//! A node dies mid-stream: WebSocket clients of node A (through a proxy, as behind a load
//! balancer) while a backend publishes a steady stream through node C; A is killed (SIGKILL) and
//! the balancer sends new connections to node B. Every client must be live on B and receive the
//! stream again, with nothing lost or doubled (its stream stays gapless from where it joined).
//! Prints how long after the kill each client received its first new event (p50/p99/max).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_sdk::client::{ClientEvent, TransportMode};
use chorus_sdk::native::{MemoryStorage, NativeClient};
use chorus_sdk::wire::{Json, RoomName};
use support::chaos::{Proxy, Seen, client_config, room_head};
use support::redis::RedisServer;
use support::{Remote, ServerProcess};

const CLIENTS: usize = 40;
const ROOM: &str = "failover";
const API_KEY: &str = "failover-backend-key";

fn start_node(redis: &str) -> ServerProcess {
    ServerProcess::start(&["--redis", redis, "--api-key", API_KEY])
}

/// One backend publish through `node`; whether it was stored.
async fn publish(node: &Remote, n: u64, after_kill: bool) -> bool {
    let body = format!(
        r#"{{"id":"stream-{n}","body":{{"n":{n},"after_kill":{after_kill}}},"from":"backend"}}"#
    );
    let auth = format!("Bearer {API_KEY}");
    let headers = [("Authorization", auth.as_str())];
    let path = format!("/v1/rooms/{ROOM}/events");
    let request = support::http(node, "POST", &path, &headers, Some(&body));
    matches!(
        tokio::time::timeout(Duration::from_secs(5), request).await,
        Ok(response) if response.status == 200
    )
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(values: &[Duration], q: f64) -> Duration {
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout, clippy::disallowed_methods)] // Figures; wall-clock durations.
async fn clients_of_a_killed_node_are_live_on_another_within_seconds() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = start_node(&url);
    let b = start_node(&url);
    let c = start_node(&url);
    let proxy = Proxy::start(vec![a.addr]).await;
    let base = format!("http://{}", proxy.addr);
    let room = RoomName::parse(ROOM).unwrap();

    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut clients = Vec::new();
    let mut seen: Vec<Arc<Mutex<Seen>>> = Vec::new();
    let mut recovered: Vec<Arc<Mutex<Option<Duration>>>> = Vec::new();
    for n in 0..CLIENTS {
        let (client, mut events) = NativeClient::start(
            &base,
            support::token(&format!("user{n}")),
            client_config(TransportMode::WebSocket),
            Box::new(MemoryStorage::default()),
        );
        client.join(room.clone(), Json::null());
        clients.push(client);
        let (record, first_new): (Arc<Mutex<Seen>>, Arc<Mutex<Option<Duration>>>) =
            Default::default();
        seen.push(Arc::clone(&record));
        recovered.push(Arc::clone(&first_new));
        let killed_at = Arc::clone(&killed_at);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let ClientEvent::Event { event, .. } = &event
                    && event.body.as_text().contains(r#""after_kill":true"#)
                {
                    let mut first = first_new.lock().unwrap();
                    if first.is_none()
                        && let Some(at) = *killed_at.lock().unwrap()
                    {
                        *first = Some(at.elapsed());
                    }
                }
                record.lock().unwrap().see(event);
            }
        });
    }
    // Everyone joined on A.
    for _ in 0..200 {
        if seen.iter().all(|s| s.lock().unwrap().start.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.iter().all(|s| s.lock().unwrap().start.is_some()));

    // The backend's stream, through C, every 20 ms.
    let after_kill = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (after_kill, published, stop) = (
            Arc::clone(&after_kill),
            Arc::clone(&published),
            Arc::clone(&stop),
        );
        let c = Remote(c.addr);
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                while !publish(&c, n, after_kill.load(Ordering::Relaxed)).await {}
                published.store(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A dies; the balancer sends new connections to B.
    proxy.set_upstream(0, b.addr);
    *killed_at.lock().unwrap() = Some(Instant::now());
    after_kill.store(true, Ordering::Relaxed);
    a.stop(false);

    for _ in 0..400 {
        if recovered.iter().all(|r| r.lock().unwrap().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();

    // Calm: everyone reaches the head, gapless.
    let any = Remote(b.addr);
    let head = room_head(&any, ROOM).await;
    for _ in 0..200 {
        if seen
            .iter()
            .all(|s| s.lock().unwrap().position() == Some(head))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for client in &clients {
        client.close();
    }
    let mut times = Vec::new();
    for (n, (record, first)) in seen.iter().zip(&recovered).enumerate() {
        let record = record.lock().unwrap();
        assert!(
            record.problems.is_empty(),
            "client {n}: {:?}",
            record.problems
        );
        assert_eq!(record.position(), Some(head), "client {n} did not catch up");
        times.push(
            first
                .lock()
                .unwrap()
                .unwrap_or_else(|| panic!("client {n} received nothing published after the kill")),
        );
    }
    assert_eq!(head, published.load(Ordering::Relaxed));
    times.sort_unstable();
    println!(
        "failover: {CLIENTS} WebSocket clients of a killed node live on another: first new event after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({head} events, 0 lost, 0 doubled)",
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0,
    );
}
