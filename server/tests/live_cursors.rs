//! Live cursors over real TCP: WebSocket members, polling sessions, late joiners, leaving and
//! dropping, the size limit, and the native SDK client on both transports (throttled, resent
//! after a reconnect).

mod support;

use std::time::Duration;

use chorus_sdk::client::live_cursors::LiveCursors;
use chorus_sdk::client::{ClientConfig, ClientEvent, TransportMode};
use chorus_sdk::native::{Events, MemoryStorage, NativeClient};
use chorus_sdk::wire::{self, ClientFrame, ErrorCode, Json, LiveCursor, RoomName, ServerFrame};
use support::{Client, PollClient};

fn set_cursor(room: &str, value: &str) -> ClientFrame {
    ClientFrame::SetCursor(wire::SetCursor {
        room: RoomName::parse(room).unwrap(),
        value: Json::from_text(value).unwrap(),
    })
}

/// The next `cursor` frame (other frames, such as presence, skipped) as `user value`.
async fn next_cursor(client: &mut Client) -> String {
    loop {
        if let ServerFrame::Cursor(notice) = client.recv().await {
            let c = LiveCursor::read(&notice.cursor).unwrap();
            return format!("{} {}", c.user, c.value.as_text());
        }
    }
}

fn joined_cursors(joined: &wire::Joined) -> Vec<LiveCursor> {
    let list = joined.cursors.clone().unwrap_or_else(Json::empty_list);
    LiveCursor::read_list(&list).unwrap()
}

