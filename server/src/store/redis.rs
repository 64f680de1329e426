//! The multi-node engine's store: Redis sequences every room for all the nodes that share it.
//!
//! Every publish is one server-side Lua script (`redis/append.lua`, run with `EVALSHA`), so two
//! nodes can never hand out one seq: Redis runs scripts one at a time. The script
//! 1. reads the room's epoch, and creates a fresh one (passed in, from [`super::random_epoch`])
//!    when the room is unknown — never published to, or *lost*: Redis restarted without
//!    persistence, was flushed, or evicted the key. A lost room and a new one look alike, and
//!    both start a new lineage, so clients resuming with an old cursor get `reset`
//!    (`epoch_changed`) instead of silently diverging;
//! 2. trims the log's front by the retention policy (count, and age by each entry's `at`),
//!    deleting the dedupe records of what it drops;
//! 3. checks idempotency by (room, sender, id): a retry gets `Duplicate` with the original seq;
//! 4. checks `if_seq` against the head;
//! 5. increments the seq, `XADD`s the event to the room's stream under the entry id `<seq>-0`,
//!    records the dedupe key, trims again, sets the log's and the records' expiry to the age
//!    limit (every kept entry would have aged out by then, so an idle room frees itself);
//! 6. `PUBLISH`es the stored event on the room's live channel.
//!
//! Reads are a second script (`redis/read.lua`): the head, the oldest kept seq and the page come
//! from one snapshot. A read of an unknown room creates its epoch (with an expiry, removed by
//! the first append) so that the read and the room's first append agree on it.
//!
//! ## Keys
//!
//! With the prefix `P` (`--redis-prefix`, default `chorus:`; several deployments can share one
//! Redis under different prefixes) and room `R`, the room's keys carry the hash tag `{R}`, so
//! one room lives on one shard of a Redis Cluster and its script touches one slot:
//! - `P{R}:head` — hash: `epoch` (the lineage, decimal) and `seq` (the head); no expiry once the
//!   room has an event;
//! - `P{R}:log` — stream of the kept events, entry id `<seq>-0`, fields `i` (id), `f` (sender),
//!   `a` (at, ms) and `b` (body, the exact JSON text);
//! - `P{R}:ids` — hash: `<sender>\n<id>` → seq, exactly the ids of the kept events (the dedupe
//!   window is the kept history, as in the other stores);
//! - `P{R}:live` — the pub/sub channel. Its message is the stored event, seven fields joined by
//!   `\n`: epoch, seq, at, room, id, sender, body (names contain no `\n`, and the body comes
//!   last, so it may). [`decode_live`] reads it back.
//!
//! ## Order and failures
//!
//! One task owns the write connection: it takes every job queued when it wakes, sends them as
//! one pipeline (one round trip) and hands the outcomes over in submission order. An error
//! reaching Redis fails the jobs in flight with [`StoreError::Backend`], whose message names the
//! URL; such a job may still have been stored, and the client's retry (same id) is then answered
//! `Duplicate`. After Redis lost its script cache (a restart) a job answered `NOSCRIPT` did not
//! run: the writer loads the script and runs it again, unless a later job of the same pipeline
//! already ran (another node loaded the script meanwhile), in which case it fails the job rather
//! than reorder the room's seqs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_sdk::wire::{Event, EventId, Json, RoomName};
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::{
    AppendJob, AppendOutcome, AppendRequest, OutcomeSender, Page, PageLimit, Retention, RoomHead,
    Store, StoreError, StoreFigures, StoredEvent,
};

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "chorus:";
/// Most appends sent in one pipeline.
pub const MAX_BATCH: usize = 1024;
/// Longest a single request (a pipeline, a read) may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reads of one page never ask for more than this many events.
const MAX_READ_LIMIT: usize = 100_000;

const APPEND_LUA: &str = include_str!("redis/append.lua");
const READ_LUA: &str = include_str!("redis/read.lua");

