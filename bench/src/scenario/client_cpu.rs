//! Scenario 8, client CPU: what receiving a room's events costs the browser, a figure no peer
//! publishes. One page in Debian chromium (`bench/client/page.mjs`, driven over the DevTools
//! protocol without Playwright, whose Network domain costs the renderer work per frame) joins
//! a room through the Chorus npm package or socket.io-client and counts each event whose body
//! has the benchmark marker (reading the field, as an app reads what it receives). The
//! generator publishes into the room at each rate for a fixed time; between two marks the page
//! reports the renderer main thread's busy time (the DevTools `Performance` domain in thread
//! CPU time: `TaskDuration`, all its tasks; `ScriptDuration`, JavaScript and WebAssembly). Per
//! step: microseconds of main-thread time per event and the main thread's share of the wall
//! time. The server under test is the one the client speaks to (Chorus, or the socket.io peer).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command as Process};

use crate::client::{self, Command, Protocol, Tally};
use crate::servers::{Server, Target};

/// The room the page and the publisher share.
const ROOM: &str = "cpu";

/// How long the page may take to start (browser launch, module load, connect and join).
const START: Duration = Duration::from_secs(60);

/// How long the page may take to catch up with a step's events: past it, the step is measured
/// over the events the page did receive.
const DRAIN: Duration = Duration::from_secs(20);

/// One rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CpuStep {
    /// Events per second published into the room.
    pub events_per_s: f64,
    /// Events published.
    pub published: u64,
    /// Events the page received during the step (fewer than published when it fell behind by
    /// more than the server keeps: Chorus then closes it as a slow consumer and it resumes past
    /// a `reset`, socket.io buffers without limit).
    pub received: u64,
    /// Wall seconds between the step's two marks.
    pub seconds: f64,
    /// Seconds from the last publish until the page had every event, or stopped waiting (the
    /// mark that saw them: about 0.1 s when it kept up).
    pub behind_s: f64,
    /// Main-thread busy time per received event (every task), microseconds.
    pub task_us_per_event: f64,
    /// JavaScript and WebAssembly time per received event, microseconds.
    pub script_us_per_event: f64,
    /// The main thread's busy time over the step, as a share of the wall time.
    pub main_thread_share: f64,
}

/// One run of the rates against one client library.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientCpuRun {
    /// The main thread's busy share over a second with no events (timers, the marks).
    pub idle_share: f64,
    /// The rates, in order.
    pub steps: Vec<CpuStep>,
}

/// What the page reports at a mark.
#[derive(Clone, Copy, Debug, Deserialize)]
struct Mark {
    received: u64,
    task_s: f64,
    script_s: f64,
    at_s: f64,
}

/// The page process: `ready` once joined, then one JSON [`Mark`] per `mark` line.
struct Page {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Page {
    async fn start(script: &Path, server: &Server) -> Result<Page> {
        let base = format!("http://{}", server.addr);
        // The browser may use every core (the generator's affinity would otherwise pin it to
        // the generator's core, where it could not keep up at 10k events/s): its figures are
        // thread CPU time, which sharing a core does not inflate.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut command = Process::new("taskset");
        command
            .args(["-c", &format!("0-{}", cores - 1), "node"])
            .arg(script);
        match server.target {
            Target::Chorus => command.args(["chorus", &base, ROOM, &client::chorus_token("page")]),
            Target::SocketIo => command.args(["socketio", &base, ROOM]),
            Target::Socketioxide => bail!("the client-CPU scenario compares the two JS clients"),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node bench/client/page.mjs")?;
        let stdin = child.stdin.take().context("the page's stdin")?;
        let stdout = child.stdout.take().context("the page's stdout")?;
        let mut page = Page {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        match tokio::time::timeout(START, page.lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "ready" => Ok(page),
            Ok(Ok(other)) => bail!("the page did not start: {other:?}"),
            Ok(Err(err)) => Err(err).context("reading from the page"),
            Err(_) => bail!("the page did not start within {START:?}"),
        }
    }

    async fn mark(&mut self) -> Result<Mark> {
        self.stdin.write_all(b"mark\n").await?;
        self.stdin.flush().await?;
        let line = self.lines.next_line().await?.context("the page exited")?;
        serde_json::from_str(&line).with_context(|| format!("the page's mark: {line}"))
    }

    async fn stop(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// Runs the rates (events per second, each `step_for` long) against `server` with the page
/// `script` (`bench/client/page.mjs`) as the receiving client.
pub async fn run(
    server: &Server,
    script: &Path,
    rates: &[f64],
    step_for: Duration,
) -> Result<ClientCpuRun> {
    let protocol: Protocol = server.target.protocol();
    let mut page = Page::start(script, server).await?;
    let tally = Arc::new(Tally::default());
    let (publishers, _) =
        super::connect_members(protocol, server.addr, 0..1, |_| ROOM.to_owned(), &tally).await?;
    // Join-time traffic settles, then a second with no events.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = page.mark().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = page.mark().await?;
    let idle_share = (after.task_s - before.task_s) / (after.at_s - before.at_s);
    let mut steps = Vec::new();
    let mut next_id = 0u64;
    for (index, &events_per_s) in rates.iter().enumerate() {
        let step = index as u32;
        let count = (events_per_s * step_for.as_secs_f64()).round().max(1.0) as u64;
        let interval_us = 1e6 / events_per_s;
        let first = page.mark().await?;
        let start_us = client::now_us() + 10_000;
        for k in 0..count {
            let due_us = super::due(start_us, interval_us, k).await;
            publishers[0].send(Command::Publish {
                id: next_id,
                step,
                due_us,
            });
            next_id += 1;
        }
        // The publisher is in the room too: once it has every event back, the page should
        // have them as well; then marks until it does.
        let published_us = client::now_us();
        let drain_until = published_us + DRAIN.as_micros() as u64;
        while (tally.delivered(step) as u64) < count && client::now_us() < drain_until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut last = page.mark().await?;
        while last.received - first.received < count && client::now_us() < drain_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = page.mark().await?;
        }
        tally.take(step);
        let received = last.received - first.received;
        if received == 0 {
            bail!("the page received none of {count} events at {events_per_s}/s");
        }
        let seconds = last.at_s - first.at_s;
        steps.push(CpuStep {
            events_per_s,
            published: count,
            received,
            seconds,
            behind_s: (client::now_us() - published_us) as f64 / 1e6,
            task_us_per_event: (last.task_s - first.task_s) * 1e6 / received as f64,
            script_us_per_event: (last.script_s - first.script_s) * 1e6 / received as f64,
            main_thread_share: (last.task_s - first.task_s) / seconds,
        });
    }
    drop(publishers);
    page.stop().await;
    Ok(ClientCpuRun { idle_share, steps })
}
