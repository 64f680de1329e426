//! The scenarios, each a function from a running server to a serializable result. A scenario
//! only drives connections and reads the server's `/proc` entries; starting and stopping the
//! server, rounds and the report are the suite's business (`main.rs`).

pub mod fanout;
pub mod idle;
pub mod polling;
pub mod reconnect;

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

/// CPU seconds this process (the generator) has used.
pub fn generator_cpu_seconds() -> f64 {
    crate::procfs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN)
}