/// Where a deployment's keys live: the prefix and the per-room names (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// Keys under `prefix`. Braces are refused: they would move the hash tag off the room.
    pub fn new(prefix: &str) -> Result<KeyLayout, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::Backend(format!(
                "the Redis key prefix {prefix:?} may not contain {{ or }}: the room name is the keys' hash tag"
            )));
        }
        Ok(KeyLayout {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, room: &RoomName, what: &str) -> String {
        format!("{}{{{}}}:{what}", self.prefix, room)
    }

    /// The room's head hash (`epoch`, `seq`).
    pub fn head(&self, room: &RoomName) -> String {
        self.key(room, "head")
    }

    /// The room's event stream.
    pub fn log(&self, room: &RoomName) -> String {
        self.key(room, "log")
    }

    /// The room's dedupe records.
    pub fn ids(&self, room: &RoomName) -> String {
        self.key(room, "ids")
    }

    /// The room's live channel, on which every stored event is published.
    pub fn live_channel(&self, room: &RoomName) -> String {
        self.key(room, "live")
    }

    /// The room's signal channel, on which nodes broadcast what they share (see `crate::bus`).
    pub fn signal_channel(&self, room: &RoomName) -> String {
        self.key(room, "sig")
    }
}

/// Reads a message of a room's live channel (the format is in the module doc).
pub fn decode_live(message: &[u8]) -> Result<StoredEvent, StoreError> {
    let bad = |what: &str| StoreError::Backend(format!("live message: bad {what}"));
    let text = std::str::from_utf8(message).map_err(|_| bad("text"))?;
    let mut fields = text.splitn(7, '\n');
    let mut next = |what: &str| fields.next().ok_or_else(|| bad(what));
    let number = |text: &str, what: &str| text.parse::<u64>().map_err(|_| bad(what));
    let epoch = number(next("epoch")?, "epoch")?;
    let seq = number(next("seq")?, "seq")?;
    let at = number(next("at")?, "at")?;
    let room = RoomName::parse(next("room")?).map_err(|_| bad("room"))?;
    let id = EventId::parse(next("id")?).map_err(|_| bad("id"))?;
    let from = next("sender")?.to_owned();
    let body = Json::from_text(next("body")?.to_owned()).map_err(|_| bad("body"))?;
    Ok(StoredEvent {
        epoch,
        event: Event {
            room,
            seq: Some(seq),
            id,
            from,
            at,
            body,
        },
    })
}

/// The Redis [`Store`].
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::UnboundedSender<WriterMsg>,
    reads: ConnectionManager,
    keys: KeyLayout,
    retention: Retention,
    read_script: Script,
    url: String,
    round_trips: Arc<AtomicU64>,
    timing: Arc<RoundTripTiming>,
}

/// How long the writer's append round trips took (for `/metrics`).
#[derive(Debug, Default)]
struct RoundTripTiming {
    micros: AtomicU64,
    micros_max: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum WriterMsg {
    Append(AppendJob),
    Flush(oneshot::Sender<()>),
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |at| scheme_end + at);
    let Some(at) = url[scheme_end..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &url[scheme_end..scheme_end + at];
    let user = userinfo.split(':').next().unwrap_or_default();
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else if user.is_empty() {
        String::new()
    } else {
        // `redis://secret@host` is a password without a user name.
        "***".to_owned()
    };
    format!("{}{masked}{}", &url[..scheme_end], &url[scheme_end + at..])
}

impl RedisStore {
    /// Connects to `url` (`redis://` or `rediss://`), checks the server can run the scripts,
    /// loads them and starts the writer task (on the current tokio runtime). Fails when Redis
    /// cannot be reached, with a message that names the URL (its password masked).
    pub async fn open(
        url: &str,
        prefix: &str,
        retention: Retention,
        outcomes: OutcomeSender,
    ) -> Result<RedisStore, StoreError> {
        let keys = KeyLayout::new(prefix)?;
        let shown = redacted_url(url);
        let fail = |err: RedisError| StoreError::Backend(format!("Redis at {shown}: {err}"));
        if url.starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; another part may have installed one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if !["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(StoreError::Backend(format!(
                "{shown} is not a Redis URL: use redis://host:port/ (or rediss:// for TLS)"
            )));
        }
        let client = redis::Client::open(url).map_err(fail)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        // Writes and reads have a connection each, so a long pipeline does not hold reads up.
        let mut writes = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(fail)?;
        let reads = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(fail)?;
        check_version(&mut writes)
            .await
            .map_err(|err| StoreError::Backend(format!("Redis at {shown}: {err}")))?;
        let append_script = Script::new(APPEND_LUA);
        let read_script = Script::new(READ_LUA);
        append_script.load_async(&mut writes).await.map_err(fail)?;
        read_script.load_async(&mut writes).await.map_err(fail)?;

        let (jobs, queue) = mpsc::unbounded_channel();
        let round_trips = Arc::new(AtomicU64::new(0));
        let timing = Arc::new(RoundTripTiming::default());
        let writer = Writer {
            timing: Arc::clone(&timing),
            conn: writes,
            keys: keys.clone(),
            retention,
            script: append_script,
            outcomes,
            url: shown.clone(),
            round_trips: Arc::clone(&round_trips),
        };
        tokio::spawn(writer.run(queue));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                jobs,
                reads,
                keys,
                retention,
                read_script,
                url: shown,
                round_trips,
                timing,
            }),
        })
    }

    /// The key layout in use.
    pub fn keys(&self) -> &KeyLayout {
        &self.inner.keys
    }

    /// How many append pipelines (round trips to Redis) the writer has sent.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    fn backend(&self, err: RedisError) -> StoreError {
        StoreError::Backend(format!("Redis at {}: {err}", self.inner.url))
    }
}

