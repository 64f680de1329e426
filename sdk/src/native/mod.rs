//! The tokio driver (feature `native`): runs the [`Client`] core with real sockets, HTTP and
//! timers, so Rust programs, load generators and tests use the same logic as the browser.
//!
//! [`NativeClient`] is the ergonomic handle; one background task owns the core and does all
//! I/O for it. It must stay thin: every decision is the core's.
//!
//! Both transports speak plain (`http://`, `ws://`) and TLS (`https://`, `wss://`, rustls);
//! which CAs a TLS client trusts is [`TlsOptions`] (`tls.rs`).

mod http;
mod storage;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub use http::{HttpAnswer, HttpApi};
pub use storage::{FileStorage, MemoryStorage, Storage};
pub use tls::{TlsOptions, TlsOptionsError};

use tls::Connector;

use crate::client::{
    Client, ClientConfig, ClientEvent, HttpCall, HttpResult, OUTBOX_KEY, Output, PublishError,
    Restored, TRANSPORT_KEY,
};
use crate::wire::{
    self, ClientFrame, Cursor, EventId, Json, RoomName, ServerFrame, StreamStepBody,
};

/// What the app asks of the driver task.
#[derive(Debug)]
enum Command {
    Join(RoomName, Json, Option<Cursor>),
    Leave(RoomName),
    Publish(
        RoomName,
        Json,
        oneshot::Sender<Result<EventId, PublishError>>,
    ),
    /// A publish stored only while the publisher holds this lock grant.
    PublishFenced(
        RoomName,
        Json,
        wire::LockFence,
        oneshot::Sender<Result<EventId, PublishError>>,
    ),
    Lock(LockCommand, oneshot::Sender<Result<EventId, PublishError>>),
    Typing(RoomName, bool),
    Presence(RoomName, Json),
    Online(bool),
    Token(String),
    Close,
    SignOut,
    Cursor(RoomName, Json),
    Stream(RoomName, Json, oneshot::Sender<Result<(), PublishError>>),
}

/// A lock request (see [`Client::lock`] and [`Client::unlock`]).
#[derive(Debug)]
enum LockCommand {
    Acquire {
        room: RoomName,
        name: EventId,
        ttl: Duration,
        token: Option<u64>,
        auto_renew: bool,
    },
    Release {
        room: RoomName,
        name: EventId,
        token: u64,
    },
}

/// What socket and HTTP tasks report back.
#[derive(Debug)]
enum Report {
    SocketOpen(u64),
    SocketFrame(u64, ServerFrame),
    SocketClosed(u64, Option<u16>),
    Http(u64, HttpResult),
}

/// A Chorus client for Rust programs: a cheap, cloneable handle to a background task that
/// runs the core. Its events come through the [`Events`] returned with it.
///
/// Join a room, publish, and read events until the publish is stored (a complete program is
/// `examples/native_client.rs`):
///
/// ```no_run
/// use chorus_sdk::client::{ClientConfig, ClientEvent};
/// use chorus_sdk::native::{MemoryStorage, NativeClient};
/// use chorus_sdk::wire::{Json, RoomName};
///
/// # async fn run(token: String) {
/// let (client, mut events) = NativeClient::start(
///     "http://127.0.0.1:8080",
///     token, // a JWT from your backend
///     ClientConfig::default(),
///     Box::new(MemoryStorage::default()),
/// );
/// let room = RoomName::parse("doc:1").unwrap();
/// client.join(room.clone(), Json::null());
/// // Queued at once (kept while offline), sent when connected.
/// let id = client
///     .publish(room, Json::from_text(r#"{"text":"hello"}"#).unwrap())
///     .await
///     .unwrap();
/// while let Some(event) = events.next().await {
///     match event {
///         ClientEvent::Event { event, own: false } => println!("{}: {}", event.from, event.body.as_text()),
///         ClientEvent::Acked { id: acked, seq, .. } if acked == id => break, // stored as `seq`
///         ClientEvent::TokenNeeded => client.set_token("a fresh JWT".to_owned()),
///         _ => {}
///     }
/// }
/// client.close();
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct NativeClient {
    commands: mpsc::UnboundedSender<Command>,
    last_error: LastError,
}

/// The latest transport failure, shared by the handle and the driver's tasks.
type LastError = Arc<Mutex<Option<String>>>;

/// The events of one [`NativeClient`], in order.
#[derive(Debug)]
pub struct Events {
    events: mpsc::UnboundedReceiver<ClientEvent>,
}

