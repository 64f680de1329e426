//! `chorus-bench`: the load generator and benchmark suite (GitHub issue 7). One generator, in
//! Rust on tokio, speaks Chorus's protocol and Engine.IO v4 / Socket.IO v5, so its own cost is
//! the same for every server under test: Chorus, socket.io 4.8 (Node.js, `ws` engine) and
//! socketioxide (axum).
//!
//! The library holds the parts: protocol clients ([`client`], [`engineio`], [`payload`]), the
//! servers under test ([`servers`]), the scenarios ([`scenario`]), measurements ([`procfs`],
//! [`stats`]) and the report ([`report`], [`svg`]). The binary (`main.rs`) runs the suite.
//! Nothing here may send traffic anywhere but the loopback interface.

#![allow(clippy::disallowed_methods)] // A driver: the generator reads the clock.

pub mod client;
pub mod engineio;
pub mod payload;
pub mod procfs;
#[path = "../../server/tests/support/redis.rs"]
pub mod redis_server;
pub mod report;
pub mod scenario;
pub mod servers;
pub mod stats;
pub mod svg;

use serde::{Deserialize, Serialize};

use crate::scenario::{fanout, idle, nodes, polling, reconnect};
use crate::servers::Target;

/// The sizes of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sizes {
    /// Rounds per scenario.
    pub rounds: usize,
    /// Connection counts of the idle scenario.
    pub idle_levels: Vec<usize>,
    /// Pause before reading RSS.
    pub settle_ms: u64,
    /// Room sizes of the fan-out scenario.
    pub room_sizes: Vec<usize>,
    /// The fan-out ladder, deliveries per second.
    pub ladder: Vec<f64>,
    /// Length of one fan-out step.
    pub step_ms: u64,
    /// Polling sessions at each memory reading.
    pub polling_levels: Vec<usize>,
    /// Publishes per second during the polling latency phase, and for how long.
    pub polling_events_per_s: f64,
    /// How long the polling latency phase publishes.
    pub polling_ms: u64,
    /// Clients in the reconnect storm.
    pub storm_clients: usize,
    /// Listen backlogs (`--listen-backlog`) the storm runs at: the old 128 and the default.
    #[serde(default)]
    pub storm_backlogs: Vec<u32>,
    /// Members per room in the big-room idle scenario.
    #[serde(default)]
    pub big_room_size: usize,
    /// Connection counts of the big-room idle scenario.
    #[serde(default)]
    pub big_room_levels: Vec<usize>,
    /// Members of the room in the across-nodes scenario.
    #[serde(default)]
    pub nodes_members: usize,
    /// The across-nodes ladder, deliveries per second.
    #[serde(default)]
    pub nodes_ladder: Vec<f64>,
    /// Events per second into the client-CPU scenario's page.
    #[serde(default)]
    pub client_rates: Vec<f64>,
    /// How long the client-CPU scenario publishes at each rate.
    #[serde(default)]
    pub client_step_ms: u64,
    /// Connection counts of the largest-count idle scenario, up to what one process may open
    /// here (the open-file limit less the server's reserve).
    #[serde(default)]
    pub largest_levels: Vec<usize>,
}

impl Sizes {
    /// The quick (CI smoke) or full sizes, with `rounds` overriding the default count.
    pub fn new(quick: bool, rounds: Option<usize>) -> Sizes {
        if quick {
            Sizes {
                rounds: rounds.unwrap_or(2),
                idle_levels: vec![250, 500, 1000],
                settle_ms: 500,
                room_sizes: vec![100, 1000],
                ladder: vec![10_000.0, 50_000.0],
                step_ms: 1500,
                polling_levels: vec![100, 200],
                polling_events_per_s: 50.0,
                polling_ms: 2000,
                storm_clients: 500,
                storm_backlogs: vec![128, 4096],
                big_room_size: 1000,
                big_room_levels: vec![1000, 2000],
                nodes_members: 100,
                nodes_ladder: vec![1000.0, 10_000.0],
                client_rates: vec![1000.0, 10_000.0],
                client_step_ms: 1500,
                largest_levels: vec![2000, 4000],
            }
        } else {
            Sizes {
                rounds: rounds.unwrap_or(3),
                idle_levels: vec![1000, 5000, 10_000],
                settle_ms: 1500,
                room_sizes: vec![10, 100, 1000],
                ladder: vec![10_000.0, 25_000.0, 50_000.0, 100_000.0],
                step_ms: 3000,
                polling_levels: vec![1000, 2000, 4000],
                polling_events_per_s: 200.0,
                polling_ms: 5000,
                storm_clients: 5000,
                storm_backlogs: vec![128, 4096],
                big_room_size: 1000,
                big_room_levels: vec![1000, 5000, 10_000],
                nodes_members: 100,
                nodes_ladder: vec![1000.0, 10_000.0],
                client_rates: vec![1000.0, 10_000.0],
                client_step_ms: 5000,
                // Chorus takes at most 20000 - 128 (`--reserved-files`) connections here.
                largest_levels: vec![5000, 10_000, 15_000, 19_500],
            }
        }
    }
}

/// Everything a suite run measured; `results.json` and the report are made from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// The machine and the date.
    pub machine: procfs::Machine,
    /// The command that produced it.
    pub command: String,
    /// Whether it was the quick size.
    pub quick: bool,
    /// The sizes.
    pub sizes: Sizes,
    /// Scenario 1, per server and round.
    pub idle: Vec<(Target, usize, idle::IdleRun)>,
    /// Scenario 2, per server, round and room size.
    pub fanout: Vec<(Target, usize, fanout::FanoutRun)>,
    /// Scenario 3, per round (Chorus).
    pub polling: Vec<(usize, polling::PollingRun)>,
    /// Scenario 4, per round (Chorus).
    pub reconnect: Vec<(usize, reconnect::ReconnectRun)>,
    /// Scenario 5, idle connections in big rooms, per round (Chorus).
    #[serde(default)]
    pub big_room_idle: Vec<(usize, idle::IdleRun)>,
    /// Scenario 6, the fan-out on one node and across two on one Redis, per round (Chorus).
    #[serde(default)]
    pub nodes: Vec<(usize, nodes::NodesRun)>,
    /// Streams: tokens into one room (scenario 7).
    #[serde(default)]
    pub streams: Vec<(usize, scenario::streams::StreamsRun)>,
    /// Scenario 8, the browser client's CPU per received event, per client library and round.
    #[serde(default)]
    pub client_cpu: Vec<(Target, usize, scenario::client_cpu::ClientCpuRun)>,
    /// Scenario 9, shared documents, per configuration (compacting or not) and round.
    #[serde(default)]
    pub docs: Vec<(usize, scenario::docs::DocsRun)>,
    /// Scenario 10, the fan-out with Chorus on one and on two worker threads, per thread count
    /// and round (Chorus only).
    #[serde(default)]
    pub multicore: Vec<(usize, usize, fanout::FanoutRun)>,
    /// Scenario 11, idle connections up to the largest count this machine allows one process,
    /// per server and round.
    #[serde(default)]
    pub largest: Vec<(Target, usize, idle::IdleRun)>,
    /// Runs that failed, with why.
    pub failures: Vec<String>,
}
