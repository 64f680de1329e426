//! Notices across nodes on one real `redis-server`: a broadcast, a user target and a
//! connection target sent through node A reach WebSockets and a polling session on node B.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, NoticeSent, ServerFrame};
use chorus_server::RunningServer;
use support::redis::RedisServer;
use support::{Client, PollClient, http};

use support::BACKEND_KEY as KEY;

async fn post_notice(server: &RunningServer, path: &str, body: &str) -> NoticeSent {
    let key = format!("Bearer {KEY}");
    let response = http(server, "POST", path, &[("Authorization", &key)], Some(body)).await;
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    response.json::<NoticeSent>()
}

async fn next_notice_id(client: &mut Client) -> String {
    let frames = client
        .recv_until(|frame| matches!(frame, ServerFrame::Notice(_)))
        .await;
    match frames.last() {
        Some(ServerFrame::Notice(notice)) => notice.id.clone(),
        other => panic!("expected a notice, got {other:?}"),
    }
}

/// Waits until both nodes subscribe to the notice channel (each follows it from its start).
async fn until_both_hear_notices(redis: &RedisServer) {
    // About `support::PATIENCE`, counted in attempts (tests read no clock).
    for _ in 0..250 {
        let reply = redis.command("PUBSUB NUMSUB chorus:{@@chorus:notices}:sig");
        if reply.lines().last() == Some(":2") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the nodes never subscribed to the notice channel");
}

#[tokio::test]
async fn notices_sent_through_one_node_reach_connections_on_another() {
    let redis = RedisServer::start();
    let a = support::start(&support::redis_config(&redis)).await;
    let b = support::start(&support::redis_config(&redis)).await;
    until_both_hear_notices(&redis).await;
    let mut ana = Client::connect(&a, "ana").await;
    let mut ben = Client::connect(&b, "ben").await;
    ben.join("r", None).await;
    let mut cid = PollClient::new(&b, "cid", "cid-on-node-b");
    cid.join("r").await;
    cid.poll(0).await;

    // Everyone: the sending node counts its own connection only.
    let sent = post_notice(&a, "/v1/notices", r#"{"id":"all-1","body":"maintenance"}"#).await;
    assert_eq!(sent.delivered, 1);
    assert_eq!(next_notice_id(&mut ana).await, "all-1");
    assert_eq!(next_notice_id(&mut ben).await, "all-1");

    // A user of the other node.
    post_notice(&a, "/v1/users/ben/notices", r#"{"id":"ben-1","body":1}"#).await;
    assert_eq!(next_notice_id(&mut ben).await, "ben-1");

    // One connection of the other node, by the id its room presence lists (on any node).
    let key = format!("Bearer {KEY}");
    let presence = http(
        &a,
        "GET",
        "/v1/rooms/r/presence",
        &[("Authorization", &key)],
        None,
    )
    .await
    .json::<wire::PresenceBody>();
    let ben_conn = presence
        .users
        .iter()
        .find(|u| u.user == "ben")
        .expect("ben is present")
        .conns[0]
        .conn
        .clone();
    let sent = post_notice(
        &a,
        &format!("/v1/connections/{ben_conn}/notices"),
        r#"{"id":"conn-1","body":1}"#,
    )
    .await;
    assert_eq!(sent.delivered, 0, "handed over on the other node");
    assert_eq!(next_notice_id(&mut ben).await, "conn-1");

    // The polling session on node B has kept everything meant for it.
    let mut got = Vec::new();
    for _ in 0..50 {
        for frame in cid.poll(1000).await {
            if let ServerFrame::Notice(notice) = frame {
                got.push(notice.id);
            }
        }
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got, ["all-1"]);
}
