//! One load-generator connection, in either protocol: open and authenticate, join a room,
//! then a task per connection that counts deliveries, answers heartbeats and publishes when
//! told to. The same code path serves every server under test, so the generator's own cost
//! per delivery is the same for all of them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chorus_sdk::wire::{self, ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::engineio::{self, Incoming};
use crate::payload;

/// A WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// The wire protocol of a server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Chorus frames (`docs/PROTOCOL.md`) on `/v1/ws`.
    Chorus,
    /// Socket.IO v5 over Engine.IO v4 on `/socket.io/`.
    SocketIo,
}

/// How long any handshake step may take before the connection counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections one source address carries before the next one (127.0.0.2, ...) is used:
/// well inside the kernel's ephemeral port range for one source address.
pub const CONNECTIONS_PER_SOURCE: usize = 20_000;

/// Microseconds on the generator's clock (since its first reading).
#[allow(clippy::disallowed_methods)] // The generator is a driver: it reads the clock.
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The source address for the generator's `n`th connection: 127.0.0.1 for the first
/// [`CONNECTIONS_PER_SOURCE`], then 127.0.0.2, and so on (`None`: let the kernel choose, which
/// is 127.0.0.1 and keeps ports reusable across destinations).
pub fn source_for(n: usize) -> Option<Ipv4Addr> {
    let block = n / CONNECTIONS_PER_SOURCE;
    (block > 0).then(|| Ipv4Addr::new(127, 0, 0, 1 + (block.min(253) as u8)))
}

/// A signed Chorus token for `user` with `publish` on every room (the server runs `--dev`).
pub fn chorus_token(user: &str) -> String {
    let claims = wire::TokenClaims {
        sub: user.into(),
        name: None,
        exp: chorus_server::clock::unix_ms_now() / 1000 + 6 * 3600,
        rooms: [("*".to_owned(), wire::RoomRight::Publish)]
            .into_iter()
            .collect(),
    };
    chorus_server::auth::Authenticator::hs256(chorus_server::config::DEV_SECRET.as_bytes())
        .issue(&claims)
}

/// Opens connection number `n` to `addr` and authenticates it (Chorus: `hello` → `welcome`;
/// Socket.IO: `open` → `40` → connected). Returns the socket ready for `join`.
pub async fn open(protocol: Protocol, addr: SocketAddr, n: usize) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source_for(n) {
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    }
    let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr))
        .await
        .context("TCP connect timed out")??;
    stream.set_nodelay(true)?;
    let path = match protocol {
        Protocol::Chorus => "/v1/ws",
        Protocol::SocketIo => engineio::WEBSOCKET_PATH,
    };
    // Small buffers, as the Chorus server configures its own (the generator holds many sockets).
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}{path}"),
            stream,
            Some(config),
        ),
    )
    .await
    .context("WebSocket handshake timed out")??;
    match protocol {
        Protocol::Chorus => {
            let hello = ClientFrame::Hello(wire::Hello {
                token: chorus_token(&format!("u{n}")),
            });
            ws.send(Message::text(hello.encode())).await?;
            match ServerFrame::decode(&recv_text(&mut ws).await?)? {
                ServerFrame::Welcome(_) => {}
                other => bail!("expected welcome, got {other:?}"),
            }
        }
        Protocol::SocketIo => {
            match engineio::decode(&recv_text(&mut ws).await?)? {
                Incoming::Open { .. } => {}
                other => bail!("expected an Engine.IO open packet, got {other:?}"),
            }
            ws.send(Message::text(engineio::CONNECT)).await?;
            loop {
                match engineio::decode(&recv_text(&mut ws).await?)? {
                    Incoming::Connected => break,
                    Incoming::Ping => ws.send(Message::text(engineio::PONG)).await?,
                    Incoming::ConnectError(why) => bail!("Socket.IO connect refused: {why}"),
                    other => bail!("expected a Socket.IO connect, got {other:?}"),
                }
            }
        }
    }
    Ok(ws)
}

