//! The backend REST API from any node of a deployment on one Redis: `/v1/stats` adds up the
//! live nodes' figures, and `GET /v1/rooms/{room}/presence` answers with everyone in the room,
//! on whichever node they are, also on a node where nobody of the room is.

mod support;

use std::time::Duration;

use chorus_sdk::wire;
use chorus_server::RunningServer;
use support::redis::RedisServer;
use support::{Client, http};

use support::BACKEND_KEY as KEY;

async fn stats(server: &RunningServer) -> wire::Stats {
    let auth = format!("Bearer {KEY}");
    let response = http(
        server,
        "GET",
        "/v1/stats",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

/// Asks `server` for stats until `check` holds (the nodes publish their figures every 2 s),
/// counting attempts (tests read no clock).
async fn until_stats(server: &RunningServer, check: impl Fn(&wire::Stats) -> bool) -> wire::Stats {
    let mut last = stats(server).await;
    for _ in 0..100 {
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = stats(server).await;
    }
    panic!("the stats never got there: {last:?}");
}

#[tokio::test]
async fn stats_from_any_node_add_up_the_live_nodes() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let three = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    ana.join("r", None).await;
    ana.publish("r", "a1", "1").await;
    ana.recv_until(|f| support::is_ack(f, "a1")).await;
    ana.publish("r", "a2", "1").await;
    ana.recv_until(|f| support::is_ack(f, "a2")).await;
    let mut ben = Client::connect(&two, "ben").await;
    ben.join("r", None).await;
    ben.publish("r", "b1", "1").await;
    ben.recv_until(|f| support::is_ack(f, "b1")).await;
    let mut pat = support::PollClient::new(&three, "pat", "session-stats");
    pat.join("q").await;

    for server in [&one, &two, &three] {
        let stats = until_stats(server, |s| {
            (s.nodes, s.connections, s.polling_sessions, s.events_total) == (Some(3), 2, 1, 3)
        })
        .await;
        assert!(stats.rooms <= 1 && stats.users <= 1, "per node: {stats:?}");
    }
    let on_one = stats(&one).await;
    assert_eq!(
        (on_one.rooms, on_one.users, on_one.peak_connections),
        (1, 1, 1)
    );

    // A node that shuts down leaves the sums at once.
    three.shutdown().await;
    let stats = until_stats(&one, |s| s.nodes == Some(2)).await;
    assert_eq!(
        (
            stats.connections,
            stats.polling_sessions,
            stats.events_total
        ),
        (2, 0, 3)
    );
    one.shutdown().await;
    two.shutdown().await;
}

async fn presence(server: &RunningServer) -> wire::PresenceBody {
    let auth = format!("Bearer {KEY}");
    let response = http(
        server,
        "GET",
        "/v1/rooms/r/presence",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

fn users(body: &wire::PresenceBody) -> Vec<String> {
    body.users.iter().map(|u| u.user.clone()).collect()
}

#[tokio::test]
async fn presence_from_a_node_where_nobody_of_the_room_is_lists_everyone() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let three = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    ana.join("r", None).await;
    let mut ben = Client::connect(&two, "ben").await;
    ben.join("r", None).await;
    // Both nodes know each other's member (node two asked node one when it opened the room).
    ben.recv_until(|f| {
        matches!(
            f,
            wire::ServerFrame::Presence(_) | wire::ServerFrame::State(_)
        )
    })
    .await;

    // Node three has nobody in the room: it asks the others, and answers with both.
    let on_three = presence(&three).await;
    assert_eq!(users(&on_three), ["ana", "ben"]);
    for server in [&one, &two] {
        let body = presence(server).await;
        assert_eq!(users(&body), ["ana", "ben"]);
        assert_eq!(body.version, on_three.version, "one version on every node");
    }

    // The room stays open on node three for a while, kept current by the others' signals.
    ana.send_text(r#"{"type":"leave","room":"r"}"#).await;
    let mut attempts = 0;
    while users(&presence(&three).await) != ["ben"] {
        attempts += 1;
        assert!(attempts < 50, "node three never heard ana leave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nobody in the room: version 0 on every node, also on the one observing it.
    ben.send_text(r#"{"type":"leave","room":"r"}"#).await;
    let mut attempts = 0;
    while !presence(&three).await.users.is_empty() {
        attempts += 1;
        assert!(attempts < 50, "node three never heard ben leave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for server in [&one, &two, &three] {
        let body = presence(server).await;
        assert_eq!((body.users.len(), body.version), (0, 0));
    }
    one.shutdown().await;
    two.shutdown().await;
    three.shutdown().await;
}
