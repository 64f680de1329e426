//! Notices from the backend over real HTTP and real sockets: to everyone, to a user, to one
//! connection (WebSocket or polling session, whose ids the room presence lists), each
//! refusal's code, and the metrics.

mod support;

use chorus_sdk::wire::{self, ErrorCode, NoticeSent, ServerFrame};
use support::{Client, PollClient, http};

use support::BACKEND_KEY as KEY;

async fn post_notice(
    server: &chorus_server::RunningServer,
    path: &str,
    body: &str,
) -> support::HttpResponse {
    let key = format!("Bearer {KEY}");
    http(server, "POST", path, &[("Authorization", &key)], Some(body)).await
}

/// The next notice `client` gets (other frames before it are skipped).
async fn next_notice(client: &mut Client) -> wire::Notice {
    let frames = client
        .recv_until(|frame| matches!(frame, ServerFrame::Notice(_)))
        .await;
    match frames.last() {
        Some(ServerFrame::Notice(notice)) => notice.clone(),
        other => panic!("expected a notice, got {other:?}"),
    }
}

/// The connection ids of `user` in room `r`, as the backend reads them from presence.
async fn conns_of(server: &chorus_server::RunningServer, user: &str) -> Vec<String> {
    let key = format!("Bearer {KEY}");
    let response = http(
        server,
        "GET",
        "/v1/rooms/r/presence",
        &[("Authorization", &key)],
        None,
    )
    .await;
    let presence = response.json::<wire::PresenceBody>();
    presence
        .users
        .iter()
        .filter(|u| u.user == user)
        .flat_map(|u| u.conns.iter().map(|c| c.conn.clone()))
        .collect()
}

