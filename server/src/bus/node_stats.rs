//! `/v1/stats` for a whole deployment: each node on one Redis publishes its own figures, and
//! `/v1/stats` on any node adds up those of the nodes alive.
//!
//! The records are the fields of one hash, `P` + `nodes`: field = the node's id
//! (`HubConfig::node`), value = `at_ms\n` + its figures as JSON. Each node writes its own every
//! [`PUBLISH_EVERY`]; a record older than [`NODE_STALE_AFTER`] is a node that died (or was cut
//! off): it is left out of the sums and removed by the next reader. A node shutting down removes
//! its record at once. Redis hashes have no per-field expiry before 7.4, hence the timestamps.
//! On a Redis Cluster the hash is one key, so it lives on one shard.
//!
//! Which figures add up: `connections`, `polling_sessions` (a session adopted on two nodes
//! counts on both, as it holds a connection on both), `events_per_second` and `events_total`
//! (each stored event is counted by the node that stored it) are sums over the live nodes;
//! `peak_connections`, `rooms` and `users` stay the answering node's own (a room or a user on
//! two nodes would count twice in a sum, and the nodes' peaks were not at one moment).

use std::time::Duration;

use crate::store::redis::{RedisConn, RedisTarget};
use chorus_sdk::wire::Stats;

/// How often each node publishes its figures.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// A node whose record is older than this is not counted (it missed two publishes and more).
pub const NODE_STALE_AFTER: Duration = Duration::from_secs(10);

/// The figures of one node, as its record holds them.
#[derive(serde::Serialize, serde::Deserialize)]
struct Figures {
    connections: u64,
    polling_sessions: u64,
    events_per_second: f64,
    events_total: u64,
}

/// Where the nodes on one Redis keep their figures.
#[derive(Clone)]
pub struct NodeStatsDirectory {
    conn: RedisConn,
    key: String,
    node: String,
}

impl std::fmt::Debug for NodeStatsDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStatsDirectory")
            .field("key", &self.key)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeStatsDirectory {
    /// The records under `prefix`; this node's is `node`.
    pub async fn open(
        target: &RedisTarget,
        prefix: &str,
        node: &str,
    ) -> Result<NodeStatsDirectory, redis::RedisError> {
        let conn = target.connect(Duration::from_secs(2), 1).await?;
        Ok(NodeStatsDirectory {
            conn,
            key: format!("{prefix}nodes"),
            node: node.to_owned(),
        })
    }

    /// Records this node's figures (best effort: a failure is logged).
    pub async fn publish(&self, stats: &Stats, now_ms: u64) {
        let figures = Figures {
            connections: stats.connections,
            polling_sessions: stats.polling_sessions,
            events_per_second: stats.events_per_second,
            events_total: stats.events_total,
        };
        let text = format!(
            "{now_ms}\n{}",
            serde_json::to_string(&figures).expect("numbers serialize")
        );
        let result: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(&self.key)
            .arg(&self.node)
            .arg(text)
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(err) = result {
            tracing::warn!("publishing this node's stats failed: {err}");
        }
    }

    /// Removes this node's record (it is shutting down).
    pub async fn withdraw(&self) {
        let result: redis::RedisResult<()> = redis::cmd("HDEL")
            .arg(&self.key)
            .arg(&self.node)
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(err) = result {
            tracing::warn!("removing this node's stats failed: {err}");
        }
    }

    /// The deployment's figures: `own` (this node's, fresh) plus those of every other live
    /// node. When Redis cannot be read, this node's alone, with `nodes` 1.
    pub async fn deployment(&self, own: Stats, now_ms: u64) -> Stats {
        let records: Vec<(String, String)> = match redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await
        {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!("reading the other nodes' stats failed: {err}");
                Vec::new()
            }
        };
        let stale_before = now_ms.saturating_sub(NODE_STALE_AFTER.as_millis() as u64);
        let mut total = Stats {
            nodes: Some(1),
            ..own
        };
        let mut stale = Vec::new();
        for (node, text) in records {
            if node == self.node {
                continue;
            }
            let Some((at, json)) = text.split_once('\n') else {
                continue;
            };
            let (Ok(at), Ok(figures)) = (at.parse::<u64>(), serde_json::from_str::<Figures>(json))
            else {
                continue;
            };
            if at < stale_before {
                stale.push(node);
                continue;
            }
            total.nodes = total.nodes.map(|n| n + 1);
            total.connections += figures.connections;
            total.polling_sessions += figures.polling_sessions;
            total.events_per_second += figures.events_per_second;
            total.events_total += figures.events_total;
        }
        if !stale.is_empty() {
            let result: redis::RedisResult<()> = redis::cmd("HDEL")
                .arg(&self.key)
                .arg(&stale)
                .query_async(&mut self.conn.clone())
                .await;
            if let Err(err) = result {
                tracing::warn!("removing dead nodes' stats failed: {err}");
            }
        }
        total
    }
}
