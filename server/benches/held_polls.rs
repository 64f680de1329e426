//! Memory cost of polling clients: the server's resident memory with N sessions each holding a
//! long poll, reported as the slope per held poll. The server runs as its own process (the
//! release binary) so the load generator's memory is not counted.
//!
//! `cargo bench -p chorus-server --bench held_polls` prints one line per level.

#![allow(clippy::print_stdout, missing_docs, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chorus_sdk::wire::{self, RoomRight, TokenClaims};
use chorus_server::auth::Authenticator;
use chorus_server::config::DEV_SECRET;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LEVELS: [usize; 4] = [0, 1000, 2000, 4000];

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn request(addr: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(head(method, path, token, body, "close").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

fn head(method: &str, path: &str, token: &str, body: Option<&str>, connection: &str) -> String {
    let body_headers = body.map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )
    });
    format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nConnection: {connection}\r\n{body_headers}\r\n{}",
        body.unwrap_or("")
    )
}

/// Joins one room and leaves a long poll held on it; returns the socket holding the poll.
async fn hold_one(addr: &str, token: &str, n: usize) -> TcpStream {
    let session = format!("bench-session-{n:06}");
    let room = format!("bench-{n}");
    let join = format!(r#"{{"session":"{session}","frames":[{{"type":"join","room":"{room}"}}]}}"#);
    let answer = request(addr, "POST", "/v1/poll", token, Some(&join)).await;
    let joined: wire::PollFrames =
        serde_json::from_str(&answer).unwrap_or_else(|err| panic!("{err}: {answer}"));
    let Some(wire::ServerFrame::Joined(joined)) = joined
        .frames
        .into_iter()
        .find(|f| matches!(f, wire::ServerFrame::Joined(_)))
    else {
        panic!("no joined frame for session {n}");
    };
    // One quick poll learns the presence and typing versions; the next one is held.
    let cursor = |pv: u64, tv: u64| format!("{room}~{}~{}~{pv}~{tv}", joined.epoch, joined.head);
    let first: wire::PollFrames = serde_json::from_str(
        &request(
            addr,
            "GET",
            &format!("/v1/poll?session={session}&wait=0&r={}", cursor(0, 0)),
            token,
            None,
        )
        .await,
    )
    .unwrap();
    let (mut pv, mut tv) = (0, 0);
    for frame in first.frames {
        if let wire::ServerFrame::State(state) = frame {
            pv = state.presence.map_or(pv, |p| p.version);
            tv = state.typing.map_or(tv, |t| t.version);
        }
    }
    if std::env::var("CHORUS_BENCH_SESSIONS_ONLY").is_ok() {
        return TcpStream::connect(addr).await.unwrap(); // An idle socket, no request.
    }
    let mut held = TcpStream::connect(addr).await.unwrap();
    let path = format!(
        "/v1/poll?session={session}&wait=600000&r={}",
        cursor(pv, tv)
    );
    held.write_all(head("GET", &path, token, None, "keep-alive").as_bytes())
        .await
        .unwrap();
    held
}

/// The server process, killed and reaped when dropped (also when the benchmark panics).
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_chorus-server"))
        .args([
            "--store",
            "memory",
            "--bind",
            "127.0.0.1:0",
            "--jwt-secret",
            DEV_SECRET,
        ])
        .args([
            "--poll-wait-ms",
            "600000",
            "--poll-session-timeout-ms",
            "900000",
        ])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn,chorus_server=info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let server = ServerProcess(server);
    let addr = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let exp = chorus_server::clock::unix_ms_now() / 1000 + 3600;
    let claims = TokenClaims {
        sub: "bench".into(),
        name: None,
        exp,
        rooms: [("*".to_owned(), RoomRight::Publish)].into_iter().collect(),
    };
    let token = Authenticator::hs256(DEV_SECRET.as_bytes()).issue(&claims);

    let pid = server.0.id();
    let mut held = Vec::new();
    let mut previous: Option<(usize, u64)> = None;
    println!("held polls   server RSS   per held poll (slope from the previous level)");
    for level in LEVELS {
        while held.len() < level {
            held.push(hold_one(&addr, &token, held.len()).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_kib(pid);
        let slope = previous.map_or(String::from("-"), |(n, r)| {
            format!("{:.2} KiB", (rss as f64 - r as f64) / (level - n) as f64)
        });
        println!("{level:>10}   {rss:>7} KiB   {slope}");
        previous = Some((level, rss));
    }
    // Every poll must still be held, or the figure means nothing.
    let mut answered = 0;
    for socket in &mut held {
        let mut byte = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut byte)).await
            && n > 0
        {
            answered += 1;
        }
    }
    println!("polls answered early (should be 0): {answered}");
    drop(server);
}
