//! Helpers for tests that run the real server over real TCP.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a different subset.

pub mod certificates;
pub mod chaos;
pub mod redis;

use std::time::Duration;

use chorus_sdk::client::ClientEvent;
use chorus_sdk::native::Events;
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

/// Waits for the native client's event that `done` picks, 10 s at most in all (one deadline:
/// a client that keeps retrying sends state events forever). Every event seen, the picked one
/// last.
#[allow(clippy::disallowed_methods)] // A test reads the clock for its deadline.
pub async fn wait_for(
    events: &mut Events,
    what: &str,
    mut done: impl FnMut(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s; saw {seen:#?}"))
            .expect("client running");
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
}

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

/// The API key the tests' servers take for the backend REST API.
pub const BACKEND_KEY: &str = "backend-secret-key";

/// A test configuration that takes [`BACKEND_KEY`] for the backend REST API.
pub fn backend_config() -> Config {
    let mut config = config();
    config.api_key = Some(BACKEND_KEY.into());
    config
}

/// A node of a deployment on `redis` (`--redis`), with the backend API key.
pub fn redis_config(redis: &redis::RedisServer) -> Config {
    let mut config = backend_config();
    config.redis = Some(redis.url());
    config
}

/// Ana and Ben, both joined to `room`; ana has taken Ben's presence join, so both start quiet.
pub async fn two_members(server: &impl Addressed, room: &str) -> (Client, Client) {
    let mut ana = Client::connect(server, "ana").await;
    let mut ben = Client::connect(server, "ben").await;
    ana.join(room, None).await;
    ben.join(room, None).await;
    ana.recv().await; // ben's presence join
    (ana, ben)
}

/// A token for `user` with publish rights on every room, valid for an hour.
pub fn token(user: &str) -> String {
    token_with(user, &[("*", RoomRight::Publish)], 3600)
}

/// A token with specific grants and lifetime (negative = already expired).
pub fn token_with(user: &str, grants: &[(&str, RoomRight)], valid_secs: i64) -> String {
    let now = chorus_server::clock::unix_ms_now() as i64 / 1000;
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
                // Other rooms' traffic; `state` is what a node sends when its presence version
                // moved by more than one (it took another node's).
                ServerFrame::Presence(_)
                | ServerFrame::Typing(_)
                | ServerFrame::Event(_)
                | ServerFrame::Cursor(_)
                | ServerFrame::State(_) => continue,
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
        if_lock: None,
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

/// An HTTP response as a test sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }

    /// The error code of an error body.
    pub fn error_code(&self) -> wire::ErrorCode {
        self.json::<wire::ErrorBody>().code
    }
}

/// The room's locks through the REST API (`GET /v1/rooms/{room}/locks`) with `auth` (an API key
/// or a user token), asserting a 200 and that the body names the room.
pub async fn rest_locks(server: &impl Addressed, room: &str, auth: &str) -> Vec<wire::LockInfo> {
    let auth = format!("Bearer {auth}");
    let path = format!("/v1/rooms/{room}/locks");
    let response = http(server, "GET", &path, &[("Authorization", &auth)], None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json::<wire::LocksBody>();
    assert_eq!(body.room.as_str(), room);
    body.locks
}

/// A minimal HTTP/1.1 request over a real socket (`Connection: close`).
pub async fn http(
    server: &impl Addressed,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE * 6, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// A polling-transport client that tracks its cursors like the SDK does.
pub struct PollClient {
    pub addr: std::net::SocketAddr,
    pub token: String,
    pub session: String,
    pub cursors: std::collections::BTreeMap<String, wire::PollCursor>,
    /// Every event seq delivered per room, in order, exactly as the app would see them.
    pub delivered: std::collections::BTreeMap<String, Vec<u64>>,
    pub typing: std::collections::BTreeMap<String, Vec<String>>,
    pub presence: std::collections::BTreeMap<String, Vec<String>>,
    /// The others' live cursors per room from `state` frames: `conn:user:value`.
    pub live_cursors: std::collections::BTreeMap<String, Vec<String>>,
}

impl PollClient {
    pub fn new(server: &impl Addressed, user: &str, session: &str) -> PollClient {
        PollClient {
            addr: server.local_addr(),
            token: token(user),
            session: session.into(),
            cursors: Default::default(),
            delivered: Default::default(),
            typing: Default::default(),
            presence: Default::default(),
            live_cursors: Default::default(),
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `POST /v1/poll` with these frames; applies and returns the reply frames.
    pub async fn send(&mut self, frames: Vec<ClientFrame>) -> Vec<ServerFrame> {
        let body = serde_json::to_string(&wire::PollSend {
            session: self.session.clone(),
            frames,
        })
        .unwrap();
        let auth = self.auth();
        let response = http(
            &Remote(self.addr),
            "POST",
            "/v1/poll",
            &[("Authorization", &auth)],
            Some(&body),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        let frames = response.json::<wire::PollFrames>().frames;
        self.apply(&frames);
        frames
    }

    /// Starts following `room` (a `join` over POST), keeping an existing cursor.
    pub async fn join(&mut self, room: &str) -> Vec<ServerFrame> {
        let name = wire::RoomName::parse(room).unwrap();
        self.cursors
            .entry(room.to_owned())
            .or_insert(wire::PollCursor {
                room: name.clone(),
                cursor: None,
                presence_version: 0,
                typing_version: 0,
                cursor_version: 0,
                stream_version: 0,
                lock_version: Some(0),
            });
        self.send(vec![ClientFrame::Join(wire::Join {
            room: name,
            meta: wire::Json::null(),
            resume: None,
        })])
        .await
    }

    /// The `GET /v1/poll` path for the current cursors.
    pub fn poll_path(&self, wait_ms: u64) -> String {
        let mut path = format!("/v1/poll?session={}&wait={wait_ms}", self.session);
        for cursor in self.cursors.values() {
            path.push_str("&r=");
            path.push_str(&cursor.encode().replace('@', "%40").replace('/', "%2F"));
        }
        path
    }

    /// One long poll; applies and returns its frames.
    pub async fn poll(&mut self, wait_ms: u64) -> Vec<ServerFrame> {
        let auth = self.auth();
        let response = http(
            &Remote(self.addr),
            "GET",
            &self.poll_path(wait_ms),
            &[("Authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        let frames = response.json::<wire::PollFrames>().frames;
        self.apply(&frames);
        frames
    }

    pub fn apply(&mut self, frames: &[ServerFrame]) {
        for frame in frames {
            match frame {
                ServerFrame::Joined(joined) => {
                    let cursor = self
                        .cursors
                        .get_mut(joined.room.as_str())
                        .expect("joined a followed room");
                    if cursor.cursor.is_none() {
                        cursor.cursor = Some(wire::Cursor {
                            epoch: joined.epoch,
                            seq: joined.head,
                        });
                    }
                }
                ServerFrame::Event(event) => {
                    let cursor = self.cursors.get_mut(event.room.as_str()).unwrap();
                    let position = cursor.cursor.as_mut().expect("events come after a cursor");
                    let seq = event.seq.unwrap();
                    assert_eq!(
                        seq,
                        position.seq + 1,
                        "polling delivers without gaps or doubles"
                    );
                    position.seq = seq;
                    self.delivered
                        .entry(event.room.to_string())
                        .or_default()
                        .push(seq);
                }
                ServerFrame::Reset(reset) => {
                    let cursor = self.cursors.get_mut(reset.room.as_str()).unwrap();
                    cursor.cursor = Some(wire::Cursor {
                        epoch: reset.epoch,
                        seq: reset.head,
                    });
                }
                ServerFrame::State(state) => {
                    let cursor = self.cursors.get_mut(state.room.as_str()).unwrap();
                    if let Some(presence) = &state.presence {
                        cursor.presence_version = presence.version;
                        self.presence.insert(
                            state.room.to_string(),
                            presence.users.iter().map(|u| u.user.clone()).collect(),
                        );
                    }
                    if let Some(locks) = &state.locks {
                        cursor.lock_version = Some(locks.version);
                    }
                    if let Some(streams) = state.streams {
                        cursor.stream_version = streams;
                    }
                    if let Some(typing) = &state.typing {
                        cursor.typing_version = typing.version;
                        self.typing
                            .insert(state.room.to_string(), typing.users.clone());
                    }
                    if let Some(cursors) = &state.cursors {
                        cursor.cursor_version = state.cursor_version.expect("with its version");
                        let seen = wire::LiveCursor::read_list(cursors)
                            .unwrap()
                            .iter()
                            .map(|c| format!("{}:{}:{}", c.conn, c.user, c.value.as_text()))
                            .collect();
                        self.live_cursors.insert(state.room.to_string(), seen);
                    }
                }
                _ => {}
            }
        }
    }

    /// The client's cursor for `room`.
    pub fn cursor(&self, room: &str) -> wire::Cursor {
        self.cursors[room].cursor.expect("a cursor")
    }
}

/// The real `chorus-server` binary as a child process (bound to a free port, dev secret),
/// killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// What it logged up to and including the line saying where it listens.
    pub startup_log: Vec<String>,
}

impl ServerProcess {
    /// Starts it with `args` added and waits until it logs the address it listens on.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_after(":", args)
    }

    /// Starts it from `sh`, which first runs `shell` (e.g. `ulimit -n 256`) and then execs the
    /// server (so the child's pid is the server's).
    pub fn start_after(shell: &str, args: &[&str]) -> ServerProcess {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new("sh")
            .args(["-c", &format!("{shell}; exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_chorus-server"))
            .args(["--bind", "127.0.0.1:0", "--jwt-secret", DEV_SECRET])
            .args(args)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn,chorus_server=info")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut startup_log = Vec::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server logs that it listens")
                .unwrap();
            let addr = line
                .split("addr=")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap());
            startup_log.push(line);
            if let Some(addr) = addr {
                break addr;
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess {
            child,
            addr,
            startup_log,
        }
    }

    /// Stops it (SIGTERM when `graceful`, else SIGKILL) and returns how it exited.
    pub fn stop(mut self, graceful: bool) -> std::process::ExitStatus {
        if graceful {
            let pid = self.child.id().to_string();
            assert!(
                std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        } else {
            let _ = self.child.kill();
        }
        self.child.wait().unwrap()
    }
}

impl Addressed for ServerProcess {
    fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON nested `levels` deep (arrays), e.g. 2 gives `[[]]`.
pub fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// Frames a client may get wrong (and one at the nesting limit that is right), each with the
/// answer it gets on either transport, as [`answer_line`] renders it, from a member of `doc`.
/// A publish whose id reads is nacked with it (and its room, `-` when that does not read).
pub fn frames_answered_alone() -> Vec<(String, &'static str)> {
    vec![
        (
            r#"{"type":"publish","room":"doc","id":"p-durable","body":1,"durable":"yes"}"#.into(),
            "nack doc p-durable bad_frame",
        ),
        (
            r#"{"type":"publish","room":"doc","id":"p-if-seq","body":1,"if_seq":-1}"#.into(),
            "nack doc p-if-seq bad_frame",
        ),
        (
            r#"{"type":"publish","room":"doc","id":"p-no-body"}"#.into(),
            "nack doc p-no-body bad_frame",
        ),
        (
            r#"{"type":"publish","room":"bad room","id":"p-room","body":1}"#.into(),
            "nack - p-room bad_frame",
        ),
        (
            r#"{"type":"publish","room":"doc","id":"bad id!","body":1}"#.into(),
            "error bad_frame",
        ),
        (
            r#"{"type":"shout","room":"doc"}"#.into(),
            "error unknown_type",
        ),
        (r#"{"type":"join"}"#.into(), "error bad_frame"),
        // The frame is level 1 of the nesting limit (128), its body level 2.
        (
            format!(
                r#"{{"type":"publish","room":"doc","id":"deep","body":{}}}"#,
                nested(127)
            ),
            "ack doc deep",
        ),
    ]
}

/// One line for an answer to a client's own frame: `ack ROOM ID`, `nack ROOM ID CODE` (room
/// `-` when absent) or `error CODE`; `None` for other frames.
pub fn answer_line(frame: &ServerFrame) -> Option<String> {
    match frame {
        ServerFrame::Ack(ack) => Some(format!("ack {} {}", ack.room, ack.id)),
        ServerFrame::Nack(nack) => {
            let room = nack.room.as_ref().map_or("-".to_owned(), |r| r.to_string());
            Some(format!("nack {room} {} {}", nack.id, nack.code))
        }
        ServerFrame::Error(error) => Some(format!("error {}", error.code)),
        _ => None,
    }
}
