//! The Redis store's writer task: it alone sends appends, so every room's outcomes keep
//! submission order.
//!
//! It takes every job queued when it wakes and sends them as pipelines: on one server, one
//! pipeline (one round trip); on a cluster, one pipeline per slot, all in flight at once (the
//! cluster connection refuses a pipeline that crosses slots, and retries a pipeline answered
//! `MOVED` or `TRYAGAIN` whole, which is only safe when every command in it was refused
//! alike — true of one slot's commands). A room is one slot, so its jobs travel in one
//! pipeline, in order, and Redis runs them in that order; the writer waits for every pipeline
//! of the batch before it hands the outcomes over, in submission order, and takes the next
//! batch. Pipelines of different slots run in any order: rooms are independent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::{RedisResult, Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::target::{RedisConn, key_slot};
use super::{
    APPEND_LUA, KeyLayout, LOCK_LUA, MAX_BATCH, decode_append, decode_lock, lock_args, max_age_ms,
};
use crate::store::locks::{LockOutcome, LockRequest};
use crate::store::{AppendJob, AppendOutcome, AppendRequest, OutcomeSender, Retention, StoreError};

#[derive(Debug)]
pub(super) enum WriterMsg {
    Append(AppendJob),
    /// A lock operation: run after the appends queued before it, before those after it.
    Lock(
        LockRequest,
        oneshot::Sender<Result<LockOutcome, StoreError>>,
    ),
    Flush(oneshot::Sender<()>),
}

/// How long the writer's append round trips took (for `/metrics`).
#[derive(Debug, Default)]
pub(super) struct RoundTripTiming {
    pub(super) micros: AtomicU64,
    pub(super) micros_max: AtomicU64,
}

/// The writer task's state.
pub(super) struct Writer {
    pub(super) conn: RedisConn,
    pub(super) keys: KeyLayout,
    pub(super) retention: Retention,
    pub(super) script: Script,
    pub(super) lock_script: Script,
    pub(super) outcomes: OutcomeSender,
    pub(super) url: String,
    pub(super) round_trips: Arc<AtomicU64>,
    pub(super) timing: Arc<RoundTripTiming>,
}

type JobResult = Result<AppendOutcome, StoreError>;

