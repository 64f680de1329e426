//! Several tabs on one socket (subprotocol `chorus.v1.mux`, `docs/PROTOCOL.md`, "Several tabs on
//! one socket") over real TCP: logical connections of their own on one WebSocket.

mod support;

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, ErrorCode, ServerFrame, close_code};
use chorus_server::RunningServer;
use futures_util::{SinkExt, StreamExt};
use support::{PATIENCE, http, publish, token};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const KEY: &str = "mux-test-api-key";

/// What a multiplexed socket received.
#[derive(Debug, PartialEq)]
enum Got {
    /// A frame to a tab (`""`: to the socket).
    Frame(String, ServerFrame),
    /// A tab was closed with a close code.
    Closed(String, u16),
}

/// A raw multiplexed socket.
struct Mux {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Mux {
    async fn connect(server: &RunningServer) -> Mux {
        let mut request = format!("ws://{}/v1/ws", server.local_addr())
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(wire::WS_MUX_SUBPROTOCOL),
        );
        let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            wire::WS_MUX_SUBPROTOCOL
        );
        Mux { ws }
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    async fn send(&mut self, tab: &str, frame: &ClientFrame) {
        self.send_text(&format!("{tab}:{}", frame.encode())).await;
    }

    /// Opens `tab` for `user`; returns its `welcome`.
    async fn open(&mut self, tab: &str, user: &str) -> wire::Welcome {
        self.send_text(&format!("{tab}+{}", token(user))).await;
        match self.recv_for(tab).await {
            Got::Frame(_, ServerFrame::Welcome(welcome)) => welcome,
            other => panic!("expected welcome for {tab}, got {other:?}"),
        }
    }

    /// Asks to open `tab` for `user` and expects the refusal of a connection limit: `error`
    /// `too_many_connections`, then `<tab>-1013`. Returns the error's sentence.
    async fn open_refused(&mut self, tab: &str, user: &str) -> String {
        self.send_text(&format!("{tab}+{}", token(user))).await;
        let message = match self.recv().await {
            Got::Frame(to, ServerFrame::Error(error))
                if to == tab && error.code == ErrorCode::TooManyConnections =>
            {
                error.message
            }
            other => panic!("expected too_many_connections for {tab}, got {other:?}"),
        };
        assert_eq!(
            self.recv().await,
            Got::Closed(tab.into(), close_code::TRY_AGAIN_LATER)
        );
        message
    }

