//! The hub over real TCP: real WebSocket clients against `chorus-server` on port 0.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chorus_sdk::wire::{
    self, ClientFrame, Cursor, ErrorCode, ResetReason, RoomRight, ServerFrame, close_code,
};
use chorus_server::config::StoreKind;
use futures_util::SinkExt;
use support::{Client, event_seq, is_ack, publish};

#[tokio::test]
async fn publish_is_acked_and_fanned_out_to_every_member_including_the_publisher() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    let mut cal = Client::connect(&server, "cal").await;
    assert_eq!(ana.join("doc:1", None).await.head, 0);
    ben.join("doc:1", None).await;
    cal.join("doc:1", None).await;
    ana.publish("doc:1", "a-1", r#"{"text":"hello"}"#).await;

    let frames = ana.recv_until(|f| is_ack(f, "a-1")).await;
    let ServerFrame::Event(own) = frames.iter().find(|f| event_seq(f).is_some()).unwrap() else {
        unreachable!()
    };
    assert_eq!(
        (own.seq, own.from.as_str(), own.body.as_text()),
        (Some(1), "ana", r#"{"text":"hello"}"#)
    );
    let ServerFrame::Ack(ack) = frames.last().unwrap() else {
        unreachable!()
    };
    assert_eq!((ack.seq, ack.duplicate), (Some(1), false));
    for other in [&mut ben, &mut cal] {
        let frames = other.recv_until(|f| event_seq(f).is_some()).await;
        let ServerFrame::Event(event) = frames.last().unwrap() else {
            unreachable!()
        };
        assert_eq!(event, own, "everyone gets the same event");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_publishers_get_one_gapless_order_that_every_member_sees() {
    let server = support::start(&support::config()).await;
    const PUBLISHERS: usize = 4;
    const EACH: usize = 50;
    let mut listeners = Vec::new();
    for n in 0..2 {
        let mut listener = Client::connect(&server, &format!("listener{n}")).await;
        listener.join("busy", None).await;
        listeners.push(listener);
    }
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let mut publisher = Client::connect(&server, &format!("pub{p}")).await;
        publisher.join("busy", None).await;
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                publisher
                    .publish("busy", &format!("p{p}-{n}"), &n.to_string())
                    .await;
            }
            let mut acked = 0;
            while acked < EACH {
                if matches!(publisher.recv().await, ServerFrame::Ack(_)) {
                    acked += 1;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for listener in &mut listeners {
        let mut seqs = Vec::new();
        let mut per_publisher: HashMap<String, Vec<u64>> = HashMap::new();
        while seqs.len() < PUBLISHERS * EACH {
            if let ServerFrame::Event(event) = listener.recv().await {
                seqs.push(event.seq.unwrap());
                let (publisher, n) = event.id.as_str().split_once('-').unwrap();
                per_publisher
                    .entry(publisher.to_owned())
                    .or_default()
                    .push(n.parse().unwrap());
            }
        }
        let expected: Vec<u64> = (1..=(PUBLISHERS * EACH) as u64).collect();
        assert_eq!(seqs, expected, "gapless and strictly increasing");
        for (publisher, ns) in per_publisher {
            assert_eq!(
                ns,
                (0..EACH as u64).collect::<Vec<_>>(),
                "{publisher}'s events keep their order"
            );
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_publish_is_acked_again_and_delivered_once() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    ana.join("r", None).await;
    ben.join("r", None).await;
    for _ in 0..3 {
        ana.publish("r", "same-id", "1").await;
    }
    ana.publish("r", "other", "2").await;
    let frames = ana.recv_until(|f| is_ack(f, "other")).await;
    let acks: Vec<(Option<u64>, bool)> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Ack(ack) => Some((ack.seq, ack.duplicate)),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks,
        [
            (Some(1), false),
            (Some(1), true),
            (Some(1), true),
            (Some(2), false)
        ]
    );
    let frames = ben.recv_until(|f| event_seq(f) == Some(2)).await;
    let seqs: Vec<u64> = frames.iter().filter_map(event_seq).collect();
    assert_eq!(seqs, [1, 2], "the duplicate was not delivered again");
    server.shutdown().await;
}

#[tokio::test]
async fn if_seq_is_refused_with_conflict_once_the_head_moved() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("doc", None).await;
    let with_if = |id: &str, if_seq: u64| {
        let ClientFrame::Publish(mut p) = publish("doc", id, "0") else {
            unreachable!()
        };
        p.if_seq = Some(if_seq);
        ClientFrame::Publish(p)
    };
    ana.send(&with_if("first", 0)).await;
    ana.send(&with_if("second", 0)).await;
    let frames = ana.recv_until(|f| matches!(f, ServerFrame::Nack(_))).await;
    let ServerFrame::Nack(nack) = frames.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(
        (nack.id.as_str(), nack.code, nack.head),
        ("second", ErrorCode::Conflict, Some(1))
    );
    ana.send(&with_if("second", 1)).await;
    let frames = ana.recv_until(|f| is_ack(f, "second")).await;
    assert!(matches!(frames.last(), Some(ServerFrame::Ack(ack)) if ack.seq == Some(2)));
    server.shutdown().await;
}

#[tokio::test]
async fn resume_after_a_dropped_connection_replays_exactly_the_missed_events() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    let joined = ana.join("r", None).await;
    ben.join("r", None).await;
    for n in 1..=3 {
        ana.publish("r", &format!("e{n}"), "0").await;
    }
    ben.recv_until(|f| event_seq(f) == Some(3)).await;
    drop(ben); // The socket drops without a goodbye.
    for n in 4..=8 {
        ana.publish("r", &format!("e{n}"), "0").await;
    }
    ana.recv_until(|f| is_ack(f, "e8")).await;

    let mut ben = Client::connect(&server, "ben").await;
    let rejoined = ben
        .join(
            "r",
            Some(Cursor {
                epoch: joined.epoch,
                seq: 3,
            }),
        )
        .await;
    assert_eq!((rejoined.epoch, rejoined.head), (joined.epoch, 8));
    ana.publish("r", "e9", "0").await;
    let frames = ben.recv_until(|f| event_seq(f) == Some(9)).await;
    let seqs: Vec<u64> = frames.iter().filter_map(event_seq).collect();
    assert_eq!(
        seqs,
        [4, 5, 6, 7, 8, 9],
        "the missed events, then live ones, nothing twice"
    );
    assert!(!frames.iter().any(|f| matches!(f, ServerFrame::Reset(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn a_resume_point_older_than_the_retained_history_gets_reset_and_the_head() {
    let mut config = support::config();
    config.retention_events = 5;
    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    let joined = ana.join("r", None).await;
    for n in 1..=12 {
        ana.publish("r", &format!("e{n}"), "0").await;
    }
    ana.recv_until(|f| is_ack(f, "e12")).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join(
        "r",
        Some(Cursor {
            epoch: joined.epoch,
            seq: 2,
        }),
    )
    .await;
    let frames = ben.recv_until(|f| matches!(f, ServerFrame::Reset(_))).await;
    let ServerFrame::Reset(reset) = frames.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(
        (reset.reason, reset.head),
        (ResetReason::HistoryTrimmed, 12)
    );
    assert!(
        frames.iter().all(|f| event_seq(f).is_none()),
        "no partial replay before a reset"
    );
    // A resume point that is still covered replays normally.
    let mut cal = Client::connect(&server, "cal").await;
    cal.join(
        "r",
        Some(Cursor {
            epoch: joined.epoch,
            seq: 8,
        }),
    )
    .await;
    let frames = cal.recv_until(|f| event_seq(f) == Some(12)).await;
    assert_eq!(
        frames.iter().filter_map(event_seq).collect::<Vec<_>>(),
        [9, 10, 11, 12]
    );
    // A cursor from another epoch (e.g. a wiped store) is reset too.
    let mut dan = Client::connect(&server, "dan").await;
    dan.join(
        "r",
        Some(Cursor {
            epoch: joined.epoch + 1,
            seq: 12,
        }),
    )
    .await;
    let frames = dan.recv_until(|f| matches!(f, ServerFrame::Reset(_))).await;
    assert!(
        matches!(frames.last(), Some(ServerFrame::Reset(r)) if r.reason == ResetReason::EpochChanged)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_restart_on_sqlite_keeps_epoch_seqs_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config();
    config.store = StoreKind::Sqlite;
    config.db = dir.path().join("chorus.db");

    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    let joined = ana.join("r", None).await;
    for n in 1..=5 {
        ana.publish("r", &format!("e{n}"), &n.to_string()).await;
    }
    ana.recv_until(|f| is_ack(f, "e5")).await;
    server.shutdown().await;

    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    let rejoined = ana
        .join(
            "r",
            Some(Cursor {
                epoch: joined.epoch,
                seq: 2,
            }),
        )
        .await;
    assert_eq!(
        (rejoined.epoch, rejoined.head),
        (joined.epoch, 5),
        "no reset across a restart"
    );
    ana.publish("r", "e6", "6").await;
    ana.publish("r", "e3", "3").await; // A retry of an event stored before the restart.
    // The duplicate's ack may overtake the replay (it needs no history read): collect both.
    let mut frames = ana.recv_until(|f| is_ack(f, "e3")).await;
    if !frames.iter().any(|f| event_seq(f) == Some(6)) {
        frames.extend(ana.recv_until(|f| event_seq(f) == Some(6)).await);
    }
    assert_eq!(
        frames.iter().filter_map(event_seq).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    assert!(frames.iter().any(
        |f| matches!(f, ServerFrame::Ack(a) if a.id.as_str() == "e3" && a.seq == Some(3) && a.duplicate)
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn presence_shows_two_tabs_as_one_user_and_waits_out_the_grace_period() {
    let mut config = support::config();
    config.presence_grace_ms = 400;
    let server = support::start(&config).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("r", None).await;
    let mut tab1 = Client::connect(&server, "ana").await;
    let mut tab2 = Client::connect(&server, "ana").await;
    tab1.join("r", None).await;
    let joined = tab2.join("r", None).await;
    let ana = joined
        .presence
        .users
        .iter()
        .find(|u| u.user == "ana")
        .unwrap();
    assert_eq!(
        (ana.conns.len(), ana.name.as_deref()),
        (2, Some("ANA")),
        "one entry, two connections"
    );

    let presence = |f: &ServerFrame| match f {
        ServerFrame::Presence(diff) => Some(diff.clone()),
        _ => None,
    };
    let first = presence(&ben.recv().await).unwrap();
    assert_eq!(first.joins.len(), 1);
    let second = presence(&ben.recv().await).unwrap();
    assert_eq!(
        (second.updates[0].conns.len(), second.version),
        (2, first.version + 1)
    );

    drop(tab1);
    let diff = presence(&ben.recv().await).unwrap();
    assert_eq!(
        diff.updates[0].conns.len(),
        1,
        "closing a tab is an update, not a leave"
    );
    drop(tab2);
    ben.expect_quiet(Duration::from_millis(250)).await; // Within the grace period: nothing.
    let diff = presence(&ben.recv().await).unwrap();
    assert_eq!(diff.leaves, ["ana"]);
    // The REST view agrees.
    let body = http_get(
        &server,
        "/v1/rooms/r/presence",
        Some(&support::token("ben")),
    )
    .await;
    assert_eq!(body.0, 200);
    let presence: wire::PresenceBody = serde_json::from_str(&body.1).unwrap();
    assert_eq!(
        presence
            .users
            .iter()
            .map(|u| u.user.as_str())
            .collect::<Vec<_>>(),
        ["ben"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn typing_reaches_the_room_and_expires_without_refresh() {
    let mut config = support::config();
    config.typing_ttl_ms = 300;
    let server = support::start(&config).await;
    let (mut ana, mut ben) = support::two_members(&server, "r").await;
    ana.send(&ClientFrame::Typing(wire::Typing {
        room: wire::RoomName::parse("r").unwrap(),
        on: true,
    }))
    .await;
    let on = ben.recv().await;
    assert!(
        matches!(&on, ServerFrame::Typing(t) if t.user == "ana" && t.on),
        "{on:?}"
    );
    let off = ben.recv().await;
    assert!(
        matches!(&off, ServerFrame::Typing(t) if t.user == "ana" && !t.on),
        "{off:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_its_presence_cleaned_up() {
    let mut config = support::config();
    config.heartbeat_ms = 150;
    config.presence_grace_ms = 100;
    let server = support::start(&config).await;
    let mut ben = Client::connect(&server, "ben").await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    ben.join("r", None).await;
    // Ben keeps pinging; Ana goes silent.
    let pinger = tokio::spawn(async move {
        for _ in 0..60 {
            ben.send(&ClientFrame::Ping(wire::Ping { nonce: None }))
                .await;
            // Read whatever comes within 50 ms, then ping again.
            while let Ok(frame) = tokio::time::timeout(Duration::from_millis(50), ben.recv()).await
            {
                if matches!(frame, ServerFrame::Presence(ref d) if d.leaves == ["ana"]) {
                    return true;
                }
            }
        }
        false
    });
    let (close, frames) = ana.until_closed().await;
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), close_code::IDLE_TIMEOUT);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error(e) if e.code == ErrorCode::IdleTimeout))
    );
    assert!(pinger.await.unwrap(), "the others saw ana leave");
    server.shutdown().await;
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_closed_as_slow_and_others_are_unaffected() {
    // The queue's bound in frames (64 of these events), then in bytes (256 KiB, 32 of them).
    let mut config = support::config();
    config.outbound_queue = 64;
    closes_a_consumer_that_stops_reading(config).await;
    let mut config = support::config();
    config.outbound_queue = 100_000;
    config.outbound_queue_bytes = 256 * 1024;
    closes_a_consumer_that_stops_reading(config).await;
}

async fn closes_a_consumer_that_stops_reading(mut config: chorus_server::config::Config) {
    config.publish_rate = 1e6; // This test is about the queue, not the publish rate limit.
    config.publish_burst = 1e6;
    let server = support::start(&config).await;
    let mut slow = Client::connect_small_buffer(&server, "slow").await;
    let mut ana = Client::connect(&server, "ana").await;
    slow.join("r", None).await;
    ana.join("r", None).await;
    // 8 KB events: about 4 MB fill the kernel buffers (the server's send buffer autotunes up to
    // 4 MB here), then the queue overflows and the server closes the slow client.
    let body = format!("\"{}\"", "x".repeat(8_000));
    // Ana reads her acks every 10 events, so her own small queue keeps up.
    for batch in 0..80 {
        for n in 0..10 {
            ana.publish("r", &format!("big{batch}-{n}"), &body).await;
        }
        ana.recv_until(|f| is_ack(f, &format!("big{batch}-9")))
            .await;
    }
    let (close, frames) = slow.until_closed().await;
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(close_code::SLOW_CONSUMER)
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error(e) if e.code == ErrorCode::SlowConsumer))
    );
    // Ana is still fine.
    ana.publish("r", "after", "1").await;
    ana.recv_until(|f| is_ack(f, "after")).await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_and_room_keep_working() {
    let server = support::start(&support::config()).await;
    let (mut ana, mut ben) = support::two_members(&server, "r").await;
    let oversized = format!(
        r#"{{"type":"publish","room":"r","id":"x","body":"{}"}}"#,
        "y".repeat(70 * 1024)
    );
    // (Invalid publishes whose id reads are nacked instead: see the next test.)
    let cases: [(&str, ErrorCode); 5] = [
        ("not json at all", ErrorCode::BadFrame),
        (r#"{"type":"join"}"#, ErrorCode::BadFrame),
        (
            r#"{"type":"join","room":"no spaces allowed"}"#,
            ErrorCode::BadFrame,
        ),
        (r#"{"type":"warp","room":"r"}"#, ErrorCode::UnknownType),
        (&oversized, ErrorCode::FrameTooLarge),
    ];
    for (text, code) in cases {
        ana.send_text(text).await;
        match ana.recv().await {
            ServerFrame::Error(error) => {
                assert_eq!(error.code, code, "for {}", &text[..text.len().min(60)]);
                assert!(!error.message.is_empty());
            }
            other => panic!("expected an error for {text:.60}, got {other:?}"),
        }
    }
    ana.ws
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1, 2, 3,
        ]))
        .await
        .unwrap();
    assert!(matches!(ana.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::BadFrame));
    // Still connected, still in the room, and Ben saw none of it.
    ana.publish("r", "fine", "1").await;
    ana.recv_until(|f| is_ack(f, "fine")).await;
    let frames = ben.recv_until(|f| event_seq(f).is_some()).await;
    assert_eq!(frames.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_are_checked_before_anything_else() {
    let server = support::start(&support::config()).await;
    // In the subprotocol header: accepted, and the server selects chorus.v1.
    let (mut via_header, selected) =
        Client::connect_with_header(&server, &support::token("ana")).await;
    assert_eq!(selected.as_deref(), Some(wire::WS_SUBPROTOCOL));
    assert!(matches!(via_header.recv().await, ServerFrame::Welcome(w) if w.user == "ana"));

    let check_refused = |expected: ErrorCode| async move {
        move |(close, frames): (
            Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
            Vec<ServerFrame>,
        )| {
            assert_eq!(
                close.map(|c| u16::from(c.code)),
                Some(close_code::UNAUTHENTICATED)
            );
            assert!(
                matches!(&frames[..], [ServerFrame::Error(e)] if e.code == expected),
                "{frames:?}"
            );
        }
    };
    // WebSocket-level pings before hello are fine.
    let mut pinger = Client::open(&server).await;
    pinger
        .ws
        .send(tokio_tungstenite::tungstenite::Message::Ping(
            vec![1].into(),
        ))
        .await
        .unwrap();
    pinger
        .send(&ClientFrame::Hello(wire::Hello {
            token: support::token("ana"),
        }))
        .await;
    assert!(matches!(pinger.recv().await, ServerFrame::Welcome(_)));
    // A frame before hello.
    let mut early = Client::open(&server).await;
    early.send(&support::publish("r", "x", "1")).await;
    (check_refused(ErrorCode::Unauthenticated).await)(early.until_closed().await);
    // A forged token.
    let forged = chorus_server::auth::Authenticator::hs256(b"wrong").issue(&wire::TokenClaims {
        sub: "ana".into(),
        name: None,
        exp: u64::MAX / 2,
        rooms: Default::default(),
    });
    let mut client = Client::open(&server).await;
    client
        .send(&ClientFrame::Hello(wire::Hello { token: forged }))
        .await;
    (check_refused(ErrorCode::Unauthenticated).await)(client.until_closed().await);
    // An expired token.
    let mut client = Client::open(&server).await;
    client
        .send(&ClientFrame::Hello(wire::Hello {
            token: support::token_with("ana", &[], -10),
        }))
        .await;
    (check_refused(ErrorCode::TokenExpired).await)(client.until_closed().await);
    // A token without a grant on the room.
    let mut reader = Client::open(&server).await;
    reader.user = "reader".into();
    let grants = [("doc:*", RoomRight::Read)];
    reader
        .send(&ClientFrame::Hello(wire::Hello {
            token: support::token_with("reader", &grants, 60),
        }))
        .await;
    reader.recv().await;
    reader
        .send(&ClientFrame::Join(wire::Join {
            room: wire::RoomName::parse("other").unwrap(),
            meta: wire::Json::null(),
            resume: None,
        }))
        .await;
    assert!(matches!(reader.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden));
    reader.join("doc:1", None).await;
    reader.publish("doc:1", "nope", "1").await;
    assert!(matches!(reader.recv().await, ServerFrame::Nack(n) if n.code == ErrorCode::Forbidden));
    server.shutdown().await;
}

#[tokio::test]
async fn history_pages_and_http_errors_have_stable_codes() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    for n in 1..=5 {
        ana.publish("r", &format!("e{n}"), &n.to_string()).await;
    }
    ana.recv_until(|f| is_ack(f, "e5")).await;
    let token = support::token("ana");
    let (status, body) =
        http_get(&server, "/v1/rooms/r/events?after=1&limit=2", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let page: wire::EventsPage = serde_json::from_str(&body).unwrap();
    assert_eq!((page.head, page.oldest, page.next_after), (5, 1, Some(3)));
    assert_eq!(
        page.events
            .iter()
            .map(|e| e.seq.unwrap())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    let (_, body) = http_get(&server, "/v1/rooms/r/events?after=3", Some(&token)).await;
    let page: wire::EventsPage = serde_json::from_str(&body).unwrap();
    assert_eq!((page.events.len(), page.next_after), (2, None));
    // A cursor past the head, however large, reads nothing; `limit` is clamped into 1..=1000.
    for (query, events) in [
        ("after=9223372036854775808", 0),
        ("after=18446744073709551615", 0),
        ("after=0&limit=0", 1),
        ("after=0&limit=5000", 5),
    ] {
        let path = format!("/v1/rooms/r/events?{query}");
        let (status, body) = http_get(&server, &path, Some(&token)).await;
        assert_eq!(status, 200, "{query}: {body}");
        let page: wire::EventsPage = serde_json::from_str(&body).unwrap();
        assert_eq!((page.head, page.events.len()), (5, events), "{query}");
    }
    // A room name with `/` travels percent-encoded as one path segment.
    ana.join("team/a", None).await;
    ana.publish("team/a", "slash", "1").await;
    ana.recv_until(|f| is_ack(f, "slash")).await;
    let (status, body) = http_get(&server, "/v1/rooms/team%2Fa/events", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let page: wire::EventsPage = serde_json::from_str(&body).unwrap();
    assert_eq!((page.room.as_str(), page.head), ("team/a", 1));

    let reader_elsewhere = support::token_with("x", &[("doc:*", RoomRight::Read)], 60);
    let cases: [(&str, Option<&str>, u16, ErrorCode); 5] = [
        ("/v1/rooms/r/events", None, 401, ErrorCode::Unauthenticated),
        (
            "/v1/rooms/r/events",
            Some(&reader_elsewhere),
            403,
            ErrorCode::Forbidden,
        ),
        (
            "/v1/rooms/bad%20room/events",
            Some(&token),
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/rooms/r/events?after=minus",
            Some(&token),
            400,
            ErrorCode::BadRequest,
        ),
        ("/v1/nothing-here", None, 404, ErrorCode::NotFound),
    ];
    for (path, token, status, code) in cases {
        let (got, body) = http_get(&server, path, token).await;
        assert_eq!(got, status, "{path}: {body}");
        let error: wire::ErrorBody =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert_eq!(error.code, code, "{path}");
        assert!(!error.message.is_empty());
    }
    let (status, body) = http_get(&server, "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_acks_what_was_sent_then_says_draining_and_closes() {
    let mut config = support::config();
    config.drain_retry_ms = 1234;
    let server = support::start(&config).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("r", None).await;
    ana.publish("r", "last", "1").await;
    ana.recv_until(|f| is_ack(f, "last")).await;
    let shutdown = tokio::spawn(server.shutdown());
    let (close, frames) = ana.until_closed().await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Draining(d) if d.retry_after_ms == 1234)),
        "{frames:?}"
    );
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(close_code::SERVICE_RESTART)
    );
    shutdown.await.unwrap();
}

/// `GET path` over a real socket: (status, body).
async fn http_get(
    server: &chorus_server::RunningServer,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let response = support::http(server, "GET", path, &headers, None).await;
    (response.status, response.body)
}

#[tokio::test]
async fn a_socket_is_closed_when_its_token_expires() {
    let server = support::start(&support::config()).await;
    let (mut client, _) = Client::connect_with_header(
        &server,
        &support::token_with("ana", &[("*", RoomRight::Publish)], 2), // At least a second before it expires.
    )
    .await;
    assert!(matches!(client.recv().await, ServerFrame::Welcome(_)));
    let (close, frames) = client.until_closed().await;
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), close_code::UNAUTHENTICATED);
    assert_eq!(close.reason.as_str(), "token_expired");
    assert!(
        matches!(frames.as_slice(), [ServerFrame::Error(e)] if e.code == ErrorCode::TokenExpired),
        "{frames:?}"
    );
}

#[tokio::test]
async fn each_bad_frame_is_answered_alone_and_a_publish_whose_id_reads_is_nacked_by_id() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("doc", None).await;
    for (text, expected) in support::frames_answered_alone() {
        ana.send_text(&text).await;
        let frames = ana.recv_until(|f| support::answer_line(f).is_some()).await;
        let answer = support::answer_line(frames.last().unwrap()).unwrap();
        assert_eq!(answer, expected, "{text}");
    }
    // One level deeper than the limit: the frame can not be read at all.
    let too_deep = format!(
        r#"{{"type":"publish","room":"doc","id":"deeper","body":{}}}"#,
        support::nested(128)
    );
    ana.send_text(&too_deep).await;
    let answer = ana.recv().await;
    assert_eq!(support::answer_line(&answer).unwrap(), "error bad_frame");
    ana.publish("doc", "after", "1").await;
    ana.recv_until(|f| is_ack(f, "after")).await;
    server.shutdown().await;
}
