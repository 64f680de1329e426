//! Streams: a producer's live output in a room (an LLM answer token by token, a task's
//! progress). A producer (a connection's `stream` frames, or the backend's REST calls) starts a
//! stream, appends chunks, and finishes or fails it; members get `stream` frames.
//!
//! - Chunks are live, never stored one by one. Each stream keeps the chunks so far (a text
//!   stream all of them, a progress stream the last), so a member joining mid-stream gets
//!   everything so far in one `start` frame right after its `joined`.
//! - Coalescing: a chunk goes out at once when the stream sent nothing in the last
//!   [`HubConfig::stream_flush`]; otherwise it waits for the flush timer, which sends every
//!   chunk that arrived meanwhile in one `append` frame (so one stream sends at most one frame
//!   per member per flush period, however fast its producer is).
//! - `finish` turns the stream into one durable event (id: the stream's id, from: the
//!   producer, body: a [`StreamResult`]) through the ordinary append path, so the store's
//!   dedupe by sender and id makes it exactly one even when the finish is retried: a finish
//!   while the first is in the store is appended again and answered as a duplicate, one after
//!   the stream ended is answered from the room's recently ended streams. Members get the
//!   event, then a `finish` frame with its seq (`close_stored_stream`, called from the
//!   fan-out of stored events while a stream is open, and of every one on a federated node,
//!   so a node that hears the event from the bus closes its copy of the stream the same way).
//! - A stream whose producer sends nothing for [`HubConfig::stream_timeout`] is failed with
//!   `stream_abandoned` (a producer that disconnects may come back within it, on any
//!   connection of the same user, and go on).
//! - Several nodes: the producer's node sends each frame it sends its members (the coalesced
//!   ones) to the other nodes as a [`RoomSignal::Stream`]; every node following the room keeps
//!   its own copy of the stream and serves its own late joiners from it. A node that opens the
//!   room mid-stream asks for the others' state (`sync`), and the producer's node answers with
//!   a `start` carrying everything so far.
//! - The producer's node also signals how the stream ended: `fail`, or `finish` with the
//!   result's seq. A copy ends with the result's fan-out here, or at once when the room is
//!   past that seq already (it opened after the result was stored; a `start` may still come,
//!   as the answer to its `sync`).
//! - A node hears another's signals and the stored events on separate paths (two Redis
//!   connections), in either order. A copy that gets its result before its last chunks sends
//!   its members the rest of the result as one chunk first (`complete_stream_copy`); a `start`
//!   heard after the stream's result was fanned out here opens nothing; a finish answered as a
//!   duplicate before the event reached this node waits for the event's fan-out to end the
//!   stream, so members always get the event, then `finish`.
//!
//! It must never store a chunk, nor store a stream's result other than through the append
//! path (the store is the only sequencer, and its dedupe is what makes a finish count once).

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chorus_sdk::wire::{
    self, BackendStreamOp, ErrorCode, Event, EventId, Json, Progress, RoomName, ServerFrame,
    StreamFrame, StreamKind, StreamOp, StreamResult, StreamStep, StreamStepBody, StreamUpdate,
};

use super::federation::RoomSignal;
use super::{Action, ConnId, Hub, Now, Room, RoomLoad, Timer, Transmit, encode};
use crate::store::{AppendDone, AppendJob, AppendOutcome, AppendRequest, Origin, StoreError};

mod copies;

/// Whether a stored event's body may be a stream's result (a [`StreamResult`] is written with
/// its `stream` field first): a cheap test for every event a federated node fans out.
pub(super) fn looks_like_result(body: &Json) -> bool {
    body.as_text().starts_with(r#"{"stream":"#)
}

/// How many ended streams a room remembers (to answer a retried finish, and polls).
const RECENT_ENDED: usize = 64;

/// The longest `fail` message, in bytes (docs/PROTOCOL.md, Limits: fixed).
const MAX_FAIL_MESSAGE_BYTES: usize = 1024;

/// A stream in a room: its producer and its id (ids are per producer, like publish ids).
pub(super) type StreamKey = (String, EventId);

/// Who produces a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Producer {
    /// A connection on this node (the last one of the user that sent a step).
    Conn(ConnId),
    /// The backend, through this node's REST API.
    Backend,
    /// A producer on another node (its `HubConfig::node`): this node keeps a copy.
    Remote(Arc<str>),
}

