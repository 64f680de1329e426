//! Scenario 1, idle connections: resident memory of the server at several connection counts
//! (each connection authenticated and joined to a room of 10), the slope of RSS per
//! connection, and how fast connections open. Scenario 5 is the same in rooms of 1000, where
//! every member once received a `joined` frame listing up to 999 others and a presence change
//! for each later joiner: idle memory per connection must not depend on that.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::client::Tally;
use crate::servers::Server;
use crate::stats;

/// One run of the idle scenario against one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdleRun {
    /// `(connections, server RSS in KiB)`, starting with the freshly started server at 0.
    pub rss_kib: Vec<(usize, u64)>,
    /// Least-squares slope of RSS over connections, in KiB per connection.
    pub kib_per_connection: f64,
    /// Connections opened (connected, authenticated, joined) per second, all levels together.
    pub connects_per_second: f64,
    /// Connections the server closed during the run (should be 0).
    pub closed: u64,
}

/// Opens connections up to each level in turn, each joined to a room of `room_size` (filled one
/// after another), and reads the server's RSS at each level.
pub async fn run(
    server: &Server,
    levels: &[usize],
    settle: Duration,
    room_size: usize,
) -> Result<IdleRun> {
    let protocol = server.target.protocol();
    let tally = Arc::new(Tally::default());
    tokio::time::sleep(settle).await;
    let mut rss_kib = vec![(0, server.rss_kib()?)];
    let mut members = Vec::new();
    let mut connecting = Duration::ZERO;
    for &level in levels {
        let (more, took) = super::connect_members(
            protocol,
            server.addr,
            members.len()..level,
            |n| format!("idle-{}", n / room_size.max(1)),
            &tally,
        )
        .await?;
        members.extend(more);
        connecting += took;
        tokio::time::sleep(settle).await;
        rss_kib.push((level, server.rss_kib()?));
    }
    let points: Vec<(f64, f64)> = rss_kib
        .iter()
        .map(|&(n, kib)| (n as f64, kib as f64))
        .collect();
    Ok(IdleRun {
        kib_per_connection: stats::slope(&points).unwrap_or(f64::NAN),
        connects_per_second: members.len() as f64 / connecting.as_secs_f64().max(1e-9),
        closed: tally.closed.load(std::sync::atomic::Ordering::Relaxed),
        rss_kib,
    })
}
