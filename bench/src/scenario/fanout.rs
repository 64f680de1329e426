//! Scenario 2, fan-out: one room of N members (the first few also publish), open-loop publish
//! rates stepped up. Per step: deliveries per second, the server's CPU seconds per million
//! deliveries, latency percentiles from the timestamp in each payload. The ladder stops at the
//! first step with p99 over 100 ms or any loss. [`ladder`] also runs it across several nodes
//! (the publishers on one, the other members on another: scenario 6, `nodes`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::client::{self, Command, Protocol, Tally};
use crate::servers::Server;
use crate::stats;

/// How many of the members publish (round-robin), so no one connection carries every publish.
pub const PUBLISHERS: usize = 10;

/// The p99 above which the ladder stops, in milliseconds.
pub const P99_LIMIT_MS: f64 = 100.0;

/// How long the generator waits for the last deliveries of a step before counting them lost.
const DRAIN: Duration = Duration::from_secs(5);

/// One step of the ladder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// Deliveries per second the step aimed at.
    pub target_deliveries_per_s: f64,
    /// Publishes per second into the room.
    pub events_per_s: f64,
    /// Publishes sent.
    pub published: u64,
    /// Deliveries expected (publishes × members: every member, the publisher too, gets each).
    pub expected: u64,
    /// Deliveries received.
    pub delivered: u64,
    /// Deliveries received per second of publishing.
    pub deliveries_per_s: f64,
    /// Server CPU seconds (user + system) from the first publish to the last delivery.
    pub server_cpu_s: f64,
    /// Server CPU seconds per million deliveries.
    pub cpu_s_per_million: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// The generator's CPU use over the step, as a share of its one core (near 1.0: the
    /// generator, not the server, may be the limit).
    pub generator_busy: f64,
    /// Refusals (nacks, errors) and connections closed during the step.
    pub refusals: u64,
    /// Connections closed by the server during the step.
    pub closed: u64,
}

/// One run of the ladder against one server for one room size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FanoutRun {
    /// Members of the room.
    pub members: usize,
    /// Steps run, in order.
    pub steps: Vec<Step>,
    /// Why the ladder stopped early, if it did.
    pub stopped: Option<String>,
}

/// Where the ladder's connections go, and whose CPU it counts.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    /// The protocol the servers speak.
    pub protocol: Protocol,
    /// Every server the room spans (their CPU seconds are added up).
    pub servers: &'a [&'a Server],
    /// Where the publishing members connect.
    pub publishers_at: SocketAddr,
    /// Where the other members connect.
    pub members_at: SocketAddr,
    /// The room (a fresh name per run where the history outlives the server, as on Redis:
    /// publish ids restart at 0 every run).
    pub room: &'a str,
}

/// Runs the ladder `deliveries_per_s` (each step `step_for` long) on a room of `members`.
pub async fn run(
    server: &Server,
    members: usize,
    deliveries_per_s: &[f64],
    step_for: Duration,
) -> Result<FanoutRun> {
    let placement = Placement {
        protocol: server.target.protocol(),
        servers: &[server],
        publishers_at: server.addr,
        members_at: server.addr,
        room: "fan",
    };
    ladder(placement, members, deliveries_per_s, step_for).await
}

/// Server CPU seconds used so far, added up over `servers`.
fn cpu_seconds(servers: &[&Server]) -> Result<f64> {
    servers.iter().map(|server| server.cpu_seconds()).sum()
}

/// The ladder with its connections placed by `placement`: the first [`PUBLISHERS`] members (who
/// publish, and receive like everyone) at `publishers_at`, the others at `members_at`.
pub async fn ladder(
    placement: Placement<'_>,
    members: usize,
    deliveries_per_s: &[f64],
    step_for: Duration,
) -> Result<FanoutRun> {
    let protocol = placement.protocol;
    let tally = Arc::new(Tally::default());
    let publishing = PUBLISHERS.min(members);
    let room = |_| placement.room.to_owned();
    let (mut conns, _) = super::connect_members(
        protocol,
        placement.publishers_at,
        0..publishing,
        room,
        &tally,
    )
    .await?;
    let (others, _) = super::connect_members(
        protocol,
        placement.members_at,
        publishing..members,
        room,
        &tally,
    )
    .await?;
    conns.extend(others);
    // Let join-time traffic (Chorus presence diffs) finish before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let publishers = &conns[..PUBLISHERS.min(conns.len())];
    let mut steps = Vec::new();
    let mut stopped = None;
    let mut next_id = 0u64;
    for (index, &target) in deliveries_per_s.iter().enumerate() {
        let step = index as u32;
        let events_per_s = target / members as f64;
        let count = (events_per_s * step_for.as_secs_f64()).round().max(1.0) as u64;
        let interval_us = 1e6 / events_per_s;
        let refusals_before = tally.refusals.load(Ordering::Relaxed);
        let closed_before = tally.closed.load(Ordering::Relaxed);
        let cpu_before = cpu_seconds(placement.servers)?;
        let generator_before = super::generator_cpu_seconds();
        let start_us = client::now_us() + 10_000;
        for k in 0..count {
            let due_us = super::due(start_us, interval_us, k).await;
            publishers[k as usize % publishers.len()].send(Command::Publish {
                id: next_id,
                step,
                due_us,
            });
            next_id += 1;
        }
        let published_us = client::now_us();
        let expected = count * members as u64;
        let drain_until = published_us + DRAIN.as_micros() as u64;
        while (tally.delivered(step) as u64) < expected && client::now_us() < drain_until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let end_us = client::now_us();
        let server_cpu_s = cpu_seconds(placement.servers)? - cpu_before;
        let generator_busy = (super::generator_cpu_seconds() - generator_before)
            / ((end_us - start_us) as f64 / 1e6);
        let mut samples = tally.take(step);
        samples.sort_unstable();
        let delivered = samples.len() as u64;
        let ms =
            |q: f64| stats::percentile(&samples, q).map_or(f64::NAN, |us| f64::from(us) / 1000.0);
        let result = Step {
            target_deliveries_per_s: target,
            events_per_s,
            published: count,
            expected,
            delivered,
            // Over the step's schedule (`count` intervals), not until the last publish was sent
            // (which is one interval short).
            deliveries_per_s: delivered as f64 / (count as f64 * interval_us / 1e6),
            server_cpu_s,
            cpu_s_per_million: server_cpu_s / (delivered.max(1) as f64 / 1e6),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            generator_busy,
            refusals: tally.refusals.load(Ordering::Relaxed) - refusals_before,
            closed: tally.closed.load(Ordering::Relaxed) - closed_before,
        };
        let verdict = if result.delivered < result.expected {
            Some(format!(
                "loss at {target} deliveries/s: {} of {} delivered",
                result.delivered, result.expected
            ))
        } else if result.refusals + result.closed > 0 {
            Some(format!(
                "{} refusals and {} closed connections at {target} deliveries/s",
                result.refusals, result.closed
            ))
        } else if result.p99_ms > P99_LIMIT_MS {
            Some(format!(
                "p99 {:.1} ms at {target} deliveries/s",
                result.p99_ms
            ))
        } else {
            None
        };
        steps.push(result);
        if verdict.is_some() {
            stopped = verdict;
            break;
        }
    }
    drop(conns);
    Ok(FanoutRun {
        members,
        steps,
        stopped,
    })
}
