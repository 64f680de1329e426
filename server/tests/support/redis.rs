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
    /// More `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
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
            extra: Vec::new(),
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
        args.extend(self.extra.iter().map(String::as_str));
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

/// A Redis Cluster of three masters without replicas, each a [`RedisServer`] keeping nothing on
/// disk but its `nodes.conf` (so a restarted master comes back with its node id and slots, and
/// without its keys). Every master serves its own slots while another is down
/// (`cluster-require-full-coverage no`); a master is judged failed after 2 s unreachable.
#[derive(Debug)]
pub struct RedisCluster {
    masters: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes and joins them with `redis-cli --cluster create`.
    pub fn start() -> RedisCluster {
        let masters: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_cluster_node()).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for master in &masters {
            create.arg(format!("127.0.0.1:{}", master.port));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli (Debian's redis-tools) runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { masters };
        cluster.wait_until_ok();
        cluster
    }

    /// The masters' URLs, comma-separated (the form `--redis` takes with `--redis-cluster`).
    pub fn urls(&self) -> String {
        self.masters
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The masters.
    pub fn masters(&self) -> &[RedisServer] {
        &self.masters
    }

    /// The master that serves `key`'s slot.
    pub fn master_of(&self, key: &str) -> usize {
        let slot: u16 = self.masters[0]
            .command(&format!("CLUSTER KEYSLOT {key}"))
            .trim()
            .trim_start_matches(':')
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        let nodes = self.masters[0].command("CLUSTER NODES");
        for line in nodes.lines() {
            let fields: Vec<&str> = line.trim().split(' ').collect();
            let Some(address) = fields.get(1) else {
                continue;
            };
            let port: u16 = address
                .split(['@', ':'])
                .nth(1)
                .and_then(|port| port.parse().ok())
                .unwrap_or(0);
            let serves = fields.iter().skip(8).any(|range| {
                let mut ends = range.split('-').map(|n| n.parse::<u16>().ok());
                match (ends.next().flatten(), ends.next()) {
                    (Some(start), Some(Some(end))) => (start..=end).contains(&slot),
                    (Some(only), None) => only == slot,
                    _ => false,
                }
            });
            if serves && let Some(index) = self.masters.iter().position(|m| m.port == port) {
                return index;
            }
        }
        panic!("no master serves slot {slot} of {key}:\n{nodes}");
    }

    /// Kills master `index` with SIGKILL.
    pub fn kill(&mut self, index: usize) {
        self.masters[index].kill();
    }

    /// Starts master `index` again (empty, with its `nodes.conf`) and waits until every
    /// master says the cluster is ok.
    pub fn restart(&mut self, index: usize) {
        self.masters[index].restart();
        self.wait_until_ok();
    }

    /// Waits until every running master answers `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        #[allow(clippy::disallowed_methods)] // Waiting for real processes to agree.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all_ok = self
                .masters
                .iter()
                .filter(|master| master.child.is_some())
                .all(|master| master.command("CLUSTER INFO").contains("cluster_state:ok"));
            if all_ok {
                return;
            }
            #[allow(clippy::disallowed_methods)]
            let late = Instant::now() > deadline;
            assert!(!late, "the cluster did not reach cluster_state:ok in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl RedisServer {
    /// Starts one cluster-enabled node on free ports (client and cluster bus).
    pub fn start_cluster_node() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: 0,
            durability: Durability::None,
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            extra: Vec::new(),
        };
        for _ in 0..5 {
            server.port = free_port();
            server.extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &free_port().to_string(),
                "--cluster-node-timeout",
                "2000",
                "--cluster-require-full-coverage",
                "no",
            ]
            .map(String::from)
            .to_vec();
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "a cluster node did not start on free ports; its log:\n{}",
            server.log()
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