    /// Opens `tab` for `user` once a limit lets it (asking again after each refusal).
    async fn open_eventually(&mut self, tab: &str, user: &str) {
        let opened = tokio::time::timeout(PATIENCE, async {
            loop {
                self.send_text(&format!("{tab}+{}", token(user))).await;
                match self.recv().await {
                    Got::Frame(_, ServerFrame::Welcome(_)) => break,
                    Got::Frame(_, ServerFrame::Error(_)) | Got::Closed(..) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
        .await;
        assert!(opened.is_ok(), "{tab} opened once a slot came back");
    }

    async fn recv(&mut self) -> Got {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("socket open")
                .expect("socket healthy");
            let Message::Text(text) = message else {
                continue;
            };
            let end = text
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap();
            let (tab, rest) = text.split_at(end);
            return match rest.split_at(1) {
                (":", frame) => Got::Frame(tab.into(), ServerFrame::decode(frame).unwrap()),
                ("-", code) => Got::Closed(tab.into(), code.parse().unwrap()),
                _ => panic!("not an envelope: {text}"),
            };
        }
    }

    /// The next message for `tab`, skipping the other tabs' (and presence traffic).
    async fn recv_for(&mut self, tab: &str) -> Got {
        loop {
            let got = self.recv().await;
            match &got {
                Got::Frame(to, ServerFrame::Presence(_)) if to == tab => continue,
                Got::Frame(to, _) | Got::Closed(to, _) if to == tab => return got,
                _ => continue,
            }
        }
    }

    /// Frames for `tab` until one `stop` accepts.
    async fn frames_until(
        &mut self,
        tab: &str,
        stop: impl Fn(&ServerFrame) -> bool,
    ) -> ServerFrame {
        loop {
            if let Got::Frame(_, frame) = self.recv_for(tab).await
                && stop(&frame)
            {
                return frame;
            }
        }
    }

    async fn join(&mut self, tab: &str, room: &str, meta: &str) -> wire::Joined {
        let join = ClientFrame::Join(wire::Join {
            room: wire::RoomName::parse(room).unwrap(),
            meta: wire::Json::from_text(meta).unwrap(),
            resume: None,
        });
        self.send(tab, &join).await;
        match self
            .frames_until(tab, |f| {
                matches!(f, ServerFrame::Joined(_) | ServerFrame::Error(_))
            })
            .await
        {
            ServerFrame::Joined(joined) => joined,
            other => panic!("{tab}: expected joined, got {other:?}"),
        }
    }
}

fn config() -> chorus_server::config::Config {
    let mut config = support::config();
    config.api_key = Some(KEY.into());
    config.presence_grace_ms = 0;
    config
}

/// The room's presence as (user, connection ids, metas) through the REST API.
async fn presence(server: &RunningServer, room: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let auth = format!("Bearer {KEY}");
    let path = format!("/v1/rooms/{room}/presence");
    let body = http(server, "GET", &path, &[("authorization", &auth)], None).await;
    body.json::<wire::PresenceBody>()
        .users
        .into_iter()
        .map(|user| {
            let conns = user.conns.iter().map(|c| c.conn.clone()).collect();
            let metas = user
                .conns
                .iter()
                .map(|c| c.meta.as_text().to_owned())
                .collect();
            (user.user, conns, metas)
        })
        .collect()
}

/// Waits until the room's presence is `expect` (users and connection counts).
async fn presence_becomes(server: &RunningServer, room: &str, expect: &[(&str, usize)]) {
    let want: Vec<(String, usize)> = expect.iter().map(|&(u, n)| (u.to_owned(), n)).collect();
    let counts = || async {
        presence(server, room)
            .await
            .into_iter()
            .map(|(user, conns, _)| (user, conns.len()))
            .collect::<Vec<_>>()
    };
    let reached = tokio::time::timeout(PATIENCE, async {
        while counts().await != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "presence stayed {:?}, expected {want:?}",
        counts().await
    );
}

#[tokio::test]
async fn tabs_on_one_socket_are_connections_of_their_own() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    let mut conns = Vec::new();
    for tab in ["a", "b", "c"] {
        let welcome = mux.open(tab, "ana").await;
        assert_eq!(welcome.user, "ana");
        conns.push(welcome.conn);
    }
    conns.sort();
    conns.dedup();
    assert_eq!(conns.len(), 3, "each tab has its own connection id");
    for (n, tab) in ["a", "b", "c"].into_iter().enumerate() {
        mux.join(tab, "doc:1", &format!(r#"{{"tab":{n}}}"#)).await;
    }
    // One user, three connections, each with its own meta: a user's tabs show as tabs.
    let users = presence(&server, "doc:1").await;
    assert_eq!(users.len(), 1);
    let (user, ids, mut metas) = users.into_iter().next().unwrap();
    assert_eq!((user.as_str(), ids.len()), ("ana", 3));
    metas.sort();
    assert_eq!(metas, [r#"{"tab":0}"#, r#"{"tab":1}"#, r#"{"tab":2}"#]);

    // A publish from one tab is acked to that tab and delivered to every tab (each is a member),
    // and to a plain socket.
    let mut ben = support::Client::connect(&server, "ben").await;
    ben.join("doc:1", None).await;
    mux.send("b", &publish("doc:1", "b-1", r#"{"text":"hi"}"#))
        .await;
    let mut acks = Vec::new();
    let mut events = Vec::new();
    while acks.is_empty() || events.len() < 3 {
        match mux.recv().await {
            Got::Frame(tab, ServerFrame::Ack(ack)) => acks.push((tab, ack.seq)),
            Got::Frame(tab, ServerFrame::Event(event)) => events.push((tab, event.seq)),
            _ => {}
        }
    }
    assert_eq!(acks, [("b".to_owned(), Some(1))]);
    events.sort();
    let want: Vec<(String, Option<u64>)> = ["a", "b", "c"]
        .iter()
        .map(|t| (t.to_string(), Some(1)))
        .collect();
    assert_eq!(events, want);
    let frames = ben.recv_until(|f| support::event_seq(f).is_some()).await;
    assert_eq!(support::event_seq(frames.last().unwrap()), Some(1));

    // Each tab answers its own pings.
    mux.send("c", &ClientFrame::Ping(wire::Ping { nonce: Some(7) }))
        .await;
    assert!(matches!(
        mux.frames_until("c", |f| matches!(f, ServerFrame::Pong(_)))
            .await,
        ServerFrame::Pong(wire::Pong { nonce: Some(7) })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn one_tab_closing_leaves_the_others_and_the_socket_dropping_closes_all() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    for tab in ["a", "b", "c"] {
        mux.open(tab, "ana").await;
        mux.join(tab, "doc:1", "null").await;
    }
    presence_becomes(&server, "doc:1", &[("ana", 3)]).await;
    mux.send_text("b-").await;
    presence_becomes(&server, "doc:1", &[("ana", 2)]).await;
    // The others go on; the closed one is no longer open.
    mux.send("a", &publish("doc:1", "a-1", "1")).await;
    assert!(matches!(
        mux.frames_until("a", |f| matches!(f, ServerFrame::Ack(_)))
            .await,
        ServerFrame::Ack(wire::Ack { seq: Some(1), .. })
    ));
    mux.send("b", &publish("doc:1", "b-1", "1")).await;
    match mux.frames_until("b", |_| true).await {
        ServerFrame::Error(error) => assert_eq!(error.code, ErrorCode::BadFrame),
        other => panic!("expected an error, got {other:?}"),
    }
    // A tab id may be opened again once closed.
    mux.open("b", "ana").await;
    mux.join("b", "doc:1", "null").await;
    presence_becomes(&server, "doc:1", &[("ana", 3)]).await;
    drop(mux);
    presence_becomes(&server, "doc:1", &[]).await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_multiplexed_input_gets_clear_errors_and_breaks_nothing() {
    let mut config = config();
    config.max_frame_bytes = 1000;
    let server = support::start(&config).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("a", "ana").await;
    let expect_error = |got: Got, tab: &str, code: ErrorCode| match got {
        Got::Frame(to, ServerFrame::Error(error)) if to == tab && error.code == code => {}
        other => panic!("expected {code:?} for {tab:?}, got {other:?}"),
    };
    // No envelope: the socket itself is answered.
    for bad in [
        "hello",
        r#"{"type":"ping"}"#,
        "a",
        "a-x",
        "-",
        &"x".repeat(65),
    ] {
        mux.send_text(bad).await;
        expect_error(mux.recv().await, "", ErrorCode::BadFrame);
    }
    mux.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(mux.recv().await, "", ErrorCode::BadFrame);
    // A frame to a tab that is not open.
    mux.send("z", &ClientFrame::Ping(wire::Ping { nonce: None }))
        .await;
    expect_error(mux.recv().await, "z", ErrorCode::BadFrame);
    // Opening an open tab again.
    mux.send_text(&format!("a+{}", token("ana"))).await;
    expect_error(mux.recv().await, "a", ErrorCode::BadFrame);
    // A bad or expired token refuses that tab only, with 4001.
    mux.send_text("t+not-a-jwt").await;
    expect_error(mux.recv().await, "t", ErrorCode::Unauthenticated);
    assert_eq!(
        mux.recv().await,
        Got::Closed("t".into(), close_code::UNAUTHENTICATED)
    );
    let expired = support::token_with("ana", &[("*", wire::RoomRight::Publish)], -10);
    mux.send_text(&format!("u+{expired}")).await;
    expect_error(mux.recv().await, "u", ErrorCode::TokenExpired);
    assert_eq!(
        mux.recv().await,
        Got::Closed("u".into(), close_code::UNAUTHENTICATED)
    );
    // A tab's frames obey the frame limits and the frame rules, and the tab stays open.
    mux.send_text(&format!("a:{}", "x".repeat(1001))).await;
    expect_error(mux.recv().await, "a", ErrorCode::FrameTooLarge);
    mux.send_text(r#"a:{"type":"nope"}"#).await;
    expect_error(mux.recv().await, "a", ErrorCode::UnknownType);
    mux.send_text(&format!(
        r#"a:{{"type":"hello","token":"{}"}}"#,
        token("ana")
    ))
    .await;
    expect_error(mux.recv().await, "a", ErrorCode::BadFrame);
    mux.send("a", &ClientFrame::Ping(wire::Ping { nonce: Some(1) }))
        .await;
    assert_eq!(
        mux.recv().await,
        Got::Frame("a".into(), ServerFrame::Pong(wire::Pong { nonce: Some(1) }))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn limits_count_logical_connections() {
    let mut config = config();
    config.max_connections_per_ip = 4;
    let server = support::start(&config).await;
    // The socket holds one slot, each tab one more.
    let mut mux = Mux::connect(&server).await;
    for tab in ["a", "b", "c"] {
        mux.open(tab, "ana").await;
    }
    mux.open_refused("d", "ana").await;
    // A plain socket from the same address is refused too; after a tab closes, one fits.
    let url = format!("ws://{}/v1/ws", server.local_addr());
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    mux.send_text("c-").await;
    mux.open_eventually("d", "ana").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_user_holds_at_most_its_connections_counting_plain_sockets_and_tabs() {
    let mut config = config();
    config.max_connections_per_user = 3;
    let server = support::start(&config).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("a", "ana").await;
    mux.open("b", "ana").await;
    let _plain = support::Client::connect(&server, "ana").await;
    // A fourth plain socket of Ana's: told why, then closed with 1013 (try again later).
    let mut fourth = support::Client::open(&server).await;
    let hello = wire::Hello {
        token: token("ana"),
    };
    fourth.send(&ClientFrame::Hello(hello)).await;
    let (close, frames) = fourth.until_closed().await;
    match frames.as_slice() {
        [ServerFrame::Error(error)] => {
            assert_eq!(error.code, ErrorCode::TooManyConnections);
            assert!(
                error.message.contains("at most 3 connections"),
                "{}",
                error.message
            );
        }
        other => panic!("expected one error, got {other:?}"),
    }
    assert_eq!(
        close.map(|c| u16::from(c.code)),
        Some(close_code::TRY_AGAIN_LATER)
    );
    // A fourth tab likewise; another user is not affected.
    let message = mux.open_refused("c", "ana").await;
    assert!(message.contains("at most 3 connections"), "{message}");
    mux.open("d", "ben").await;
    // Closing one of Ana's gives the slot back.
    mux.send_text("b-").await;
    mux.open_eventually("c", "ana").await;
    let metrics = http(&server, "GET", "/metrics", &[], None).await.body;
    let refused = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("chorus_connections_rejected_total{reason=\"per_user_limit\"} ")
        })
        .and_then(|v| v.parse::<f64>().ok());
    assert!(refused.is_some_and(|n| n >= 2.0), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_socket_holds_at_most_64_tabs() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    // Each tab another user's, so no user reaches their own cap.
    for n in 0..64 {
        mux.open(&format!("t{n}"), &format!("u{n}")).await;
    }
    let message = mux.open_refused("x", "ana").await;
    assert!(message.contains("64 logical connections"), "{message}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_tab_whose_token_expires_is_closed_alone() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("long", "ana").await;
    let short = support::token_with("ana", &[("*", wire::RoomRight::Publish)], 2);
    mux.send_text(&format!("short+{short}")).await;
    assert!(matches!(
        mux.recv_for("short").await,
        Got::Frame(_, ServerFrame::Welcome(_))
    ));
    match tokio::time::timeout(PATIENCE, mux.recv_for("short"))
        .await
        .unwrap()
    {
        Got::Frame(_, ServerFrame::Error(error)) => assert_eq!(error.code, ErrorCode::TokenExpired),
        other => panic!("expected token_expired, got {other:?}"),
    }
    assert_eq!(
        mux.recv_for("short").await,
        Got::Closed("short".into(), close_code::UNAUTHENTICATED)
    );
    mux.send("long", &ClientFrame::Ping(wire::Ping { nonce: Some(2) }))
        .await;
    assert_eq!(
        mux.recv_for("long").await,
        Got::Frame(
            "long".into(),
            ServerFrame::Pong(wire::Pong { nonce: Some(2) })
        )
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_tab_with_1012_and_then_the_socket() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    for tab in ["a", "b"] {
        mux.open(tab, "ana").await;
        mux.join(tab, "doc:1", "null").await;
    }
    let shutdown = tokio::spawn(server.shutdown());
    let mut closed = Vec::new();
    let close = loop {
        match tokio::time::timeout(PATIENCE, mux.ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => {
                if let Some((tab, code)) = text.split_once('-')
                    && code.parse::<u16>().is_ok()
                {
                    closed.push((tab.to_owned(), code.to_owned()));
                }
            }
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close: {other:?}"),
        }
    };
    closed.sort();
    assert_eq!(
        closed,
        [("a".into(), "1012".into()), ("b".into(), "1012".into())]
    );
    assert_eq!(u16::from(close.unwrap().code), close_code::SERVICE_RESTART);
    shutdown.await.unwrap();
}

#[tokio::test]
async fn a_socket_without_tabs_is_closed_after_a_heartbeat() {
    let mut config = config();
    config.heartbeat_ms = 300;
    let server = support::start(&config).await;
    let mut mux = Mux::connect(&server).await;
    let close = loop {
        match tokio::time::timeout(PATIENCE, mux.ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close: {other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), close_code::UNAUTHENTICATED);
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_tab_is_closed_alone() {
    let mut config = config();
    config.heartbeat_ms = 300;
    let server = support::start(&config).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("quiet", "ana").await;
    mux.open("talks", "ana").await;
    let mut nonce = 0;
    let closed = loop {
        nonce += 1;
        mux.send(
            "talks",
            &ClientFrame::Ping(wire::Ping { nonce: Some(nonce) }),
        )
        .await;
        match tokio::time::timeout(Duration::from_millis(100), mux.recv()).await {
            Ok(Got::Closed(tab, code)) => break (tab, code),
            Ok(Got::Frame(tab, ServerFrame::Error(error))) => {
                assert_eq!(
                    (tab.as_str(), error.code),
                    ("quiet", ErrorCode::IdleTimeout)
                );
            }
            _ => {}
        }
    };
    assert_eq!(closed, ("quiet".to_owned(), close_code::IDLE_TIMEOUT));
    mux.send("talks", &ClientFrame::Ping(wire::Ping { nonce: Some(0) }))
        .await;
    mux.frames_until("talks", |f| {
        matches!(f, ServerFrame::Pong(wire::Pong { nonce: Some(0) }))
    })
    .await;
    server.shutdown().await;
}

/// The examples of `docs/PROTOCOL.md`, "Several tabs on one socket": every client line reads as
/// an envelope, every server line is a tab id and a frame the codec reads.
#[test]
fn the_protocol_examples_read() {
    let protocol = include_str!("../../docs/PROTOCOL.md");
    let section = protocol
        .split("## Several tabs on one socket")
        .nth(1)
        .unwrap();
    let section = section.split("\n## ").next().unwrap();
    let mut lines = 0;
    for line in section.lines() {
        if let Some(message) = line.strip_prefix("→ ") {
            wire::MuxIn::parse(message).unwrap();
            lines += 1;
        } else if let Some(message) = line.strip_prefix("← ") {
            let (tab, rest) = message.split_at(message.find([':', '-']).unwrap());
            assert!(tab.len() <= wire::MAX_TAB_ID_BYTES);
            match rest.split_at(1) {
                (":", frame) => drop(ServerFrame::decode(frame).unwrap()),
                (_, code) => drop(code.parse::<u16>().unwrap()),
            }
            lines += 1;
        }
    }
    assert!(lines >= 10, "the examples are found");
}

/// Reads until the socket's close frame: the last text message before it, and the close.
async fn last_text_and_close(mux: &mut Mux) -> (Option<String>, Option<CloseFrame>) {
    let mut error = None;
    loop {
        match tokio::time::timeout(PATIENCE, mux.ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => error = Some(text.to_string()),
            Some(Ok(Message::Close(frame))) => return (error, frame),
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_message_over_the_hard_cap_closes_the_socket_with_1009() {
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("a", "ana").await;
    // The hard cap is 4 times the frame limit, at least 256 KiB.
    let _ = mux
        .ws
        .send(Message::text(format!("a:{}", "x".repeat(300 * 1024))))
        .await;
    let (error, close) = last_text_and_close(&mut mux).await;
    assert!(
        error
            .unwrap()
            .starts_with(r#":{"type":"error","code":"frame_too_large""#)
    );
    assert_eq!(u16::from(close.unwrap().code), close_code::MESSAGE_TOO_BIG);
    server.shutdown().await;
}

#[tokio::test]
async fn a_text_message_that_is_not_utf8_closes_the_socket_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = support::start(&config()).await;
    let mut mux = Mux::connect(&server).await;
    mux.open("a", "ana").await;
    let frame = Frame::message(vec![b'a', b':', 0xff], OpCode::Data(Data::Text), true);
    mux.ws.send(Message::Frame(frame)).await.unwrap();
    let (error, close) = last_text_and_close(&mut mux).await;
    assert!(
        error
            .unwrap()
            .starts_with(r#":{"type":"error","code":"bad_frame""#)
    );
    assert_eq!(u16::from(close.unwrap().code), close_code::INVALID_PAYLOAD);
    server.shutdown().await;
}
