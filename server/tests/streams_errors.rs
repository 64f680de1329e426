//! Streams, done wrong, over real TCP: malformed `stream` frames and steps in the wrong order
//! on WebSocket and polling, another user's connection touching a stream, oversize chunks and
//! meta, too many streams, bad `r` stream versions, and bad REST bodies and queries. Each gets
//! its stable code (naming the room on WebSocket and polling), and nothing else changes: the
//! connection stays open, the members see only what was accepted, and the streams go on.

mod support;

use chorus_sdk::wire::{ClientFrame, RoomRight, ServerFrame, StreamStep, StreamUpdate};
use chorus_server::config::Config;
use support::{BACKEND_KEY, Client, PollClient, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Small limits, so that breaking them takes few bytes.
fn config() -> Config {
    let mut config = support::backend_config();
    config.stream_max_chunk_bytes = 16;
    config.stream_max_bytes = 40;
    config.stream_max_per_room = 3;
    config.stream_max_per_conn = 2;
    config.max_meta_bytes = 32;
    config
}

fn frame(room: &str, step: &str) -> String {
    format!(r#"{{"type":"stream","room":"{room}","stream":{step}}}"#)
}

fn stream_frame(frame: &ServerFrame) -> Option<StreamUpdate> {
    match frame {
        ServerFrame::Stream(stream) => Some(stream.update().unwrap()),
        _ => None,
    }
}

/// One line for an answer to the client's own frame: `error CODE ROOM` (`-`: no room),
/// `ack ROOM ID` (`dup` when a duplicate) or `nack ROOM ID CODE`; `None` for other frames.
fn line(frame: &ServerFrame) -> Option<String> {
    match frame {
        ServerFrame::Error(e) => {
            let room = e.room.as_ref().map_or("-".to_owned(), |r| r.to_string());
            Some(format!("error {} {room}", e.code))
        }
        ServerFrame::Ack(a) => Some(format!(
            "ack {} {}{}",
            a.room,
            a.id,
            if a.duplicate { " dup" } else { "" }
        )),
        ServerFrame::Nack(n) => Some(format!("nack {:?} {} {}", n.room, n.id, n.code)),
        _ => None,
    }
}

/// Sends `text`, then a ping; the answers (see [`line`]) that came before the pong, which the
/// hub sends in order after it handled `text`. Stream frames the sender gets as a member are
/// left out.
async fn answers(client: &mut Client, text: &str, nonce: &mut u64) -> Vec<String> {
    *nonce += 1;
    let wanted = *nonce;
    client.send_text(text).await;
    client
        .send_text(&format!(r#"{{"type":"ping","nonce":{wanted}}}"#))
        .await;
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Pong(p) if p.nonce == Some(wanted)))
        .await;
    frames.iter().filter_map(line).collect()
}

/// Steps that do not read, each with its answer on either transport.
fn malformed() -> Vec<(String, &'static str)> {
    vec![
        // The frame itself does not read: no room to name.
        (
            r#"{"type":"stream","room":"room"}"#.into(),
            "error bad_frame -",
        ),
        (
            r#"{"type":"stream","stream":{"id":"s","op":"start"}}"#.into(),
            "error bad_frame -",
        ),
        // The step does not read: the room is named.
        (frame("room", r#""start""#), "error bad_frame room"),
        (frame("room", "[1,2]"), "error bad_frame room"),
        (frame("room", r#"{"op":"start"}"#), "error bad_frame room"),
        (frame("room", r#"{"id":"s"}"#), "error bad_frame room"),
        (
            frame("room", r#"{"id":"bad id!","op":"start"}"#),
            "error bad_frame room",
        ),
        (
            frame("room", r#"{"id":"s","op":"launch"}"#),
            "error bad_frame room",
        ),
        (
            frame("room", r#"{"id":"s","op":"start","kind":"video"}"#),
            "error bad_frame room",
        ),
        (
            frame("room", r#"{"id":"s","op":"append","n":-1,"chunk":"x"}"#),
            "error bad_frame room",
        ),
        (
            frame("room", r#"{"id":"s","op":"fail","message":7}"#),
            "error bad_frame room",
        ),
        // Steps for a stream that was never started.
        (
            frame("room", r#"{"id":"s","op":"append","n":0,"chunk":"x"}"#),
            "error stream_not_found room",
        ),
        (
            frame("room", r#"{"id":"s","op":"finish"}"#),
            "error stream_not_found room",
        ),
        (
            frame("room", r#"{"id":"s","op":"fail"}"#),
            "error stream_not_found room",
        ),
        // A room the connection has not joined.
        (
            frame("elsewhere", r#"{"id":"s","op":"start"}"#),
            "error not_joined elsewhere",
        ),
    ]
}

#[tokio::test]
async fn stream_steps_done_wrong_over_websockets_get_codes_and_change_nothing() {
    let server = support::start(&config()).await;
    let (mut ana, mut ben) = support::two_members(&server, "room").await;
    let mut nonce = 0;
    let mut check = async |client: &mut Client, text: &str, expect: &[&str]| {
        assert_eq!(answers(client, text, &mut nonce).await, expect, "{text}");
    };
    for (text, expect) in malformed() {
        check(&mut ana, &text, &[expect]).await;
    }
    let step = |id: &str, rest: &str| frame("room", &format!(r#"{{"id":"{id}",{rest}}}"#));
    check(&mut ana, &step("s1", r#""op":"start""#), &[]).await;
    // Starting again is the producer going on; as another kind it does not fit.
    check(&mut ana, &step("s1", r#""op":"start""#), &[]).await;
    check(
        &mut ana,
        &step("s1", r#""op":"start","kind":"progress""#),
        &["error stream_conflict room"],
    )
    .await;
    for (rest, expect) in [
        (r#""op":"append","n":0,"chunk":42"#, "error bad_frame room"),
        (
            r#""op":"append","n":0,"chunk":{"percent":5}"#,
            "error bad_frame room",
        ),
        (r#""op":"append","n":0"#, "error bad_frame room"),
        // 18 bytes of JSON, over the chunk limit (16).
        (
            r#""op":"append","n":0,"chunk":"0123456789abcdef""#,
            "error stream_too_large room",
        ),
        (
            r#""op":"append","n":3,"chunk":"x""#,
            "error stream_conflict room",
        ),
    ] {
        check(&mut ana, &step("s1", rest), &[expect]).await;
    }
    // Three chunks of 12 bytes of JSON; a fourth would pass the stream's 40.
    for n in 0..3 {
        let rest = format!(r#""op":"append","n":{n},"chunk":"012345678{n}""#);
        check(&mut ana, &step("s1", &rest), &[]).await;
    }
    check(
        &mut ana,
        &step("s1", r#""op":"append","n":3,"chunk":"0123456789""#),
        &["error stream_too_large room"],
    )
    .await;
    // A chunk the stream has is ignored.
    check(
        &mut ana,
        &step("s1", r#""op":"append","n":1,"chunk":"again""#),
        &[],
    )
    .await;
    // Another user's connection can not touch ana's stream: its ids are ana's.
    for rest in [
        r#""op":"append","n":3,"chunk":"x""#,
        r#""op":"finish""#,
        r#""op":"fail""#,
    ] {
        check(
            &mut ben,
            &step("s1", rest),
            &["error stream_not_found room"],
        )
        .await;
    }
    // A progress stream: its chunks are progress objects, and only its last is kept, so many
    // small ones never reach the stream's byte limit.
    check(
        &mut ana,
        &step("p1", r#""op":"start","kind":"progress""#),
        &[],
    )
    .await;
    for (rest, expect) in [
        (
            r#""op":"append","chunk":{"percent":101}"#,
            "error bad_frame room",
        ),
        (
            r#""op":"append","chunk":{"percent":-1}"#,
            "error bad_frame room",
        ),
        (
            r#""op":"append","chunk":{"step":"x"}"#,
            "error bad_frame room",
        ),
        (r#""op":"append","chunk":"half""#, "error bad_frame room"),
    ] {
        check(&mut ana, &step("p1", rest), &[expect]).await;
    }
    for percent in 0..10 {
        let rest = format!(r#""op":"append","chunk":{{"percent":{percent}}}"#);
        check(&mut ana, &step("p1", &rest), &[]).await;
    }
    // Too many: ana produces 2 (the most per connection); ben's meta is over 32 bytes; then
    // the room has 3 (the most per room).
    check(
        &mut ana,
        &step("s3", r#""op":"start""#),
        &["error too_many_streams room"],
    )
    .await;
    check(
        &mut ben,
        &step(
            "b1",
            r#""op":"start","meta":{"model":"a-model-name-too-long"}"#,
        ),
        &["error meta_too_large room"],
    )
    .await;
    check(&mut ben, &step("b1", r#""op":"start","meta":{"m":1}"#), &[]).await;
    check(
        &mut ben,
        &step("b2", r#""op":"start""#),
        &["error too_many_streams room"],
    )
    .await;
    // A fail message over 1024 bytes is refused; the stream stays open.
    let long = "x".repeat(1025);
    check(
        &mut ben,
        &step("b1", &format!(r#""op":"fail","message":"{long}""#)),
        &["error meta_too_large room"],
    )
    .await;
    // A reader may not stream.
    let reader = support::token_with("dee", &[("*", RoomRight::Read)], 3600);
    let mut dee = Client::open(&server).await;
    dee.send_text(&format!(r#"{{"type":"hello","token":"{reader}"}}"#))
        .await;
    assert!(matches!(dee.recv().await, ServerFrame::Welcome(_)));
    dee.join("room", None).await;
    // It gets the open streams so far: ana's p1 (its last chunk) and s1, ben's b1.
    let mut catch_up = Vec::new();
    for _ in 0..3 {
        let start = stream_frame(&dee.recv().await).expect("a stream's start");
        assert_eq!(start.op, StreamStep::Start);
        let chunks: Vec<&str> = start.chunks.iter().map(|c| c.as_text()).collect();
        catch_up.push(format!(
            "{}/{} {} {}",
            start.from,
            start.id,
            start.n,
            chunks.join("")
        ));
    }
    assert_eq!(
        catch_up,
        [
            r#"ana/p1 9 {"percent":9}"#,
            r#"ana/s1 0 "0123456780""0123456781""0123456782""#,
            "ben/b1 0 ",
        ]
    );
    check(
        &mut dee,
        &step("d1", r#""op":"start""#),
        &["error forbidden room"],
    )
    .await;
    // The finish: stored once; again, a duplicate; every other step after it is refused.
    ana.send_text(&step("s1", r#""op":"finish""#)).await;
    let acks = ana.recv_until(|f| matches!(f, ServerFrame::Ack(_))).await;
    assert_eq!(line(acks.last().unwrap()).unwrap(), "ack room s1");
    ana.send_text(&step("s1", r#""op":"finish""#)).await;
    let acks = ana.recv_until(|f| matches!(f, ServerFrame::Ack(_))).await;
    assert_eq!(line(acks.last().unwrap()).unwrap(), "ack room s1 dup");
    for (rest, expect) in [
        (
            r#""op":"append","chunk":"x""#,
            "error stream_not_found room",
        ),
        (r#""op":"fail""#, "error stream_not_found room"),
        (r#""op":"start""#, "error stream_conflict room"),
    ] {
        check(&mut ana, &step("s1", rest), &[expect]).await;
    }
    // A fail; again changes nothing; nothing else fits it any more.
    check(
        &mut ana,
        &step("p1", r#""op":"fail","message":"disk full""#),
        &[],
    )
    .await;
    check(&mut ana, &step("p1", r#""op":"fail""#), &[]).await;
    for (rest, expect) in [
        (
            r#""op":"append","chunk":{"percent":50}"#,
            "error stream_not_found room",
        ),
        (r#""op":"finish""#, "error stream_not_found room"),
        (
            r#""op":"start","kind":"progress""#,
            "error stream_conflict room",
        ),
    ] {
        check(&mut ana, &step("p1", rest), &[expect]).await;
    }
    // Dee saw only what was accepted: the results of s1 (its three chunks) and b1, one fail
    // of p1, no start again and no chunk.
    ben.send_text(&step("b1", r#""op":"finish""#)).await;
    let acks = ben.recv_until(|f| matches!(f, ServerFrame::Ack(_))).await;
    assert_eq!(line(acks.last().unwrap()).unwrap(), "ack room b1");
    let seen = dee
        .recv_until(|f| {
            stream_frame(f).is_some_and(|s| s.id.as_str() == "b1" && s.op == StreamStep::Finish)
        })
        .await;
    let steps: Vec<StreamUpdate> = seen.iter().filter_map(stream_frame).collect();
    let of = |id: &str, op: StreamStep| {
        steps
            .iter()
            .filter(|s| s.id.as_str() == id && s.op == op)
            .count()
    };
    assert_eq!(
        [StreamStep::Start, StreamStep::Finish, StreamStep::Fail].map(|op| of("s1", op)),
        [0, 1, 0],
    );
    assert_eq!(
        [StreamStep::Start, StreamStep::Finish, StreamStep::Fail].map(|op| of("p1", op)),
        [0, 0, 1]
    );
    assert!(
        steps.iter().all(|s| s.op != StreamStep::Append),
        "nothing was appended after dee joined: {steps:?}"
    );
    let results: Vec<String> = seen
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Event(e) => Some(format!("{} {}", e.id, e.body.as_text())),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [
            r#"s1 {"stream":"text","text":"012345678001234567810123456782"}"#,
            r#"b1 {"stream":"text","text":"","meta":{"m":1}}"#,
        ]
    );
}

#[tokio::test]
async fn stream_steps_done_wrong_over_polling_get_codes_and_change_nothing() {
    let server = support::start(&config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("room", None).await;
    let mut pol = PollClient::new(&server, "pol", "session-stream-errors");
    pol.join("room").await;
    // Each malformed frame alone, then all in one batch: the same answers, in order.
    let all: Vec<(String, &str)> = malformed();
    let mut batch = Vec::new();
    for (text, expect) in &all {
        let body = format!(r#"{{"session":"{}","frames":[{text}]}}"#, pol.session);
        let response = http(
            &server,
            "POST",
            "/v1/poll",
            &[("Authorization", &format!("Bearer {}", pol.token))],
            Some(&body),
        )
        .await;
        assert_eq!(response.status, 200, "{text}: {}", response.body);
        let frames = response.json::<chorus_sdk::wire::PollFrames>().frames;
        let got: Vec<String> = frames.iter().filter_map(line).collect();
        assert_eq!(got, [*expect], "{text}");
        batch.push(text.clone());
    }
    let body = format!(
        r#"{{"session":"{}","frames":[{}]}}"#,
        pol.session,
        batch.join(",")
    );
    let response = http(
        &server,
        "POST",
        "/v1/poll",
        &[("Authorization", &format!("Bearer {}", pol.token))],
        Some(&body),
    )
    .await;
    let frames = response.json::<chorus_sdk::wire::PollFrames>().frames;
    let got: Vec<String> = frames.iter().filter_map(line).collect();
    let expect: Vec<&str> = all.iter().map(|(_, e)| *e).collect();
    assert_eq!(got, expect);
    // Wrong order and limits, from a polling producer.
    let step = |id: &str, rest: &str| {
        ClientFrame::decode(&frame("room", &format!(r#"{{"id":"{id}",{rest}}}"#))).unwrap()
    };
    let answers = pol
        .send(vec![
            step("q1", r#""op":"start""#),
            step("q1", r#""op":"append","n":0,"chunk":"0123456789abcdef""#),
            step("q1", r#""op":"append","n":0,"chunk":"ok""#),
            step("q1", r#""op":"append","n":2,"chunk":"x""#),
            step(
                "q1",
                &format!(r#""op":"fail","message":"{}""#, "x".repeat(1025)),
            ),
            step("q2", r#""op":"start""#),
            step("q3", r#""op":"start""#),
        ])
        .await;
    let got: Vec<String> = answers.iter().filter_map(line).collect();
    assert_eq!(
        got,
        [
            "error stream_too_large room",
            "error stream_conflict room",
            "error meta_too_large room",
            "error too_many_streams room",
        ]
    );
    // The WebSocket member got q1 with its one chunk, and q2.
    let frames = ana
        .recv_until(|f| stream_frame(f).is_some_and(|s| s.id.as_str() == "q2"))
        .await;
    let chunks: Vec<String> = frames
        .iter()
        .filter_map(stream_frame)
        .flat_map(|s| s.chunks)
        .map(|c| c.as_text().to_owned())
        .collect();
    assert_eq!(chunks, [r#""ok""#]);
    // The poll's stream (or lock) version: not a number, or one part too many, is a JSON 400.
    let auth = format!("Bearer {}", pol.token);
    for r in [
        "room~~~0~0~0~x",
        "room~~~0~0~0~-1",
        "room~~~0~0~0~1~x",
        "room~~~0~0~0~1~2~3",
    ] {
        let path = format!("/v1/poll?session={}&wait=0&r={r}", pol.session);
        let response = http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
        assert_eq!(
            (response.status, response.error_code().to_string()),
            (400, "bad_request".to_owned()),
            "{r}: {}",
            response.body
        );
    }
    // A version this node never had (another node's, or from before a restart) gets
    // everything it has, like version 0 does; an explicit 0 is the same as none.
    let mut everything = Vec::new();
    for r in ["room~~~0~0~0", "room~~~0~0~0~0", "room~~~0~0~0~999999"] {
        let path = format!("/v1/poll?session={}&wait=0&r={r}", pol.session);
        let response = http(&server, "GET", &path, &[("Authorization", &auth)], None).await;
        assert_eq!(response.status, 200, "{r}: {}", response.body);
        let frames = response.json::<chorus_sdk::wire::PollFrames>().frames;
        let streams: Vec<String> = frames
            .iter()
            .filter_map(stream_frame)
            .map(|s| format!("{} {:?} {}", s.id, s.op, s.chunks.len()))
            .collect();
        everything.push(streams);
    }
    assert_eq!(everything[0], ["q1 Start 1", "q2 Start 0"]);
    assert_eq!(everything[1], everything[0]);
    assert_eq!(everything[2], everything[0]);
}

#[tokio::test]
async fn bad_rest_stream_requests_get_json_errors_with_codes() {
    let server = support::start(&config()).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("room", None).await;
    let key = format!("Bearer {BACKEND_KEY}");
    let auth = [("Authorization", key.as_str())];
    let post = async |path: &str, body: &str| http(&server, "POST", path, &auth, Some(body)).await;
    let big_chunk = format!(r#"{{"op":"append","chunk":"{}"}}"#, "x".repeat(70_000));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "/v1/rooms/room/streams/a",
            "not json".into(),
            400,
            "bad_request",
        ),
        ("/v1/rooms/room/streams/a", "{}".into(), 400, "bad_request"),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"launch"}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"start","kind":"video"}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"start","from":""}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","n":-1,"chunk":"x"}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/bad%20room/streams/a",
            r#"{"op":"start"}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/bad%20id",
            r#"{"op":"start"}"#.into(),
            400,
            "bad_request",
        ),
        // Over the frame limit (64 KiB) as a body.
        ("/v1/rooms/room/streams/a", big_chunk, 413, "body_too_large"),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","chunk":"x"}"#.into(),
            404,
            "stream_not_found",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"finish"}"#.into(),
            404,
            "stream_not_found",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"fail"}"#.into(),
            404,
            "stream_not_found",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"start","meta":"0123456789012345678901234567890123"}"#.into(),
            413,
            "meta_too_large",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"start"}"#.into(),
            200,
            "",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append"}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","chunk":{"percent":1}}"#.into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","chunk":"0123456789abcdef"}"#.into(),
            413,
            "stream_too_large",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","n":4,"chunk":"x"}"#.into(),
            409,
            "stream_conflict",
        ),
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"start","kind":"progress"}"#.into(),
            409,
            "stream_conflict",
        ),
        // Another producer (`from`) has no stream `a`.
        (
            "/v1/rooms/room/streams/a",
            r#"{"op":"append","from":"bot","chunk":"x"}"#.into(),
            404,
            "stream_not_found",
        ),
        (
            "/v1/rooms/room/streams/b",
            r#"{"op":"start"}"#.into(),
            200,
            "",
        ),
        (
            "/v1/rooms/room/streams/c",
            r#"{"op":"start"}"#.into(),
            200,
            "",
        ),
        (
            "/v1/rooms/room/streams/d",
            r#"{"op":"start"}"#.into(),
            429,
            "too_many_streams",
        ),
        (
            "/v1/rooms/room/streams/c",
            r#"{"op":"fail"}"#.into(),
            200,
            "",
        ),
        (
            "/v1/rooms/room/streams/c",
            r#"{"op":"fail"}"#.into(),
            200,
            "",
        ),
        (
            "/v1/rooms/room/streams/c",
            r#"{"op":"start"}"#.into(),
            409,
            "stream_conflict",
        ),
        (
            "/v1/rooms/room/streams/c",
            r#"{"op":"finish"}"#.into(),
            404,
            "stream_not_found",
        ),
        // The streaming text endpoint: its query, its stream's id.
        (
            "/v1/rooms/room/streams/t/text?from=a&from=b",
            "text".into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/t/text?from=a%01b",
            "text".into(),
            400,
            "bad_request",
        ),
        (
            "/v1/rooms/room/streams/c/text",
            "text".into(),
            409,
            "stream_conflict",
        ),
    ];
    for (path, body, status, code) in cases {
        let response = post(path, &body).await;
        let got = if response.status == 200 {
            String::new()
        } else {
            response.error_code().to_string()
        };
        assert_eq!(
            (response.status, got.as_str()),
            (status, code),
            "{path} {body:.80}: {}",
            response.body
        );
    }
    // Without the key: 401, also on the text endpoint (before its query is read).
    for path in [
        "/v1/rooms/room/streams/z",
        "/v1/rooms/room/streams/z/text?from=a&from=b",
    ] {
        let response = http(&server, "POST", path, &[], Some(r#"{"op":"start"}"#)).await;
        assert_eq!(
            (response.status, response.error_code().to_string()),
            (401, "unauthenticated".to_owned()),
            "{path}"
        );
    }
    // Stream a is still open and finishes with its one accepted chunk... none: every append
    // was refused, so its text is empty; b too.
    let response = post("/v1/rooms/room/streams/a", r#"{"op":"finish"}"#).await;
    assert_eq!(response.body, r#"{"room":"room","id":"a","seq":1}"#);
    let frames = ben
        .recv_until(|f| {
            stream_frame(f).is_some_and(|s| s.id.as_str() == "a" && s.op == StreamStep::Finish)
        })
        .await;
    assert!(
        frames
            .iter()
            .filter_map(stream_frame)
            .all(|s| s.chunks.is_empty())
    );
}

/// Writes a chunked request body's head and `pieces`, then either ends the body or cuts the
/// connection; the answer (empty when cut).
async fn text_request(
    server: &chorus_server::RunningServer,
    id: &str,
    pieces: &[&[u8]],
    end: bool,
) -> String {
    let mut socket = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/rooms/room/streams/{id}/text?from=bot HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {BACKEND_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    for piece in pieces {
        socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await
            .unwrap();
        socket.write_all(piece).await.unwrap();
        socket.write_all(b"\r\n").await.unwrap();
    }
    if !end {
        return String::new();
    }
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_streaming_text_body_that_goes_wrong_fails_its_stream() {
    let server = support::start(&config()).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("room", None).await;
    let fail_of = async |ben: &mut Client, id: &str| {
        let frames = ben
            .recv_until(|f| {
                stream_frame(f).is_some_and(|s| s.id.as_str() == id && s.op == StreamStep::Fail)
            })
            .await;
        let fail = stream_frame(frames.last().unwrap()).unwrap();
        (fail.code.unwrap().to_string(), fail.message.unwrap())
    };
    // Not UTF-8.
    let answer = text_request(&server, "t1", &[b"ok \xff\xfe"], true).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""code":"bad_request""#), "{answer}");
    assert_eq!(fail_of(&mut ben, "t1").await.0, "stream_failed");
    // Ends inside a character.
    let answer = text_request(&server, "t2", &[b"n\xc3"], true).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(fail_of(&mut ben, "t2").await.0, "stream_failed");
    // Past the stream's 40 bytes: refused with its code, and the stream fails.
    let answer = text_request(&server, "t3", &[&[b'a'; 60]], true).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"stream_too_large""#), "{answer}");
    assert_eq!(fail_of(&mut ben, "t3").await.0, "stream_failed");
    // The connection cut mid-body: the stream fails.
    text_request(&server, "t4", &[b"half an answ"], false).await;
    assert_eq!(fail_of(&mut ben, "t4").await.0, "stream_failed");
    // And the room goes on: a whole one works.
    let answer = text_request(&server, "t5", &[b"fine"], true).await;
    assert!(
        answer.ends_with(r#"{"room":"room","id":"t5","seq":1}"#),
        "{answer}"
    );
    // A stream the JSON endpoint is producing, with chunks: the text endpoint refuses it and
    // leaves it open (its body would start again at chunk 0, and be dropped).
    let key = format!("Bearer {BACKEND_KEY}");
    let step = async |body: &str| {
        let path = "/v1/rooms/room/streams/t6";
        let sent = support::http(
            &server,
            "POST",
            path,
            &[("Authorization", &key)],
            Some(body),
        )
        .await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        sent.body
    };
    step(r#"{"op":"start","from":"bot"}"#).await;
    step(r#"{"op":"append","from":"bot","n":0,"chunk":"one "}"#).await;
    step(r#"{"op":"append","from":"bot","n":1,"chunk":"two "}"#).await;
    let answer = text_request(&server, "t6", &[b"three"], true).await;
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert!(answer.contains(r#""code":"stream_conflict""#), "{answer}");
    assert!(answer.contains("open already with 2 chunks"), "{answer}");
    // Still open: the next chunk goes on.
    let sent = step(r#"{"op":"append","from":"bot","n":2,"chunk":"three"}"#).await;
    assert!(sent.contains(r#""chunks":3"#), "{sent}");
}
