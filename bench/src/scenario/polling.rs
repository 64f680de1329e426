//! Scenario 3, long polling (Chorus only): resident memory per polling session holding a long
//! poll, and how fast an event reaches polling clients. Sessions sit in rooms of 10, each with
//! one keep-alive HTTP connection that always has a poll held; publishers on WebSocket send
//! events with a timestamp in the body.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chorus_sdk::wire::{self, ClientFrame, ServerFrame};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Protocol, Tally};
use crate::servers::Server;
use crate::{payload, stats};

/// Sessions per room.
const ROOM_SIZE: usize = 10;

/// Rooms one publishing WebSocket joins (the server's default `--max-rooms-per-conn` is 100).
const ROOMS_PER_PUBLISHER: usize = 100;

/// One run against a Chorus server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PollingRun {
    /// `(sessions holding a poll, server RSS in KiB)`, starting at 0.
    pub rss_kib: Vec<(usize, u64)>,
    /// Least-squares slope of RSS over held polls, KiB per held poll (session included).
    pub kib_per_held_poll: f64,
    /// Events published during the latency phase.
    pub published: u64,
    /// Deliveries expected (each event reaches the 10 sessions of its room).
    pub expected: u64,
    /// Deliveries received by the polls.
    pub delivered: u64,
    /// Delivery latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
}

/// One HTTP/1.1 keep-alive connection to the server.
struct Http {
    reader: BufReader<TcpStream>,
    token: String,
}

impl Http {
    async fn connect(addr: std::net::SocketAddr, token: String) -> Result<Http> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            reader: BufReader::new(stream),
            token,
        })
    }

    /// Sends one request and reads its answer: `(status, body)`. The server answers JSON
    /// bodies with a `Content-Length`.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String)> {
        let body_headers = body.map_or(String::new(), |b| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            )
        });
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n{body_headers}\r\n{}",
            self.token,
            body.unwrap_or("")
        );
        self.reader.get_mut().write_all(request.as_bytes()).await?;
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).await? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("bad status line")?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await?;
        Ok((status, String::from_utf8(body)?))
    }
}

/// A polling session's view of its room.
struct Session {
    http: Http,
    name: String,
    cursor: wire::PollCursor,
}

impl Session {
    async fn join(addr: std::net::SocketAddr, n: usize) -> Result<Session> {
        let mut http = Http::connect(addr, client::chorus_token(&format!("p{n}"))).await?;
        let name = format!("bench-session-{n:06}");
        let room = wire::RoomName::parse(format!("poll-{}", n / ROOM_SIZE))?;
        let send = wire::PollSend {
            session: name.clone(),
            frames: vec![ClientFrame::Join(wire::Join {
                room: room.clone(),
                meta: wire::Json::null(),
                resume: None,
            })],
        };
        let body = wire::json::to_string(&send);
        let (status, answer) = http.request("POST", "/v1/poll", Some(&body)).await?;
        if status != 200 {
            bail!("join answered {status}: {answer}");
        }
        let frames: wire::PollFrames = wire::json::from_str(&answer)?;
        let joined = frames
            .frames
            .into_iter()
            .find_map(|f| match f {
                ServerFrame::Joined(joined) => Some(joined),
                _ => None,
            })
            .context("no joined frame")?;
        let cursor = wire::PollCursor {
            room,
            cursor: Some(wire::Cursor {
                epoch: joined.epoch,
                seq: joined.head,
            }),
            presence_version: 0,
            typing_version: 0,
            cursor_version: 0,
            stream_version: 0,
            lock_version: Some(0),
        };
        Ok(Session { http, name, cursor })
    }

