//! The polling transport over real HTTP: polling-only clients, mixed with WebSocket clients,
//! switching transports, long-poll wake-up, server restarts, limits.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, Cursor, ErrorCode, ServerFrame};
use chorus_server::config::StoreKind;
use support::{Client, PollClient, event_seq, is_ack, publish};

async fn publish_burst(client: &mut Client, from: usize, to: usize) {
    for n in from..to {
        client.publish("r", &format!("e{n}"), &n.to_string()).await;
    }
    client
        .recv_until(|f| is_ack(f, &format!("e{}", to - 1)))
        .await;
}

fn typing(room: &str, on: bool) -> ClientFrame {
    ClientFrame::Typing(wire::Typing {
        room: wire::RoomName::parse(room).unwrap(),
        on,
    })
}

#[tokio::test]
async fn a_polling_client_and_websocket_clients_see_each_others_events_presence_and_typing() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;

    let mut pol = PollClient::new(&server, "pol", "session-pol-1");
    let frames = pol.join("r").await;
    let joined = frames.iter().find_map(|f| match f {
        ServerFrame::Joined(j) => Some(j.clone()),
        _ => None,
    });
    let joined = joined.expect("the POST answers the join");
    let users: Vec<&str> = joined
        .presence
        .users
        .iter()
        .map(|u| u.user.as_str())
        .collect();
    assert_eq!(users, ["ana", "pol"]);
    // Ana (WebSocket) sees the polling user arrive.
    assert!(matches!(ana.recv().await, ServerFrame::Presence(d) if d.joins[0].user == "pol"));

    // The polling client publishes; its POST answers with the ack, Ana gets the event.
    let frames = pol
        .send(vec![publish("r", "p1", r#"{"via":"poll"}"#)])
        .await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Ack(a) if a.seq == Some(1))),
        "{frames:?}"
    );
    let got = ana.recv_until(|f| event_seq(f) == Some(1)).await;
    assert!(matches!(got.last(), Some(ServerFrame::Event(e)) if e.from == "pol"));

    // Ana publishes and types; one poll brings the events in order and the typing state.
    ana.publish("r", "a1", "1").await;
    ana.publish("r", "a2", "2").await;
    ana.recv_until(|f| is_ack(f, "a2")).await;
    ana.send(&typing("r", true)).await;
    let mut frames = Vec::new();
    while pol.typing.get("r").is_none_or(|t| t != &["ana"]) {
        frames.extend(pol.poll(2000).await);
    }
    assert_eq!(
        pol.delivered["r"],
        [1, 2, 3],
        "its own event too, then Ana's, in order"
    );
    assert_eq!(pol.presence["r"], ["ana", "pol"]);

    // Joining a room nobody has opened yet (so it loads from the store first) still answers
    // the POST with `joined`.
    let frames = pol.join("fresh").await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Joined(j) if j.room.as_str() == "fresh")),
        "{frames:?}"
    );

    // An error about a room that is not the join's answer (typing before joining) does not
    // answer the POST early: it still waits for `joined` while the room loads.
    let room = wire::RoomName::parse("fresh-2").unwrap();
    pol.cursors.insert(
        room.to_string(),
        wire::PollCursor {
            room: room.clone(),
            cursor: None,
            presence_version: 0,
            typing_version: 0,
            cursor_version: 0,
            stream_version: 0,
            lock_version: Some(0),
        },
    );
    let frames = pol
        .send(vec![
            typing("fresh-2", true),
            ClientFrame::Join(wire::Join {
                room: room.clone(),
                meta: wire::Json::null(),
                resume: None,
            }),
        ])
        .await;
    assert!(
        matches!(&frames[0], ServerFrame::Error(e) if e.code == ErrorCode::NotJoined),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Joined(j) if j.room == room)),
        "{frames:?}"
    );

    // The polling client types; Ana sees it.
    pol.send(vec![typing("r", true)]).await;
    let got = ana
        .recv_until(|f| matches!(f, ServerFrame::Typing(_)))
        .await;
    assert!(matches!(got.last(), Some(ServerFrame::Typing(t)) if t.user == "pol" && t.on));
    server.shutdown().await;
}