/// Joins `room` and waits for the answer. Chorus answers `joined` (returned, with the room's
/// epoch and head); the peers answer a `joined` event (`None`). `resume` is Chorus only.
pub async fn join(
    ws: &mut Ws,
    protocol: Protocol,
    room: &str,
    resume: Option<wire::Cursor>,
) -> Result<Option<wire::Joined>> {
    match protocol {
        Protocol::Chorus => {
            let join = ClientFrame::Join(wire::Join {
                room: wire::RoomName::parse(room)?,
                meta: wire::Json::null(),
                resume,
            });
            ws.send(Message::text(join.encode())).await?;
            loop {
                match ServerFrame::decode(&recv_text(ws).await?)? {
                    ServerFrame::Joined(joined) => return Ok(Some(joined)),
                    ServerFrame::Error(error) => bail!("join refused: {}", error.message),
                    _ => {} // Presence of earlier members, typing.
                }
            }
        }
        Protocol::SocketIo => {
            let name = serde_json::Value::from(room).to_string();
            ws.send(Message::text(engineio::encode_event("join", &[&name])))
                .await?;
            loop {
                match engineio::decode(&recv_text(ws).await?)? {
                    Incoming::Event { name, .. } if name == "joined" => return Ok(None),
                    Incoming::Ping => ws.send(Message::text(engineio::PONG)).await?,
                    _ => {}
                }
            }
        }
    }
}

/// The next text message (pings and pongs of the WebSocket layer are skipped).
pub async fn recv_text(ws: &mut Ws) -> Result<String> {
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, ws.next())
            .await
            .context("no frame within 30 s")?
            .context("the server closed the connection")??;
        match message {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Close(close) => bail!("the server closed the connection: {close:?}"),
            _ => {}
        }
    }
}

/// The publish frame for `room` with the benchmark body.
pub fn publish_frame(protocol: Protocol, room: &str, id: u64, step: u32, due_us: u64) -> String {
    let body = payload::body(step, due_us);
    match protocol {
        Protocol::Chorus => ClientFrame::Publish(wire::Publish {
            room: wire::RoomName::parse(room).expect("benchmark room names are valid"),
            id: wire::EventId::parse(format!("b{id}")).expect("benchmark ids are valid"),
            body: wire::Json::from_text(body).expect("the body is JSON"),
            durable: true,
            if_seq: None,
            if_lock: None,
        })
        .encode(),
        Protocol::SocketIo => {
            let room = serde_json::Value::from(room).to_string();
            engineio::encode_event("msg", &[&room, &body])
        }
    }
}

/// What every member connection of a scenario reports into.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency samples in microseconds, per scenario step.
    latencies: Mutex<Vec<Vec<u32>>>,
    /// Refusals: Chorus `nack`s and `error`s, Socket.IO connect errors.
    pub refusals: AtomicU64,
    /// Connections the server closed (or that failed) while the scenario ran.
    pub closed: AtomicU64,
}

impl Tally {
    /// Records one delivery of `step` that took `latency_us`.
    pub fn record(&self, step: u32, latency_us: u64) {
        let mut latencies = self.latencies.lock().expect("no panics while locked");
        let step = step as usize;
        if latencies.len() <= step {
            latencies.resize_with(step + 1, Vec::new);
        }
        latencies[step].push(latency_us.min(u64::from(u32::MAX)) as u32);
    }

    /// Deliveries recorded for `step` so far.
    pub fn delivered(&self, step: u32) -> usize {
        let latencies = self.latencies.lock().expect("no panics while locked");
        latencies.get(step as usize).map_or(0, Vec::len)
    }

