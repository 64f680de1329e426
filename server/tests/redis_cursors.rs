//! Live cursors across nodes on a real `redis-server`: a cursor set on one node reaches
//! members, late joiners and polling sessions on another, with one version on every node, and
//! the cursors of a node that is killed go when its lease runs out.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, Json, RoomName, ServerFrame};
use futures_util::StreamExt;
use support::redis::RedisServer;
use support::{Client, PollClient, ServerProcess};
use tokio_tungstenite::tungstenite::Message;

fn set_cursor(value: &str) -> ClientFrame {
    ClientFrame::SetCursor(wire::SetCursor {
        room: RoomName::parse("r").unwrap(),
        value: Json::from_text(value).unwrap(),
    })
}

/// The next `cursor` frame as `user value`, waiting up to `patience` (pinging meanwhile, so a
/// long wait is not an idle connection).
async fn next_cursor(client: &mut Client, patience: Duration) -> String {
    let mut waited = Duration::ZERO;
    let step = Duration::from_secs(2);
    loop {
        client.send(&ClientFrame::Ping(wire::Ping::default())).await;
        match tokio::time::timeout(step, client.ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let ServerFrame::Cursor(notice) = ServerFrame::decode(&text).unwrap() {
                    let c = wire::LiveCursor::read(&notice.cursor).unwrap();
                    return format!("{} {}", c.user, c.value.as_text());
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("{}: socket ended: {other:?}", client.user),
            Err(_) => {
                waited += step;
                assert!(
                    waited < patience,
                    "{}: no cursor within {patience:?}",
                    client.user
                );
            }
        }
    }
}

#[tokio::test]
async fn a_cursor_set_on_one_node_reaches_members_late_joiners_and_polls_on_another() {
    let redis = RedisServer::start();
    let one = support::start(&support::redis_config(&redis)).await;
    let two = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&one, "ana").await;
    let mut bob = Client::connect(&two, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;
    let patience = Duration::from_secs(10);
    ana.send(&set_cursor(r#"{"x":1}"#)).await;
    assert_eq!(next_cursor(&mut bob, patience).await, r#"ana {"x":1}"#);
    bob.send(&set_cursor("[2]")).await;
    assert_eq!(next_cursor(&mut ana, patience).await, "bob [2]");

    let mut cal = Client::connect(&two, "cal").await;
    let joined = cal.join("r", None).await;
    let list = joined.cursors.clone().unwrap_or_else(Json::empty_list);
    let mut seen: Vec<String> = wire::LiveCursor::read_list(&list)
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.user, c.value.as_text()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [r#"ana {"x":1}"#, "bob [2]"],
        "a late joiner on the other node"
    );

    // A polling session asks node two, then node one: the same cursors carry one version, so
    // node one has no cursors to tell it.
    let mut pol = PollClient::new(&two, "pol", "session-redis-cursors");
    pol.join("r").await;
    pol.poll(0).await;
    // Each line is `conn:user:value`; the connection ids differ from run to run.
    let mut lines: Vec<String> = pol.live_cursors["r"]
        .iter()
        .map(|line| line.split_once(':').unwrap().1.to_owned())
        .collect();
    lines.sort();
    assert_eq!(lines, [r#"ana:{"x":1}"#, "bob:[2]"]);
    pol.addr = one.local_addr();
    let frames = pol.poll(0).await;
    for frame in &frames {
        if let ServerFrame::State(state) = frame {
            assert!(
                state.cursors.is_none(),
                "the same version on node one: {frames:?}"
            );
        }
    }

    // Ana leaves on node one: gone on node two at once.
    ana.send(&ClientFrame::Leave(wire::Leave {
        room: RoomName::parse("r").unwrap(),
    }))
    .await;
    assert_eq!(next_cursor(&mut cal, patience).await, "ana null");
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test]
async fn the_cursors_of_a_killed_node_go_when_its_lease_runs_out() {
    let redis = RedisServer::start();
    let url = redis.url();
    let doomed = ServerProcess::start(&["--redis", &url]);
    let survivor = support::start(&support::redis_config(&redis)).await;
    let mut ana = Client::connect(&doomed, "ana").await;
    let mut bob = Client::connect(&survivor, "bob").await;
    ana.join("r", None).await;
    bob.join("r", None).await;
    ana.send(&set_cursor("[9]")).await;
    assert_eq!(
        next_cursor(&mut bob, Duration::from_secs(10)).await,
        "ana [9]"
    );
    // SIGKILL: no `bye`, no `gone`; only the lease (15 s, checked every 5 s) ends it.
    doomed.stop(false);
    assert_eq!(
        next_cursor(&mut bob, Duration::from_secs(40)).await,
        "ana null"
    );
    survivor.shutdown().await;
}