/// One open stream.
#[derive(Debug)]
struct OpenStream {
    kind: StreamKind,
    meta: Option<Json>,
    producer: Producer,
    /// The chunks kept: every chunk of a text stream, the last of a progress stream.
    chunks: Vec<Json>,
    /// The index of `chunks[0]`.
    first: u64,
    /// How many chunks the stream has had.
    count: u64,
    /// Bytes of the chunks kept (what the total limit counts).
    bytes: usize,
    /// Chunks from this index on have not been sent yet (coalescing).
    unsent: u64,
    /// When the last frame went out to the members.
    last_flush: Option<Instant>,
    /// A [`Timer::StreamFlush`] is pending.
    flush_armed: bool,
    /// When the producer last did something (the abandon timeout counts from it).
    active: Instant,
    /// Its result is in the store: an append is in flight, or (a copy of another node's
    /// stream) the producer's node said it finished.
    finishing: bool,
    /// The seq the store gave its result (or had given it, to a duplicate), before this node
    /// fanned the event out: the stream ends when it does.
    result: Option<u64>,
}

impl OpenStream {
    /// Takes the stream's next chunk: a text stream keeps every chunk, a progress stream only
    /// the latest.
    fn keep(&mut self, chunk: Json) {
        if self.kind == StreamKind::Progress {
            self.chunks.clear();
            self.first = self.count;
            self.bytes = 0;
        }
        self.bytes += chunk.len();
        self.chunks.push(chunk);
        self.count += 1;
    }
}

/// A stream that ended, as a room remembers it.
#[derive(Debug)]
struct Ended {
    key: StreamKey,
    /// The stored result's seq (`None`: it failed).
    seq: Option<u64>,
    /// The room's stream version when it ended.
    version: u64,
    /// The step members got (`finish` or `fail`).
    frame: StreamUpdate,
}

/// A room's streams.
#[derive(Debug, Default)]
pub(super) struct RoomStreams {
    open: BTreeMap<StreamKey, OpenStream>,
    /// Streams that ended lately, oldest first, at most [`RECENT_ENDED`].
    ended: VecDeque<Ended>,
    /// Streams whose result this node fanned out without holding a copy (a federated node
    /// that had not heard of them yet), newest last, at most [`RECENT_ENDED`]: a `start` heard
    /// later does not open them again.
    results_without_copy: VecDeque<StreamKey>,
    /// Increases with every change to the room's streams.
    version: u64,
}

impl RoomStreams {
    /// Whether no stream is open (the room may be forgotten).
    pub(super) fn is_idle(&self) -> bool {
        self.open.is_empty()
    }

    /// The open streams, as `producer/id`.
    #[cfg(test)]
    pub(super) fn open_keys(&self) -> Vec<String> {
        (self.open.keys())
            .map(|(from, id)| format!("{from}/{id}"))
            .collect()
    }

    /// The room's stream version (polling clients compare it).
    pub(super) fn version(&self) -> u64 {
        self.version
    }
}

/// Why a stream step was refused: a stable code and a sentence.
pub type StreamRefusal = (ErrorCode, String);

/// What a backend stream step came to (see [`Hub::handle_backend_stream`]).
#[derive(Debug)]
pub enum StreamReply {
    /// `start`, `append` or `fail` done; the stream has this many chunks.
    Done(u64),
    /// `finish`: what the store did with the result (fanned out already if stored).
    Finished(Result<AppendOutcome, StoreError>),
    /// Refused.
    Refused(StreamRefusal),
}

/// What a step did, for whoever answers the producer.
enum Stepped {
    /// Done; the stream has this many chunks.
    Done(u64),
    /// The result went to the store: the append's outcome answers.
    Appending,
    /// The result was stored before under this seq.
    Finished(u64),
}