/// Refuses servers older than 6.2 (exclusive `XRANGE` bounds and `XTRIM MINID` are needed).
async fn check_version(conn: &mut ConnectionManager) -> Result<(), String> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .map_err(|err| err.to_string())?;
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("0");
    let mut parts = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (6, 2) {
        return Err(format!(
            "Redis {version} is too old: Chorus needs 6.2 or newer"
        ));
    }
    Ok(())
}

impl Store for RedisStore {
    fn submit(&self, job: AppendJob) {
        if let Err(mpsc::error::SendError(WriterMsg::Append(job))) =
            self.inner.jobs.send(WriterMsg::Append(job))
        {
            // The writer task only ends with the runtime; say so rather than lose it silently.
            tracing::error!(room = %job.request.room, "redis writer is gone; append refused");
        }
    }

    /// The read script takes the event count; the byte bound is applied to what it returns
    /// (a page of at most `MAX_READ_LIMIT` events is read whole, then cut at `limit.bytes`).
    fn read_bounded(
        &self,
        room: &RoomName,
        after: u64,
        limit: PageLimit,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        let room = room.clone();
        Box::pin(async move {
            let inner = &self.inner;
            let retention = inner.retention;
            let reply: Value = inner
                .read_script
                .key(inner.keys.head(&room))
                .key(inner.keys.log(&room))
                .key(inner.keys.ids(&room))
                .arg(super::random_epoch())
                // Lua numbers are doubles: a cursor past every seq (seqs stay below 2^53) is
                // read as 2^53, not rounded into an invalid stream id.
                .arg(after.min(chorus_sdk::wire::MAX_SAFE_INTEGER))
                .arg(limit.events.min(MAX_READ_LIMIT))
                .arg(crate::clock::unix_ms_now())
                .arg(retention.max_events)
                .arg(max_age_ms(&retention))
                .arg(max_age_ms(&retention))
                .invoke_async(&mut inner.reads.clone())
                .await
                .map_err(|err| self.backend(err))?;
            let mut page = decode_page(&room, reply).map_err(|what| {
                StoreError::Backend(format!("Redis at {}: read of {room}: {what}", inner.url))
            })?;
            page.truncate_to(limit.bytes);
            Ok(page)
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let (done, wait) = oneshot::channel();
        let sent = self.inner.jobs.send(WriterMsg::Flush(done)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = wait.await;
            }
        })
    }

