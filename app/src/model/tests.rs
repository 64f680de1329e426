use chorus_sdk::client::{ClientEvent, ConnectionState, Transport};
use chorus_sdk::wire::{
    Cursor, ErrorCode, Event, EventId, Json, PresenceConn, PresenceUser, ResetReason, RoomName,
};
use std::time::Duration;

use chorus_sdk::time::Instant;

use super::*;

fn room() -> RoomName {
    RoomName::parse("notes:1").unwrap()
}

fn id(text: &str) -> EventId {
    EventId::parse(text).unwrap()
}

fn event(seq: u64, event_id: &str, text: &str) -> Event {
    Event {
        room: room(),
        seq: Some(seq),
        id: id(event_id),
        from: "ana".into(),
        at: 0,
        body: message_body("Ana", text),
    }
}

fn user(id: &str, name: Option<&str>, statuses: &[(&str, u64)]) -> PresenceUser {
    PresenceUser {
        user: id.into(),
        name: name.map(str::to_owned),
        conns: statuses
            .iter()
            .enumerate()
            .map(|(i, (status, since))| PresenceConn {
                conn: format!("c{i}"),
                meta: Json::from_text(format!(r#"{{"status":"{status}"}}"#)).unwrap(),
                since: *since,
            })
            .collect(),
    }
}

/// The feed as `seq:text:delivery` strings.
fn feed(model: &RoomModel) -> Vec<String> {
    model
        .messages
        .iter()
        .map(|m| {
            let delivery = match &m.delivery {
                Delivery::Pending => "pending".to_owned(),
                Delivery::Confirmed => "confirmed".to_owned(),
                Delivery::Failed(why) => format!("failed({why})"),
                Delivery::Streaming(chunks) => format!("streaming({chunks})"),
            };
            let seq = m.seq.map_or("-".to_owned(), |s| s.to_string());
            format!("{seq}:{}:{delivery}", m.text)
        })
        .collect()
}

#[test]
fn own_publish_is_pending_then_confirmed_once() {
    let mut model = RoomModel::default();
    let pending = ClientEvent::Pending {
        room: room(),
        id: id("me-1"),
        body: message_body("Me", "hello"),
    };
    model.apply(&room(), &pending);
    model.apply(&room(), &pending);
    assert_eq!(feed(&model), ["-:hello:pending"]);
    let mut echoed = event(7, "me-1", "hello");
    echoed.body = message_body("Me", "hello");
    model.apply(
        &room(),
        &ClientEvent::Event {
            event: echoed,
            own: true,
        },
    );
    assert_eq!(feed(&model), ["7:hello:confirmed"]);
}

#[test]
fn feed_keeps_seq_order_with_pending_last_and_skips_duplicates() {
    let mut model = RoomModel::default();
    model.apply(
        &room(),
        &ClientEvent::Pending {
            room: room(),
            id: id("me-1"),
            body: message_body("Me", "mine"),
        },
    );
    for (seq, event_id) in [(3, "b-1"), (2, "a-1"), (3, "b-1")] {
        model.apply(
            &room(),
            &ClientEvent::Event {
                event: event(seq, event_id, event_id),
                own: false,
            },
        );
    }
    model.add_history(&[event(1, "h-1", "old"), event(2, "a-1", "a-1")]);
    assert_eq!(
        feed(&model),
        [
            "1:old:confirmed",
            "2:a-1:confirmed",
            "3:b-1:confirmed",
            "-:mine:pending"
        ]
    );
}

#[test]
fn failures_and_expiry_are_shown_on_the_message() {
    let mut model = RoomModel::default();
    for n in ["me-1", "me-2"] {
        model.apply(
            &room(),
            &ClientEvent::Pending {
                room: room(),
                id: id(n),
                body: message_body("Me", n),
            },
        );
    }
    model.apply(
        &room(),
        &ClientEvent::PublishFailed {
            room: room(),
            id: id("me-1"),
            code: ErrorCode::Forbidden,
            message: "no publish right".into(),
        },
    );
    model.apply(
        &room(),
        &ClientEvent::Expired {
            room: room(),
            id: id("me-2"),
        },
    );
    assert_eq!(
        feed(&model),
        [
            "-:me-1:failed(no publish right)",
            "-:me-2:failed(not delivered within a day; dropped)"
        ]
    );
}

#[test]
fn joins_and_resets_ask_for_history_and_other_rooms_are_ignored() {
    let mut model = RoomModel::default();
    let joined = ClientEvent::Joined {
        room: room(),
        cursor: Cursor { epoch: 1, seq: 42 },
    };
    assert_eq!(
        model.apply(&room(), &joined),
        FollowUp::FetchHistory { up_to: Some(42) }
    );
    model.add_history(&[event(1, "a-1", "kept?")]);
    let other = RoomName::parse("notes:2").unwrap();
    let elsewhere = ClientEvent::Event {
        event: Event {
            room: other.clone(),
            ..event(2, "x-1", "elsewhere")
        },
        own: false,
    };
    let before = feed(&model);
    assert_eq!(model.apply(&room(), &elsewhere), FollowUp::None);
    assert_eq!(
        feed(&model),
        before,
        "another room's event is not in this feed"
    );
    let reset = ClientEvent::Reset {
        room: room(),
        reason: ResetReason::HistoryTrimmed,
        cursor: chorus_sdk::wire::Cursor { epoch: 1, seq: 9 },
    };
    assert_eq!(
        model.apply(&room(), &reset),
        FollowUp::FetchHistory { up_to: None }
    );
    assert!(model.messages.is_empty());
    assert!(model.notice.as_deref().unwrap().contains("Older messages"));
}

#[test]
fn initials_colours_and_typing_sentences() {
    for (name, expect) in [
        ("Ana Lima", "AL"),
        ("ben", "B"),
        ("  ", "?"),
        ("élodie de la cour", "ÉD"),
    ] {
        assert_eq!(initials(name), expect, "{name:?}");
    }
    // Pinned: the same colour on every page, visit and release.
    assert_eq!(colour("ana"), "hsl(141, 55%, 42%)");
    assert_eq!(colour("ben"), "hsl(130, 55%, 42%)");
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(typing_sentence(&[]), None);
    assert_eq!(typing_sentence(&names(&["Ana"])).unwrap(), "Ana is typing…");
    assert_eq!(
        typing_sentence(&names(&["Ana", "Ben"])).unwrap(),
        "Ana and Ben are typing…"
    );
    assert_eq!(
        typing_sentence(&names(&["Ana", "Ben", "Caio"])).unwrap(),
        "3 people are typing…"
    );
}

#[test]
fn avatars_fold_tabs_pick_the_most_present_and_overflow() {
    let users = vec![
        user("ana", Some("Ana Lima"), &[("away", 5_000), ("idle", 1_000)]),
        user("ben", None, &[("away", 2_000)]),
        user("c", None, &[("active", 0)]),
        user("d", None, &[("active", 0)]),
        user("e", None, &[("active", 0)]),
        user("f", None, &[("active", 0)]),
        user("g", None, &[("active", 0)]),
    ];
    let (shown, more) = avatars(&users);
    assert_eq!(shown.len(), MAX_AVATARS);
    assert_eq!(more, 2);
    assert_eq!(
        (
            shown[0].initials.as_str(),
            shown[0].activity,
            shown[0].tabs,
            shown[0].since_ms
        ),
        ("AL", Activity::Idle, 2, 1_000)
    );
    assert_eq!(
        (shown[1].name.as_str(), shown[1].activity),
        ("ben", Activity::Away)
    );
}

#[test]
fn tab_activity_and_here_for() {
    assert_eq!(Activity::of_tab(false, 59_999), Activity::Active);
    assert_eq!(Activity::of_tab(false, 60_000), Activity::Idle);
    assert_eq!(Activity::of_tab(true, 0), Activity::Away);
    assert_eq!(here_for(0, 30_000), "here for less than a minute");
    assert_eq!(here_for(0, 5 * 60_000), "here for 5 min");
    assert_eq!(here_for(0, 125 * 60_000), "here for 2 h 5 min");
}

#[test]
#[allow(clippy::disallowed_methods)] // The state needs some instant; its value is not shown.
fn badge_says_live_syncing_or_offline_with_details() {
    let check = |state: ConnectionState, pending: usize, retry: Option<u64>, expect: &str| {
        let view = badge(&state, pending, retry);
        assert_eq!(
            format!("{} {}: {}", view.class, view.label, view.detail),
            expect
        );
    };
    let ws = Transport::WebSocket;
    check(
        ConnectionState::Connected { transport: ws },
        0,
        None,
        "live Live: WebSocket",
    );
    check(
        ConnectionState::Connected {
            transport: Transport::Polling,
        },
        1,
        None,
        "syncing Syncing: polling · 1 pending",
    );
    check(
        ConnectionState::Reconnecting {
            attempt: 2,
            next_attempt: Instant::now() + Duration::from_secs(3),
        },
        0,
        Some(2_100),
        "syncing Syncing: retry in 3 s",
    );
    check(
        ConnectionState::Connecting { transport: ws },
        0,
        None,
        "syncing Syncing: connecting",
    );
    check(
        ConnectionState::Offline,
        3,
        None,
        "offline Offline: 3 pending",
    );
}

#[test]
fn a_backend_notice_shows_its_text_or_its_json() {
    let notice = |body: &str| chorus_sdk::wire::Notice {
        id: "n".into(),
        level: "info".into(),
        body: Json::from_text(body).unwrap(),
        at: 0,
    };
    for (body, shown) in [
        (r#"{"text":"Down at 22:00"}"#, "Down at 22:00"),
        (r#""plain words""#, "plain words"),
        (r#"{"code":7}"#, r#"{"code":7}"#),
    ] {
        assert_eq!(notice_text(&notice(body)), shown, "{body}");
    }
}

#[test]
fn messages_carry_the_type_the_activity_panel_filters_by() {
    assert_eq!(
        message_body("Ana", "hi").event_type().as_deref(),
        Some(MESSAGE_TYPE)
    );
}

fn stream_step(json: &str) -> ClientEvent {
    let text = format!(r#"{{"type":"stream","room":"notes:1","stream":{json}}}"#);
    match chorus_sdk::wire::ServerFrame::decode(&text).unwrap() {
        chorus_sdk::wire::ServerFrame::Stream(frame) => ClientEvent::Stream(frame),
        _ => unreachable!(),
    }
}

#[test]
fn a_streamed_answer_grows_in_the_feed_until_its_stored_result_confirms_it() {
    let mut model = RoomModel::default();
    let r = room();
    model.apply(
        &r,
        &stream_step(r#"{"id":"a1","from":"bot","op":"start","chunks":["Hel"]}"#),
    );
    model.apply(
        &r,
        &stream_step(r#"{"id":"a1","from":"bot","op":"append","n":1,"chunks":["lo"]}"#),
    );
    assert_eq!(feed(&model), ["-:Hello:streaming(2)"]);
    let mut result = event(7, "a1", "ignored");
    result.from = "bot".into();
    result.body = Json::from_text(r#"{"stream":"text","text":"Hello!"}"#).unwrap();
    model.apply(
        &r,
        &ClientEvent::Event {
            event: result,
            own: false,
        },
    );
    model.apply(
        &r,
        &stream_step(r#"{"id":"a1","from":"bot","op":"finish","seq":7}"#),
    );
    assert_eq!(feed(&model), ["7:Hello!:confirmed"]);
    assert!(model.streams.is_empty());
    // A progress stream shows its latest percent; a failed one says why.
    model.apply(&r, &stream_step(r#"{"id":"p1","from":"bot","kind":"progress","op":"start","n":3,"chunks":[{"percent":40,"step":"Indexing"}]}"#));
    assert_eq!(feed(&model)[1], "-:40% Indexing:streaming(4)");
    model.apply(&r, &stream_step(r#"{"id":"p1","from":"bot","kind":"progress","op":"fail","code":"stream_abandoned","message":"gone"}"#));
    assert_eq!(feed(&model)[1], "-:40% Indexing:failed(gone)");
}

#[test]
fn a_notes_change_is_one_splice() {
    use super::text_splice as splice;
    assert_eq!(splice("hello", "hello world"), (5, 0, " world"));
    assert_eq!(splice("hello world", "hello"), (5, 6, ""));
    assert_eq!(splice("abc", "aXc"), (1, 1, "X"));
    assert_eq!(splice("aaa", "aa"), (2, 1, ""));
    assert_eq!(splice("", "x"), (0, 0, "x"));
    // Offsets count UTF-16 code units, as Yjs text does.
    assert_eq!(splice("é😀a", "é😀ba"), (3, 0, "b"));
}