impl Events {
    /// The next event; `None` once the client task has stopped.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }
}

impl NativeClient {
    /// Starts a client for the server at `base_url` (`http://host:port`, or `https://` with
    /// the platform's CAs; see [`NativeClient::start_with_tls`] for others), with this token,
    /// settings and storage (its outbox and transport memory are restored from it).
    ///
    /// Must be called inside a tokio runtime (it spawns the client's task). With no server
    /// there, publishes wait in the outbox:
    ///
    /// ```
    /// use chorus_sdk::client::{ClientConfig, ClientEvent};
    /// use chorus_sdk::native::{MemoryStorage, NativeClient};
    /// use chorus_sdk::wire::{Json, RoomName};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let storage = Box::new(MemoryStorage::default());
    /// let (client, mut events) =
    ///     NativeClient::start("http://127.0.0.1:9", "token".into(), ClientConfig::default(), storage);
    /// let room = RoomName::parse("doc:1").unwrap();
    /// client.join(room.clone(), Json::null());
    /// let id = client.publish(room, Json::from_text("1").unwrap()).await.unwrap();
    /// // Shown at once as pending; it stays in the outbox until a server stores it.
    /// loop {
    ///     if let Some(ClientEvent::Pending { id: pending, .. }) = events.next().await {
    ///         assert_eq!(pending, id);
    ///         break;
    ///     }
    /// }
    /// client.close();
    /// # });
    /// ```
    pub fn start(
        base_url: &str,
        token: String,
        config: ClientConfig,
        storage: Box<dyn Storage>,
    ) -> (NativeClient, Events) {
        NativeClient::start_with_tls(base_url, token, config, storage, TlsOptions::default())
    }

