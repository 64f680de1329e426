//! Streams over real TCP: a producer and members on WebSocket, a member and a producer on
//! polling, the backend's REST steps and its streaming text body.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, ErrorCode, ServerFrame, StreamStep, StreamUpdate};
use support::{Client, PollClient, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::BACKEND_KEY as KEY;

fn step(room: &str, id: &str, rest: &str) -> ClientFrame {
    let text = format!(r#"{{"type":"stream","room":"{room}","stream":{{"id":"{id}",{rest}}}}}"#);
    ClientFrame::decode(&text).unwrap()
}

fn stream_frame(frame: &ServerFrame) -> Option<StreamUpdate> {
    match frame {
        ServerFrame::Stream(stream) => Some(stream.update().unwrap()),
        _ => None,
    }
}

/// The text of the chunks of the stream frames among `frames` (a text stream's).
fn text_of(frames: &[ServerFrame]) -> String {
    frames
        .iter()
        .filter_map(stream_frame)
        .flat_map(|s| s.chunks)
        .map(|chunk| serde_json::from_str::<String>(chunk.as_text()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_stream_over_websockets_reaches_members_and_late_joiners_and_is_stored_once() {
    let server = support::start(&support::backend_config()).await;
    let (mut ana, mut ben) = support::two_members(&server, "room").await;
    ana.send(&step(
        "room",
        "answer-1",
        r#""op":"start","meta":{"model":"m1"}"#,
    ))
    .await;
    for (n, piece) in ["Hello", ", ", "wor"].iter().enumerate() {
        let op = format!(r#""op":"append","n":{n},"chunk":"{piece}""#);
        ana.send(&step("room", "answer-1", &op)).await;
    }
    // The first chunk at once, the two after it coalesced into one frame.
    let mut got = Vec::new();
    while text_of(&got) != "Hello, wor" {
        got.push(ben.recv().await);
        assert!(text_of(&got).len() <= 10, "{got:?}");
    }
    assert_eq!(
        got.iter().filter_map(stream_frame).count(),
        3,
        "start, one chunk, two chunks"
    );
    // Cy joins mid-stream: everything so far, in one `start` after `joined`.
    let mut cy = Client::connect(&server, "cy").await;
    cy.join("room", None).await;
    let start = cy.recv().await;
    let update = stream_frame(&start).expect("a stream frame after joined");
    assert_eq!(update.op, StreamStep::Start);
    assert_eq!(update.meta.as_ref().unwrap().as_text(), r#"{"model":"m1"}"#);
    assert_eq!(text_of(&[start]), "Hello, wor");
    ana.send(&step(
        "room",
        "answer-1",
        r#""op":"append","n":3,"chunk":"ld""#,
    ))
    .await;
    // A finish, retried: one stored event, the second answered as a duplicate.
    ana.send(&step("room", "answer-1", r#""op":"finish""#))
        .await;
    ana.send(&step("room", "answer-1", r#""op":"finish""#))
        .await;
    let frames = cy
        .recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Finish))
        .await;
    assert_eq!(text_of(&frames), "ld");
    let result = r#"{"stream":"text","text":"Hello, world","meta":{"model":"m1"}}"#;
    let ServerFrame::Event(event) = &frames[frames.len() - 2] else {
        panic!("the result before the finish: {frames:?}");
    };
    assert_eq!((event.seq, event.body.as_text()), (Some(1), result));
    let acks = ana
        .recv_until(|f| matches!(f, ServerFrame::Ack(a) if a.duplicate))
        .await;
    assert!(
        acks.iter()
            .any(|f| matches!(f, ServerFrame::Ack(a) if a.seq == Some(1) && !a.duplicate))
    );
    let page = http(
        &server,
        "GET",
        "/v1/rooms/room/events",
        &[("Authorization", &format!("Bearer {KEY}"))],
        None,
    )
    .await;
    let page = page.json::<wire::EventsPage>();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].body.as_text(), result);
    // Appending to it now is refused with a code.
    ana.send(&step("room", "answer-1", r#""op":"append","chunk":"more""#))
        .await;
    let error = ana.recv_until(|f| matches!(f, ServerFrame::Error(_))).await;
    assert!(
        matches!(error.last(), Some(ServerFrame::Error(e)) if e.code == ErrorCode::StreamNotFound)
    );
}

#[tokio::test]
async fn a_polling_member_gets_the_stream_so_far_and_a_polling_producer_streams() {
    let server = support::start(&support::backend_config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("room", None).await;
    ana.send(&step("room", "s1", r#""op":"start""#)).await;
    ana.send(&step("room", "s1", r#""op":"append","n":0,"chunk":"one ""#))
        .await;
    ana.recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Append))
        .await;
    let mut pol = PollClient::new(&server, "pol", "session-streams-1");
    pol.join("room").await;
    let frames = pol.poll(1000).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::State(s) if s.streams.is_some()))
    );
    assert_eq!(text_of(&frames), "one ");
    // Nothing changed: the poll is held, not answered with the stream again.
    let held = tokio::time::timeout(Duration::from_millis(300), pol.poll(5000)).await;
    assert!(
        held.is_err(),
        "a poll with the current stream version waits"
    );
    ana.send(&step("room", "s1", r#""op":"append","n":1,"chunk":"two""#))
        .await;
    let frames = pol.poll(5000).await;
    assert_eq!(
        text_of(&frames),
        "one two",
        "a snapshot of everything so far"
    );
    ana.send(&step("room", "s1", r#""op":"finish""#)).await;
    let mut frames = pol.poll(5000).await;
    if !frames.iter().any(|f| matches!(f, ServerFrame::Event(_))) {
        frames.extend(pol.poll(5000).await);
    }
    assert!(
        frames.iter().any(
            |f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Finish && s.seq == Some(1))
        )
    );
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Event(e) if e.id.as_str() == "s1"))
    );
    // A polling producer: its steps go in POSTs, the WebSocket member gets them.
    let answers = pol
        .send(vec![
            step("room", "p1", r#""op":"start","kind":"progress""#),
            step(
                "room",
                "p1",
                r#""op":"append","n":0,"chunk":{"percent":50,"step":"half","eta_ms":1000}"#,
            ),
            step(
                "room",
                "p1",
                r#""op":"append","n":1,"chunk":{"percent":500}"#,
            ),
        ])
        .await;
    assert!(
        matches!(&answers[..], [ServerFrame::Error(e)] if e.code == ErrorCode::BadFrame),
        "{answers:?}"
    );
    let got = ana
        .recv_until(|f| {
            stream_frame(f).is_some_and(|s| s.id.as_str() == "p1" && s.op == StreamStep::Append)
        })
        .await;
    let append = stream_frame(got.last().unwrap()).unwrap();
    let append = &append;
    assert_eq!(
        append.chunks[0].as_text(),
        r#"{"percent":50,"step":"half","eta_ms":1000}"#
    );
}

#[tokio::test]
async fn the_backend_drives_a_stream_over_rest() {
    let server = support::start(&support::backend_config()).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("room", None).await;
    let key = format!("Bearer {KEY}");
    let auth = [("Authorization", key.as_str())];
    let post = |body: &'static str| {
        http(
            &server,
            "POST",
            "/v1/rooms/room/streams/a-1",
            &auth,
            Some(body),
        )
    };
    let response = post(r#"{"op":"start","from":"bot"}"#).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, r#"{"room":"room","id":"a-1","chunks":0}"#);
    let response = post(r#"{"op":"append","from":"bot","n":0,"chunk":"Hi"}"#).await;
    assert_eq!(response.body, r#"{"room":"room","id":"a-1","chunks":1}"#);
    // Sent again (a retry): ignored, by its index.
    let response = post(r#"{"op":"append","from":"bot","n":0,"chunk":"Hi"}"#).await;
    assert_eq!(response.body, r#"{"room":"room","id":"a-1","chunks":1}"#);
    for (body, status, code) in [
        (
            r#"{"op":"append","from":"bot","n":5,"chunk":"x"}"#,
            409,
            ErrorCode::StreamConflict,
        ),
        (
            r#"{"op":"append","from":"bot","chunk":7}"#,
            400,
            ErrorCode::BadRequest,
        ),
        (
            r#"{"op":"append","from":"eve","chunk":"x"}"#,
            404,
            ErrorCode::StreamNotFound,
        ),
        (r#"{"op":"launch"}"#, 400, ErrorCode::BadRequest),
    ] {
        let response = post(body).await;
        assert_eq!(
            (response.status, response.error_code()),
            (status, code),
            "{body}"
        );
    }
    let response = post(r#"{"op":"finish","from":"bot"}"#).await;
    assert_eq!(response.body, r#"{"room":"room","id":"a-1","seq":1}"#);
    let response = post(r#"{"op":"finish","from":"bot"}"#).await;
    assert_eq!(
        response.body,
        r#"{"room":"room","id":"a-1","seq":1,"duplicate":true}"#
    );
    let frames = ben
        .recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Finish))
        .await;
    assert_eq!(text_of(&frames), "Hi");
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::Event(e) if e.from == "bot" && e.body.as_text() == r#"{"stream":"text","text":"Hi"}"#)));
    let response = http(
        &server,
        "POST",
        "/v1/rooms/room/streams/a-2",
        &[],
        Some(r#"{"op":"start"}"#),
    )
    .await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn a_streaming_request_body_appends_as_it_arrives() {
    let server = support::start(&support::backend_config()).await;
    let mut ben = Client::connect(&server, "ben").await;
    ben.join("room", None).await;
    let mut socket = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/rooms/room/streams/llm-1/text?from=bot HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // "né" cut inside the "é": the server waits for the rest of the character.
    let pieces: [&[u8]; 3] = [b"Once upon", b" a time, n\xc3", b"\xa9e"];
    for (k, piece) in pieces.iter().enumerate() {
        socket
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await
            .unwrap();
        socket.write_all(piece).await.unwrap();
        socket.write_all(b"\r\n").await.unwrap();
        if k == 0 {
            // The first piece reaches the member while the request is still open.
            let frames = ben
                .recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Append))
                .await;
            assert_eq!(text_of(&frames), "Once upon");
        }
    }
    socket.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"room":"room","id":"llm-1","seq":1}"#),
        "{answer}"
    );
    let frames = ben
        .recv_until(|f| stream_frame(f).is_some_and(|s| s.op == StreamStep::Finish))
        .await;
    assert_eq!(text_of(&frames), " a time, née");
    assert!(frames.iter().any(|f| matches!(f, ServerFrame::Event(e) if e.body.as_text() == r#"{"stream":"text","text":"Once upon a time, née"}"#)));
}