impl Writer {
    pub(super) async fn run(self, mut queue: mpsc::UnboundedReceiver<WriterMsg>) {
        while let Some(first) = queue.recv().await {
            let mut appends = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(job) => appends.push(job),
                    WriterMsg::Flush(done) => flushes.push(done),
                    WriterMsg::Lock(request, done) => {
                        self.append_run(std::mem::take(&mut appends)).await;
                        let _ = done.send(self.lock(&request).await);
                    }
                }
                if appends.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            self.append_run(appends).await;
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Runs appends (see `append_all`) and hands their outcomes over in order.
    async fn append_run(&self, appends: Vec<AppendJob>) {
        if appends.is_empty() {
            return;
        }
        let results = self.append_all(&appends).await;
        for (job, result) in appends.into_iter().zip(results) {
            if let Err(err) = &result {
                tracing::warn!(room = %job.request.room, id = %job.request.id, "append failed: {err}");
            }
            // The receiver is gone only when the hub stopped.
            let _ = self.outcomes.send(job.done(result));
        }
    }

    /// Runs one lock operation (`redis/lock.lua`) on the room's slot, loading the script
    /// there first if Redis lost it (a lock operation that was answered `NOSCRIPT` did not run).
    async fn lock(&self, request: &LockRequest) -> Result<LockOutcome, StoreError> {
        let key = self.keys.locks(&request.room);
        let (op, user, conn, token, ms) = lock_args(request);
        let mut call = redis::cmd("EVALSHA");
        call.arg(self.lock_script.get_hash())
            .arg(1)
            .arg(&key)
            .arg(op)
            .arg(request.name.as_str())
            .arg(request.at)
            .arg(user)
            .arg(conn)
            .arg(token)
            .arg(ms)
            .arg(crate::store::locks::FORGET_AFTER_MS);
        let mut redis = self.conn.clone();
        let reply: Value = match call.query_async(&mut redis).await {
            Err(err) if err.code() == Some("NOSCRIPT") => {
                redis
                    .load_script(LOCK_LUA, &key)
                    .await
                    .map_err(|err| self.backend(err))?;
                call.query_async(&mut redis).await
            }
            other => other,
        }
        .map_err(|err| self.backend(err))?;
        decode_lock(request, reply).map_err(|what| self.backend(what))
    }

    fn backend(&self, err: impl std::fmt::Display) -> StoreError {
        StoreError::Backend(format!("Redis at {}: {err}", self.url))
    }

    /// Runs `jobs`: in one pipeline on one server, in one pipeline per slot on a cluster.
    /// The results are in the jobs' order.
    async fn append_all(&self, jobs: &[AppendJob]) -> Vec<JobResult> {
        let mut results: Vec<Option<JobResult>> = vec![None; jobs.len()];
        match self.conn {
            RedisConn::Single(_) => {
                for (index, result) in self.append_group(jobs, (0..jobs.len()).collect()).await {
                    results[index] = Some(result);
                }
            }
            RedisConn::Cluster(_) => {
                // Each slot's jobs keep their submission order within the group.
                let mut groups: HashMap<u16, Vec<usize>> = HashMap::new();
                for (index, job) in jobs.iter().enumerate() {
                    let slot = key_slot(self.keys.head(&job.request.room).as_bytes());
                    groups.entry(slot).or_default().push(index);
                }
                let sent = groups
                    .into_values()
                    .map(|indices| self.append_group(jobs, indices));
                for group in futures_util::future::join_all(sent).await {
                    for (index, result) in group {
                        results[index] = Some(result);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(StoreError::Closed)))
            .collect()
    }

    /// Runs the jobs at `indices` (all of one slot on a cluster) in one pipeline, and those
    /// Redis answered `NOSCRIPT` once more after loading the script where they run.
    async fn append_group(
        &self,
        jobs: &[AppendJob],
        mut pending: Vec<usize>,
    ) -> Vec<(usize, JobResult)> {
        let mut conn = self.conn.clone();
        let mut results = Vec::with_capacity(pending.len());
        for attempt in 0..2 {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let now = crate::clock::unix_ms_now();
            for &index in &pending {
                self.push_append(&mut pipe, &jobs[index].request, now);
            }
            #[allow(clippy::disallowed_methods)] // Measuring the round trip, not hub time.
            let started = std::time::Instant::now();
            let replies = pipe.query_async(&mut conn).await;
            let micros = started.elapsed().as_micros() as u64;
            self.timing.micros.fetch_add(micros, Ordering::Relaxed);
            self.timing.micros_max.fetch_max(micros, Ordering::Relaxed);
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let replies: Vec<RedisResult<Value>> = match replies {
                Ok(replies) => replies,
                Err(err) => {
                    let err = self.backend(err);
                    results.extend(pending.into_iter().map(|index| (index, Err(err.clone()))));
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
                let result = if no_script(&reply) {
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
                };
                results.push((index, result));
            }
            let Some(&first_again) = again.first() else {
                break;
            };
            let key = self.keys.head(&jobs[first_again].request.room);
            if let Err(err) = conn.load_script(APPEND_LUA, &key).await {
                let err = self.backend(err);
                results.extend(again.into_iter().map(|index| (index, Err(err.clone()))));
                break;
            }
            pending = again;
        }
        results
    }

    fn push_append(&self, pipe: &mut redis::Pipeline, request: &AppendRequest, now: u64) {
        let room = &request.room;
        // Sharded pub/sub on a cluster keeps the live message on the room's shard.
        let publish = match self.conn {
            RedisConn::Single(_) => "PUBLISH",
            RedisConn::Cluster(_) => "SPUBLISH",
        };
        pipe.cmd("EVALSHA")
            .arg(self.script.get_hash())
            .arg(4)
            .arg(self.keys.head(room))
            .arg(self.keys.log(room))
            .arg(self.keys.ids(room))
            .arg(self.keys.locks(room))
            .arg(crate::store::random_epoch())
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
            .arg(room.as_str())
            .arg(publish)
            .arg(request.body.event_type().unwrap_or_default())
            .arg(
                request
                    .if_lock
                    .as_ref()
                    .map_or("", |fence| fence.name.as_str()),
            )
            .arg(request.if_lock.as_ref().map_or(0, |fence| fence.token));
    }
}