    /// One poll (`wait_ms` 0 answers at once); events are recorded in `tally`.
    async fn poll(&mut self, wait_ms: u64, tally: &Tally) -> Result<()> {
        let query = wire::PollQuery {
            session: self.name.clone(),
            wait_ms: Some(wait_ms),
            rooms: vec![self.cursor.clone()],
        };
        let path = ["/v1/poll?", &query.encode()].concat();
        let (status, answer) = self.http.request("GET", &path, None).await?;
        if status != 200 {
            bail!("poll answered {status}: {answer}");
        }
        let received_us = client::now_us();
        for frame in wire::json::from_str::<wire::PollFrames>(&answer)?.frames {
            match frame {
                ServerFrame::Event(event) => {
                    if let (Some(seq), Some(cursor)) = (event.seq, self.cursor.cursor.as_mut()) {
                        cursor.seq = cursor.seq.max(seq);
                    }
                    if let Some((step, due_us)) = payload::scan(event.body.as_text()) {
                        tally.record(step, received_us.saturating_sub(due_us));
                    }
                }
                ServerFrame::State(state) => {
                    if let Some(presence) = state.presence {
                        self.cursor.presence_version = presence.version;
                    }
                    if let Some(typing) = state.typing {
                        self.cursor.typing_version = typing.version;
                    }
                }
                ServerFrame::Error(error) => {
                    tally.refusals.fetch_add(1, Ordering::Relaxed);
                    bail!("poll error: {}", error.message);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Holds polls for `levels` sessions in turn (reading RSS at each), then publishes
/// `events_per_s` for `publish_for` and measures delivery latency to the polls.
pub async fn run(
    server: &Server,
    levels: &[usize],
    settle: Duration,
    events_per_s: f64,
    publish_for: Duration,
) -> Result<PollingRun> {
    let tally = Arc::new(Tally::default());
    tokio::time::sleep(settle).await;
    let mut rss_kib = vec![(0, server.rss_kib()?)];
    let mut tasks = Vec::new();
    for &level in levels {
        for n in tasks.len()..level {
            let mut session = Session::join(server.addr, n).await?;
            session.poll(0, &tally).await?; // Learn the presence and typing versions.
            let tally = Arc::clone(&tally);
            tasks.push(tokio::spawn(async move {
                loop {
                    if session.poll(600_000, &tally).await.is_err() {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }));
        }
        tokio::time::sleep(settle).await;
        rss_kib.push((level, server.rss_kib()?));
    }
    let sessions = tasks.len();
    let rooms = sessions.div_ceil(ROOM_SIZE);
    let mut publishers = Vec::new();
    for (p, first) in (0..rooms).step_by(ROOMS_PER_PUBLISHER).enumerate() {
        // Numbered after the sessions, so it binds a source address as they do.
        let mut ws = client::open(Protocol::Chorus, server.addr, sessions + p).await?;
        for room in first..rooms.min(first + ROOMS_PER_PUBLISHER) {
            client::join(&mut ws, Protocol::Chorus, &format!("poll-{room}"), None).await?;
        }
        let (sink, mut stream) = futures_util::StreamExt::split(ws);
        // Acks and presence are read and dropped so the publisher is never a slow consumer.
        tokio::spawn(
            async move { while futures_util::StreamExt::next(&mut stream).await.is_some() {} },
        );
        publishers.push(sink);
    }
    let count = (events_per_s * publish_for.as_secs_f64()).round() as u64;
    let interval_us = 1e6 / events_per_s;
    let start_us = client::now_us() + 10_000;
    for k in 0..count {
        let due_us = super::due(start_us, interval_us, k).await;
        let room = k as usize % rooms;
        let frame = client::publish_frame(Protocol::Chorus, &format!("poll-{room}"), k, 0, due_us);
        publishers[room / ROOMS_PER_PUBLISHER]
            .send(Message::text(frame))
            .await?;
    }
    let expected: u64 = (0..count)
        .map(|k| {
            let room = k as usize % rooms;
            (sessions - room * ROOM_SIZE).min(ROOM_SIZE) as u64
        })
        .sum();
    let drain_until = client::now_us() + 5_000_000;
    while (tally.delivered(0) as u64) < expected && client::now_us() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in &tasks {
        task.abort();
    }
    let mut samples = tally.take(0);
    samples.sort_unstable();
    let ms = |q: f64| stats::percentile(&samples, q).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
    let points: Vec<(f64, f64)> = rss_kib
        .iter()
        .map(|&(n, kib)| (n as f64, kib as f64))
        .collect();
    Ok(PollingRun {
        kib_per_held_poll: stats::slope(&points).unwrap_or(f64::NAN),
        rss_kib,
        published: count,
        expected,
        delivered: samples.len() as u64,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
    })
}