    fn figures(&self) -> Option<StoreFigures> {
        let inner = &self.inner;
        Some(StoreFigures {
            append_round_trips: inner.round_trips.load(Ordering::Relaxed),
            append_round_trip_micros: inner.timing.micros.load(Ordering::Relaxed),
            append_round_trip_micros_max: inner.timing.micros_max.load(Ordering::Relaxed),
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut self.inner.reads.clone())
                .await
                .map_err(|err| self.backend(err))
        })
    }
}

/// The age limit in milliseconds, at least 1 (`PEXPIRE 0` would delete at once).
fn max_age_ms(retention: &Retention) -> u64 {
    (retention.max_age.as_millis() as u64).max(1)
}

/// The writer task's state: it alone sends appends, so their outcomes keep submission order.
struct Writer {
    conn: ConnectionManager,
    keys: KeyLayout,
    retention: Retention,
    script: Script,
    outcomes: OutcomeSender,
    url: String,
    round_trips: Arc<AtomicU64>,
    timing: Arc<RoundTripTiming>,
}

type JobResult = Result<AppendOutcome, StoreError>;

impl Writer {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<WriterMsg>) {
        while let Some(first) = queue.recv().await {
            let mut appends = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(job) => appends.push(job),
                    WriterMsg::Flush(done) => flushes.push(done),
                }
                if appends.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                let results = self.append_all(&appends).await;
                for (job, result) in appends.into_iter().zip(results) {
                    if let Err(err) = &result {
                        tracing::warn!(room = %job.request.room, id = %job.request.id, "append failed: {err}");
                    }
                    // The receiver is gone only when the hub stopped.
                    let _ = self.outcomes.send(job.done(result));
                }
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    fn backend(&self, err: impl std::fmt::Display) -> StoreError {
        StoreError::Backend(format!("Redis at {}: {err}", self.url))
    }

