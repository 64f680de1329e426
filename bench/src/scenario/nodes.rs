//! Scenario 6, across nodes (Chorus only): the fan-out ladder on the Redis engine, once with the
//! whole room on one node and once with the publishers on node A and every other member on node
//! B, both nodes on one `redis-server`. Every event then reaches B's members through Redis
//! (the append script's `PUBLISH`, B's subscription): the difference between the two runs'
//! latencies is what crossing nodes costs (issue 13's goal: p99 within 2 ms of one node at 1k
//! deliveries/s). The Redis commands and round trips per publish are in `cargo bench -p
//! chorus-server --bench redis`.

use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::fanout::{self, FanoutRun, Placement};
use crate::servers::Server;

/// One round: the same ladder on one node and across two.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodesRun {
    /// The whole room on one node (Redis engine).
    pub one_node: FanoutRun,
    /// Publishers on node A, the other members on node B.
    pub across: FanoutRun,
}

/// Runs the ladder on `a` alone, then across `a` (publishers) and `b` (other members). Both
/// must be Chorus nodes on the same Redis.
pub async fn run(
    a: &Server,
    b: &Server,
    members: usize,
    deliveries_per_s: &[f64],
    step_for: Duration,
) -> Result<NodesRun> {
    let protocol = a.target.protocol();
    let one_node = fanout::ladder(
        Placement {
            protocol,
            servers: &[a],
            publishers_at: a.addr,
            members_at: a.addr,
            room: &format!("nodes-one-{}", crate::client::now_us()),
        },
        members,
        deliveries_per_s,
        step_for,
    )
    .await?;
    // Let the first room's members go before the second run fills the room again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let across = fanout::ladder(
        Placement {
            protocol,
            servers: &[a, b],
            publishers_at: a.addr,
            members_at: b.addr,
            room: &format!("nodes-across-{}", crate::client::now_us()),
        },
        members,
        deliveries_per_s,
        step_for,
    )
    .await?;
    Ok(NodesRun { one_node, across })
}
