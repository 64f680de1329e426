//! Streams in the client core: frames of joined rooms become events as they came, a producer's
//! steps go out only where they can, and polls carry the stream version the server gave.

use super::*;
use crate::wire::{RoomState, StreamFrame, StreamKind, StreamStep, StreamUpdate};

fn stream_frame(name: &str, op: StreamStep, n: u64, chunks: &[&str]) -> ServerFrame {
    let update = StreamUpdate {
        id: EventId::parse("a1").unwrap(),
        from: "bot".into(),
        kind: StreamKind::Text,
        op,
        n,
        chunks: chunks
            .iter()
            .map(|c| Json::from_text(*c).unwrap())
            .collect(),
        meta: None,
        seq: (op == StreamStep::Finish).then_some(3),
        code: None,
        message: None,
    };
    ServerFrame::Stream(StreamFrame::new(room(name), &update))
}

fn step() -> Json {
    Json::from_text(r#"{"id":"mine","op":"start"}"#).unwrap()
}

#[test]
fn stream_frames_of_joined_rooms_become_events_and_fold_into_a_view() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_events();
    h.server_says(link, stream_frame("r", StreamStep::Start, 0, &[r#""Hel""#]));
    h.server_says(link, stream_frame("r", StreamStep::Append, 1, &[r#""lo""#]));
    // A room this client is not in: dropped.
    h.server_says(
        link,
        stream_frame("elsewhere", StreamStep::Append, 0, &[r#""x""#]),
    );
    h.server_says(link, stream_frame("r", StreamStep::Finish, 0, &[]));
    let frames: Vec<StreamUpdate> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Stream(frame) => Some(frame.update().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 3);
    let mut view = StreamView::new(&frames[0]);
    for frame in &frames[1..] {
        view.apply(frame);
    }
    assert_eq!(view.text, "Hello");
    assert_eq!(view.status, StreamStatus::Finished(3));
}

#[test]
fn a_producers_steps_go_out_only_when_joined_and_connected() {
    let (mut h, link) = Harness::connected_socket(&["r"]);
    h.server_says(link, joined("r", 0));
    h.take_outputs();
    let now = h.now;
    h.client.stream(now, room("r"), step()).unwrap();
    h.drain();
    assert_eq!(kinds(&h.frames_sent()), ["stream"]);
    assert!(matches!(
        h.client.stream(now, room("nope"), step()),
        Err(PublishError::NotJoined(_))
    ));
    h.client.handle_socket_closed(now, link, None);
    h.drain();
    assert!(matches!(
        h.client.stream(now, room("r"), step()),
        Err(PublishError::Offline)
    ));
    assert!(h.frames_sent().is_empty());
}

#[test]
fn polls_carry_the_stream_version_the_server_gave() {
    let mut h = Harness::polling_in_r();
    h.advance(Duration::ZERO);
    answer_poll_send(&mut h);
    let poll = |h: &mut Harness| {
        h.take_outputs().into_iter().find_map(|o| match o {
            Output::Http {
                request,
                call: HttpCall::Poll { query },
                ..
            } => Some((request, query)),
            _ => None,
        })
    };
    // A client with locks follows them: its lock version (0) comes last, after the stream
    // version, which is then written even while it is 0.
    let locks = if cfg!(feature = "locks") { "~0" } else { "" };
    let first = if cfg!(feature = "locks") {
        "r~5~0~1~0~0~0~0"
    } else {
        "r~5~0~1~0~0"
    };
    let (request, query) = poll(&mut h).expect("a long poll");
    assert!(
        query.contains(&format!("&r={first}&")) || query.ends_with(&format!("&r={first}")),
        "{query}"
    );
    let state = ServerFrame::State(RoomState {
        room: room("r"),
        presence: None,
        typing: None,
        cursors: None,
        cursor_version: None,
        streams: Some(7),
        locks: None,
    });
    let start = stream_frame("r", StreamStep::Start, 0, &[r#""so far""#]);
    h.client
        .handle_http_response(h.now, request, HttpResult::Frames(vec![state, start]));
    h.drain();
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Stream(_)))
    );
    let (_, query) = poll(&mut h).expect("the next long poll");
    assert!(
        query.ends_with(&format!("&r=r~5~0~1~0~0~7{locks}")),
        "{query}"
    );
}
