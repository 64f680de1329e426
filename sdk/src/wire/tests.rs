//! The wire types against their documented shapes: decoding tables that say why each refusal
//! happens, round trips, and every JSON example in `docs/PROTOCOL.md` read and written exactly.

use super::json::Wire;
use super::*;

fn check_client(text: &str, expect: Result<&str, &str>) {
    let got = ClientFrame::decode(text);
    match (got, expect) {
        (Ok(frame), Ok(debug)) => assert_eq!(format!("{frame:?}"), debug, "for {text}"),
        (Err(err), Err(code_and_text)) => {
            let (code, fragment) = code_and_text.split_once(' ').unwrap_or((code_and_text, ""));
            assert_eq!(err.code().as_str(), code, "for {text}: {err}");
            assert!(
                err.to_string().contains(fragment),
                "{err} lacks {fragment:?}"
            );
        }
        (got, expect) => panic!("for {text}: got {got:?}, expected {expect:?}"),
    }
}

#[test]
fn client_frames_decode_or_explain_why_not() {
    check_client(
        r#"{"type":"hello","token":"t"}"#,
        Ok(r#"Hello(Hello { token: "t" })"#),
    );
    check_client(
        r#"{"type":"cursor","room":"doc:1","value":{"x":1}}"#,
        Ok(r#"SetCursor(SetCursor { room: "doc:1", value: {"x":1} })"#),
    );
    check_client(
        r#"{"type":"cursor","room":"doc:1"}"#,
        Ok(r#"SetCursor(SetCursor { room: "doc:1", value: null })"#),
    );
    check_client(r#"{"type":"cursor","value":1}"#, Err("bad_frame `room`"));
    check_client(
        r#"{"type":"join","room":"doc:1","extra":1}"#,
        Ok(r#"Join(Join { room: "doc:1", meta: null, resume: None })"#),
    );
    check_client(
        r#"{"type":"join","room":"doc:1","meta":{"c":"red"},"resume":{"epoch":7,"seq":3}}"#,
        Ok(
            r#"Join(Join { room: "doc:1", meta: {"c":"red"}, resume: Some(Cursor { epoch: 7, seq: 3 }) })"#,
        ),
    );
    check_client(
        r#"{"type":"publish","room":"r","id":"a1","body":[1, 2]}"#,
        Ok(
            r#"Publish(Publish { room: "r", id: "a1", body: [1, 2], durable: true, if_seq: None, if_lock: None })"#,
        ),
    );
    check_client(
        r#"{"type":"publish","room":"r","id":"a1","body":"x","durable":false,"if_seq":4}"#,
        Ok(
            r#"Publish(Publish { room: "r", id: "a1", body: "x", durable: false, if_seq: Some(4), if_lock: None })"#,
        ),
    );
    check_client(
        r#"{"type":"publish","room":"r","id":"a1","body":1,"if_lock":{"name":"title","token":7}}"#,
        Ok(
            r#"Publish(Publish { room: "r", id: "a1", body: 1, durable: true, if_seq: None, if_lock: Some(LockFence { name: "title", token: 7 }) })"#,
        ),
    );
    check_client(
        r#"{"type":"lock","room":"r","id":"L1","name":"title","ttl_ms":30000}"#,
        Ok(
            r#"Lock(LockRequest { room: "r", id: "L1", name: "title", ttl_ms: 30000, token: None })"#,
        ),
    );
    check_client(
        r#"{"type":"unlock","room":"r","id":"L2","name":"title"}"#,
        Err("bad_frame missing field `token`"),
    );
    check_client(
        r#"{"type":"lock","room":"r","id":"L3","name":"no name","ttl_ms":1}"#,
        Err("bad_frame"),
    );
    check_client(r#"{"type":"ping"}"#, Ok("Ping(Ping { nonce: None })"));
    check_client(
        r#"{"type":"teleport","room":"r"}"#,
        Err("unknown_type teleport"),
    );
    check_client(r#"{"type":"join"}"#, Err("bad_frame missing field `room`"));
    check_client(
        r#"{"type":"join","room":"a b"}"#,
        Err("bad_frame invalid room name"),
    );
    check_client(
        r#"{"type":"join","room":""}"#,
        Err("bad_frame must not be empty"),
    );
    check_client(
        &format!(r#"{{"type":"join","room":"{}"}}"#, "r".repeat(129)),
        Err("bad_frame 129 bytes"),
    );
    check_client(
        r#"{"type":"publish","room":"r","id":"a/b","body":1}"#,
        Err("bad_frame invalid event id"),
    );
    check_client(
        r#"{"type":"publish","room":"r","id":"a"}"#,
        Err("bad_frame missing field `body`"),
    );
    check_client("not json", Err("bad_frame"));
    check_client(r#"{"no":"type"}"#, Err("bad_frame"));
    check_client(r#"[1,2]"#, Err("bad_frame"));
}

#[test]
fn an_invalid_publish_whose_id_reads_is_answered_by_a_nack_for_it() {
    let answer = |text: &str| match ClientFrame::decode(text) {
        Err(err) => err.answer().encode(),
        Ok(frame) => panic!("{text} decoded as {frame:?}"),
    };
    assert_eq!(
        answer(r#"{"type":"publish","room":"r","id":"a","body":1,"durable":"yes"}"#),
        r#"{"type":"nack","room":"r","id":"a","code":"bad_frame","message":"invalid frame: field `durable`: expected a boolean, found a string"}"#
    );
    assert_eq!(
        answer(r#"{"type":"publish","room":"r","id":"a","body":1,"if_seq":1.5}"#),
        r#"{"type":"nack","room":"r","id":"a","code":"bad_frame","message":"invalid frame: field `if_seq`: expected an unsigned integer, found 1.5"}"#
    );
    assert!(
        answer(r#"{"type":"publish","room":"a b","id":"a","body":1}"#)
            .starts_with(r#"{"type":"nack","id":"a","code":"bad_frame","#)
    );
    assert!(
        answer(r#"{"type":"publish","room":"r","id":"a/b","body":1}"#)
            .starts_with(r#"{"type":"error","code":"bad_frame","#)
    );
    assert!(
        answer(r#"{"type":"join","id":"a"}"#).starts_with(r#"{"type":"error","code":"bad_frame","#)
    );
    assert!(answer(r#"{"type":"shout"}"#).starts_with(r#"{"type":"error","code":"unknown_type","#));
}

#[test]
fn a_polling_batch_decodes_frame_by_frame_with_the_frame_nesting_limit() {
    let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    // The frame is level 1, its body level 2: the body may nest 127 levels.
    let deepest = format!(
        r#"{{"type":"publish","room":"r","id":"d","body":{}}}"#,
        nested(127)
    );
    assert!(ClientFrame::decode(&deepest).is_ok());
    let too_deep = format!(
        r#"{{"type":"publish","room":"r","id":"d","body":{}}}"#,
        nested(128)
    );
    assert!(ClientFrame::decode(&too_deep).is_err());
    let body =
        format!(r#"{{"session":"s","frames":[{{"type":"shout"}},{deepest},{{"type":"ping"}}]}}"#);
    let batch = PollBatch::decode(&body).unwrap();
    assert_eq!(batch.session, "s");
    let kinds: Vec<Result<&str, ErrorCode>> = batch
        .frames
        .iter()
        .map(|f| f.as_ref().map(ClientFrame::kind).map_err(WireError::code))
        .collect();
    assert_eq!(
        kinds,
        [Err(ErrorCode::UnknownType), Ok("publish"), Ok("ping")]
    );
    let body = format!(r#"{{"session":"s","frames":[{too_deep}]}}"#);
    assert!(
        PollBatch::decode(&body)
            .unwrap_err()
            .to_string()
            .contains("nesting too deep")
    );
    for (body, why) in [
        (r#"{"frames":[]}"#, "missing field `session`"),
        (r#"{"session":"s"}"#, "missing field `frames`"),
        (
            r#"{"session":"s","frames":{}}"#,
            "field `frames`: expected an array",
        ),
        ("[]", "expected an object"),
    ] {
        let err = PollBatch::decode(body).unwrap_err().to_string();
        assert!(err.contains(why), "{body}: {err}");
    }
}

#[test]
fn token_claims_read_and_write_their_room_grants() {
    let text = r#"{"sub":"ana","exp":9,"rooms":{"doc:*":"publish","lobby":"read"}}"#;
    let claims: TokenClaims = json::from_str(text).unwrap();
    assert_eq!(claims.rooms.get("doc:*"), Some(&RoomRight::Publish));
    assert_eq!(json::to_string(&claims), text);
    let none: TokenClaims = json::from_str(r#"{"sub":"ana","exp":9}"#).unwrap();
    assert!(none.rooms.is_empty());
    assert_eq!(
        json::to_string(&none),
        r#"{"sub":"ana","exp":9,"rooms":{}}"#
    );
    let bad = json::from_str::<TokenClaims>(r#"{"sub":"a","exp":9,"rooms":{"x":"own"}}"#);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "field `rooms`: field `x`: unknown variant `own`"
    );
    let bad = json::from_str::<TokenClaims>(r#"{"sub":"a","exp":9,"rooms":[]}"#);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "field `rooms`: expected an object, found an array"
    );
}

#[test]
fn user_ids_may_be_any_text_without_control_characters() {
    assert!(check_user_id("José Ñúñez 🎉").is_ok());
    let err = check_user_id("ana\u{7}").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid user id \"ana\u{FFFD}\": character '\u{FFFD}'"),
        "{err}"
    );
    assert!(check_user_id("").is_err());
}

#[test]
fn wire_enums_read_back_every_name_and_refuse_others() {
    for code in [
        ErrorCode::BadFrame,
        ErrorCode::TooManyPolls,
        ErrorCode::Internal,
    ] {
        assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
    }
    assert_eq!(
        ResetReason::from_wire("history_trimmed"),
        Some(ResetReason::HistoryTrimmed)
    );
    assert_eq!(ErrorCode::from_wire("bad_frame "), None);
    assert_eq!(ErrorCode::from_wire(""), None);
}

#[test]
fn errors_quote_untrusted_text_shortened_and_on_one_line() {
    let err = RoomName::parse("caf\u{e9} r\noom").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid room name \"caf\u{e9} r\u{FFFD}oom\": character '\u{e9}' is not allowed \
         (letters, digits and . _ - : are; rooms also allow / @)"
    );
    let long = format!("{}\n", "x".repeat(60));
    let err = ClientFrame::decode(&format!(r#"{{"type":"{}"}}"#, long.escape_default()));
    assert_eq!(
        err.unwrap_err().to_string(),
        format!("unknown frame type \"{}\"", "x".repeat(40))
    );
}

#[test]
fn server_frames_round_trip_with_documented_shapes() {
    let event = ServerFrame::Event(Event {
        room: RoomName::parse("doc:1").unwrap(),
        seq: Some(5),
        id: EventId::parse("c1-9").unwrap(),
        from: "ana".into(),
        at: 1_700_000_000_000,
        body: Json::from_text(r#"{"text":"hi"}"#).unwrap(),
    });
    let text = event.encode();
    assert_eq!(
        text,
        r#"{"type":"event","room":"doc:1","seq":5,"id":"c1-9","from":"ana","at":1700000000000,"body":{"text":"hi"}}"#
    );
    assert_eq!(ServerFrame::decode(&text).unwrap(), event);

    let ack = ServerFrame::Ack(Ack {
        room: RoomName::parse("r").unwrap(),
        id: EventId::parse("x").unwrap(),
        seq: Some(1),
        duplicate: false,
    });
    assert_eq!(
        ack.encode(),
        r#"{"type":"ack","room":"r","id":"x","seq":1}"#
    );
    let err = ServerFrame::error(ErrorCode::FrameTooLarge, "too big", None);
    assert_eq!(
        err.encode(),
        r#"{"type":"error","code":"frame_too_large","message":"too big"}"#
    );
    assert!(matches!(
        ServerFrame::decode(r#"{"type":"bogus"}"#),
        Err(WireError::UnknownType(_))
    ));
    // Frames nested in other bodies (polling batches) decode through the same path.
    let nested: Vec<ServerFrame> = json::from_str(&format!("[{text}]")).unwrap();
    assert_eq!(nested, vec![event]);
}

/// Every JSON example in docs/PROTOCOL.md (each line starting with `{"`) decodes as some
/// wire type and encodes back to exactly the documented text, and every frame type has one.
#[test]
fn every_documented_example_is_exactly_what_the_codec_reads_and_writes() {
    fn exact<T: Wire>(line: &str) -> bool {
        json::from_str::<T>(line).is_ok_and(|value| json::to_string(&value) == line)
    }
    let mut kinds = std::collections::BTreeSet::new();
    let protocol = include_str!("../../../docs/PROTOCOL.md");
    for line in protocol.lines().filter(|line| line.starts_with("{\"")) {
        // A `stream` frame reads as either side's (a room and an opaque step).
        let (client, server) = (exact::<ClientFrame>(line), exact::<ServerFrame>(line));
        if client {
            kinds.insert(("client", ClientFrame::decode(line).unwrap().kind()));
        }
        if server {
            kinds.insert(("server", ServerFrame::decode(line).unwrap().kind()));
        }
        if !client && !server {
            assert!(
                exact::<PollSend>(line)
                    || exact::<PollFrames>(line)
                    || exact::<super::PollMany>(line)
                    || exact::<super::PollAnswers>(line)
                    || exact::<BackendPublish>(line)
                    || exact::<Published>(line)
                    || exact::<EventsPage>(line)
                    || exact::<PresenceBody>(line)
                    || exact::<LocksBody>(line)
                    || exact::<super::DocState>(line)
                    || exact::<super::DocContent>(line)
                    || exact::<super::DocUpdateBody>(line)
                    || exact::<Stats>(line)
                    || exact::<SendNotice>(line)
                    || exact::<NoticeSent>(line)
                    || exact::<super::BackendStreamOp>(line)
                    || exact::<super::StreamAnswer>(line)
                    || exact::<super::StreamResult>(line),
                "PROTOCOL.md example is not what the codec reads and writes: {line}"
            );
        }
    }
    let client = [
        "hello", "join", "leave", "publish", "typing", "presence", "ping", "auth", "cursor",
        "stream", "lock", "unlock",
    ];
    let server = [
        "welcome", "joined", "left", "event", "ack", "nack", "presence", "typing", "reset",
        "error", "pong", "draining", "state", "authed", "notice", "cursor", "stream", "lock",
    ];
    for kind in client {
        assert!(
            kinds.contains(&("client", kind)),
            "no example of client {kind}"
        );
    }
    for kind in server {
        assert!(
            kinds.contains(&("server", kind)),
            "no example of server {kind}"
        );
    }
}

#[test]
fn client_frames_round_trip() {
    let frames = [
        ClientFrame::Hello(Hello { token: "t".into() }),
        ClientFrame::Join(Join {
            room: RoomName::parse("a").unwrap(),
            meta: Json::from_text(r#"{"n":1}"#).unwrap(),
            resume: Some(Cursor { epoch: 1, seq: 2 }),
        }),
        ClientFrame::Publish(Publish {
            room: RoomName::parse("a").unwrap(),
            id: EventId::parse("i").unwrap(),
            body: Json::null(),
            durable: false,
            if_seq: Some(3),
            if_lock: Some(LockFence {
                name: EventId::parse("title").unwrap(),
                token: 7,
            }),
        }),
        ClientFrame::Typing(Typing {
            room: RoomName::parse("a").unwrap(),
            on: true,
        }),
        ClientFrame::Ping(Ping { nonce: Some(9) }),
    ];
    for frame in frames {
        assert_eq!(ClientFrame::decode(&frame.encode()).unwrap(), frame);
    }
}

#[test]
fn poll_cursors_and_raw_frame_batches_round_trip() {
    let cursor = PollCursor {
        room: RoomName::parse("doc:1/a@b").unwrap(),
        cursor: Some(Cursor { epoch: 9, seq: 41 }),
        presence_version: 3,
        typing_version: 0,
        cursor_version: 12,
        stream_version: 0,
        lock_version: None,
    };
    assert_eq!(cursor.encode(), "doc:1/a@b~9~41~3~0~12");
    assert_eq!(PollCursor::decode(&cursor.encode()).unwrap(), cursor);
    let fresh = PollCursor::decode("lobby~~~0~0").unwrap();
    assert_eq!(
        (
            fresh.cursor,
            fresh.cursor_version,
            fresh.stream_version,
            fresh.lock_version
        ),
        (None, 0, 0, None),
        "the live cursors', streams' and locks' versions may be left out"
    );
    // A stream version travels as a seventh part, only when it is not 0.
    let streaming = PollCursor {
        stream_version: 7,
        ..cursor.clone()
    };
    assert_eq!(streaming.encode(), "doc:1/a@b~9~41~3~0~12~7");
    assert_eq!(PollCursor::decode(&streaming.encode()).unwrap(), streaming);
    for bad in [
        "lobby",
        "lobby~1~x~0~0",
        "bad room~~~0~0",
        "a~1~2~3~4~x",
        "a~1~2~3~4~5~x",
        "a~1~2~3~4~5~6~x",
        "a~1~2~3~4~5~6~7~8",
    ] {
        assert!(PollCursor::decode(bad).is_err(), "{bad}");
    }
    // A client that follows locks sends its lock version as an eighth part (with the stream
    // version before it, also when that is 0), 0 before it has seen any.
    let locked = PollCursor {
        lock_version: Some(0),
        ..cursor.clone()
    };
    assert_eq!(locked.encode(), "doc:1/a@b~9~41~3~0~12~0~0");
    assert_eq!(PollCursor::decode(&locked.encode()).unwrap(), locked);
    let locked = PollCursor {
        lock_version: Some(5),
        stream_version: 7,
        ..cursor.clone()
    };
    assert_eq!(locked.encode(), "doc:1/a@b~9~41~3~0~12~7~5");
    assert_eq!(PollCursor::decode(&locked.encode()).unwrap(), locked);
    let pong = ServerFrame::Pong(Pong { nonce: Some(1) }).encode();
    let body = PollFrames::encode_raw(&[&pong, &pong]);
    let decoded: PollFrames = json::from_str(&body).unwrap();
    assert_eq!(decoded.frames.len(), 2);
    assert_eq!(PollFrames::encode_raw(&[]), r#"{"frames":[]}"#);
}

#[test]
fn history_paths_encode_the_room() {
    let room = RoomName::parse("doc:1/a@b").unwrap();
    assert_eq!(
        events_path(&room, 41, 50),
        "/v1/rooms/doc%3A1%2Fa%40b/events?after=41&limit=50"
    );
}

#[test]
fn poll_queries_round_trip_and_refuse_bad_input() {
    let query = PollQuery {
        session: "tab 1/é".into(),
        wait_ms: Some(25_000),
        rooms: vec![
            PollCursor::decode("doc:1/a@b~9~41~3~0").unwrap(),
            PollCursor::decode("lobby~~~0~0").unwrap(),
        ],
    };
    let text = query.encode();
    assert_eq!(
        text,
        "session=tab%201%2F%C3%A9&wait=25000&r=doc%3A1%2Fa%40b~9~41~3~0~0&r=lobby~~~0~0~0"
    );
    assert_eq!(PollQuery::decode(&text), Ok(query));
    let plus = PollQuery::decode("session=a+b&r=x~~~0~0&extra=1").unwrap();
    assert_eq!((plus.session.as_str(), plus.wait_ms), ("a b", None));
    for bad in [
        "session=s",
        "r=x~~~0~0&wait=soon",
        "r=%ZZ",
        "r=%C3",
        "r=bad%20room~~~0~0",
    ] {
        assert!(PollQuery::decode(bad).is_err(), "{bad}");
    }
}

#[test]
fn user_ids_are_checked() {
    assert!(check_user_id("ana@example.com").is_ok());
    assert!(check_user_id("").is_err());
    assert!(check_user_id("a\nb").is_err());
    assert!(check_user_id(&"u".repeat(129)).is_err());
}
