//! Sequenced publishes per second on one Redis (issue 13's goal: at least 20k/s), for one room
//! and for 100 rooms, with the round trips and Redis commands each publish costs.
//!
//! `cargo bench -p chorus-server --bench redis` starts Debian's `redis-server` on a free loopback
//! port, first without persistence, then with AOF `appendfsync always` (docs/SCALING.md says
//! what each guarantees), and prints one line per configuration: every publish submitted at
//! once (the writer pipelines what is queued), and one publish at a time (a round trip each).
//! Then it starts a Redis Cluster of three masters (no replicas, no persistence) and measures
//! 100 rooms spread over the three shards (the writer sends one pipeline per slot).

#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use chorus_sdk::wire::{EventId, Json, RoomName};
use chorus_server::store::redis::{RedisStore, RedisTarget};
use chorus_server::store::{AppendJob, AppendRequest, Origin, Retention, Store};

#[path = "../tests/support/redis.rs"]
mod redis_server;

fn job(n: usize, rooms: usize) -> AppendJob {
    AppendJob {
        origin: Origin::Conn(1),
        request: AppendRequest {
            room: RoomName::parse(format!("room-{}", n % rooms)).unwrap(),
            id: EventId::parse(format!("e{n}")).unwrap(),
            from: "bench".into(),
            at: chorus_server::clock::unix_ms_now(),
            body: Json::from_text(r#"{"text":"a typical chat message of some sixty bytes or so"}"#)
                .unwrap(),
            if_seq: None,
            if_lock: None,
        },
    }
}

/// Commands the servers have run so far (scripts' own commands included), from
/// `INFO commandstats`.
fn commands_run(servers: &[&redis_server::RedisServer]) -> u64 {
    servers
        .iter()
        .map(|server| {
            server
                .command("INFO commandstats")
                .lines()
                .filter_map(|line| line.split("calls=").nth(1))
                .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
async fn measure(
    servers: &[&redis_server::RedisServer],
    target: &RedisTarget,
    label: &str,
    rooms: usize,
    events: usize,
    one_at_a_time: bool,
) {
    let (tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let prefix = format!("bench{rooms}{one_at_a_time}:");
    let store = RedisStore::open_on(target, &prefix, Retention::default(), tx)
        .await
        .unwrap();
    let trips_before = store.round_trips();
    let commands_before = commands_run(servers);
    let started = Instant::now();
    if one_at_a_time {
        for n in 0..events {
            store.submit(job(n, rooms));
            outcomes.recv().await.unwrap().result.unwrap();
        }
    } else {
        for n in 0..events {
            store.submit(job(n, rooms));
        }
        for _ in 0..events {
            outcomes.recv().await.unwrap().result.unwrap();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let trips = store.round_trips() - trips_before;
    // Each INFO call itself counts once.
    let commands = commands_run(servers) - commands_before - servers.len() as u64;
    println!(
        "{label:<8} {:<13} {rooms:>3} room(s) {events:>6} publishes in {seconds:>6.3} s = {:>8.0} publishes/s; \
         {trips} round trips ({:.1} publishes each), {:.1} Redis commands per publish (1 EVALSHA + script)",
        if one_at_a_time {
            "one at a time"
        } else {
            "all at once"
        },
        events as f64 / seconds,
        events as f64 / trips.max(1) as f64,
        commands as f64 / events as f64,
    );
}

#[tokio::main]
async fn main() {
    for (label, durability) in [
        ("none", redis_server::Durability::None),
        ("aof", redis_server::Durability::AofAlways),
    ] {
        let server = redis_server::RedisServer::start_with(durability);
        let target = RedisTarget::single(&server.url());
        for rooms in [1, 100] {
            measure(&[&server], &target, label, rooms, 100_000, false).await;
        }
        measure(&[&server], &target, label, 1, 5_000, true).await;
    }
    let cluster = redis_server::RedisCluster::start();
    let masters: Vec<&redis_server::RedisServer> = cluster.masters().iter().collect();
    let target = RedisTarget::parse(&cluster.urls(), true).unwrap();
    for rooms in [1, 100] {
        measure(&masters, &target, "cluster", rooms, 100_000, false).await;
    }
    measure(&masters, &target, "cluster", 1, 5_000, true).await;
}
