//! The server on the Redis engine (`--redis`), against a real `redis-server`: start-up errors,
//! `/readyz` while Redis is away, and several nodes sequencing one room through one Redis.
//! Live delivery across nodes (the bus) is tested in `redis_live.rs`.

mod support;

use chorus_sdk::wire::{self, ErrorCode, ServerFrame};
use support::redis::{Durability, RedisServer};
use support::{Client, http, is_ack};

#[test]
fn start_up_fails_naming_the_url_when_redis_is_unreachable() {
    // A port nothing listens on: take one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chorus-server"))
        .args(["--dev", "--bind", "127.0.0.1:0", "--redis", &url])
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("could not start the Redis engine") && stderr.contains(&url),
        "{stderr}"
    );
}

#[tokio::test]
async fn readyz_fails_while_redis_is_unreachable_and_recovers() {
    let mut redis = RedisServer::start();
    let server = support::start(&support::redis_config(&redis)).await;
    let ready = http(&server, "GET", "/readyz", &[], None).await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, r#"{"status":"ready"}"#)
    );

    redis.kill();
    let down = http(&server, "GET", "/readyz", &[], None).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.error_code(), ErrorCode::NotReady);
    assert!(down.body.contains(&redis.url()), "{}", down.body);

    redis.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = http(&server, "GET", "/readyz", &[], None).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once Redis is back");
    server.shutdown().await;
}

#[tokio::test]
async fn two_nodes_sequence_one_room_through_one_redis() {
    let redis = RedisServer::start_with(Durability::AofAlways);
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    let joined_ana = ana.join("r", None).await;
    let joined_bob = bob.join("r", None).await;
    assert_eq!(
        joined_ana.epoch, joined_bob.epoch,
        "one lineage for both nodes"
    );

    let ack = |frames: Vec<ServerFrame>| match frames.last() {
        Some(ServerFrame::Ack(ack)) => ack.seq,
        other => panic!("expected an ack, got {other:?}"),
    };
    ana.publish("r", "a1", r#"{"n":1}"#).await;
    let first = ack(ana.recv_until(|f| is_ack(f, "a1")).await);
    bob.publish("r", "b1", r#"{"n":2}"#).await;
    let second = ack(bob.recv_until(|f| is_ack(f, "b1")).await);
    ana.publish("r", "a2", r#"{"n":3}"#).await;
    let third = ack(ana.recv_until(|f| is_ack(f, "a2")).await);
    assert_eq!((first, second, third), (Some(1), Some(2), Some(3)));

    // Either node serves the whole history from Redis.
    let page = http(
        &two,
        "GET",
        "/v1/rooms/r/events?after=0",
        &[(
            "authorization",
            &format!("Bearer {}", support::token("carol")),
        )],
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page: wire::EventsPage = page.json();
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1", "a2"]);
    assert_eq!(page.epoch, joined_ana.epoch);

    // A node restarted on the same Redis keeps the lineage: resuming clients go on.
    one.shutdown().await;
    let one = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let cursor = wire::Cursor {
        epoch: joined_ana.epoch,
        seq: 1,
    };
    let joined = ana.join("r", Some(cursor)).await;
    assert_eq!((joined.epoch, joined.head), (joined_ana.epoch, 3));
    let replayed = ana
        .recv_until(|f| support::event_seq(f) == Some(3))
        .await
        .iter()
        .filter_map(support::event_seq)
        .collect::<Vec<_>>();
    assert_eq!(replayed, [2, 3]);
}