    /// Runs `jobs` in one pipeline (twice for the jobs Redis answered `NOSCRIPT`).
    async fn append_all(&mut self, jobs: &[AppendJob]) -> Vec<JobResult> {
        let mut results: Vec<Option<JobResult>> = vec![None; jobs.len()];
        let mut pending: Vec<usize> = (0..jobs.len()).collect();
        for attempt in 0..2 {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let now = crate::clock::unix_ms_now();
            for &index in &pending {
                self.push_append(&mut pipe, &jobs[index].request, now);
            }
            #[allow(clippy::disallowed_methods)] // Measuring the round trip, not hub time.
            let started = std::time::Instant::now();
            let replies = pipe.query_async(&mut self.conn).await;
            let micros = started.elapsed().as_micros() as u64;
            self.timing.micros.fetch_add(micros, Ordering::Relaxed);
            self.timing.micros_max.fetch_max(micros, Ordering::Relaxed);
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let replies: Vec<RedisResult<Value>> = match replies {
                Ok(replies) => replies,
                Err(err) => {
                    let err = self.backend(err);
                    for index in pending {
                        results[index] = Some(Err(err.clone()));
                    }
                    break;
                }
            };
            let no_script = |reply: &RedisResult<Value>| {
                reply
                    .as_ref()
                    .is_err_and(|err| err.code() == Some("NOSCRIPT"))
            };
            let first_missing = replies.iter().position(no_script);
            // Running the missing ones again is only safe when nothing after them ran.
            let retry = first_missing.is_some_and(|first| replies[first..].iter().all(no_script))
                && attempt == 0;
            let mut again = Vec::new();
            for (&index, reply) in pending.iter().zip(replies) {
                results[index] = Some(if no_script(&reply) {
                    if retry {
                        again.push(index);
                        continue;
                    }
                    Err(self.backend(
                        "the script cache was emptied while this publish was in flight; publish again",
                    ))
                } else {
                    reply.map_err(|err| self.backend(err)).and_then(|value| {
                        decode_append(&jobs[index].request, value)
                            .map_err(|what| self.backend(what))
                    })
                });
            }
            if again.is_empty() {
                break;
            }
            if let Err(err) = self.script.load_async(&mut self.conn).await {
                let err = self.backend(err);
                for index in again {
                    results[index] = Some(Err(err.clone()));
                }
                break;
            }
            pending = again;
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(StoreError::Closed)))
            .collect()
    }

    fn push_append(&self, pipe: &mut redis::Pipeline, request: &AppendRequest, now: u64) {
        let room = &request.room;
        pipe.cmd("EVALSHA")
            .arg(self.script.get_hash())
            .arg(3)
            .arg(self.keys.head(room))
            .arg(self.keys.log(room))
            .arg(self.keys.ids(room))
            .arg(super::random_epoch())
            .arg(&request.from)
            .arg(request.id.as_str())
            .arg(request.at)
            .arg(request.body.as_text())
            .arg(
                request
                    .if_seq
                    .map(|seq| seq.to_string())
                    .unwrap_or_default(),
            )
            .arg(now)
            .arg(self.retention.max_events)
            .arg(max_age_ms(&self.retention))
            .arg(self.keys.live_channel(room))
            .arg(room.as_str());
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// Reads the append script's answer: `stored seq epoch`, `duplicate seq` or `conflict head`.
fn decode_append(request: &AppendRequest, value: Value) -> Result<AppendOutcome, String> {
    let Value::Array(items) = value else {
        return Err(format!("unexpected append reply {value:?}"));
    };
    let field = |at: usize| items.get(at).and_then(number);
    let bad = || format!("unexpected append reply {items:?}");
    match items.first().and_then(text) {
        Some("stored") => Ok(AppendOutcome::Stored(StoredEvent {
            epoch: field(2).ok_or_else(bad)?,
            event: Event {
                room: request.room.clone(),
                seq: Some(field(1).ok_or_else(bad)?),
                id: request.id.clone(),
                from: request.from.clone(),
                at: request.at,
                body: request.body.clone(),
            },
        })),
        Some("duplicate") => Ok(AppendOutcome::Duplicate {
            seq: field(1).ok_or_else(bad)?,
        }),
        Some("conflict") => Ok(AppendOutcome::Conflict {
            head: field(1).ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

/// Reads the read script's answer: `epoch head oldest [entries]`.
fn decode_page(room: &RoomName, value: Value) -> Result<Page, String> {
    let Value::Array(items) = value else {
        return Err(format!("unexpected reply {value:?}"));
    };
    let field = |at: usize| {
        items
            .get(at)
            .and_then(number)
            .ok_or_else(|| format!("unexpected reply {items:?}"))
    };
    let head = RoomHead {
        epoch: field(0)?,
        head: field(1)?,
        oldest: field(2)?,
    };
    let entries = match items.get(3) {
        Some(Value::Array(entries)) => entries.as_slice(),
        _ => &[],
    };
    let events = entries
        .iter()
        .map(|entry| decode_entry(room, head.epoch, entry))
        .collect::<Result<_, _>>()?;
    Ok(Page { head, events })
}

/// One stream entry (`<seq>-0`, fields `i f a b`) as a stored event.
fn decode_entry(room: &RoomName, epoch: u64, entry: &Value) -> Result<StoredEvent, String> {
    let corrupt = |what: &str| format!("stored {what} of an event of {room} is invalid");
    let Value::Array(parts) = entry else {
        return Err(corrupt("entry"));
    };
    let (Some(id), Some(Value::Array(fields))) = (parts.first().and_then(text), parts.get(1))
    else {
        return Err(corrupt("entry"));
    };
    let seq = id
        .split('-')
        .next()
        .and_then(|seq| seq.parse::<u64>().ok())
        .ok_or_else(|| corrupt("seq"))?;
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|pair| pair.first().and_then(text) == Some(name))
            .and_then(|pair| pair.get(1))
            .and_then(text)
            .ok_or_else(|| corrupt(name))
    };
    Ok(StoredEvent {
        epoch,
        event: Event {
            room: room.clone(),
            seq: Some(seq),
            id: EventId::parse(field("i")?).map_err(|_| corrupt("id"))?,
            from: field("f")?.to_owned(),
            at: field("a")?.parse().map_err(|_| corrupt("time"))?,
            body: Json::from_text(field("b")?.to_owned()).map_err(|_| corrupt("body"))?,
        },
    })
}

#[cfg(test)]
mod tests;