    /// [`NativeClient::start`] for an `https://` server whose certificate the platform does
    /// not vouch for (a self-signed deployment): `tls` says which CAs to trust. A refused
    /// certificate is a failed connection attempt like any other (the state goes to
    /// `Reconnecting`); [`NativeClient::last_error`] says why.
    pub fn start_with_tls(
        base_url: &str,
        token: String,
        config: ClientConfig,
        storage: Box<dyn Storage>,
        tls: TlsOptions,
    ) -> (NativeClient, Events) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let restored = Restored {
            outbox: storage.load(OUTBOX_KEY),
            transport: storage.load(TRANSPORT_KEY),
        };
        let seed = entropy();
        let (now, unix_ms) = clock();
        // The core fails a call after `http_timeout` (plus `poll_wait` for a long poll); the
        // request itself is dropped a little later, so that it never outlives that.
        let http_limit = config.poll_wait + config.http_timeout + Duration::from_secs(1);
        let core = Client::new(config, token, now, unix_ms, seed, restored);
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let connector = Connector::new(base_url, &tls);
        let last_error = LastError::default();
        let driver = Driver {
            core,
            base: base_url.trim_end_matches('/').to_owned(),
            storage,
            sockets: HashMap::new(),
            http: HttpClient::builder(TokioExecutor::new()).build(connector.clone()),
            connector,
            last_error: Arc::clone(&last_error),
            reports: report_tx,
            events: event_tx,
            http_limit,
        };
        tokio::spawn(driver.run(command_rx, report_rx));
        (
            NativeClient {
                commands,
                last_error,
            },
            Events { events },
        )
    }

    /// Joins a room with a presence meta.
    pub fn join(&self, room: RoomName, meta: Json) {
        let _ = self.commands.send(Command::Join(room, meta, None));
    }

    /// Joins a room resuming from a cursor an earlier run saved (see [`Client::join_from`]):
    /// every event after it comes as [`ClientEvent::Event`], or a [`ClientEvent::Reset`] says
    /// the server's history cannot serve it. Save the position from [`ClientEvent::Joined`],
    /// [`ClientEvent::Reset`] and each event's seq to resume from it next time.
    pub fn join_from(&self, room: RoomName, meta: Json, cursor: Option<Cursor>) {
        let _ = self.commands.send(Command::Join(room, meta, cursor));
    }

    /// Leaves a room.
    pub fn leave(&self, room: RoomName) {
        let _ = self.commands.send(Command::Leave(room));
    }

    /// Publishes a durable event; returns its id at once (the ack comes as [`ClientEvent::Acked`]).
    pub async fn publish(&self, room: RoomName, body: Json) -> Result<EventId, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Publish(room, body, reply))
            .map_err(|_| PublishError::Closed)?;
        answer.await.map_err(|_| PublishError::Closed)?
    }

    /// Publishes a durable event stored only while this user holds the lock grant `if_lock`
    /// (its name and fencing token); otherwise it fails with `lock_lost`
    /// ([`ClientEvent::PublishFailed`]). Returns its id at once.
    pub async fn publish_fenced(
        &self,
        room: RoomName,
        body: Json,
        if_lock: wire::LockFence,
    ) -> Result<EventId, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::PublishFenced(room, body, if_lock, reply))
            .map_err(|_| PublishError::Closed)?;
        answer.await.map_err(|_| PublishError::Closed)?
    }

    /// Asks for the lock `name` in a joined room for `ttl` (with `token`: renews that grant);
    /// with `auto_renew` the grant is renewed at half its TTL while held. Returns the request's
    /// id; the answer is [`ClientEvent::LockDone`] (the grant and its fencing token) or
    /// [`ClientEvent::LockFailed`] (`lock_held`: someone else holds it) with that id, and every
    /// change to the room's locks is a [`ClientEvent::Locks`]. Only while connected.
    pub async fn lock(
        &self,
        room: RoomName,
        name: EventId,
        ttl: Duration,
        token: Option<u64>,
        auto_renew: bool,
    ) -> Result<EventId, PublishError> {
        let request = LockCommand::Acquire {
            room,
            name,
            ttl,
            token,
            auto_renew,
        };
        self.lock_command(request).await
    }

    /// Releases the grant of lock `name` with fencing token `token` (and stops renewing it).
    /// Returns the request's id, answered like [`NativeClient::lock`]'s.
    pub async fn unlock(
        &self,
        room: RoomName,
        name: EventId,
        token: u64,
    ) -> Result<EventId, PublishError> {
        self.lock_command(LockCommand::Release { room, name, token })
            .await
    }

    async fn lock_command(&self, request: LockCommand) -> Result<EventId, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Lock(request, reply))
            .map_err(|_| PublishError::Closed)?;
        answer.await.map_err(|_| PublishError::Closed)?
    }

    /// Sends one step of a stream this client produces in `room` (see [`Client::stream`]):
    /// `step` is a [`StreamStepBody`](crate::wire::StreamStepBody). The stream's frames come back
    /// as [`ClientEvent::Stream`], to fold with [`StreamView`](crate::client::StreamView).
    pub async fn stream(&self, room: RoomName, step: &StreamStepBody) -> Result<(), PublishError> {
        let step = Json::encode(step);
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Stream(room, step, reply))
            .map_err(|_| PublishError::Closed)?;
        answer.await.map_err(|_| PublishError::Closed)?
    }

    /// Says whether the user is typing.
    pub fn typing(&self, room: RoomName, on: bool) {
        let _ = self.commands.send(Command::Typing(room, on));
    }

    /// Replaces this client's presence meta in a room.
    pub fn set_presence(&self, room: RoomName, meta: Json) {
        let _ = self.commands.send(Command::Presence(room, meta));
    }

    /// Replaces this client's live cursor in a room (`null` removes it); throttled to one
    /// frame per 50 ms, the last value always sent (see `Client::set_cursor`).
    pub fn set_cursor(&self, room: RoomName, value: Json) {
        let _ = self.commands.send(Command::Cursor(room, value));
    }

    /// Tells the client whether the network is there (as a browser's online/offline events do).
    pub fn set_online(&self, online: bool) {
        let _ = self.commands.send(Command::Online(online));
    }

    /// Hands over a fresh token (after [`ClientEvent::TokenNeeded`]).
    pub fn set_token(&self, token: String) {
        let _ = self.commands.send(Command::Token(token));
    }

    /// Why the latest connection attempt or HTTP call failed in transport (a refused TLS
    /// certificate, a refused TCP connection), e.g. `invalid peer certificate: UnknownIssuer`;
    /// `None` once a connection succeeds again. Refusals the server answers (a bad token,
    /// a refused publish) are [`ClientEvent`]s instead.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Closes the client.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// Closes the client and clears what its storage keeps for the user: the outbox (publishes
    /// still waiting are dropped, never sent) and the remembered transport. Cursors live only
    /// in memory and go with the client. The storage given to [`NativeClient::start`] belongs
    /// to one user (give each user their own, e.g. a [`FileStorage`] directory per user).
    pub fn sign_out(&self) {
        let _ = self.commands.send(Command::SignOut);
    }
}

#[allow(clippy::disallowed_methods)] // The driver is where the core's clock lives.
fn clock() -> (std::time::Instant, u64) {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    (std::time::Instant::now(), unix_ms)
}

