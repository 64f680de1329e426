//! The scenarios, each a function from a running server to a serializable result. A scenario
//! only drives connections and reads the server's `/proc` entries; starting and stopping the
//! server, rounds and the report are the suite's business (`main.rs`).

pub mod client_cpu;
pub mod docs;
pub mod fanout;
pub mod idle;
pub mod nodes;
pub mod polling;
pub mod reconnect;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;

use crate::client::{self, Member, Protocol, Tally};

/// Connections opened at the same time while setting a scenario up.
pub const CONNECT_CONCURRENCY: usize = 200;

/// Opens connections `range`, joins each to `room_of(n)` and spawns its member task. Returns
/// the members and how long it took.
pub async fn connect_members(
    protocol: Protocol,
    addr: std::net::SocketAddr,
    range: std::ops::Range<usize>,
    room_of: impl Fn(usize) -> String,
    tally: &Arc<Tally>,
) -> Result<(Vec<Member>, Duration)> {
    let started = client::now_us();
    let attempts = range.map(|n| {
        let room = room_of(n);
        async move {
            let mut ws = client::open(protocol, addr, n).await?;
            client::join(&mut ws, protocol, &room, None).await?;
            anyhow::Ok((ws, room))
        }
    });
    let mut opened = futures_util::stream::iter(attempts).buffered(CONNECT_CONCURRENCY);
    let mut members = Vec::new();
    while let Some(result) = opened.next().await {
        let (ws, room) = result?;
        members.push(Member::spawn(ws, protocol, room, Arc::clone(tally)));
    }
    let took = Duration::from_micros(client::now_us() - started);
    Ok((members, took))
}

/// Open loop: waits until publish `k` of a schedule (from `start_us`, one every `interval_us`)
/// is due and returns when it was due. A late publish is not waited for, whatever happened
/// before it, and its latency counts from when it was due.
pub async fn due(start_us: u64, interval_us: f64, k: u64) -> u64 {
    let due_us = start_us + (k as f64 * interval_us) as u64;
    let now = client::now_us();
    if due_us > now {
        tokio::time::sleep(Duration::from_micros(due_us - now)).await;
    }
    due_us
}

/// CPU seconds this process (the generator) has used.
pub fn generator_cpu_seconds() -> f64 {
    crate::procfs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN)
}