#[tokio::test]
async fn cursors_reach_websocket_members_and_late_joiners_and_go_with_their_connection() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    ana.join("r", None).await;
    ben.join("r", None).await;
    ana.send(&set_cursor("r", r#"{"x":10,"y":20}"#)).await;
    assert_eq!(next_cursor(&mut ben).await, r#"ana {"x":10,"y":20}"#);
    ben.send(&set_cursor("r", r#"{"sel":[1,4]}"#)).await;
    assert_eq!(next_cursor(&mut ana).await, r#"ben {"sel":[1,4]}"#);

    let mut cal = Client::connect(&server, "cal").await;
    let joined = cal.join("r", None).await;
    let seen: Vec<String> = joined_cursors(&joined)
        .iter()
        .map(|c| format!("{} {}", c.user, c.value.as_text()))
        .collect();
    assert_eq!(seen, [r#"ana {"x":10,"y":20}"#, r#"ben {"sel":[1,4]}"#]);

    // Too large: refused with its code, and nobody hears of it.
    let big = format!(r#""{}""#, "x".repeat(2000));
    cal.send(&set_cursor("r", &big)).await;
    match cal.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::CursorTooLarge),
        other => panic!("expected cursor_too_large, got {other:?}"),
    }
    cal.send(&set_cursor("elsewhere", "1")).await;
    match cal.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::NotJoined),
        other => panic!("expected not_joined, got {other:?}"),
    }

    // Ben's socket dies: his cursor goes at once, for everyone.
    drop(ben);
    assert_eq!(next_cursor(&mut ana).await, "ben null");
    assert_eq!(next_cursor(&mut cal).await, "ben null");
    ana.send(&ClientFrame::Leave(wire::Leave {
        room: RoomName::parse("r").unwrap(),
    }))
    .await;
    assert_eq!(next_cursor(&mut cal).await, "ana null");
    server.shutdown().await;
}

#[tokio::test]
async fn polling_sessions_set_cursors_and_get_everyones_from_their_long_polls() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    ana.send(&set_cursor("r", "[1]")).await;
    let mut pol = PollClient::new(&server, "pol", "session-cursors-1");
    let frames = pol.join("r").await;
    let joined = frames.iter().find_map(|f| match f {
        ServerFrame::Joined(j) => Some(j.clone()),
        _ => None,
    });
    assert_eq!(
        joined_cursors(&joined.expect("joined")).len(),
        1,
        "a late joiner gets them"
    );
    pol.poll(0).await;
    assert_eq!(
        pol.live_cursors["r"],
        [format!("{}:ana:[1]", conn_of(&pol, "ana"))]
    );

    // A held poll wakes for a cursor change and answers the current cursors.
    let poll = tokio::spawn(async move {
        pol.poll(20_000).await;
        pol
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ana.send(&set_cursor("r", "[2]")).await;
    let mut pol = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the held poll answered at the change")
        .unwrap();
    assert_eq!(pol.live_cursors["r"].len(), 1);
    assert!(pol.live_cursors["r"][0].ends_with(":ana:[2]"));

    // The session's own cursor reaches the WebSocket member; its own poll leaves it out.
    pol.send(vec![set_cursor("r", r#"{"poll":true}"#)]).await;
    assert_eq!(next_cursor(&mut ana).await, r#"pol {"poll":true}"#);
    let frames = pol.poll(0).await;
    assert!(
        frames.iter().all(|f| !matches!(f, ServerFrame::State(_))),
        "nothing changed that the session is shown: {frames:?}"
    );

    // Ana leaves: the next poll says her cursor is gone.
    ana.send(&ClientFrame::Leave(wire::Leave {
        room: RoomName::parse("r").unwrap(),
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pol.poll(0).await;
    assert_eq!(pol.live_cursors["r"], Vec::<String>::new());
    assert_eq!(pol.cursors["r"].cursor_version, 0);
    server.shutdown().await;
}

/// Ana's wire connection id as the polling client's presence does not carry it: read it from
/// the cursors it was shown.
fn conn_of(pol: &PollClient, user: &str) -> String {
    pol.live_cursors["r"]
        .iter()
        .find_map(|line| {
            let (conn, rest) = line.split_once(':')?;
            rest.starts_with(&format!("{user}:"))
                .then(|| conn.to_owned())
        })
        .expect("a cursor of that user")
}

/// Folds `events` into `kept` until `done` holds for the cursors kept.
async fn wait_for_cursors(
    events: &mut Events,
    kept: &mut LiveCursors,
    what: &str,
    done: impl Fn(&[LiveCursor]) -> bool,
) -> Vec<LiveCursor> {
    support::wait_for(events, what, |event| match event {
        ClientEvent::Cursors { cursors, whole, .. } => {
            kept.apply(cursors, *whole);
            done(kept.list())
        }
        _ => false,
    })
    .await;
    kept.list().to_vec()
}

fn values(cursors: &[LiveCursor]) -> Vec<String> {
    cursors
        .iter()
        .map(|c| format!("{} {}", c.user, c.value.as_text()))
        .collect()
}

#[tokio::test]
async fn native_clients_on_either_transport_see_each_others_latest_cursor_again_after_a_reconnect()
{
    let server = support::start(&support::config()).await;
    let base = format!("http://{}", server.local_addr());
    let start = |user: &str, transport| {
        let config = ClientConfig {
            transport,
            ..ClientConfig::default()
        };
        NativeClient::start(
            &base,
            support::token(user),
            config,
            Box::new(MemoryStorage::default()),
        )
    };
    let (ana, mut ana_events) = start("ana", TransportMode::WebSocket);
    let (pol, mut pol_events) = start("pol", TransportMode::Polling);
    let room = RoomName::parse("r").unwrap();
    ana.join(room.clone(), Json::null());
    pol.join(room.clone(), Json::null());
    let (mut pol_sees, mut ana_sees) = (LiveCursors::default(), LiveCursors::default());
    // Set before the rooms are joined: sent once `joined` arrives. A burst: the last one wins.
    for x in 0..20 {
        ana.set_cursor(
            room.clone(),
            Json::from_text(format!(r#"{{"x":{x}}}"#)).unwrap(),
        );
    }
    pol.set_cursor(room.clone(), Json::from_text("[7]").unwrap());
    let seen = wait_for_cursors(&mut pol_events, &mut pol_sees, "ana's last cursor", |c| {
        values(c) == [r#"ana {"x":19}"#]
    })
    .await;
    assert_eq!(seen.len(), 1);
    wait_for_cursors(&mut ana_events, &mut ana_sees, "pol's cursor", |c| {
        values(c) == ["pol [7]"]
    })
    .await;

    // Ana's network goes and comes back: her cursor goes with her connection, and her client
    // sets it again on the new one.
    ana.set_online(false);
    wait_for_cursors(&mut pol_events, &mut pol_sees, "ana's cursor gone", |c| {
        c.is_empty()
    })
    .await;
    ana.set_online(true);
    let again = wait_for_cursors(&mut pol_events, &mut pol_sees, "ana's cursor again", |c| {
        !c.is_empty()
    })
    .await;
    assert_eq!(values(&again), [r#"ana {"x":19}"#]);
    assert_ne!(again[0].conn, seen[0].conn, "from her new connection");
    ana.close();
    pol.close();
    server.shutdown().await;
}
