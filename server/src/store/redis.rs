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
//! 6. `PUBLISH`es (on a cluster `SPUBLISH`es) the stored event on the room's live channel.
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
//!   `a` (at, ms), `b` (body, the exact JSON text) and, when the event has a type
//!   (`Json::event_type`), `t` (the type, which filtered reads match: `redis/filtered.rs`);
//! - `P{R}:ids` — hash: `<sender>\n<id>` → seq, exactly the ids of the kept events (the dedupe
//!   window is the kept history, as in the other stores);
//! - `P{R}:docs` — hash: the room's document snapshots (`redis/docs.rs`), no expiry;
//! - `P{R}:live` — the pub/sub channel. Its message is the stored event, seven fields joined by
//!   `\n`: epoch, seq, at, room, id, sender, body (names contain no `\n`, and the body comes
//!   last, so it may). [`decode_live`] reads it back.
//!
//! ## Order and failures
//!
//! One task owns the writes (`redis/writer.rs`): it takes every job queued when it wakes, sends
//! them as one pipeline (one round trip; on a Redis Cluster one pipeline per slot, all in
//! flight at once) and hands the outcomes over in submission order. An error reaching Redis
//! fails the jobs in flight with [`StoreError::Backend`], whose message names the URL; such a
//! job may still have been stored, and the client's retry (same id) is then answered
//! `Duplicate`. After Redis lost its script cache (a restart, a failover) a job answered
//! `NOSCRIPT` did not run: the writer loads the script (on a cluster, on that slot's master)
//! and runs it again, unless a later job of the same pipeline already ran (another node loaded
//! the script meanwhile), in which case it fails the job rather than reorder the room's seqs.
//!
//! ## Redis Cluster
//!
//! [`RedisTarget`] says whether the nodes share one server or a cluster (`--redis-cluster`).
//! On a cluster every script runs on the master of its room's slot (all its keys share the
//! `{R}` tag), the append script publishes with `SPUBLISH` (sharded pub/sub: the message stays
//! on the room's shard; the command is the script's last argument) and the bus subscribes with
//! `SSUBSCRIBE` (`crate::bus::redis_cluster`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_sdk::wire::{Event, EventId, Json, LockChange, LockInfo, RoomName};
use futures_util::future::BoxFuture;
use redis::{RedisError, Script, Value};
use tokio::sync::{mpsc, oneshot};

mod docs;
mod filtered;
pub mod target;
mod writer;

pub use filtered::MAX_FILTER_BUDGET;

pub use target::{RedisConn, RedisTarget};
use writer::{RoundTripTiming, Writer, WriterMsg};

use super::locks::{LockOp, LockOutcome, LockRequest};
use super::{
    AppendJob, AppendOutcome, AppendRequest, DocSnapshot, FilteredPage, FilteredRead,
    OutcomeSender, Page, PageLimit, Retention, RoomHead, Store, StoreError, StoreFigures,
    StoredEvent,
};

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "chorus:";
/// Most appends sent in one pipeline.
pub const MAX_BATCH: usize = 1024;
/// Longest a single request (a pipeline, a read) may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reads of one page never ask for more than this many events.
const MAX_READ_LIMIT: usize = 100_000;