#[tokio::test]
async fn a_notice_reaches_everyone_a_user_or_one_connection_over_websockets() {
    let server = support::start(&support::backend_config()).await;
    let mut ana = Client::connect(&server, "ana").await;
    let mut ana_tab = Client::connect(&server, "ana").await;
    let mut ben = Client::connect(&server, "ben").await;
    // Notices need no room; ana joins one so that the backend can find her connection ids.
    ana.join("r", None).await;

    let sent = post_notice(
        &server,
        "/v1/notices",
        r#"{"id":"maint-1","level":"warning","body":{"text":"down at 22:00"}}"#,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(
        sent.json::<NoticeSent>(),
        NoticeSent {
            id: "maint-1".into(),
            delivered: 3
        }
    );
    for client in [&mut ana, &mut ana_tab, &mut ben] {
        let notice = next_notice(client).await;
        assert_eq!(
            (
                notice.id.as_str(),
                notice.level.as_str(),
                notice.body.as_text()
            ),
            ("maint-1", "warning", r#"{"text":"down at 22:00"}"#)
        );
        assert!(notice.at > 0);
    }

    let to_ben = post_notice(&server, "/v1/users/ben/notices", r#"{"body":"hi ben"}"#).await;
    let to_ben = to_ben.json::<NoticeSent>();
    assert_eq!(to_ben.delivered, 1);
    assert!(
        to_ben.id.starts_with("notice-"),
        "made by the server: {}",
        to_ben.id
    );
    let notice = next_notice(&mut ben).await;
    assert_eq!(
        (notice.level.as_str(), notice.body.as_text()),
        ("info", r#""hi ben""#)
    );

    let conns = conns_of(&server, "ana").await;
    assert_eq!(
        conns.len(),
        1,
        "only the tab in the room is listed: {conns:?}"
    );
    let one = post_notice(
        &server,
        &format!("/v1/connections/{}/notices", conns[0]),
        r#"{"id":"just-you","level":"critical","body":1}"#,
    )
    .await;
    assert_eq!(one.json::<NoticeSent>().delivered, 1);
    assert_eq!(next_notice(&mut ana).await.id, "just-you");
    // Nobody else got either of the last two: a ping's pong is the next thing they see.
    for client in [&mut ana_tab, &mut ben] {
        client
            .send(&wire::ClientFrame::Ping(wire::Ping { nonce: Some(9) }))
            .await;
        assert!(matches!(client.recv().await, ServerFrame::Pong(_)));
    }

    let metrics = http(&server, "GET", "/metrics", &[], None).await.body;
    for line in [
        "chorus_notices_sent_total{target=\"everyone\"} 1",
        "chorus_notices_sent_total{target=\"user\"} 1",
        "chorus_notices_sent_total{target=\"connection\"} 1",
        "chorus_notices_delivered_total 5",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_polling_session_gets_its_notice_on_its_next_poll_and_a_held_poll_wakes() {
    let server = support::start(&support::backend_config()).await;
    let mut cid = PollClient::new(&server, "cid", "cid-session-1");
    cid.join("r").await;
    cid.poll(0).await;

    // Sent between polls: kept for the next one, which answers at once.
    let sent = post_notice(
        &server,
        "/v1/users/cid/notices",
        r#"{"id":"p1","body":"one"}"#,
    )
    .await;
    assert_eq!(sent.json::<NoticeSent>().delivered, 1);
    let frames = cid.poll(20_000).await;
    let notices: Vec<String> = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Notice(n) => Some(n.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(notices, ["p1"]);
    // Taken: the next poll does not repeat it.
    assert!(
        !cid.poll(0)
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Notice(_))),
        "a kept notice is answered once"
    );

    // Sent while a poll is held: the poll wakes with it.
    let conn = conns_of(&server, "cid").await.remove(0);
    let path = cid.poll_path(20_000);
    let auth = format!("Bearer {}", cid.token);
    let held = tokio::spawn({
        let addr = support::Remote(cid.addr);
        async move { http(&addr, "GET", &path, &[("Authorization", &auth)], None).await }
    });
    // The poll is held once the session counts it; notices sent before that are kept too,
    // so either way the held poll answers with it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let sent = post_notice(
        &server,
        &format!("/v1/connections/{conn}/notices"),
        r#"{"id":"p2","body":"two"}"#,
    )
    .await;
    assert_eq!(sent.json::<NoticeSent>().delivered, 1, "{}", sent.body);
    let answer = held.await.unwrap().json::<wire::PollFrames>().frames;
    assert!(
        answer
            .iter()
            .any(|f| matches!(f, ServerFrame::Notice(n) if n.id == "p2")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn bad_notice_requests_get_clear_codes() {
    let server = support::start(&support::backend_config()).await;
    let _ana = Client::connect(&server, "ana").await;
    let big = format!(r#"{{"body":"{}"}}"#, "x".repeat(70_000));
    // (path, body, status, code)
    let table = [
        (
            "/v1/notices",
            r#"{"body":1,"level":"loud"}"#,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/notices",
            r#"{"body":1,"id":"no spaces"}"#,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/notices",
            r#"{"level":"info"}"#,
            400,
            ErrorCode::BadRequest,
        ),
        ("/v1/notices", "not json", 400, ErrorCode::BadRequest),
        ("/v1/notices", big.as_str(), 413, ErrorCode::BodyTooLarge),
        (
            "/v1/connections/17/notices",
            r#"{"body":1}"#,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/connections/n-x/notices",
            r#"{"body":1}"#,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "/v1/connections/zz-99/notices",
            r#"{"body":1}"#,
            404,
            ErrorCode::NotFound,
        ),
        (
            "/v1/users/%0A/notices",
            r#"{"body":1}"#,
            400,
            ErrorCode::BadRequest,
        ),
    ];
    for (path, body, status, code) in table {
        let response = post_notice(&server, path, body).await;
        assert_eq!(
            (response.status, response.error_code()),
            (status, code),
            "{path} {}: {}",
            &body[..body.len().min(40)],
            response.body
        );
    }
    // A connection that closed is no longer there.
    let conn = {
        let mut ben = Client::connect(&server, "ben").await;
        ben.join("r", None).await;
        conns_of(&server, "ben").await.remove(0)
    };
    let mut gone = None;
    for _ in 0..100 {
        let response = post_notice(
            &server,
            &format!("/v1/connections/{conn}/notices"),
            r#"{"body":1}"#,
        )
        .await;
        if response.status == 404 {
            gone = Some(response.error_code());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(gone, Some(ErrorCode::NotFound));
    // Without the API key: 401, whatever the body.
    for key in [None, Some("Bearer wrong")] {
        let headers: Vec<(&str, &str)> = key.iter().map(|k| ("Authorization", *k)).collect();
        let response = http(
            &server,
            "POST",
            "/v1/notices",
            &headers,
            Some(r#"{"body":1}"#),
        )
        .await;
        assert_eq!(
            (response.status, response.error_code()),
            (401, ErrorCode::Unauthenticated)
        );
    }
}
