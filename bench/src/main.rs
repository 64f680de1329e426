//! The `chorus-bench` binary: runs the benchmark suite of issue 7. `cargo xtask bench [--quick]`
//! builds everything and runs it pinned to one core, with the servers pinned to the other.
//!
//! The suite runs each scenario in rounds that interleave the servers (A B C A B C ...), a
//! fresh server process per run, and writes `results.json`, a Markdown report and SVG charts.
//! It must never send traffic anywhere but the loopback interface.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use chorus_bench::redis_server::RedisServer;
use chorus_bench::scenario::{client_cpu, docs, fanout, idle, nodes, polling, reconnect, streams};
use chorus_bench::servers::{Programs, Server, Target};
use chorus_bench::{Results, Sizes, procfs, report};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "chorus-bench",
    about = "Chorus against socket.io and socketioxide."
)]
struct Cli {
    /// A small, fast run (CI smoke test) instead of the full sizes.
    #[arg(long)]
    quick: bool,
    /// Rounds per scenario (default: 2 quick, 3 full).
    #[arg(long)]
    rounds: Option<usize>,
    /// Clients in the reconnect storm (default: 500 quick, 5000 full).
    #[arg(long)]
    storm_clients: Option<usize>,
    /// Room sizes of the fan-out and multi-core scenarios (default: 100,1000 quick;
    /// 10,100,1000 full), e.g. to profile one of them.
    #[arg(long, value_delimiter = ',')]
    room_sizes: Vec<usize>,
    /// The fan-out ladder in deliveries per second (default: 10000,50000 quick;
    /// 10000,25000,50000,100000 full).
    #[arg(long, value_delimiter = ',')]
    ladder: Vec<f64>,
    /// Scenarios to run (default: all): idle, fanout, polling, reconnect, big-room, nodes,
    /// streams, client-cpu, docs, multicore, largest.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only rewrite the report from `results.json` in `--out` (e.g. after editing `NOTES.md`).
    #[arg(long)]
    render_only: bool,
    /// The release `chorus-server` binary.
    #[arg(long, required_unless_present = "render_only")]
    chorus: Option<PathBuf>,
    /// The socket.io peer's directory.
    #[arg(long, required_unless_present = "render_only")]
    socketio: Option<PathBuf>,
    /// The socketioxide peer's release binary.
    #[arg(long, required_unless_present = "render_only")]
    socketioxide: Option<PathBuf>,
    /// The client-CPU scenario's page driver (`bench/client/page.mjs`, its packages installed;
    /// the npm package built in `pkg/`).
    #[arg(long, required_unless_present = "render_only")]
    page: Option<PathBuf>,
    /// The core servers are pinned to (the generator should run on another).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Where the report goes.
    #[arg(long)]
    out: PathBuf,
    /// The command line to quote in the report.
    #[arg(long, default_value = "cargo xtask bench")]
    command: String,
}

fn say(message: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("chorus-bench: {message}");
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One thread: the generator is pinned to one core, and its cost must not depend on
    // scheduling between threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(suite(cli))
}

