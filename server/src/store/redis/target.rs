//! Where the Redis of a multi-node deployment is — one server, or a Redis Cluster — and the
//! connection that reaches either ([`RedisConn`]). It never decides what is stored: the store,
//! the bus and the session directory send the same commands through it in both modes.
//!
//! `--redis` takes one URL; with `--redis-cluster` it takes the URLs of one or more of the
//! cluster's nodes, comma-separated (the seeds: the rest of the cluster is discovered from
//! them). Several URLs without `--redis-cluster` are refused, and so are a cluster node
//! without the flag and a plain server with it: either mistake would otherwise show up later,
//! as `MOVED` answers or as rooms that never meet.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{Cmd, RedisError, RedisFuture, RedisResult, Value};

use super::redacted_url;
use crate::store::StoreError;

/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which Redis the nodes share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (or a proxy that looks like one), at this URL.
    Single(String),
    /// A Redis Cluster, reached through these of its nodes.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// One server at `url` (no checks: [`RedisTarget::parse`] is for user input).
    pub fn single(url: &str) -> RedisTarget {
        RedisTarget::Single(url.to_owned())
    }

    /// Reads `--redis` (`text`) with `--redis-cluster` (`cluster`).
    pub fn parse(text: &str, cluster: bool) -> Result<RedisTarget, StoreError> {
        let mut urls = split_urls(text);
        let shown = urls
            .iter()
            .map(|url| redacted_url(url))
            .collect::<Vec<_>>()
            .join(",");
        if urls.is_empty() {
            return Err(StoreError::Backend(
                "--redis is empty: give redis://host:port/ (with --redis-cluster, one or more of the cluster's nodes, comma-separated)".into(),
            ));
        }
        let schemes: &[&str] = if cluster {
            &["redis://", "rediss://"]
        } else {
            &["redis://", "rediss://", "redis+unix://", "unix://"]
        };
        for url in &urls {
            if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(StoreError::Backend(format!(
                    "{} is not a Redis URL: use redis://host:port/ (or rediss:// for TLS)",
                    redacted_url(url)
                )));
            }
        }
        if cluster {
            Ok(RedisTarget::Cluster(urls))
        } else if urls.len() > 1 {
            Err(StoreError::Backend(format!(
                "--redis names several servers ({shown}): for a Redis Cluster add --redis-cluster; otherwise give one URL"
            )))
        } else {
            Ok(RedisTarget::Single(urls.swap_remove(0)))
        }
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    /// The URLs with any password masked, comma-separated, for messages and logs.
    pub fn shown(&self) -> String {
        match self {
            RedisTarget::Single(url) => redacted_url(url),
            RedisTarget::Cluster(urls) => urls
                .iter()
                .map(|url| redacted_url(url))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    fn uses_tls(&self) -> bool {
        match self {
            RedisTarget::Single(url) => url.starts_with("rediss://"),
            RedisTarget::Cluster(urls) => urls.iter().any(|url| url.starts_with("rediss://")),
        }
    }

    /// A connection for commands (not pub/sub), failing requests after `response_timeout`.
    /// `retries` is how often a lost connection is tried again before a request fails.
    pub async fn connect(
        &self,
        response_timeout: Duration,
        retries: usize,
    ) -> RedisResult<RedisConn> {
        if self.uses_tls() {
            // rustls needs a process-wide crypto provider; another part may have installed one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        match self {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(retries)
                    .set_max_delay(Duration::from_secs(1));
                let conn = ConnectionManager::new_with_config(client, config).await?;
                Ok(RedisConn::Single(conn))
            }
            RedisTarget::Cluster(urls) => {
                let client = self
                    .cluster_builder(urls)
                    .response_timeout(response_timeout)
                    .retries(retries as u32)
                    .build()?;
                match client.get_async_connection().await {
                    Ok(conn) => Ok(RedisConn::Cluster(conn)),
                    Err(err) => Err(self.diagnose(urls, err).await),
                }
            }
        }
    }

    /// Says why connecting to the cluster failed, asking each seed itself (the cluster client
    /// reports "no connections found" alike for a seed that is down, one that is no cluster
    /// and a cluster that serves no slot).
    async fn diagnose(&self, urls: &[String], err: RedisError) -> RedisError {
        let mut reasons = Vec::new();
        for url in urls {
            let shown = redacted_url(url);
            let answer = async {
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async::<String>(&mut conn)
                    .await
            };
            let reason = match tokio::time::timeout(CONNECT_TIMEOUT, answer).await {
                Err(_) => "no answer in time".to_owned(),
                Ok(Err(err)) if err.to_string().contains("cluster support disabled") => {
                    "this Redis is not a cluster (cluster support disabled); drop --redis-cluster (or point --redis at a cluster's nodes)".to_owned()
                }
                Ok(Err(err)) => err.to_string(),
                Ok(Ok(info)) => {
                    let state = info
                        .lines()
                        .find_map(|line| line.trim().strip_prefix("cluster_state:"))
                        .unwrap_or("unknown")
                        .to_owned();
                    if state == "ok" {
                        "answers, cluster_state:ok".to_owned()
                    } else {
                        format!(
                            "the cluster is down (cluster_state:{state}): every slot must be served by a master before Chorus starts"
                        )
                    }
                }
            };
            reasons.push(format!("{shown}: {reason}"));
        }
        RedisError::from((
            redis::ErrorKind::ClusterConnectionNotFound,
            "no usable cluster node",
            format!("{err}; {}", reasons.join("; ")),
        ))
    }

    /// The cluster client's settings shared by every connection to it.
    pub(crate) fn cluster_builder(&self, urls: &[String]) -> ClusterClientBuilder {
        ClusterClientBuilder::new(urls.iter().map(String::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .min_retry_wait(50)
            .max_retry_wait(1000)
    }

    /// Checks, once at start-up, that the Redis found is the kind configured and can serve:
    /// a plain server is 6.2 or newer and not a cluster node; a cluster is up (`cluster_state:
    /// ok`) and every master is 7.0 or newer (sharded pub/sub). The error says what to change.
    pub async fn check(&self, conn: &mut RedisConn) -> Result<(), String> {
        let info = |section: &'static str| {
            let mut cmd = redis::cmd("INFO");
            cmd.arg(section);
            cmd
        };
        match conn {
            RedisConn::Single(single) => {
                let server: String = info("server")
                    .query_async(single)
                    .await
                    .map_err(|err| err.to_string())?;
                check_version(&server, (6, 2), "")?;
                let cluster: String = info("cluster")
                    .query_async(single)
                    .await
                    .map_err(|err| err.to_string())?;
                if cluster
                    .lines()
                    .any(|line| line.trim() == "cluster_enabled:1")
                {
                    return Err(
                        "this is a Redis Cluster node: add --redis-cluster (one server alone would answer MOVED for most rooms)"
                            .into(),
                    );
                }
                Ok(())
            }
            RedisConn::Cluster(cluster) => {
                let state: String =
                    match redis::cmd("CLUSTER").arg("INFO").query_async(cluster).await {
                        Ok(state) => state,
                        Err(err) => {
                            let RedisTarget::Cluster(urls) = self else {
                                return Err(err.to_string());
                            };
                            return Err(self.diagnose(urls, err).await.to_string());
                        }
                    };
                let state_line = state
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("cluster_state:"))
                    .unwrap_or("unknown");
                if state_line != "ok" {
                    return Err(format!(
                        "the cluster is down (cluster_state:{state_line}): every slot must be served by a master before Chorus starts"
                    ));
                }
                let every_master = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::Special),
                ));
                let reply = cluster
                    .route_command(info("server"), every_master)
                    .await
                    .map_err(|err| err.to_string())?;
                let mut texts = Vec::new();
                collect_texts(&reply, &mut texts);
                for text in texts {
                    check_version(&text, (7, 0), " in a cluster (sharded pub/sub)")?;
                }
                Ok(())
            }
        }
    }

    /// Says what a failure to connect means, in words that name what to change.
    pub fn explain(&self, err: &RedisError) -> String {
        let text = err.to_string();
        if self.is_cluster() && text.contains("cluster support disabled") {
            return format!(
                "{text}: this Redis is not a cluster; drop --redis-cluster (or point --redis at a cluster's nodes)"
            );
        }
        text
    }
}

