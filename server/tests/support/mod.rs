//! Helpers for tests that run the real server over real TCP.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different subset.

use std::time::Duration;

use chorus_sdk::wire::{self, ClientFrame, RoomRight, ServerFrame, TokenClaims};
use chorus_server::RunningServer;
use chorus_server::auth::Authenticator;
use chorus_server::config::{Config, DEV_SECRET};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Anything with an address a client can connect to.
pub trait Addressed {
    fn local_addr(&self) -> std::net::SocketAddr;
}

impl Addressed for RunningServer {
    fn local_addr(&self) -> std::net::SocketAddr {
        RunningServer::local_addr(self)
    }
}

/// A server running in another process.
pub struct Remote(pub std::net::SocketAddr);

impl Addressed for Remote {
    fn local_addr(&self) -> std::net::SocketAddr {
        self.0
    }
}

/// How long a test waits for a frame that should come.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Starts a server on 127.0.0.1:0 with `config`.
pub async fn start(config: &Config) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    chorus_server::start(config, listener)
        .await
        .expect("server starts")
}

/// A test configuration: memory store, dev secret.
pub fn config() -> Config {
    Config::for_tests()
}

/// A token for `user` with publish rights on every room, valid for an hour.
pub fn token(user: &str) -> String {
    token_with(user, &[("*", RoomRight::Publish)], 3600)
}

/// A token with specific grants and lifetime (negative = already expired).
pub fn token_with(user: &str, grants: &[(&str, RoomRight)], valid_secs: i64) -> String {
    let now = chorus_server::unix_ms_now() as i64 / 1000;
    Authenticator::hs256(DEV_SECRET.as_bytes()).issue(&TokenClaims {
        sub: user.into(),
        name: Some(user.to_uppercase()),
        exp: (now + valid_secs).max(1) as u64,
        rooms: grants.iter().map(|&(p, r)| (p.to_owned(), r)).collect(),
    })
}

/// A raw WebSocket client speaking JSON frames.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub user: String,
}

impl Client {
    /// Opens a socket without authenticating.
    pub async fn open(server: &impl Addressed) -> Client {
        let url = format!("ws://{}/v1/ws", server.local_addr());
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket opens");
        Client {
            ws,
            user: String::new(),
        }
    }

    /// Connects with a tiny kernel receive buffer (so backpressure shows up quickly), then
    /// authenticates like [`Client::connect`].
    pub async fn connect_small_buffer(server: &impl Addressed, user: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.local_addr()).await.unwrap();
        let url = format!("ws://{}/v1/ws", server.local_addr());
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        let mut client = Client {
            ws,
            user: user.into(),
        };
        client
            .send(&ClientFrame::Hello(wire::Hello { token: token(user) }))
            .await;
        assert!(matches!(client.recv().await, ServerFrame::Welcome(_)));
        client
    }

    /// Connects and authenticates with a `hello` frame; returns after `welcome`.
    pub async fn connect(server: &impl Addressed, user: &str) -> Client {
        let mut client = Client::open(server).await;
        client.user = user.into();
        client
            .send(&ClientFrame::Hello(wire::Hello { token: token(user) }))
            .await;
        match client.recv().await {
            ServerFrame::Welcome(welcome) => assert_eq!(welcome.user, user),
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    /// Connects with the token in the `Sec-WebSocket-Protocol` header.
    pub async fn connect_with_header(
        server: &RunningServer,
        token: &str,
    ) -> (Client, Option<String>) {
        let mut request = format!("ws://{}/v1/ws", server.local_addr())
            .into_client_request()
            .unwrap();
        let protocols = format!("{}, {}{token}", wire::WS_SUBPROTOCOL, wire::WS_TOKEN_PREFIX);
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols).unwrap(),
        );
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket opens");
        let selected = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            Client {
                ws,
                user: String::new(),
            },
            selected,
        )
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&frame.encode()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next frame (pongs included); panics after [`PATIENCE`].
    pub async fn recv(&mut self) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {PATIENCE:?}", self.user))
                .expect("socket open")
                .expect("socket healthy");
            match message {
                Message::Text(text) => {
                    return ServerFrame::decode(&text).expect("valid server frame");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("{}: expected a text frame, got {other:?}", self.user),
            }
        }
    }

    /// Frames until (and including) the first one `stop` accepts.
    pub async fn recv_until(&mut self, stop: impl Fn(&ServerFrame) -> bool) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = stop(&frame);
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Asserts nothing but `allowed` frames arrive for `quiet`.
    pub async fn expect_quiet(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.ws.next()).await {
            panic!("{}: expected silence, got {message:?}", self.user);
        }
    }

    /// Reads until the server closes; returns the close frame and the frames before it.
    pub async fn until_closed(&mut self) -> (Option<CloseFrame>, Vec<ServerFrame>) {
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(PATIENCE * 4, self.ws.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Text(text))) => frames.push(ServerFrame::decode(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return (frame, frames),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (None, frames),
            }
        }
    }

    /// Joins `room` (optionally resuming) and returns the `joined` frame.
    pub async fn join(&mut self, room: &str, resume: Option<wire::Cursor>) -> wire::Joined {
        let room = wire::RoomName::parse(room).unwrap();
        self.send(&ClientFrame::Join(wire::Join {
            room: room.clone(),
            meta: wire::Json::null(),
            resume,
        }))
        .await;
        loop {
            match self.recv().await {
                ServerFrame::Joined(joined) if joined.room == room => return joined,
                ServerFrame::Presence(_) | ServerFrame::Typing(_) | ServerFrame::Event(_) => {
                    continue;
                }
                other => panic!("{}: expected joined {room}, got {other:?}", self.user),
            }
        }
    }

    /// Publishes a durable event.
    pub async fn publish(&mut self, room: &str, id: &str, body: &str) {
        self.send(&publish(room, id, body)).await;
    }
}

/// A durable publish frame.
pub fn publish(room: &str, id: &str, body: &str) -> ClientFrame {
    ClientFrame::Publish(wire::Publish {
        room: wire::RoomName::parse(room).unwrap(),
        id: wire::EventId::parse(id).unwrap(),
        body: wire::Json::from_text(body).unwrap(),
        durable: true,
        if_seq: None,
    })
}

/// The seq of an event frame, or `None` for anything else.
pub fn event_seq(frame: &ServerFrame) -> Option<u64> {
    match frame {
        ServerFrame::Event(event) => event.seq,
        _ => None,
    }
}

/// Whether `frame` is the ack for `id`.
pub fn is_ack(frame: &ServerFrame, id: &str) -> bool {
    matches!(frame, ServerFrame::Ack(ack) if ack.id.as_str() == id)
}