    /// Takes the latency samples of `step`.
    pub fn take(&self, step: u32) -> Vec<u32> {
        let mut latencies = self.latencies.lock().expect("no panics while locked");
        latencies
            .get_mut(step as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// What a member connection's task is told to do.
#[derive(Debug)]
pub enum Command {
    /// Publish the benchmark body to the member's room.
    Publish {
        /// A unique id (Chorus dedupes by it).
        id: u64,
        /// The scenario step.
        step: u32,
        /// When the publish was due, on the generator's clock (open loop: the latency of a
        /// publish the generator sent late includes its lateness).
        due_us: u64,
    },
}

/// A joined connection whose task counts deliveries; dropping it closes the connection.
#[derive(Debug)]
pub struct Member {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    /// Spawns the task that runs a joined connection until the member is dropped.
    pub fn spawn(ws: Ws, protocol: Protocol, room: String, tally: Arc<Tally>) -> Member {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_member(ws, protocol, room, tally, receiver));
        Member { commands, task }
    }

    /// Asks the member to publish.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_member(
    mut ws: Ws,
    protocol: Protocol,
    room: String,
    tally: Arc<Tally>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    // Chorus needs a frame every heartbeat (the benchmark runs it with 60 s); the peers ping
    // and the member answers.
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    let ping = ClientFrame::Ping(wire::Ping::default()).encode();
    loop {
        let sent = tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some((step, due_us)) = payload::scan(text.as_str()) {
                        tally.record(step, now_us().saturating_sub(due_us));
                        Ok(())
                    } else {
                        answer(&mut ws, protocol, text.as_str(), &tally).await
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => Ok(()),
            },
            command = commands.recv() => match command {
                Some(Command::Publish { id, step, due_us }) => {
                    ws.send(Message::text(publish_frame(protocol, &room, id, step, due_us))).await
                }
                None => return,
            },
            _ = heartbeat.tick(), if protocol == Protocol::Chorus => {
                ws.send(Message::text(ping.clone())).await
            }
        };
        if sent.is_err() {
            tally.closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Handles a frame that carries no benchmark body: heartbeats and refusals.
async fn answer(
    ws: &mut Ws,
    protocol: Protocol,
    text: &str,
    tally: &Tally,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    match protocol {
        Protocol::Chorus => {
            if let Ok(ServerFrame::Nack(_) | ServerFrame::Error(_)) = ServerFrame::decode(text) {
                tally.refusals.fetch_add(1, Ordering::Relaxed);
            }
        }
        Protocol::SocketIo => match engineio::decode(text) {
            Ok(Incoming::Ping) => return ws.send(Message::text(engineio::PONG)).await,
            Ok(Incoming::ConnectError(_)) => {
                tally.refusals.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_addresses() {
        fn check(n: usize, expect: Option<[u8; 4]>) {
            assert_eq!(source_for(n), expect.map(Ipv4Addr::from), "connection {n}");
        }
        check(0, None);
        check(CONNECTIONS_PER_SOURCE - 1, None);
        check(CONNECTIONS_PER_SOURCE, Some([127, 0, 0, 2]));
        check(2 * CONNECTIONS_PER_SOURCE + 5, Some([127, 0, 0, 3]));
        check(usize::MAX / 2, Some([127, 0, 0, 254]));
    }

    #[test]
    fn publish_frames_carry_the_body() {
        fn check(protocol: Protocol, prefix: &str) {
            let frame = publish_frame(protocol, "fan", 7, 2, 99);
            assert!(frame.starts_with(prefix), "{frame}");
            assert_eq!(payload::scan(&frame), Some((2, 99)), "{frame}");
        }
        check(
            Protocol::Chorus,
            r#"{"type":"publish","room":"fan","id":"b7","body":{"bench":[2,99]"#,
        );
        check(Protocol::SocketIo, r#"42["msg","fan",{"bench":[2,99]"#);
    }

    #[test]
    fn tallies_keep_steps_apart() {
        let tally = Tally::default();
        tally.record(1, 5);
        tally.record(1, 7);
        tally.record(0, u64::MAX);
        assert_eq!(tally.delivered(1), 2);
        assert_eq!(tally.delivered(3), 0);
        assert_eq!(tally.take(0), vec![u32::MAX]);
        assert_eq!(tally.take(1), vec![5, 7]);
        assert_eq!(tally.delivered(1), 0);
    }
}
