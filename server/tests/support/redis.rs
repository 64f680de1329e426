//! A real `redis-server` for tests and benchmarks: Debian's binary on a free loopback port with
//! its own temporary directory, killed when dropped.
//!
//! Shared by the integration tests (`support::redis`), the store's unit tests and the Redis
//! benchmark (both include this file by path), so it depends on std and `tempfile` only.
//! Without `redis-server` installed it panics with what to run: the Redis tests never skip.

#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the server writes to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Nothing: a restart loses every key (`--save '' --appendonly no`).
    None,
    /// The append-only file, fsynced before each write is acknowledged (`appendfsync always`).
    AofAlways,
}

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    durability: Durability,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server that keeps nothing on disk.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Durability::None)
    }

    /// Starts a server with the given durability.
    pub fn start_with(durability: Durability) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: 0,
            durability,
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
        };
        // A port picked by the kernel can be taken before redis-server binds it: try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "redis-server did not start on a free port; its log:\n{}",
            server.log()
        );
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills it with SIGKILL (no shutdown save) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (an AOF is replayed).
    pub fn restart(&mut self) {
        self.kill();
        if !self.spawn() {
            panic!(
                "redis-server did not restart on port {}; its log:\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// Sends one command (inline protocol) and returns the raw reply, for checks that need
    /// no client library.
    pub fn command(&self, line: &str) -> String {
        let mut stream =
            TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).expect("connect to redis-server");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut reply = vec![0; 64 * 1024];
        let n = stream.read(&mut reply).unwrap_or(0);
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Starts the process and waits until it answers `PING`; false when it exited instead
    /// (the port was taken).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let dir = self.dir.path().to_str().expect("a UTF-8 temporary path");
        let log = self.dir.path().join("redis.log");
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--dir",
            dir,
            "--logfile",
            log.to_str().unwrap(),
            "--daemonize",
            "no",
            "--save",
            "",
        ];
        match self.durability {
            Durability::None => args.extend(["--appendonly", "no"]),
            Durability::AofAlways => {
                args.extend(["--appendonly", "yes", "--appendfsync", "always"])
            }
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: run `cargo xtask setup` (it installs Debian's \
                 redis-server), or `apt-get install redis-server`"
            ),
            Err(err) => panic!("could not start redis-server: {err}"),
        };
        #[allow(clippy::disallowed_methods)] // Waiting for a real process to come up.
        let deadline = Instant::now() + Duration::from_secs(15);
        #[allow(clippy::disallowed_methods)]
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "redis-server did not answer PING within 15 s; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether a server on `port` answers `PING` (and has finished loading its data).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 64];
    let n = stream.read(&mut reply).unwrap_or(0);
    reply[..n].starts_with(b"+PONG")
}
