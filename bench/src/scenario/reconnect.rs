//! Scenario 4, reconnect storm (Chorus only: the peers have no resumable history): clients in
//! rooms of 100 are all dropped at once, events are published while they are away, then every
//! client reconnects at the same moment and joins with `resume` from its last seq. Measures the
//! time until every client has every event, and checks that none is missing or doubled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chorus_sdk::wire::{self, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Protocol, Ws};
use crate::servers::Server;
use crate::{procfs, stats};

/// Members per room.
const ROOM_SIZE: usize = 100;

/// Events published before the drop (delivered live) and while everyone is away.
const BEFORE: u64 = 5;
/// Events published while the clients are away (each client must get all of them on resume).
pub const MISSED: u64 = 20;

/// One storm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReconnectRun {
    /// Clients dropped and reconnected.
    pub clients: usize,
    /// Rooms (of 100 clients each).
    pub rooms: usize,
    /// Events each client missed while away.
    pub missed_per_client: u64,
    /// Seconds from the reconnect until the last client had every event.
    pub all_caught_up_s: f64,
    /// Median seconds until a client had every event.
    pub median_caught_up_s: f64,
    /// Clients that had every event within the time limit (a client that did not is the only
    /// way an event can go missing: `track` returns once it has every one).
    pub caught_up: usize,
    /// Connection attempts that failed and were retried.
    pub retries: u64,
    /// Events received twice or out of order (must be 0).
    pub duplicates_or_gaps: u64,
    /// The server's listen backlog (`--listen-backlog`) in this storm.
    #[serde(default)]
    pub listen_backlog: Option<u32>,
    /// Connection attempts the kernel dropped from the full listen queue during the storm
    /// (those clients wait for TCP's 1 s retry).
    #[serde(default)]
    pub listen_drops: Option<u64>,
}

/// Per-client consistency counters shared by every tracking task.
#[derive(Debug, Default)]
struct Checks {
    duplicates_or_gaps: AtomicU64,
    retries: AtomicU64,
}

/// Reads frames until the client has seq `until` in its room; returns its last seq. Every event
/// must be exactly the next seq.
async fn track(ws: &mut Ws, mut last: u64, until: u64, checks: &Checks) -> Result<u64> {
    while last < until {
        let text = client::recv_text(ws).await?;
        match ServerFrame::decode(&text)? {
            ServerFrame::Event(event) => {
                let Some(seq) = event.seq else { continue };
                if seq != last + 1 {
                    checks.duplicates_or_gaps.fetch_add(1, Ordering::Relaxed);
                }
                last = last.max(seq);
            }
            ServerFrame::Reset(reset) => bail!("reset: {:?}", reset.reason),
            _ => {}
        }
    }
    Ok(last)
}

/// Opens and joins, retrying a failed connection attempt up to five times.
async fn connect(
    addr: std::net::SocketAddr,
    n: usize,
    room: &str,
    resume: Option<wire::Cursor>,
    checks: &Checks,
) -> Result<(Ws, wire::Joined)> {
    let mut attempt = 0;
    loop {
        let result = async {
            let mut ws = client::open(Protocol::Chorus, addr, n).await?;
            let joined = client::join(&mut ws, Protocol::Chorus, room, resume)
                .await?
                .context("Chorus answers joined")?;
            anyhow::Ok((ws, joined))
        }
        .await;
        match result {
            Ok(pair) => return Ok(pair),
            Err(err) if attempt >= 5 => return Err(err),
            Err(_) => {
                attempt += 1;
                checks.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        }
    }
}

/// Publishes `count` events to each room and waits for every ack.
async fn publish_round(ws: &mut Ws, rooms: usize, count: u64, first_id: u64) -> Result<()> {
    let mut id = first_id;
    for room in 0..rooms {
        for _ in 0..count {
            let frame =
                client::publish_frame(Protocol::Chorus, &room_name(room), id, 0, client::now_us());
            ws.send(Message::text(frame)).await?;
            id += 1;
        }
    }
    let mut acked = 0;
    while acked < rooms as u64 * count {
        match ServerFrame::decode(&client::recv_text(ws).await?)? {
            ServerFrame::Ack(_) => acked += 1,
            ServerFrame::Nack(nack) => bail!("publish refused: {}", nack.message),
            _ => {}
        }
    }
    Ok(())
}

fn room_name(room: usize) -> String {
    format!("storm-{room}")
}

/// Runs one storm of `clients` against a Chorus server listening with `listen_backlog`.
pub async fn run(server: &Server, clients: usize, listen_backlog: u32) -> Result<ReconnectRun> {
    let rooms = clients.div_ceil(ROOM_SIZE);
    let checks = Arc::new(Checks::default());
    let mut publisher = client::open(Protocol::Chorus, server.addr, clients).await?;
    for room in 0..rooms {
        client::join(&mut publisher, Protocol::Chorus, &room_name(room), None).await?;
    }
    // Everyone joins, then receives BEFORE events live.
    let mut sockets = Vec::with_capacity(clients);
    for n in 0..clients {
        sockets.push(connect(server.addr, n, &room_name(n / ROOM_SIZE), None, &checks).await?);
    }
    publish_round(&mut publisher, rooms, BEFORE, 0).await?;
    let tracked = sockets.into_iter().map(|(mut ws, joined)| {
        let checks = Arc::clone(&checks);
        async move {
            let last = track(&mut ws, joined.head, joined.head + BEFORE, &checks).await?;
            anyhow::Ok((joined.epoch, last, ws))
        }
    });
    let tracked: Vec<_> = futures_util::stream::iter(tracked)
        .buffer_unordered(clients.max(1))
        .collect()
        .await;
    let mut cursors = Vec::with_capacity(clients);
    for result in tracked {
        let (epoch, last, ws) = result?;
        cursors.push(wire::Cursor { epoch, seq: last });
        drop(ws); // Dropped at once: the storm starts here.
    }
    publish_round(&mut publisher, rooms, MISSED, BEFORE * rooms as u64).await?;
    let head = BEFORE + MISSED;

    let drops_before = procfs::listen_drops();
    let storm_start = client::now_us();
    let mut tasks = Vec::with_capacity(clients);
    for (n, cursor) in cursors.into_iter().enumerate() {
        let checks = Arc::clone(&checks);
        let addr = server.addr;
        let room = room_name(n / ROOM_SIZE);
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect(addr, n, &room, Some(cursor), &checks).await?;
            track(&mut ws, cursor.seq, head, &checks).await?;
            anyhow::Ok((client::now_us() - storm_start, ws))
        }));
    }
    let mut times = Vec::new();
    let mut sockets = Vec::new();
    for task in tasks {
        // A client that fails or times out is not caught up (the report shows how many were).
        if let Ok(Ok(Ok((took_us, ws)))) = tokio::time::timeout(Duration::from_secs(60), task).await
        {
            times.push(took_us as f64 / 1e6);
            sockets.push(ws);
        }
    }
    let listen_drops = procfs::listen_drops()
        .zip(drops_before)
        .map(|(after, before)| after.saturating_sub(before));
    let spread = stats::Spread::of(&times);
    Ok(ReconnectRun {
        clients,
        rooms,
        missed_per_client: MISSED,
        all_caught_up_s: spread.map_or(f64::NAN, |s| s.max),
        median_caught_up_s: spread.map_or(f64::NAN, |s| s.median),
        caught_up: times.len(),
        retries: checks.retries.load(Ordering::Relaxed),
        duplicates_or_gaps: checks.duplicates_or_gaps.load(Ordering::Relaxed),
        listen_backlog: Some(listen_backlog),
        listen_drops,
    })
}