/// The URLs in `text`, split at each comma followed by a scheme (`x://`) or by nothing (a
/// password may contain commas), trimmed, empty ones dropped.
fn split_urls(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(',') {
        let rest = text[at + 1..].trim_start();
        let starts_url = rest.find("://").is_some_and(|end| {
            end > 0
                && rest[..end]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
        });
        if rest.is_empty() || starts_url {
            urls.push(text[start..at].trim().to_owned());
            start = at + 1;
        }
    }
    urls.push(text[start..].trim().to_owned());
    urls.retain(|url| !url.is_empty());
    urls
}

/// Every text inside `value` (a fan-out's answer is a map of node to reply).
fn collect_texts(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::BulkString(bytes) => into.push(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => into.push(text.clone()),
        Value::VerbatimString { text, .. } => into.push(text.clone()),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                collect_texts(item, into);
            }
        }
        Value::Map(pairs) => {
            for (_, item) in pairs {
                collect_texts(item, into);
            }
        }
        _ => {}
    }
}

/// Refuses an `INFO server` text whose `redis_version` is below `least`.
fn check_version(info: &str, least: (u32, u32), needed_for: &str) -> Result<(), String> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("0");
    let mut parts = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < least {
        return Err(format!(
            "Redis {version} is too old: Chorus needs {}.{} or newer{needed_for}",
            least.0, least.1
        ));
    }
    Ok(())
}

