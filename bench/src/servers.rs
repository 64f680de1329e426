//! The servers under test: how each is started (pinned to its core with `taskset`), how the
//! generator knows it is ready, and how it is stopped. One fresh process per scenario run.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Which server a run measures.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Target {
    /// Chorus (`chorus-server --worker-threads 1`, memory store unless `--redis` is given).
    Chorus,
    /// socket.io 4.8 on Node.js with the `ws` engine.
    SocketIo,
    /// socketioxide on axum, one tokio worker.
    Socketioxide,
}

impl Target {
    /// Every server, in the order rounds interleave them.
    pub const ALL: [Target; 3] = [Target::Chorus, Target::SocketIo, Target::Socketioxide];

    /// The name used in the report.
    pub fn label(self) -> &'static str {
        match self {
            Target::Chorus => "Chorus",
            Target::SocketIo => "socket.io",
            Target::Socketioxide => "socketioxide",
        }
    }

    /// The protocol the generator speaks to it.
    pub fn protocol(self) -> crate::client::Protocol {
        match self {
            Target::Chorus => crate::client::Protocol::Chorus,
            Target::SocketIo | Target::Socketioxide => crate::client::Protocol::SocketIo,
        }
    }
}

/// Where the servers' programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The release `chorus-server` binary.
    pub chorus: PathBuf,
    /// The socket.io peer's directory (`server.js`, `node_modules/`).
    pub socketio: PathBuf,
    /// The release socketioxide peer binary.
    pub socketioxide: PathBuf,
    /// The core the servers are pinned to.
    pub core: usize,
}

/// The worker threads `extra` gives Chorus (`--worker-threads N`), 1 without.
fn chorus_threads(extra: &[String]) -> usize {
    extra
        .iter()
        .position(|flag| flag == "--worker-threads")
        .and_then(|at| extra.get(at + 1)?.parse().ok())
        .unwrap_or(1)
}

/// A running server, killed and reaped when dropped.
#[derive(Debug)]
pub struct Server {
    /// What it is.
    pub target: Target,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Starts `target` on a free loopback port and waits until it accepts connections.
    pub fn start(target: Target, programs: &Programs) -> Result<Server> {
        Server::start_with(target, programs, &[])
    }

    /// Like [`Server::start`], with `extra` flags for Chorus (e.g. `--listen-backlog 128`).
    /// `--worker-threads N` among them replaces the default of 1 and pins Chorus to cores
    /// `0..N` instead of the servers' one core (see [`chorus_threads`]).
    pub fn start_with(target: Target, programs: &Programs, extra: &[String]) -> Result<Server> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let threads = chorus_threads(extra);
        let cores = if target == Target::Chorus && threads > 1 {
            format!("0-{}", threads - 1)
        } else {
            programs.core.to_string()
        };
        let mut command = Command::new("taskset");
        command.args(["-c", &cores]);
        // A profiler to run the server under (e.g. `heaptrack -o /tmp/chorus`), for digging into
        // a figure; its measurements are then the profiler's, not the server's.
        if let Ok(wrapper) = std::env::var("CHORUS_BENCH_SERVER_WRAPPER") {
            command.args(wrapper.split_whitespace());
        }
        match target {
            Target::Chorus => {
                // The memory store, unless the flags choose the Redis engine.
                let store: &[&str] = if extra.iter().any(|flag| flag == "--redis") {
                    &[]
                } else {
                    &["--store", "memory"]
                };
                command.arg(&programs.chorus).args(store);
                if !extra.iter().any(|flag| flag == "--worker-threads") {
                    command.args(["--worker-threads", "1"]);
                }
                command.args([
                    "--dev",
                    "--bind",
                    &addr.to_string(),
                    // The benchmark's own limits: many connections from one address, publishes
                    // as fast as the generator sends them, pings every 20 s are plenty.
                    "--max-connections",
                    "1000000",
                    "--max-connections-per-ip",
                    "1000000",
                    // Every client comes from one address, and a storm has thousands of
                    // connections at once between accept and upgrade (256 by default).
                    "--max-http-connections-per-ip",
                    "1000000",
                    // The polling scenario holds up to 4000 sessions from this one machine
                    // (256 per address by default).
                    "--max-poll-sessions-per-ip",
                    "1000000",
                    "--publish-rate",
                    "1000000",
                    "--publish-burst",
                    "1000000",
                    "--heartbeat-ms",
                    "60000",
                    "--poll-wait-ms",
                    "600000",
                    "--poll-session-timeout-ms",
                    "900000",
                    "--max-held-polls",
                    "2",
                ]);
                command.args(extra);
                command.env("RUST_LOG", "warn");
            }
            Target::SocketIo => {
                command
                    .args(["node", "server.js"])
                    .current_dir(&programs.socketio)
                    .env("PORT", port.to_string());
            }
            Target::Socketioxide => {
                command
                    .arg(&programs.socketioxide)
                    .env("PORT", port.to_string())
                    .env("WORKER_THREADS", "1");
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", target.label()))?;
        let mut server = Server {
            target,
            addr,
            child,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// The process id (`taskset` execs the server, so it is the server's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        crate::procfs::rss_kib(self.pid())
    }

    /// CPU seconds used so far (user + system, all threads).
    pub fn cpu_seconds(&self) -> Result<f64> {
        crate::procfs::cpu_seconds(self.pid())
    }

    #[allow(clippy::disallowed_methods)] // A driver: waiting for a process reads the clock.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited at start ({status})", self.target.label());
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not listen on {} within 20 s",
            self.target.label(),
            self.addr
        )
    }
}

impl Drop for Server {
    /// SIGTERM first (so a profiler wrapping the server can write its data), SIGKILL after 5 s.
    #[allow(clippy::disallowed_methods)] // A driver: waiting for a process reads the clock.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