impl Hub {
    /// A `stream` frame from a connection.
    pub(super) fn stream_frame(&mut self, now: Now, conn: ConnId, frame: StreamOp) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let room = frame.room.clone();
        let op = match frame.step() {
            Ok(op) => op,
            Err(err) => {
                let message = format!("invalid stream step: {}", err.into_message());
                return self.send_error(conn, ErrorCode::BadFrame, &message, Some(room));
            }
        };
        let state = self.conns.get_mut(&conn).expect("checked above");
        let id = op.id.clone();
        let refusal = if let Some(retry) = self.draining {
            // Nothing new is stored or started once the drain began (a `finish` would be).
            Some((ErrorCode::Draining, super::draining_message(retry)))
        } else if !state.rooms.contains_key(&room) || !self.rooms.contains_key(&room) {
            Some((
                ErrorCode::NotJoined,
                format!("join room {room} before streaming to it"),
            ))
        } else if !state.identity.can_publish(&room) {
            Some((
                ErrorCode::Forbidden,
                format!("your token does not grant publishing to room {room}"),
            ))
        } else if op.op == StreamStep::Start
            && let Err(wait) = state.publish_budget.take(
                now.instant,
                self.config.publish_rate,
                self.config.publish_burst,
            )
        {
            Some((
                ErrorCode::RateLimited,
                format!(
                    "starting a stream counts as a publish; retry in {} ms",
                    wait.as_millis().max(1)
                ),
            ))
        } else {
            None
        };
        let from = state.identity.user.clone();
        let result = match refusal {
            Some(refusal) => Err(refusal),
            None => self.stream_step(
                now,
                &room,
                (from, id.clone()),
                Producer::Conn(conn),
                Origin::Conn(conn),
                op,
            ),
        };
        match result {
            Ok(Stepped::Done(_)) | Ok(Stepped::Appending) => {}
            Ok(Stepped::Finished(seq)) => self.send_ack(conn, room, id, Some(seq), true),
            Err((code, message)) => self.send_error(conn, code, &message, Some(room)),
        }
    }

    /// A stream step from the backend (REST, API key) as `from`. Answered at once through
    /// [`Action::StreamDone`], except a `finish`, whose append's outcome answers through
    /// [`Action::Complete`] with the same `ticket`.
    pub fn handle_backend_stream(
        &mut self,
        now: Now,
        ticket: u64,
        room_name: RoomName,
        id: EventId,
        from: String,
        op: BackendStreamOp,
    ) {
        if self.draining.is_some() {
            let reply = StreamReply::Refused((
                ErrorCode::Draining,
                "the server is shutting down; retry on another node".to_owned(),
            ));
            return self.actions.push_back(Action::StreamDone { ticket, reply });
        }
        // The room opens here (followed, loaded) as for a join, so this node hears the other
        // nodes' `sync` and its members' joins; it stays open while the stream is.
        if !self.rooms.contains_key(&room_name) {
            let base = self.config.version_base;
            let loading = RoomLoad::Loading {
                joins: Vec::new(),
                early: Vec::new(),
                publishes: Vec::new(),
            };
            self.rooms
                .insert(room_name.clone(), Room::opening(base, Some(loading)));
            self.actions.push_back(Action::Follow(room_name.clone()));
            self.actions.push_back(Action::LoadRoom(room_name.clone()));
        }
        let result = self.stream_step(
            now,
            &room_name,
            (from, id.clone()),
            Producer::Backend,
            Origin::Request(ticket),
            op.into_step(id),
        );
        let reply = match result {
            Ok(Stepped::Appending) => return,
            Ok(Stepped::Done(chunks)) => StreamReply::Done(chunks),
            Ok(Stepped::Finished(seq)) => {
                StreamReply::Finished(Ok(AppendOutcome::Duplicate { seq }))
            }
            Err(refusal) => StreamReply::Refused(refusal),
        };
        self.actions.push_back(Action::StreamDone { ticket, reply });
        self.forget_room_if_idle(&room_name);
    }

    /// One step of a stream in a room that exists here, from a producer allowed to make it.
    fn stream_step(
        &mut self,
        now: Now,
        room_name: &RoomName,
        key: StreamKey,
        producer: Producer,
        origin: Origin,
        step: StreamStepBody,
    ) -> Result<Stepped, StreamRefusal> {
        let config = &self.config;
        let (max_chunk, max_bytes) = (config.stream_max_chunk_bytes, config.stream_max_bytes);
        let (per_room, per_conn) = (config.stream_max_per_room, config.stream_max_per_conn);
        let max_meta = config.max_meta_bytes;
        let room = self.rooms.get_mut(room_name).expect("the caller checked");
        let streams = &mut room.streams;
        let id = &key.1;
        // `Some(seq)` when the stream ended lately (`seq`: its result's, if it finished).
        let ended: Option<Option<u64>> = streams
            .ended
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.seq);
        match step.op {
            StreamStep::Start => {
                if let Some(open) = streams.open.get_mut(&key) {
                    // A producer starting again (after a reconnect) goes on where it was.
                    if open.kind != step.kind || open.finishing {
                        return Err((
                            ErrorCode::StreamConflict,
                            format!("stream {id} is open already, as another kind or finishing"),
                        ));
                    }
                    open.producer = producer;
                    open.active = now.instant;
                    return Ok(Stepped::Done(open.count));
                }
                if ended.is_some() {
                    return Err((
                        ErrorCode::StreamConflict,
                        format!("stream {id} has ended already; start one with another id"),
                    ));
                }
                if streams.open.len() >= per_room {
                    return Err((
                        ErrorCode::TooManyStreams,
                        format!("room {room_name} has {per_room} open streams, the most it may"),
                    ));
                }
                if let Producer::Conn(conn) = producer
                    && streams
                        .open
                        .values()
                        .filter(|s| s.producer == Producer::Conn(conn))
                        .count()
                        >= per_conn
                {
                    return Err((
                        ErrorCode::TooManyStreams,
                        format!("a connection may produce at most {per_conn} open streams"),
                    ));
                }
                if step.meta.as_ref().is_some_and(|meta| meta.len() > max_meta) {
                    return Err((
                        ErrorCode::MetaTooLarge,
                        format!("a stream's meta may be at most {max_meta} bytes"),
                    ));
                }
                streams.version += 1;
                streams.open.insert(
                    key.clone(),
                    OpenStream {
                        kind: step.kind,
                        meta: step.meta,
                        producer,
                        chunks: Vec::new(),
                        first: 0,
                        count: 0,
                        bytes: 0,
                        unsent: 0,
                        last_flush: None,
                        flush_armed: false,
                        active: now.instant,
                        finishing: false,
                        result: None,
                    },
                );
                let timeout = self.config.stream_timeout;
                self.arm_stream_timer(now.instant + timeout, room_name, &key);
                let frame = self.stream_snapshot(room_name, &key);
                self.send_stream_frame(room_name, frame, true);
                Ok(Stepped::Done(0))
            }
            StreamStep::Append => {
                let Some(open) = streams.open.get_mut(&key) else {
                    return Err(not_open(id, ended.is_some()));
                };
                if open.finishing {
                    return Err((
                        ErrorCode::StreamConflict,
                        format!("stream {id} is finishing: it takes no more chunks"),
                    ));
                }
                let Some(chunk) = step.chunk else {
                    return Err((
                        ErrorCode::BadFrame,
                        "an `append` needs a `chunk`".to_owned(),
                    ));
                };
                match step.n {
                    Some(n) if n < open.count => {
                        // A chunk sent again: the producer is alive, nothing else changes.
                        open.active = now.instant;
                        return Ok(Stepped::Done(open.count));
                    }
                    Some(n) if n > open.count => {
                        return Err((
                            ErrorCode::StreamConflict,
                            format!(
                                "chunk {n} of stream {id}, which has {} chunks: send chunk {} next",
                                open.count, open.count
                            ),
                        ));
                    }
                    _ => {}
                }
                if chunk.len() > max_chunk {
                    return Err((
                        ErrorCode::StreamTooLarge,
                        format!("a chunk may be at most {max_chunk} bytes"),
                    ));
                }
                // The limit is on what the stream keeps: a progress stream keeps only its
                // last chunk, so however many it sends, only that one counts.
                let kept = match open.kind {
                    StreamKind::Text => open.bytes,
                    StreamKind::Progress => 0,
                };
                if kept + chunk.len() > max_bytes {
                    return Err((
                        ErrorCode::StreamTooLarge,
                        format!("stream {id} would pass {max_bytes} bytes; finish it (or fail it)"),
                    ));
                }
                check_chunk(open.kind, &chunk)?;
                // Only now: a refused step leaves the stream as it was, its timeout included.
                open.active = now.instant;
                open.keep(chunk);
                let count = open.count;
                streams.version += 1;
                let flush = self.config.stream_flush;
                let due = open.last_flush.map(|at| at + flush);
                match due {
                    Some(due) if due > now.instant => {
                        if !open.flush_armed {
                            open.flush_armed = true;
                            self.timers
                                .push(Reverse((due, Timer::StreamFlush(room_name.clone(), key))));
                        }
                    }
                    _ => self.flush_stream(now, room_name, &key),
                }
                Ok(Stepped::Done(count))
            }
            StreamStep::Finish => {
                if let Some(seq) = ended {
                    return match seq {
                        Some(seq) => Ok(Stepped::Finished(seq)),
                        None => Err(not_open(id, true)),
                    };
                }
                let Some(open) = streams.open.get_mut(&key) else {
                    return Err(not_open(id, false));
                };
                // A `finish` again while the first is stored appends the whole result again:
                // it counts as a publish (the first is paid for by the `start`).
                if open.finishing
                    && let Origin::Conn(conn) = origin
                    && let Some(state) = self.conns.get_mut(&conn)
                    && let Err(wait) = state.publish_budget.take(
                        now.instant,
                        config.publish_rate,
                        config.publish_burst,
                    )
                {
                    return Err((
                        ErrorCode::RateLimited,
                        format!(
                            "a finish sent again while the first is stored counts as a publish; \
                             retry in {} ms",
                            wait.as_millis().max(1)
                        ),
                    ));
                }
                open.active = now.instant;
                let body = result_body(open);
                let first_time = !open.finishing;
                open.finishing = true;
                if first_time {
                    // Every chunk reaches the members before the result.
                    self.flush_stream(now, room_name, &key);
                }
                if let Origin::Conn(conn) = origin
                    && let Some(state) = self.conns.get_mut(&conn)
                {
                    state.appends_in_flight += 1;
                }
                // A finish while one is in the store is appended again: the store's dedupe
                // answers it as a duplicate of the first (or stores it, if the first failed).
                self.actions.push_back(Action::Append(AppendJob {
                    origin,
                    request: AppendRequest {
                        room: room_name.clone(),
                        id: key.1,
                        from: key.0,
                        at: now.unix_ms,
                        body,
                        if_seq: None,
                        if_lock: None,
                    },
                }));
                Ok(Stepped::Appending)
            }
            StreamStep::Fail => {
                let Some(open) = streams.open.get(&key) else {
                    return match ended {
                        Some(None) => Ok(Stepped::Done(0)),
                        _ => Err(not_open(id, ended.is_some())),
                    };
                };
                if open.finishing {
                    return Err((
                        ErrorCode::StreamConflict,
                        format!("stream {id} is finishing: it can no longer fail"),
                    ));
                }
                // The message goes to every member and stays among the ended streams: it is
                // held to a fixed limit (a polling POST could otherwise carry a megabyte).
                if step
                    .message
                    .as_ref()
                    .is_some_and(|m| m.len() > MAX_FAIL_MESSAGE_BYTES)
                {
                    return Err((
                        ErrorCode::MetaTooLarge,
                        format!(
                            "a stream's fail message may be at most {MAX_FAIL_MESSAGE_BYTES} bytes"
                        ),
                    ));
                }
                let count = open.count;
                let message = step
                    .message
                    .unwrap_or_else(|| "the producer failed the stream".to_owned());
                self.end_stream(now, room_name, &key, None, ErrorCode::StreamFailed, message);
                Ok(Stepped::Done(count))
            }
        }
    }

    /// Sends the stream's unsent chunks to the members (and the other nodes) in one frame.
    fn flush_stream(&mut self, now: Now, room_name: &RoomName, key: &StreamKey) {
        let Some(open) = self
            .rooms
            .get_mut(room_name)
            .and_then(|room| room.streams.open.get_mut(key))
        else {
            return;
        };
        open.flush_armed = false;
        if open.unsent >= open.count {
            return;
        }
        // A progress stream sends its last chunk only (it replaces the ones before).
        let from = open.unsent.max(open.first);
        let chunks = open.chunks[(from - open.first) as usize..].to_vec();
        open.unsent = open.count;
        open.last_flush = Some(now.instant);
        let frame = StreamUpdate {
            op: StreamStep::Append,
            n: from,
            chunks,
            ..stream_frame_head(key, open)
        };
        self.send_stream_frame(room_name, frame, true);
    }

    /// A [`Timer::StreamFlush`] fired.
    pub(super) fn stream_flush_timer(&mut self, now: Now, room_name: &RoomName, key: StreamKey) {
        self.flush_stream(now, room_name, &key);
    }

    /// A [`Timer::StreamTimeout`] fired: a stream whose producer went silent fails.
    pub(super) fn stream_timeout_timer(&mut self, now: Now, room_name: &RoomName, key: StreamKey) {
        let timeout = self.config.stream_timeout;
        let Some(finishing) = self.open_stream(room_name, &key).map(|open| open.finishing) else {
            return;
        };
        if finishing {
            // Its result's fan-out ends it; a room loaded past that seq never fans it out.
            self.end_if_result_fanned_out(now, room_name, &key);
        }
        let Some(open) = self.open_stream(room_name, &key) else {
            return;
        };
        // A copy of another node's stream waits a refresh period longer: the producer's node
        // fails it first, and says so.
        let grace = match open.producer {
            Producer::Remote(_) => self.config.federation_refresh,
            _ => std::time::Duration::ZERO,
        };
        let deadline = open.active + timeout + grace;
        if let (Producer::Remote(_), true, Some(seq)) =
            (&open.producer, open.finishing, open.result)
            && deadline <= now.instant
        {
            // Its result never reached this node in a whole timeout (the bus lost it and no
            // repair brought it, or the history was reset): the copy ends with what its
            // producer's node said.
            let code = ErrorCode::StreamFailed;
            return self.end_stream(now, room_name, &key, Some(seq), code, String::new());
        }
        if open.finishing || deadline > now.instant {
            let at = if open.finishing {
                now.instant + timeout
            } else {
                deadline
            };
            return self.arm_stream_timer(at, room_name, &key);
        }
        let message = format!(
            "the producer of stream {} sent nothing for {} ms",
            key.1,
            timeout.as_millis()
        );
        self.end_stream(
            now,
            room_name,
            &key,
            None,
            ErrorCode::StreamAbandoned,
            message,
        );
    }

    fn arm_stream_timer(&mut self, at: Instant, room_name: &RoomName, key: &StreamKey) {
        self.timers.push(Reverse((
            at,
            Timer::StreamTimeout(room_name.clone(), key.clone()),
        )));
    }

    /// Ends an open stream: `seq` is its stored result's (members get `finish`), or `None`
    /// (members get `fail` with `code` and `message`; so do the other nodes).
    fn end_stream(
        &mut self,
        now: Now,
        room_name: &RoomName,
        key: &StreamKey,
        seq: Option<u64>,
        code: ErrorCode,
        message: String,
    ) {
        if seq.is_some() {
            self.flush_stream(now, room_name, key);
        }
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(open) = room.streams.open.remove(key) else {
            return;
        };
        let frame = match seq {
            Some(seq) => StreamUpdate {
                op: StreamStep::Finish,
                seq: Some(seq),
                ..stream_frame_head(key, &open)
            },
            None => StreamUpdate {
                op: StreamStep::Fail,
                code: Some(code),
                message: Some(message),
                ..stream_frame_head(key, &open)
            },
        };
        let streams = &mut room.streams;
        streams.version += 1;
        if streams.ended.len() >= RECENT_ENDED {
            streams.ended.pop_front();
        }
        streams.ended.push_back(Ended {
            key: key.clone(),
            seq,
            version: streams.version,
            frame: frame.clone(),
        });
        // The producer's node tells the others how its stream ended (a copy of another node's
        // stream that ends here on its own does not: that node says so itself). A `finish`
        // names its result's seq, which a copy waits for (see `remote_stream`).
        let tell_others = !matches!(open.producer, Producer::Remote(_));
        self.send_stream_frame(room_name, frame, tell_others);
        self.forget_room_if_idle(room_name);
    }

    /// Stored events pass here after they are fanned out (every one while a stream is open,
    /// and on a federated node): the result of an open stream (same producer and id) ends it
    /// with `finish`. A federated node that has no copy remembers the result, so a `start`
    /// heard late does not open the stream again.
    pub(super) fn close_stored_stream(&mut self, now: Now, event: &Event, seq: u64) {
        let Some(room) = self.rooms.get_mut(&event.room) else {
            return;
        };
        let streams = &mut room.streams;
        let federated_result = self.config.federated && looks_like_result(&event.body);
        if streams.open.is_empty() && !federated_result {
            return;
        }
        let open = (streams.open.keys())
            .find(|(from, id)| *from == event.from && *id == event.id)
            .cloned();
        if let Some(key) = open {
            let code = ErrorCode::StreamFailed;
            self.end_stream(now, &event.room, &key, Some(seq), code, String::new());
        } else if federated_result {
            if streams.results_without_copy.len() >= RECENT_ENDED {
                streams.results_without_copy.pop_front();
            }
            streams
                .results_without_copy
                .push_back((event.from.clone(), event.id.clone()));
        }
    }

    /// A durable append came back: a finish that failed in the store may be tried again; one
    /// the store had already (the id was the producer's earlier event) ends the stream.
    pub(super) fn stream_append_done(&mut self, now: Now, done: &AppendDone) {
        let Some(room) = self.rooms.get_mut(&done.room) else {
            return;
        };
        let Some((key, open)) = room
            .streams
            .open
            .iter_mut()
            .find(|(key, open)| open.finishing && key.1 == done.id && key.0 == done.from)
        else {
            return;
        };
        let seq = match &done.result {
            Err(_) => {
                open.finishing = false;
                return;
            }
            Ok(AppendOutcome::Stored(stored)) => stored.seq(),
            Ok(AppendOutcome::Duplicate { seq }) => *seq,
            Ok(_) => return,
        };
        open.result = Some(seq);
        // A duplicate's event may not have been fanned out here yet (it waits for a gap, or
        // another node stored it and the bus has not brought it): then its fan-out ends the
        // stream, so members get the event before `finish`.
        let key = key.clone();
        self.end_if_result_fanned_out(now, &done.room, &key);
    }

    fn open_stream(&self, room_name: &RoomName, key: &StreamKey) -> Option<&OpenStream> {
        (self.rooms.get(room_name)).and_then(|room| room.streams.open.get(key))
    }

    /// After `joined`: the room's open streams so far, one `start` each.
    pub(super) fn send_stream_catch_up(&mut self, conn: ConnId, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let keys: Vec<StreamKey> = room.streams.open.keys().cloned().collect();
        for key in keys {
            let frame = StreamFrame::new(room_name.clone(), &self.stream_snapshot(room_name, &key));
            self.transmits.push_back(Transmit {
                conn,
                payload: encode(&ServerFrame::Stream(frame)),
                reply: false,
            });
        }
    }

    /// A `start` frame with everything the stream has sent so far.
    fn stream_snapshot(&self, room_name: &RoomName, key: &StreamKey) -> StreamUpdate {
        let open = &self.rooms[room_name].streams.open[key];
        // Chunks not sent yet follow in the next `append`; a progress stream's one chunk is
        // its latest either way.
        let sent = if open.kind == StreamKind::Progress {
            open.chunks.len()
        } else {
            (open.unsent - open.first) as usize
        };
        StreamUpdate {
            op: StreamStep::Start,
            n: open.first,
            chunks: open.chunks[..sent].to_vec(),
            meta: open.meta.clone(),
            ..stream_frame_head(key, open)
        }
    }

    /// The room's stream frames for a poll (see [`RoomView::streams`](super::RoomView)).
    pub(super) fn stream_view(&self, room_name: &RoomName) -> Vec<(u64, ServerFrame)> {
        let Some(room) = self.rooms.get(room_name) else {
            return Vec::new();
        };
        let streams = &room.streams;
        let mut frames: Vec<(u64, ServerFrame)> = streams
            .ended
            .iter()
            .map(|ended| {
                let frame = StreamFrame::new(room_name.clone(), &ended.frame);
                (ended.version, ServerFrame::Stream(frame))
            })
            .collect();
        for key in streams.open.keys() {
            let snapshot = self.stream_snapshot(room_name, key);
            let frame = ServerFrame::Stream(StreamFrame::new(room_name.clone(), &snapshot));
            frames.push((streams.version, frame));
        }
        frames
    }

    /// Sends a stream frame to the room's members here and, when `tell_others`, to the other
    /// nodes.
    fn send_stream_frame(&mut self, room_name: &RoomName, update: StreamUpdate, tell_others: bool) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let frame = ServerFrame::Stream(StreamFrame::new(room_name.clone(), &update));
        let payload = encode(&frame);
        for &member in room.members.keys() {
            self.transmits.push_back(Transmit {
                reply: false,
                conn: member,
                payload: payload.clone(),
            });
        }
        if tell_others {
            self.signal(room_name, &RoomSignal::Stream { frame });
        }
    }
}

