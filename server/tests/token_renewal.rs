//! Renewing a WebSocket's token in place with an `auth` frame, over real TCP: the same rules as
//! at connect, the same user required, the new grants applied (rooms no longer granted are left
//! with `forbidden`, as a polling request with a narrower token does), the close at expiry moved
//! to the new token's, and the connection kept in every case.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, ErrorCode, RoomRight, ServerFrame};
use support::{Client, is_ack};

fn auth(token: String) -> ClientFrame {
    ClientFrame::Auth(wire::Auth { token })
}

/// Proves the connection still works: a publish to `room` is acked.
async fn still_publishes(client: &mut Client, room: &str, id: &str) {
    client.publish(room, id, r#"{"n":1}"#).await;
    client.recv_until(|f| is_ack(f, id)).await;
}

#[tokio::test]
async fn a_renewed_token_keeps_the_socket_open_past_the_old_expiry() {
    let server = support::start(&support::config()).await;
    let old = support::token_with("ana", &[("*", RoomRight::Publish)], 2);
    let (mut ana, _) = Client::connect_with_header(&server, &old).await;
    ana.user = "ana".into();
    assert!(matches!(ana.recv().await, ServerFrame::Welcome(_)));
    ana.join("doc:1", None).await;
    ana.send(&auth(support::token("ana"))).await;
    match ana.recv().await {
        ServerFrame::Authed(authed) => assert_eq!(authed.user, "ana"),
        other => panic!("expected authed, got {other:?}"),
    }
    // The old token expires within 2 s; without the renewal the socket is closed then
    // (see websocket.rs, `a_socket_is_closed_when_its_token_expires`).
    ana.expect_quiet(Duration::from_secs(3)).await;
    still_publishes(&mut ana, "doc:1", "after-renewal").await;
}

#[tokio::test]
async fn another_users_token_is_refused_and_the_connection_keeps_its_own() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("doc:1", None).await;
    ana.send(&auth(support::token("ben"))).await;
    match ana.recv().await {
        ServerFrame::Error(error) => {
            assert_eq!(error.code, ErrorCode::Forbidden);
            assert!(error.message.contains("ben"), "{}", error.message);
        }
        other => panic!("expected error forbidden, got {other:?}"),
    }
    // Still ana's connection: her publish is stamped as hers.
    ana.publish("doc:1", "still-ana", "1").await;
    let frames = ana.recv_until(|f| is_ack(f, "still-ana")).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Event(e) if e.from == "ana")),
        "{frames:?}"
    );
}

#[tokio::test]
async fn an_expired_or_forged_token_is_refused_with_its_code_and_the_connection_stays() {
    let server = support::start(&support::config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    ana.join("doc:1", None).await;
    let expired = support::token_with("ana", &[("*", RoomRight::Publish)], -10);
    let cases = [
        (expired, ErrorCode::TokenExpired),
        ("not.a.token".to_owned(), ErrorCode::Unauthenticated),
    ];
    for (token, code) in cases {
        ana.send(&auth(token)).await;
        match ana.recv().await {
            ServerFrame::Error(error) => {
                assert_eq!(error.code, code);
                assert!(
                    error.message.contains("keeps its current token"),
                    "{}",
                    error.message
                );
            }
            other => panic!("expected error {code}, got {other:?}"),
        }
    }
    still_publishes(&mut ana, "doc:1", "kept").await;
}

#[tokio::test]
async fn narrower_grants_leave_the_rooms_no_longer_granted_with_forbidden() {
    let server = support::start(&support::config()).await;
    let wide = support::token_with(
        "ana",
        &[("doc:*", RoomRight::Publish), ("lobby", RoomRight::Read)],
        3600,
    );
    let (mut ana, _) = Client::connect_with_header(&server, &wide).await;
    ana.user = "ana".into();
    assert!(matches!(ana.recv().await, ServerFrame::Welcome(_)));
    ana.join("doc:1", None).await;
    ana.join("lobby", None).await;
    let narrow = support::token_with("ana", &[("lobby", RoomRight::Read)], 3600);
    ana.send(&auth(narrow)).await;
    let frames = ana
        .recv_until(|f| matches!(f, ServerFrame::Authed(_)))
        .await;
    let forbidden = frames.iter().find_map(|f| match f {
        ServerFrame::Error(e) if e.code == ErrorCode::Forbidden => Some(e),
        _ => None,
    });
    let forbidden = forbidden.unwrap_or_else(|| panic!("no forbidden before authed: {frames:?}"));
    assert_eq!(forbidden.room.as_ref().map(|r| r.as_str()), Some("doc:1"));
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Left(l) if l.room.as_str() == "doc:1")),
        "{frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Left(l) if l.room.as_str() == "lobby")),
        "{frames:?}"
    );
    // doc:1 is no longer joined: a publish there is refused.
    ana.publish("doc:1", "after-narrowing", "1").await;
    match ana.recv().await {
        ServerFrame::Nack(nack) => assert_eq!(nack.id.as_str(), "after-narrowing"),
        other => panic!("expected a nack, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_over_polling_is_refused_as_bad_frame() {
    let server = support::start(&support::config()).await;
    let body = r#"{"session":"renewal-test-1","frames":[{"type":"auth","token":"x"}]}"#;
    let bearer = format!("Bearer {}", support::token("ana"));
    let response = support::http(
        &server,
        "POST",
        "/v1/poll",
        &[("authorization", &bearer)],
        Some(body),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let frames: wire::PollFrames = wire::json::from_str(&response.body).unwrap();
    assert!(
        frames.frames.iter().any(|f| matches!(
            f,
            ServerFrame::Error(e) if e.code == ErrorCode::BadFrame && e.message.contains("Authorization")
        )),
        "{}",
        response.body
    );
}