async fn suite(cli: Cli) -> Result<()> {
    if cli.render_only {
        let json = std::fs::read_to_string(cli.out.join("results.json"))
            .context("reading results.json")?;
        return write_report(&cli.out, &serde_json::from_str(&json)?);
    }
    let mut sizes = Sizes::new(cli.quick, cli.rounds);
    if let Some(clients) = cli.storm_clients {
        sizes.storm_clients = clients;
    }
    if !cli.room_sizes.is_empty() {
        sizes.room_sizes.clone_from(&cli.room_sizes);
    }
    if !cli.ladder.is_empty() {
        sizes.ladder.clone_from(&cli.ladder);
    }
    let programs = Programs {
        chorus: cli.chorus.clone().unwrap_or_default(),
        socketio: cli.socketio.clone().unwrap_or_default(),
        socketioxide: cli.socketioxide.clone().unwrap_or_default(),
        core: cli.server_core,
    };
    let wants = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
    let mut results = Results {
        machine: procfs::machine(),
        command: cli.command.clone(),
        quick: cli.quick,
        sizes: sizes.clone(),
        idle: Vec::new(),
        fanout: Vec::new(),
        polling: Vec::new(),
        reconnect: Vec::new(),
        big_room_idle: Vec::new(),
        nodes: Vec::new(),
        streams: Vec::new(),
        client_cpu: Vec::new(),
        docs: Vec::new(),
        multicore: Vec::new(),
        largest: Vec::new(),
        failures: Vec::new(),
    };
    say(&format!("machine: {:?}", results.machine));
    let settle = Duration::from_millis(sizes.settle_ms);

    if wants("idle") {
        let runs = idle_rounds(&mut results, &programs, "idle", &sizes.idle_levels, &sizes).await;
        results.idle.extend(runs);
    }
    if wants("largest") {
        let levels = &sizes.largest_levels;
        let runs = idle_rounds(&mut results, &programs, "largest", levels, &sizes).await;
        results.largest.extend(runs);
    }
    if wants("fanout") {
        for &members in &sizes.room_sizes {
            for round in 0..sizes.rounds {
                for target in Target::ALL {
                    let label = format!("fanout {members} round {} {}", round + 1, target.label());
                    let run = ladder(
                        &mut results,
                        &label,
                        target,
                        &programs,
                        &[],
                        members,
                        &sizes,
                    );
                    if let Some(run) = run.await {
                        results.fanout.push((target, round, run));
                    }
                }
            }
        }
    }
    if wants("multicore") {
        // Issue 19: the same fan-out with Chorus on 1 and on 2 worker threads. On 2 threads it
        // is pinned to cores 0 and 1, so on a 2-core machine it shares the generator's core.
        for &members in &sizes.room_sizes {
            for round in 0..sizes.rounds {
                for threads in [1, 2] {
                    let label = format!(
                        "multicore {members} round {} {threads} thread(s)",
                        round + 1
                    );
                    let flags = ["--worker-threads".to_owned(), threads.to_string()];
                    let run = ladder(
                        &mut results,
                        &label,
                        Target::Chorus,
                        &programs,
                        &flags,
                        members,
                        &sizes,
                    );
                    if let Some(run) = run.await {
                        results.multicore.push((threads, round, run));
                    }
                }
            }
        }
    }
    if wants("polling") {
        for round in 0..sizes.rounds {
            let label = format!("polling round {}", round + 1);
            let (levels, rate, publish_for) = (
                &sizes.polling_levels,
                sizes.polling_events_per_s,
                Duration::from_millis(sizes.polling_ms),
            );
            match with_server(Target::Chorus, &programs, &[], |server| async move {
                polling::run(&server, levels, settle, rate, publish_for).await
            })
            .await
            {
                Ok(run) => {
                    say(&format!(
                        "{label}: {:.2} KiB/held poll, {}/{} delivered, p50 {:.2} p99 {:.2} ms",
                        run.kib_per_held_poll, run.delivered, run.expected, run.p50_ms, run.p99_ms
                    ));
                    results.polling.push((round, run));
                }
                Err(err) => fail(&mut results, &label, &err),
            }
        }
    }
    if wants("reconnect") {
        for round in 0..sizes.rounds {
            for &backlog in &sizes.storm_backlogs {
                let label = format!("reconnect round {} backlog {backlog}", round + 1);
                let clients = sizes.storm_clients;
                let flags = ["--listen-backlog".to_owned(), backlog.to_string()];
                match with_server(Target::Chorus, &programs, &flags, |server| async move {
                    reconnect::run(&server, clients, backlog).await
                })
                .await
                {
                    Ok(run) => {
                        say(&format!(
                            "{label}: {}/{} clients caught up in {:.2} s (median {:.2} s), {} duplicates or gaps, {} connection attempts dropped by the kernel",
                            run.caught_up,
                            run.clients,
                            run.all_caught_up_s,
                            run.median_caught_up_s,
                            run.duplicates_or_gaps,
                            run.listen_drops.map_or("?".to_owned(), |d| d.to_string()),
                        ));
                        results.reconnect.push((round, run));
                    }
                    Err(err) => fail(&mut results, &label, &err),
                }
            }
        }
    }
    if wants("big-room") {
        let (levels, room_size) = (&sizes.big_room_levels, sizes.big_room_size);
        for round in 0..sizes.rounds {
            let label = format!("big-room idle round {}", round + 1);
            match with_server(Target::Chorus, &programs, &[], |server| async move {
                idle::run(&server, levels, settle, room_size).await
            })
            .await
            {
                Ok(run) => {
                    say(&format!(
                        "{label}: rooms of {room_size}: {:.2} KiB/connection, RSS {:?}",
                        run.kib_per_connection, run.rss_kib
                    ));
                    results.big_room_idle.push((round, run));
                }
                Err(err) => fail(&mut results, &label, &err),
            }
        }
    }
    if wants("nodes") {
        // One Redis for the whole scenario (each round's rooms have fresh names), and two
        // fresh nodes on it per round.
        let redis = RedisServer::start();
        let flags = ["--redis".to_owned(), redis.url()];
        let (members, ladder) = (sizes.nodes_members, &sizes.nodes_ladder);
        let step = Duration::from_millis(sizes.step_ms);
        for round in 0..sizes.rounds {
            let label = format!("nodes round {}", round + 1);
            let run = async {
                let a = Server::start_with(Target::Chorus, &programs, &flags)?;
                let b = Server::start_with(Target::Chorus, &programs, &flags)?;
                nodes::run(&a, &b, members, ladder, step).await
            };
            match run.await {
                Ok(run) => {
                    for (how, ladder) in [("one node", &run.one_node), ("across", &run.across)] {
                        for s in &ladder.steps {
                            say(&format!(
                                "{label} {how}: {:.0}/s delivered of {:.0}, p50 {:.2} p99 {:.2} p99.9 {:.2} ms, {:.2} CPU-s/M",
                                s.deliveries_per_s,
                                s.target_deliveries_per_s,
                                s.p50_ms,
                                s.p99_ms,
                                s.p999_ms,
                                s.cpu_s_per_million
                            ));
                        }
                        if let Some(why) = &ladder.stopped {
                            say(&format!("{label} {how}: stopped: {why}"));
                        }
                    }
                    results.nodes.push((round, run));
                }
                Err(err) => fail(&mut results, &label, &err),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if wants("streams") {
        // Issue 17's figure: 10,000 tokens/s into one room of 100 members. The stream is
        // allowed to grow as large as the run makes it (tokens carry their due time).
        let flags = ["--stream-max-bytes".to_owned(), "100000000".to_owned()];
        let stream_for = Duration::from_millis(if cli.quick { 2000 } else { 5000 });
        for round in 0..sizes.rounds {
            let label = format!("streams round {}", round + 1);
            match with_server(Target::Chorus, &programs, &flags, |server| async move {
                streams::run(&server, 100, 10_000.0, stream_for).await
            })
            .await
            {
                Ok(run) => {
                    say(&format!(
                        "{label}: {} members, {:.0} tokens/s sent, {}/{} delivered, p50 {:.2} p99 {:.2} p99.9 {:.2} ms; {:.0} frames/s to members for {:.0} chunks/s: coalescing saved {:.0} frames/s; server CPU {:.0}%, generator {:.0}%",
                        run.members,
                        run.tokens_per_s,
                        run.delivered,
                        run.expected,
                        run.p50_ms,
                        run.p99_ms,
                        run.p999_ms,
                        run.frames_per_s,
                        run.chunk_deliveries_per_s,
                        run.frames_saved_per_s,
                        run.server_cpu * 100.0,
                        run.generator_cpu * 100.0,
                    ));
                    results.streams.push((round, run));
                }
                Err(err) => fail(&mut results, &label, &err),
            }
        }
    }

    if wants("client-cpu") {
        let page = cli.page.clone().unwrap_or_default();
        let (rates, step) = (
            &sizes.client_rates,
            Duration::from_millis(sizes.client_step_ms),
        );
        for round in 0..sizes.rounds {
            for target in [Target::Chorus, Target::SocketIo] {
                let label = format!("client-cpu round {} {}", round + 1, target.label());
                let page = &page;
                match with_server(target, &programs, &[], |server| async move {
                    client_cpu::run(&server, page, rates, step).await
                })
                .await
                {
                    Ok(run) => {
                        for s in &run.steps {
                            say(&format!(
                                "{label}: {:.0} events/s: {:.2} µs of main thread per event ({:.2} µs script), main thread {:.1}% busy, {} of {} received, the last {:.2} s after the last publish",
                                s.events_per_s,
                                s.task_us_per_event,
                                s.script_us_per_event,
                                s.main_thread_share * 100.0,
                                s.received,
                                s.published,
                                s.behind_s
                            ));
                        }
                        results.client_cpu.push((target, round, run));
                    }
                    Err(err) => fail(&mut results, &label, &err),
                }
            }
        }
    }

    if wants("docs") {
        // Issue 18's figures: a document of 10,000 small edits (1,000 in a quick run), opened.
        let script = cli
            .page
            .clone()
            .unwrap_or_default()
            .with_file_name("docs.mjs");
        let edits = if cli.quick { 1000 } else { 10_000 };
        for round in 0..sizes.rounds {
            for compacting in [true, false] {
                let label = format!(
                    "docs round {} ({})",
                    round + 1,
                    if compacting {
                        "compacting"
                    } else {
                        "no compaction"
                    }
                );
                let script = &script;
                match with_server(
                    Target::Chorus,
                    &programs,
                    &docs::flags(compacting),
                    |server| async move { docs::run(&server, script, edits, compacting).await },
                )
                .await
                {
                    Ok(run) => {
                        say(&format!(
                            "{label}: {} edits ({} characters): opening downloads {} bytes ({} gzipped) in {:.1} ms at the server; history replay would be {}; a fresh Chromium page opens it in {:.0} ms ({:.0} ms of it the provider's sync)",
                            run.edits,
                            run.text_chars,
                            run.open_bytes,
                            run.open_gzip_bytes,
                            run.server_ms,
                            run.history_bytes.map_or_else(
                                || "gone (history trimmed)".to_owned(),
                                |b| format!("{b:.0} bytes in {} events", run.history_events)
                            ),
                            run.browser_open_ms,
                            run.browser_sync_ms,
                        ));
                        results.docs.push((round, run));
                    }
                    Err(err) => fail(&mut results, &label, &err),
                }
            }
        }
    }

    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    std::fs::write(
        cli.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    write_report(&cli.out, &results)?;
    // The report says what failed; the exit status must too (the smoke run in `cargo xtask
    // test` relies on it).
    if !results.failures.is_empty() {
        bail!(
            "{} scenario run(s) failed: {}",
            results.failures.len(),
            results.failures.join("; ")
        );
    }
    Ok(())
}

/// Writes the report and charts into `out`, with `out/NOTES.md` (hand-written) appended.
fn write_report(out: &std::path::Path, results: &Results) -> Result<()> {
    let notes = std::fs::read_to_string(out.join("NOTES.md")).ok();
    for (name, text) in report::write(results, notes.as_deref()) {
        std::fs::write(out.join(&name), text).with_context(|| format!("writing {name}"))?;
    }
    say(&format!(
        "report written to {}",
        out.join("README.md").display()
    ));
    Ok(())
}

/// Starts a fresh `target` (with `flags` added, for Chorus), runs `scenario` on it, stops it.
async fn with_server<T, F, Fut>(
    target: Target,
    programs: &Programs,
    flags: &[String],
    scenario: F,
) -> Result<T>
where
    F: FnOnce(std::rc::Rc<Server>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let server = std::rc::Rc::new(Server::start_with(target, programs, flags)?);
    let result = scenario(std::rc::Rc::clone(&server)).await;
    drop(server);
    // Let the kernel finish closing the connections before the next run starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    result
}

/// One fan-out ladder on a fresh `target` (with `flags`) in a room of `members`, said step by
/// step; `None` when it failed (recorded in `results`).
async fn ladder(
    results: &mut Results,
    label: &str,
    target: Target,
    programs: &Programs,
    flags: &[String],
    members: usize,
    sizes: &Sizes,
) -> Option<fanout::FanoutRun> {
    let step = Duration::from_millis(sizes.step_ms);
    let ladder = &sizes.ladder;
    match with_server(target, programs, flags, |server| async move {
        fanout::run(&server, members, ladder, step).await
    })
    .await
    {
        Ok(run) => {
            for s in &run.steps {
                say(&format!(
                    "{label}: {:.0}/s delivered, {:.2} CPU-s/M, p50 {:.2} p99 {:.2} p99.9 {:.2} ms, generator {:.0}%",
                    s.deliveries_per_s,
                    s.cpu_s_per_million,
                    s.p50_ms,
                    s.p99_ms,
                    s.p999_ms,
                    s.generator_busy * 100.0
                ));
            }
            if let Some(why) = &run.stopped {
                say(&format!("{label}: stopped: {why}"));
            }
            Some(run)
        }
        Err(err) => {
            fail(results, label, &err);
            None
        }
    }
}

/// The idle scenario (rooms of 10) at `levels` on every server, `sizes.rounds` times, servers
/// interleaved; each run said as it ends. `name` labels the runs (`idle`, `largest`).
async fn idle_rounds(
    results: &mut Results,
    programs: &Programs,
    name: &str,
    levels: &[usize],
    sizes: &Sizes,
) -> Vec<(Target, usize, idle::IdleRun)> {
    let settle = Duration::from_millis(sizes.settle_ms);
    let mut runs = Vec::new();
    for round in 0..sizes.rounds {
        for target in Target::ALL {
            let label = format!("{name} round {} {}", round + 1, target.label());
            match with_server(target, programs, &[], |server| async move {
                idle::run(&server, levels, settle, 10).await
            })
            .await
            {
                Ok(run) => {
                    say(&format!(
                        "{label}: {:.2} KiB/connection, {:.0} connects/s, RSS {:?}",
                        run.kib_per_connection, run.connects_per_second, run.rss_kib
                    ));
                    runs.push((target, round, run));
                }
                Err(err) => fail(results, &label, &err),
            }
        }
    }
    runs
}

fn fail(results: &mut Results, label: &str, err: &anyhow::Error) {
    say(&format!("{label}: FAILED: {err:#}"));
    results.failures.push(format!("{label}: {err:#}"));
}