/// The fields every step of a stream carries.
fn stream_frame_head(key: &StreamKey, open: &OpenStream) -> StreamUpdate {
    StreamUpdate {
        id: key.1.clone(),
        from: key.0.clone(),
        kind: open.kind,
        op: StreamStep::Append,
        n: 0,
        chunks: Vec::new(),
        meta: None,
        seq: None,
        code: None,
        message: None,
    }
}

fn not_open(id: &EventId, ended: bool) -> StreamRefusal {
    let message = if ended {
        format!("stream {id} has ended")
    } else {
        format!("no stream {id} is open in this room; start it first")
    };
    (ErrorCode::StreamNotFound, message)
}

/// Checks a chunk against its stream's kind: a text stream's are JSON strings, a progress
/// stream's are [`Progress`] objects with a percent from 0 to 100.
fn check_chunk(kind: StreamKind, chunk: &Json) -> Result<(), StreamRefusal> {
    let refused = |message: &str| Err((ErrorCode::BadFrame, message.to_owned()));
    match kind {
        StreamKind::Text => match wire::json::from_str::<String>(chunk.as_text()) {
            Ok(_) => Ok(()),
            Err(_) => refused("a text stream's chunks are JSON strings"),
        },
        StreamKind::Progress => match wire::json::from_str::<Progress>(chunk.as_text()) {
            Ok(progress) if (0.0..=100.0).contains(&progress.percent) => Ok(()),
            _ => refused(
                "a progress stream's chunks are {\"percent\": 0 to 100, \"step\"?: text, \"eta_ms\"?: ms}",
            ),
        },
    }
}

/// The body of the event a finished stream stores.
fn result_body(open: &OpenStream) -> Json {
    let result = match open.kind {
        StreamKind::Text => {
            let mut text = String::with_capacity(open.bytes);
            for chunk in &open.chunks {
                // Checked on the way in: every chunk of a text stream is a string.
                if let Ok(piece) = wire::json::from_str::<String>(chunk.as_text()) {
                    text.push_str(&piece);
                }
            }
            StreamResult {
                stream: StreamKind::Text,
                text: Some(text),
                progress: None,
                meta: open.meta.clone(),
            }
        }
        StreamKind::Progress => StreamResult {
            stream: StreamKind::Progress,
            text: None,
            progress: open.chunks.last().cloned(),
            meta: open.meta.clone(),
        },
    };
    Json::encode(&result)
}