#[allow(clippy::disallowed_methods)] // Seeding from the clock and the address space is enough for jitter and ids.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

struct Driver {
    core: Client,
    base: String,
    storage: Box<dyn Storage>,
    /// Frames to write, per open socket.
    sockets: HashMap<u64, mpsc::UnboundedSender<ClientFrame>>,
    http: HttpClient<Connector, Full<bytes::Bytes>>,
    connector: Connector,
    last_error: LastError,
    reports: mpsc::UnboundedSender<Report>,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// How long an HTTP request may run before it is dropped.
    http_limit: Duration,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        loop {
            self.flush();
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Close) | None => {
                        self.core.close(clock().0);
                        self.flush();
                        return;
                    }
                    Some(Command::SignOut) => {
                        self.core.close(clock().0);
                        self.flush();
                        // After the flush: a last save of the outbox must not bring it back.
                        self.storage.save(OUTBOX_KEY, "");
                        self.storage.save(TRANSPORT_KEY, "");
                        return;
                    }
                    Some(command) => self.command(command),
                },
                Some(report) = reports.recv() => self.report(report),
                () = sleep_until(deadline) => self.core.handle_timeout(clock().0),
            }
        }
    }

    fn command(&mut self, command: Command) {
        let now = clock().0;
        match command {
            Command::Join(room, meta, cursor) => self.core.join_from(now, room, meta, cursor),
            Command::Leave(room) => self.core.leave(now, room),
            Command::Publish(room, body, reply) => {
                let _ = reply.send(self.core.publish(now, room, body));
            }
            Command::PublishFenced(room, body, fence, reply) => {
                let result = self.core.publish_with(now, room, body, None, Some(fence));
                let _ = reply.send(result);
            }
            Command::Lock(request, reply) => {
                let result = match request {
                    LockCommand::Acquire {
                        room,
                        name,
                        ttl,
                        token,
                        auto_renew,
                    } => self.core.lock(now, room, name, ttl, token, auto_renew),
                    LockCommand::Release { room, name, token } => {
                        self.core.unlock(now, room, name, token)
                    }
                };
                let _ = reply.send(result);
            }
            Command::Stream(room, step, reply) => {
                let _ = reply.send(self.core.stream(now, room, step));
            }
            Command::Typing(room, on) => self.core.set_typing(now, room, on),
            Command::Presence(room, meta) => self.core.set_presence(now, room, meta),
            Command::Online(online) => self.core.handle_online(now, online),
            Command::Token(token) => self.core.handle_token(now, token),
            Command::Close | Command::SignOut => {}
            Command::Cursor(room, value) => self.core.set_cursor(now, room, value),
        }
    }

    fn report(&mut self, report: Report) {
        let now = clock().0;
        match report {
            Report::SocketOpen(link) => self.core.handle_socket_open(now, link),
            Report::SocketFrame(link, frame) => self.core.handle_socket_frame(now, link, frame),
            Report::SocketClosed(link, code) => {
                self.sockets.remove(&link);
                self.core.handle_socket_closed(now, link, code);
            }
            Report::Http(request, result) => self.core.handle_http_response(now, request, result),
        }
    }

    /// Carries out everything the core asked for and passes its events on.
    fn flush(&mut self) {
        loop {
            let outputs = self.core.poll_outputs();
            if outputs.is_empty() {
                break;
            }
            for output in outputs {
                self.perform(output);
            }
        }
        for event in self.core.poll_events() {
            let _ = self.events.send(event);
        }
    }

    fn perform(&mut self, output: Output) {
        match output {
            Output::OpenSocket { link, token } => self.open_socket(link, token),
            Output::Send { link, frame } => {
                if let Some(socket) = self.sockets.get(&link) {
                    let _ = socket.send(frame);
                }
            }
            Output::CloseSocket { link } => {
                self.sockets.remove(&link); // The writer ends, which closes the socket.
            }
            Output::Http {
                request,
                token,
                call,
            } => self.http_call(request, token, call),
            Output::Save { key, value } => self.storage.save(key, &value),
        }
    }

    fn open_socket(&mut self, link: u64, token: String) {
        let (frames, mut outgoing) = mpsc::unbounded_channel::<ClientFrame>();
        self.sockets.insert(link, frames);
        let reports = self.reports.clone();
        let url = format!("{}/v1/ws", self.base.replacen("http", "ws", 1));
        let connector = self.connector.clone();
        let last_error = Arc::clone(&self.last_error);
        tokio::spawn(async move {
            let request = url.into_client_request().map(|mut request| {
                let protocols =
                    format!("{}, {}{token}", wire::WS_SUBPROTOCOL, wire::WS_TOKEN_PREFIX);
                if let Ok(value) = HeaderValue::from_str(&protocols) {
                    request
                        .headers_mut()
                        .insert("Sec-WebSocket-Protocol", value);
                }
                request
            });
            let Ok(request) = request else {
                let _ = reports.send(Report::SocketClosed(link, None));
                return;
            };
            let opened = async {
                let stream = connector
                    .connect(request.uri())
                    .await
                    .map_err(|err| tls::describe(&err))?;
                tokio_tungstenite::client_async(request, stream)
                    .await
                    .map_err(|err| tls::describe(&err))
            };
            let socket = match opened.await {
                Ok((socket, _)) => {
                    set_last_error(&last_error, None);
                    socket
                }
                Err(reason) => {
                    set_last_error(&last_error, Some(reason));
                    let _ = reports.send(Report::SocketClosed(link, None));
                    return;
                }
            };
            let _ = reports.send(Report::SocketOpen(link));
            let (mut sink, mut stream) = socket.split();
            let code = loop {
                tokio::select! {
                    frame = outgoing.recv() => match frame {
                        Some(frame) => {
                            if sink.send(Message::text(frame.encode())).await.is_err() {
                                break None;
                            }
                        }
                        None => {
                            let _ = sink.close().await;
                            break None;
                        }
                    },
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            if let Ok(frame) = ServerFrame::decode(&text) {
                                let _ = reports.send(Report::SocketFrame(link, frame));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break None,
                    },
                }
            };
            let _ = reports.send(Report::SocketClosed(link, code));
        });
    }

    fn http_call(&mut self, request: u64, token: String, call: HttpCall) {
        let url = format!("{}{}", self.base, call.path());
        let client = self.http.clone();
        let reports = self.reports.clone();
        let last_error = Arc::clone(&self.last_error);
        let limit = self.http_limit;
        tokio::spawn(async move {
            let result = async {
                let request = hyper::Request::builder()
                    .method(call.method())
                    .uri(url)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(Full::new(bytes::Bytes::from(
                        call.body().unwrap_or_default(),
                    )))
                    .ok()?;
                let response = match tokio::time::timeout(limit, client.request(request))
                    .await
                    .ok()?
                {
                    Ok(response) => {
                        set_last_error(&last_error, None);
                        response
                    }
                    Err(err) => {
                        set_last_error(&last_error, Some(tls::describe(&err)));
                        return None;
                    }
                };
                let status = response.status().as_u16();
                let bytes = response.into_body().collect().await.ok()?.to_bytes();
                let text = std::str::from_utf8(&bytes).ok()?;
                Some(call.read_response(status, text))
            }
            .await
            .unwrap_or(HttpResult::Failed);
            let _ = reports.send(Report::Http(request, result));
        });
    }
}