/// A connection to a [`RedisTarget`]: commands are sent as they are, and on a cluster each is
/// routed to the master of its key's slot (a pipeline to the slot of its first key).
#[derive(Clone)]
pub enum RedisConn {
    /// One server.
    Single(ConnectionManager),
    /// A cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Single(_) => "RedisConn::Single",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl RedisConn {
    /// Loads a script where `key` lives: on one server, there; on a cluster, on the master of
    /// `key`'s slot only, so that a master that lost its script cache (a restart, a failover)
    /// is repaired even while another master is unreachable.
    pub async fn load_script(&mut self, code: &str, key: &str) -> RedisResult<()> {
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(code);
        match self {
            RedisConn::Single(conn) => load.query_async::<()>(conn).await,
            RedisConn::Cluster(conn) => {
                let route = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                conn.route_command(load, routing).await?.extract_error()?;
                Ok(())
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag — the text between the first `{`
/// and the next `}` when that is not empty — or of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16_xmodem(tagged.unwrap_or(key)) % 16384
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag_as_redis_computes_them() {
        // Values from `CLUSTER KEYSLOT` (and the Redis Cluster specification's example).
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"chorus:{foo}:head"), 12182);
        assert_eq!(key_slot(b"{}foo"), key_slot(b"{}foo"));
        assert_ne!(key_slot(b"{}foo"), key_slot(b"foo"));
    }

    #[test]
    fn the_flags_name_one_server_or_a_cluster() {
        let check = |text: &str, cluster: bool, expect: Result<RedisTarget, &str>| {
            let got = RedisTarget::parse(text, cluster).map_err(|err| err.to_string());
            match expect {
                Ok(target) => assert_eq!(got, Ok(target), "{text}"),
                Err(part) => {
                    let err = got.expect_err(text);
                    assert!(err.contains(part), "{text}: {err}");
                }
            }
        };
        check(
            "redis://h:1/",
            false,
            Ok(RedisTarget::single("redis://h:1/")),
        );
        check(
            "redis://a:1, redis://b:2",
            true,
            Ok(RedisTarget::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into(),
            ])),
        );
        check(
            "redis://a:1",
            true,
            Ok(RedisTarget::Cluster(vec!["redis://a:1".into()])),
        );
        check(
            "redis://a:1,redis://:pw@b:2",
            false,
            Err("add --redis-cluster"),
        );
        check(
            "redis://a:1,redis://:pw@b:2",
            false,
            Err("redis://:***@b:2"),
        );
        check("unix:///tmp/r.sock", true, Err("is not a Redis URL"));
        check(" , ", true, Err("--redis is empty"));
        check(
            "redis://:pa,ss@h:1/",
            false,
            Ok(RedisTarget::single("redis://:pa,ss@h:1/")),
        );
        check(
            "redis://:pa,ss@a:1,rediss://b:2",
            true,
            Ok(RedisTarget::Cluster(vec![
                "redis://:pa,ss@a:1".into(),
                "rediss://b:2".into(),
            ])),
        );
    }
}