pub(crate) const APPEND_LUA: &str = include_str!("redis/append.lua");
pub(crate) const LOCK_LUA: &str = include_str!("redis/lock.lua");
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

    pub(crate) fn key(&self, room: &RoomName, what: &str) -> String {
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

    /// The room's locks: name -> the last grant (see `redis/lock.lua`).
    pub fn locks(&self, room: &RoomName) -> String {
        self.key(room, "locks")
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
    reads: RedisConn,
    keys: KeyLayout,
    retention: Retention,
    read_script: Script,
    url: String,
    round_trips: Arc<AtomicU64>,
    timing: Arc<RoundTripTiming>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

/// Comma-separated URLs (a cluster's nodes) with every password replaced by `***`.
pub fn redacted_urls(text: &str) -> String {
    text.split(',')
        .map(|url| redacted_url(url.trim()))
        .collect::<Vec<_>>()
        .join(",")
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
    /// Connects to one server at `url` (`redis://` or `rediss://`); see [`RedisStore::open_on`].
    pub async fn open(
        url: &str,
        prefix: &str,
        retention: Retention,
        outcomes: OutcomeSender,
    ) -> Result<RedisStore, StoreError> {
        let target = RedisTarget::parse(url, false)?;
        RedisStore::open_on(&target, prefix, retention, outcomes).await
    }

    /// Connects to `target` (one server or a cluster), checks it can run the scripts, loads
    /// them (on every master of a cluster) and starts the writer task (on the current tokio
    /// runtime). Fails when Redis cannot be reached or is not what `target` says, with a
    /// message that names the URLs (passwords masked).
    pub async fn open_on(
        target: &RedisTarget,
        prefix: &str,
        retention: Retention,
        outcomes: OutcomeSender,
    ) -> Result<RedisStore, StoreError> {
        let keys = KeyLayout::new(prefix)?;
        let shown = target.shown();
        let fail = |err: RedisError| {
            StoreError::Backend(format!("Redis at {shown}: {}", target.explain(&err)))
        };
        // Writes and reads have a connection each, so a long pipeline does not hold reads up.
        let mut writes = target.connect(RESPONSE_TIMEOUT, 2).await.map_err(fail)?;
        let reads = target.connect(RESPONSE_TIMEOUT, 2).await.map_err(fail)?;
        target
            .check(&mut writes)
            .await
            .map_err(|err| StoreError::Backend(format!("Redis at {shown}: {err}")))?;
        let append_script = Script::new(APPEND_LUA);
        let read_script = Script::new(READ_LUA);
        let lock_script = Script::new(LOCK_LUA);
        append_script.load_async(&mut writes).await.map_err(fail)?;
        read_script.load_async(&mut writes).await.map_err(fail)?;
        lock_script.load_async(&mut writes).await.map_err(fail)?;

        let (jobs, queue) = mpsc::unbounded_channel();
        let round_trips = Arc::new(AtomicU64::new(0));
        let timing = Arc::new(RoundTripTiming::default());
        let writer = Writer {
            timing: Arc::clone(&timing),
            conn: writes,
            keys: keys.clone(),
            retention,
            script: append_script,
            lock_script,
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
            let mut read = redis::cmd("EVALSHA");
            read.arg(inner.read_script.get_hash())
                .arg(3)
                .arg(inner.keys.head(&room))
                .arg(inner.keys.log(&room))
                .arg(inner.keys.ids(&room))
                .arg(super::random_epoch())
                // Lua numbers are doubles: a cursor past every seq (seqs stay below 2^53) is
                // read as 2^53, not rounded into an invalid stream id.
                .arg(after.min(chorus_sdk::wire::MAX_SAFE_INTEGER))
                .arg(limit.events.min(MAX_READ_LIMIT))
                .arg(crate::clock::unix_ms_now())
                .arg(retention.max_events)
                .arg(max_age_ms(&retention))
                .arg(max_age_ms(&retention));
            let mut conn = inner.reads.clone();
            let reply: Value = match read.query_async(&mut conn).await {
                // Redis lost its script cache (a restart; on a cluster, this room's master):
                // load the script where the room lives and read again (a read has no effect
                // worth keeping in order, unlike an append).
                Err(err) if err.code() == Some("NOSCRIPT") => {
                    conn.load_script(READ_LUA, &inner.keys.head(&room))
                        .await
                        .map_err(|err| self.backend(err))?;
                    read.query_async(&mut conn).await
                }
                other => other,
            }
            .map_err(|err| self.backend(err))?;
            let mut page = decode_page(&room, reply).map_err(|what| {
                StoreError::Backend(format!("Redis at {}: read of {room}: {what}", inner.url))
            })?;
            page.truncate_to(limit.bytes);
            Ok(page)
        })
    }

    fn read_filtered(
        &self,
        room: &RoomName,
        read: FilteredRead,
    ) -> BoxFuture<'_, Result<FilteredPage, StoreError>> {
        let room = room.clone();
        Box::pin(async move { self.filtered(&room, &read).await })
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

    fn lock(&self, request: LockRequest) -> BoxFuture<'static, Result<LockOutcome, StoreError>> {
        let (done, wait) = oneshot::channel();
        let sent = self.inner.jobs.send(WriterMsg::Lock(request, done)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            wait.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn locks(&self, room: &RoomName, at: u64) -> BoxFuture<'_, Result<Vec<LockInfo>, StoreError>> {
        let room = room.clone();
        Box::pin(async move {
            let inner = &self.inner;
            let rows: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(inner.keys.locks(&room))
                .query_async(&mut inner.reads.clone())
                .await
                .map_err(|err| self.backend(err))?;
            let mut locks = Vec::new();
            for (name, row) in rows {
                let grant = decode_lock_row(&name, &row).ok_or_else(|| {
                    StoreError::Backend(format!(
                        "Redis at {}: a lock of {room} is invalid",
                        inner.url
                    ))
                })?;
                if let Some(grant) = grant.filter(|grant| grant.until > at) {
                    locks.push(grant);
                }
            }
            locks.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(locks)
        })
    }

    fn doc_snapshot(
        &self,
        room: &RoomName,
        doc: &EventId,
    ) -> BoxFuture<'_, Result<Option<DocSnapshot>, StoreError>> {
        let (room, doc) = (room.clone(), doc.clone());
        Box::pin(async move {
            let inner = &self.inner;
            docs::read(&mut inner.reads.clone(), &inner.keys, &room, &doc)
                .await
                .map_err(|err| self.backend(err))?
                .map_err(|reason| StoreError::Backend(format!("Redis at {}: {reason}", inner.url)))
        })
    }

    fn save_doc_snapshot(&self, snapshot: DocSnapshot) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = &self.inner;
            docs::write(&mut inner.reads.clone(), &inner.keys, &snapshot)
                .await
                .map_err(|err| self.backend(err))
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
pub(crate) fn max_age_ms(retention: &Retention) -> u64 {
    (retention.max_age.as_millis() as u64).max(1)
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
pub(crate) fn decode_append(
    request: &AppendRequest,
    value: Value,
) -> Result<AppendOutcome, String> {
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
        Some("lock_lost") => {
            let name = request
                .if_lock
                .as_ref()
                .map(|fence| &fence.name)
                .ok_or_else(bad)?;
            Ok(AppendOutcome::LockLost {
                current: decode_grant(name, &items[1..]).map_err(|()| bad())?,
            })
        }
        _ => Err(bad()),
    }
}

/// A stored lock row (`token \n until \n released \n conn \n user`, see `redis/lock.lua`) as its
/// grant, `None` when released; `Err` when it does not read.
fn decode_lock_row(name: &str, row: &str) -> Option<Option<LockInfo>> {
    let mut parts = row.splitn(5, '\n');
    let token = parts.next()?.parse().ok()?;
    let until = parts.next()?.parse().ok()?;
    let released = parts.next()? != "0";
    let conn = parts.next()?.to_owned();
    let user = parts.next()?.to_owned();
    let name = EventId::parse(name).ok()?;
    Some((!released).then_some(LockInfo {
        name,
        token,
        user,
        conn,
        until,
    }))
}

/// `token user conn until` of a script's reply as a grant of `name`; nothing: `None`.
fn decode_grant(name: &EventId, items: &[Value]) -> Result<Option<LockInfo>, ()> {
    if items.is_empty() {
        return Ok(None);
    }
    let field = |at: usize| items.get(at).and_then(text).map(str::to_owned).ok_or(());
    let number = |at: usize| items.get(at).and_then(number).ok_or(());
    Ok(Some(LockInfo {
        name: name.clone(),
        token: number(0)?,
        user: field(1)?,
        conn: field(2)?,
        until: number(3)?,
    }))
}

/// The lock script's arguments for `request` (see `redis/lock.lua`).
pub(crate) fn lock_args(request: &LockRequest) -> (&'static str, &str, &str, u64, u64) {
    match &request.op {
        LockOp::Acquire { user, conn, ttl_ms } => ("acquire", user, conn, 0, *ttl_ms),
        LockOp::Renew {
            user,
            conn,
            token,
            ttl_ms,
        } => ("renew", user, conn, *token, *ttl_ms),
        LockOp::Release { user, token, conn } => {
            ("release", user, conn.as_deref().unwrap_or(""), *token, 0)
        }
        LockOp::Orphan {
            conn,
            token,
            grace_ms,
        } => ("orphan", "", conn, *token, *grace_ms),
    }
}

/// Reads the lock script's answer.
pub(crate) fn decode_lock(request: &LockRequest, value: Value) -> Result<LockOutcome, String> {
    let Value::Array(items) = value else {
        return Err(format!("unexpected lock reply {value:?}"));
    };
    let bad = || format!("unexpected lock reply {items:?}");
    let grant = || {
        decode_grant(&request.name, &items[1..])
            .map_err(|()| bad())?
            .ok_or_else(bad)
    };
    match items.first().and_then(text) {
        Some("granted") => Ok(LockOutcome::Changed(LockChange::Granted, grant()?)),
        Some("renewed") => Ok(LockOutcome::Changed(LockChange::Renewed, grant()?)),
        Some("released") => Ok(LockOutcome::Changed(LockChange::Released, grant()?)),
        Some("held") => Ok(LockOutcome::Held(grant()?)),
        Some("lost") => Ok(LockOutcome::Lost(
            decode_grant(&request.name, &items[1..]).map_err(|()| bad())?,
        )),
        Some("unchanged") => Ok(LockOutcome::Unchanged),
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