fn set_last_error(last_error: &LastError, reason: Option<String>) {
    *last_error
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = reason;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signing out drops the user's waiting publishes and remembered transport from storage,
    /// where closing keeps them for the next start.
    #[test]
    fn sign_out_clears_the_users_storage_and_close_keeps_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for sign_out in [false, true] {
            let dir = std::env::temp_dir().join(format!(
                "chorus-sign-out-test-{}-{sign_out}",
                std::process::id()
            ));
            let storage = Box::new(FileStorage::new(&dir).unwrap());
            runtime.block_on(async {
                // Nothing listens on port 9: the publish waits in the outbox.
                let (client, mut events) = NativeClient::start(
                    "http://127.0.0.1:9",
                    "token".into(),
                    ClientConfig::default(),
                    storage,
                );
                let room = RoomName::parse("r").unwrap();
                client.join(room.clone(), Json::from_text("null").unwrap());
                let publishing = client.publish(room, Json::from_text("1").unwrap());
                publishing.await.unwrap();
                if sign_out {
                    client.sign_out();
                } else {
                    client.close();
                }
                while events.next().await.is_some() {}
            });
            let after = FileStorage::new(&dir).unwrap().load(OUTBOX_KEY);
            let _ = std::fs::remove_dir_all(&dir);
            if sign_out {
                assert_eq!(after, None, "signing out cleared the outbox");
            } else {
                assert!(after.unwrap().contains("\"r\""), "closing kept the outbox");
            }
        }
    }
}