#[tokio::test]
#[allow(clippy::disallowed_methods, clippy::print_stdout)] // Measures and prints the wake-up latency.
async fn a_held_poll_returns_as_soon_as_an_event_is_published() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    let mut pol = PollClient::new(&server, "pol", "session-pol-2");
    pol.join("r").await;
    pol.poll(0).await; // Catch up on presence.

    let path = pol.poll_path(10_000);
    let auth = format!("Bearer {}", pol.token);
    let remote = support::Remote(server.local_addr());
    let held = tokio::spawn(async move {
        let response =
            support::http(&remote, "GET", &path, &[("Authorization", &auth)], None).await;
        (std::time::Instant::now(), response)
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // Let the poll settle into waiting.
    let published = std::time::Instant::now();
    ana.publish("r", "wake", "1").await;
    let (returned, response) = held.await.unwrap();
    let frames = response.json::<wire::PollFrames>().frames;
    assert!(frames.iter().any(|f| event_seq(f) == Some(1)), "{frames:?}");
    let latency = returned.duration_since(published);
    println!("long-poll wake-up latency after a publish: {latency:?}");
    assert!(
        latency < Duration::from_secs(5),
        "the held poll returned on the publish, not at its 10 s hold"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn switching_between_websocket_and_polling_mid_stream_loses_and_doubles_nothing() {
    let server = support::start(&support::config()).await;
    let mut publisher = Client::connect(&server, "pub").await;
    publisher.join("r", None).await;
    // Phase 1: WebSocket.
    let mut sam = Client::connect(&server, "sam").await;
    let joined = sam.join("r", None).await;
    publish_burst(&mut publisher, 0, 10).await;
    let mut seen: Vec<u64> = sam
        .recv_until(|f| event_seq(f) == Some(10))
        .await
        .iter()
        .filter_map(event_seq)
        .collect();
    drop(sam);

    // Phase 2: polling, starting from the WebSocket cursor, while more is published.
    publish_burst(&mut publisher, 10, 20).await;
    let mut pol = PollClient::new(&server, "sam", "session-sam-1");
    pol.cursors.insert(
        "r".into(),
        wire::PollCursor {
            room: wire::RoomName::parse("r").unwrap(),
            cursor: Some(Cursor {
                epoch: joined.epoch,
                seq: 10,
            }),
            presence_version: 0,
            typing_version: 0,
            cursor_version: 0,
            stream_version: 0,
            lock_version: Some(0),
        },
    );
    pol.join("r").await;
    while pol.cursor("r").seq < 20 {
        pol.poll(1000).await;
    }
    publish_burst(&mut publisher, 20, 30).await;
    while pol.cursor("r").seq < 30 {
        pol.poll(1000).await;
    }
    seen.extend(&pol.delivered["r"]);

    // Phase 3: back to WebSocket, resuming from the polling cursor.
    publish_burst(&mut publisher, 30, 40).await;
    let mut sam = Client::connect(&server, "sam").await;
    sam.join("r", Some(pol.cursor("r"))).await;
    publish_burst(&mut publisher, 40, 50).await;
    seen.extend(
        sam.recv_until(|f| event_seq(f) == Some(50))
            .await
            .iter()
            .filter_map(event_seq),
    );
    assert_eq!(
        seen,
        (1..=50).collect::<Vec<u64>>(),
        "every event exactly once, in order, across both switches"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_poll_answered_by_a_restarted_server_on_the_same_sqlite_file_continues_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config();
    config.store = StoreKind::Sqlite;
    config.db = dir.path().join("chorus.db");
    let first = support::start(&config).await;
    let mut ana = Client::connect(&first, "ana").await;
    ana.join("r", None).await;
    let mut pol = PollClient::new(&first, "pol", "session-pol-3");
    pol.join("r").await;
    for n in 1..=5 {
        ana.publish("r", &format!("e{n}"), "0").await;
    }
    ana.recv_until(|f| is_ack(f, "e5")).await;
    while pol.cursor("r").seq < 5 {
        pol.poll(1000).await;
    }
    for n in 6..=7 {
        ana.publish("r", &format!("e{n}"), "0").await;
    }
    ana.recv_until(|f| is_ack(f, "e7")).await;
    first.shutdown().await;

    // A fresh instance (another node, or the same after a restart) answers the same poll.
    let second = support::start(&config).await;
    pol.addr = second.local_addr();
    let frames = pol.poll(1000).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error(e) if e.code == ErrorCode::NotJoined)),
        "{frames:?}"
    );
    assert!(
        !frames.iter().any(|f| matches!(f, ServerFrame::Reset(_))),
        "no reset: same history"
    );
    assert_eq!(pol.delivered["r"], [1, 2, 3, 4, 5, 6, 7]);
    // Rejoining (for presence) keeps the cursor; nothing is delivered twice.
    pol.join("r").await;
    let mut ana = Client::connect(&second, "ana").await;
    ana.join("r", None).await;
    ana.publish("r", "e8", "0").await;
    while pol.cursor("r").seq < 8 {
        pol.poll(1000).await;
    }
    assert_eq!(pol.delivered["r"], [1, 2, 3, 4, 5, 6, 7, 8]);
    second.shutdown().await;
}

#[tokio::test]
async fn a_polling_user_stays_present_while_polling_and_leaves_after_the_session_timeout() {
    let mut config = support::config();
    config.heartbeat_ms = 100;
    config.poll_session_timeout_ms = 400;
    config.presence_grace_ms = 100;
    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    let mut pol = PollClient::new(&server, "pol", "session-pol-4");
    pol.join("r").await;
    assert!(matches!(ana.recv().await, ServerFrame::Presence(d) if d.joins[0].user == "pol"));
    // Keep polling for longer than the timeout: still present. Ana pings to stay alive too.
    for _ in 0..8 {
        pol.poll(100).await;
        ana.send(&ClientFrame::Ping(wire::Ping { nonce: None }))
            .await;
        assert!(
            matches!(ana.recv().await, ServerFrame::Pong(_)),
            "no presence change while polling"
        );
    }
    // Stop polling: the session expires, then the grace period passes.
    let left = async {
        loop {
            ana.send(&ClientFrame::Ping(wire::Ping { nonce: None }))
                .await;
            if let ServerFrame::Presence(d) = ana.recv().await {
                return d.leaves;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), left)
            .await
            .unwrap(),
        ["pol"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn polling_requests_are_checked_and_limited() {
    let mut config = support::config();
    config.max_held_polls = 1;
    config.max_poll_body_bytes = 2048;
    let server = support::start(&config).await;
    let token = format!("Bearer {}", support::token("pol"));
    let auth = [("Authorization", token.as_str())];
    let check = |response: support::HttpResponse, status: u16, code: ErrorCode| {
        assert_eq!(
            (response.status, response.error_code()),
            (status, code),
            "{}",
            response.body
        );
    };
    check(
        support::http(
            &server,
            "GET",
            "/v1/poll?session=session-x1&r=r~~~0~0",
            &[],
            None,
        )
        .await,
        401,
        ErrorCode::Unauthenticated,
    );
    check(
        support::http(
            &server,
            "GET",
            "/v1/poll?session=short&r=r~~~0~0",
            &auth,
            None,
        )
        .await,
        400,
        ErrorCode::BadRequest,
    );
    check(
        support::http(
            &server,
            "GET",
            "/v1/poll?session=session-x1&r=r~x~1~0~0",
            &auth,
            None,
        )
        .await,
        400,
        ErrorCode::BadRequest,
    );
    check(
        support::http(&server, "GET", "/v1/poll?session=session-x1", &auth, None).await,
        400,
        ErrorCode::BadRequest,
    );
    let big = format!(
        r#"{{"session":"session-x1","frames":[{{"type":"ping","pad":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    check(
        support::http(&server, "POST", "/v1/poll", &auth, Some(&big)).await,
        413,
        ErrorCode::BodyTooLarge,
    );
    check(
        support::http(&server, "POST", "/v1/poll", &auth, Some("{\"session\":1}")).await,
        400,
        ErrorCode::BadRequest,
    );

    // A room the token does not grant is refused inside the answer; the others still work.
    let reader = format!(
        "Bearer {}",
        support::token_with("pol", &[("doc:*", wire::RoomRight::Read)], 60)
    );
    let response = support::http(
        &server,
        "GET",
        "/v1/poll?session=session-x2&wait=0&r=secret~~~0~0&r=doc:1~~~0~0",
        &[("Authorization", &reader)],
        None,
    )
    .await;
    let frames = response.json::<wire::PollFrames>().frames;
    assert!(matches!(&frames[0], ServerFrame::Error(e) if e.code == ErrorCode::Forbidden));

    // A second held poll of the same session is refused while the first waits.
    // Join first, so the session's polls are held rather than answered with not_joined.
    let mut pol = PollClient::new(&server, "pol", "session-x3");
    pol.join("r").await;
    pol.poll(0).await;
    let path = pol.poll_path(1500);
    let held_path = path.clone();
    let held_auth = token.clone();
    let remote = support::Remote(server.local_addr());
    let held = tokio::spawn(async move {
        support::http(
            &remote,
            "GET",
            &held_path,
            &[("Authorization", &held_auth)],
            None,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    check(
        support::http(&server, "GET", &path, &auth, None).await,
        429,
        ErrorCode::TooManyPolls,
    );
    assert_eq!(
        held.await.unwrap().status,
        200,
        "the held poll ends normally after its wait"
    );
    server.shutdown().await;
}

fn leave(room: &str) -> ClientFrame {
    ClientFrame::Leave(wire::Leave {
        room: wire::RoomName::parse(room).unwrap(),
    })
}

fn join(room: &str) -> ClientFrame {
    ClientFrame::Join(wire::Join {
        room: wire::RoomName::parse(room).unwrap(),
        meta: wire::Json::null(),
        resume: None,
    })
}

#[tokio::test]
async fn a_batch_is_answered_once_every_frame_in_it_is_whatever_it_does_while_rooms_load() {
    let server = support::start(&support::config()).await;
    let mut pol = PollClient::new(&server, "pol", "session-b1");
    for room in ["r", "s", "t"] {
        let cursor = wire::PollCursor {
            room: wire::RoomName::parse(room).unwrap(),
            cursor: None,
            presence_version: 0,
            typing_version: 0,
            cursor_version: 0,
            stream_version: 0,
            lock_version: Some(0),
        };
        pol.cursors.insert(room.to_owned(), cursor);
    }
    // Rooms r and s are not loaded yet: the join of r is cancelled while r loads.
    let frames = pol
        .send(vec![
            join("r"),
            leave("r"),
            join("s"),
            publish("s", "x", "1"),
        ])
        .await;
    let kinds: Vec<String> = frames
        .iter()
        .map(|f| match f {
            ServerFrame::Left(l) => format!("left {}", l.room),
            ServerFrame::Joined(j) => format!("joined {}", j.room),
            ServerFrame::Ack(a) => format!("ack {} {}", a.room, a.id),
            other => other.kind().to_owned(),
        })
        .collect();
    assert_eq!(kinds, ["welcome", "left r", "joined s", "ack s x"]);
    // Publishes that wait for their room are charged once: the burst (200) covers 150.
    let mut batch = vec![join("t")];
    batch.extend((0..150).map(|n| publish("t", &format!("t{n}"), "1")));
    let frames = pol.send(batch).await;
    let answers: Vec<String> = frames.iter().filter_map(support::answer_line).collect();
    let expected: Vec<String> = (0..150).map(|n| format!("ack t t{n}")).collect();
    assert_eq!(answers, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn each_frame_of_a_batch_is_answered_alone_with_the_websocket_nesting_limit() {
    let server = support::start(&support::config()).await;
    let mut pol = PollClient::new(&server, "pol", "session-f1");
    pol.join("doc").await;
    let auth = format!("Bearer {}", support::token("pol"));
    let post = |frames: Vec<String>| {
        let body = format!(
            r#"{{"session":"session-f1","frames":[{}]}}"#,
            frames.join(",")
        );
        let auth = auth.clone();
        let remote = support::Remote(server.local_addr());
        async move {
            support::http(
                &remote,
                "POST",
                "/v1/poll",
                &[("Authorization", &auth)],
                Some(&body),
            )
            .await
        }
    };
    let table = support::frames_answered_alone();
    let mut texts: Vec<String> = table.iter().map(|(text, _)| text.clone()).collect();
    texts.push(publish("doc", "fine", "1").encode());
    let response = post(texts).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let frames = response.json::<wire::PollFrames>().frames;
    let mut answers: Vec<String> = frames.iter().filter_map(support::answer_line).collect();
    let mut expected: Vec<String> = table.iter().map(|(_, line)| line.to_string()).collect();
    expected.push("ack doc fine".into());
    answers.sort();
    expected.sort();
    assert_eq!(answers, expected);
    // A frame nested past the limit makes the batch unreadable as JSON: refused whole.
    let too_deep = format!(
        r#"{{"type":"publish","room":"doc","id":"deeper","body":{}}}"#,
        support::nested(128)
    );
    let response = post(vec![too_deep]).await;
    assert_eq!(
        (response.status, response.error_code()),
        (400, ErrorCode::BadRequest),
        "{}",
        response.body
    );
    server.shutdown().await;
}

#[tokio::test]
async fn polls_answer_from_cursors_and_membership_as_the_protocol_says() {
    let server = support::start(&support::config()).await;
    let auth = format!("Bearer {}", support::token("pol"));
    let get = |path: String| {
        let auth = auth.clone();
        let remote = support::Remote(server.local_addr());
        async move {
            let response =
                support::http(&remote, "GET", &path, &[("Authorization", &auth)], None).await;
            assert_eq!(response.status, 200, "{}", response.body);
            response.json::<wire::PollFrames>().frames
        }
    };
    let kinds = |frames: &[ServerFrame]| -> Vec<&'static str> {
        frames.iter().map(ServerFrame::kind).collect()
    };
    // History in a room nobody is in on this server (as after a restart).
    let mut ana = Client::connect(&server, "ana").await;
    let epoch = ana.join("quiet", None).await.epoch;
    publish_to(&mut ana, "quiet", &["q1", "q2"]).await;
    ana.send(&leave("quiet")).await;
    ana.recv_until(|f| matches!(f, ServerFrame::Left(_))).await;
    // A session that is not in the room gets not_joined and the events, no state, at once
    // (a 20 s wait would end empty).
    let frames = get(format!(
        "/v1/poll?session=session-q1&wait=20000&r=quiet~{epoch}~0~0~0"
    ))
    .await;
    assert_eq!(kinds(&frames), ["error", "event", "event"]);
    assert!(matches!(&frames[0], ServerFrame::Error(e) if e.code == ErrorCode::NotJoined));
    // That GET opened the session: its first POST has no welcome.
    let mut pol = PollClient::new(&server, "pol", "session-q1");
    let frames = pol.join("quiet").await;
    assert_eq!(kinds(&frames), ["joined"]);
    let frames = pol.join("quiet").await;
    assert_eq!(
        kinds(&frames),
        ["joined"],
        "no welcome after the first POST either"
    );
    // An empty cursor gets no events, even once joined: the cursor comes from `joined`.
    ana.join("quiet", None).await;
    publish_to(&mut ana, "quiet", &["q3"]).await;
    let frames = get("/v1/poll?session=session-q1&wait=0&r=quiet~~~0~0".into()).await;
    assert!(frames.iter().all(|f| event_seq(f).is_none()), "{frames:?}");
    let frames = get(format!(
        "/v1/poll?session=session-q1&wait=0&r=quiet~{epoch}~2~0~0"
    ))
    .await;
    let seqs: Vec<u64> = frames.iter().filter_map(event_seq).collect();
    assert_eq!(seqs, [3]);
    server.shutdown().await;
}

async fn publish_to(client: &mut Client, room: &str, ids: &[&str]) {
    for id in ids {
        client.publish(room, id, "1").await;
        client.recv_until(|f| is_ack(f, id)).await;
    }
}

/// Issue 14: a polling session kept the identity and grants of the token that opened it.
#[tokio::test]
async fn every_polling_request_acts_with_its_own_token_and_a_session_belongs_to_one_user() {
    let server = support::start(&support::config()).await;
    let mut ana = PollClient::new(&server, "ana", "session-ana-1");
    ana.join("doc:1").await;
    ana.join("secret").await;
    ana.poll(0).await;
    let presence_of = |room: &'static str| {
        let remote = support::Remote(server.local_addr());
        async move {
            let auth = format!("Bearer {}", support::token("ben"));
            let path = format!("/v1/rooms/{room}/presence");
            let response =
                support::http(&remote, "GET", &path, &[("Authorization", &auth)], None).await;
            assert_eq!(response.status, 200, "{}", response.body);
            let body = response.json::<wire::PresenceBody>();
            body.users.into_iter().map(|u| u.user).collect::<Vec<_>>()
        }
    };
    assert_eq!(presence_of("secret").await, ["ana"]);

    // The next request carries a token that only reads doc:*: it acts with that token, and
    // the session leaves the room the token no longer grants.
    ana.token = support::token_with("ana", &[("doc:*", wire::RoomRight::Read)], 600);
    let frames = ana.send(vec![publish("doc:1", "p1", "1")]).await;
    let refused_secret = frames.iter().any(|f| {
        matches!(f, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden
            && e.room.as_ref().is_some_and(|r| r.as_str() == "secret"))
    });
    assert!(refused_secret, "{frames:?}");
    assert!(
        frames.iter().any(
            |f| matches!(f, ServerFrame::Nack(n) if n.id.as_str() == "p1" && n.code == ErrorCode::Forbidden)
        ),
        "the read-only token may not publish: {frames:?}"
    );
    assert!(presence_of("secret").await.is_empty(), "ana left secret");
    assert_eq!(presence_of("doc:1").await, ["ana"], "and still reads doc:1");
    let frames = ana.poll(0).await;
    assert!(
        frames.iter().all(|f| match f {
            ServerFrame::Error(e) =>
                e.code == ErrorCode::Forbidden && e.room.as_ref().unwrap().as_str() == "secret",
            _ => true,
        }),
        "doc:1 is still joined; secret is refused: {frames:?}"
    );

    let post = |token: String| {
        let remote = support::Remote(server.local_addr());
        async move {
            let body = serde_json::to_string(&wire::PollSend {
                session: "session-ana-1".into(),
                frames: vec![publish("doc:1", "p2", "2")],
            })
            .unwrap();
            let auth = format!("Bearer {token}");
            support::http(
                &remote,
                "POST",
                "/v1/poll",
                &[("Authorization", &auth)],
                Some(&body),
            )
            .await
        }
    };
    // An expired token is refused on an open session too.
    let expired = post(support::token_with(
        "ana",
        &[("*", wire::RoomRight::Publish)],
        -10,
    ))
    .await;
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, ErrorCode::TokenExpired),
        "{}",
        expired.body
    );
    // Another user's token on ana's session id is refused, with a clear error.
    let other = post(support::token("mallory")).await;
    assert_eq!(
        (other.status, other.error_code()),
        (403, ErrorCode::Forbidden),
        "{}",
        other.body
    );
    assert!(
        other.body.contains("belongs to another user"),
        "{}",
        other.body
    );
    let path = ana.poll_path(0);
    let auth = format!("Bearer {}", support::token("mallory"));
    let other = support::http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
    assert_eq!(other.status, 403, "{}", other.body);
    assert_eq!(
        presence_of("doc:1").await,
        ["ana"],
        "mallory never joined as ana"
    );
    server.shutdown().await;
}
