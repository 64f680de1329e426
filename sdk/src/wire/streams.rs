//! Streams: a producer's live output in a room (an LLM answer token by token, a long task's
//! progress), as the `stream` frames in both directions ([`StreamOp`] from the producer,
//! [`StreamFrame`] to the members), the step each carries ([`StreamStepBody`],
//! [`StreamUpdate`]), the backend's REST bodies ([`BackendStreamOp`], [`StreamAnswer`]), a
//! progress chunk ([`Progress`]) and the durable result a finished stream stores
//! ([`StreamResult`]).
//!
//! Both frames are a room and one nested object, the step, kept as opaque JSON ([`Json`]): the
//! browser core routes a frame by its room and hands the step to JavaScript as it came (and a
//! producer's step from JavaScript to the server), so it carries no reader or writer of the
//! step's fields (the SDK's size budget); the server and Rust apps read the step with
//! [`StreamOp::step`] and [`StreamFrame::update`]. Chunks are opaque JSON too (a `text`
//! stream's are JSON strings, a `progress` stream's [`Progress`] objects; the server checks
//! that). Plain data: each type's JSON shape is in `shapes.rs`, and this module must never read
//! or write JSON by hand.

use super::shapes::wire_enum;
use super::{ErrorCode, EventId, Json, RoomName};

wire_enum! {
    /// What a stream carries.
    pub enum StreamKind [Clone, Copy, Debug, PartialEq, Eq] {
        /// Text in pieces (an LLM's tokens): every chunk is a JSON string; the result is their
        /// concatenation.
        Text => "text",
        /// A task's progress: every chunk is a [`Progress`] that replaces the one before; the
        /// result is the last.
        Progress => "progress",
    }
}

wire_enum! {
    /// A step in a stream's life, in a [`StreamOp`] and a [`StreamFrame`].
    pub enum StreamStep [Clone, Copy, Debug, PartialEq, Eq] {
        /// The stream begins (to a member joining mid-stream: everything so far).
        Start => "start",
        /// More chunks.
        Append => "append",
        /// The stream is complete: its result is stored as one durable event.
        Finish => "finish",
        /// The stream ended without a result (nothing is stored).
        Fail => "fail",
    }
}

/// `stream` (from a producer): one step of a stream the sender produces in a joined room.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamOp {
    /// The room.
    pub room: RoomName,
    /// The step, a [`StreamStepBody`] object (opaque to the browser core).
    pub stream: Json,
}

impl StreamOp {
    /// Reads the step.
    pub fn step(&self) -> Result<StreamStepBody, super::json::JsonError> {
        super::json::from_str(self.stream.as_text())
    }
}

/// A producer's step (inside a [`StreamOp`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamStepBody {
    /// The stream's id, chosen by the producer; it becomes the id of the stored result (so it
    /// is an idempotency key per sender, like a publish id).
    pub id: EventId,
    /// Which step.
    pub op: StreamStep,
    /// `start`: what the stream carries (default `text`).
    pub kind: StreamKind,
    /// `append`: the chunk's index (0 for the first); a chunk the server already has is
    /// ignored, so a producer may resend after a reconnect. Absent: after the last one.
    pub n: Option<u64>,
    /// `append`: the chunk.
    pub chunk: Option<Json>,
    /// `start`: free-form JSON that travels with the stream and into its result.
    pub meta: Option<Json>,
    /// `fail`: why, for humans.
    pub message: Option<String>,
}

/// `stream` (from the server): a step of a stream in a joined room.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamFrame {
    /// The room.
    pub room: RoomName,
    /// The step, a [`StreamUpdate`] object (opaque to the browser core).
    pub stream: Json,
}

impl StreamFrame {
    /// The frame carrying `update` in `room`.
    pub fn new(room: RoomName, update: &StreamUpdate) -> StreamFrame {
        StreamFrame {
            room,
            stream: Json::encode(update),
        }
    }

    /// Reads the step.
    pub fn update(&self) -> Result<StreamUpdate, super::json::JsonError> {
        super::json::from_str(self.stream.as_text())
    }
}

/// A step of a stream as members get it (inside a [`StreamFrame`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamUpdate {
    /// The stream's id.
    pub id: EventId,
    /// The producer (a user id, or the backend's `from`).
    pub from: String,
    /// What the stream carries.
    pub kind: StreamKind,
    /// `start`: the stream so far (`chunks` from index `n`: 0 for a text stream, the last
    /// chunk's for a progress stream); `append`: chunks `n..`; `finish`: stored as `seq`;
    /// `fail`: ended without a result.
    pub op: StreamStep,
    /// The index of the first chunk in `chunks`.
    pub n: u64,
    /// Chunks, in order (several at once when the server coalesces them).
    pub chunks: Vec<Json>,
    /// The producer's meta (every `start`).
    pub meta: Option<Json>,
    /// `finish`: the seq of the stored result event (its id is the stream's).
    pub seq: Option<u64>,
    /// `fail`: why (`stream_failed` when the producer said so, `stream_abandoned` when it went
    /// silent).
    pub code: Option<ErrorCode>,
    /// `fail`: why, for humans.
    pub message: Option<String>,
}

impl StreamUpdate {
    /// This step's chunks past the first `have` of the stream (chunk `k` of `chunks` is the
    /// stream's chunk `n + k`): what a receiver that has `have` chunks takes, keeping the first
    /// copy of each.
    ///
    /// ```
    /// use chorus_sdk::wire::{ServerFrame, StreamUpdate};
    ///
    /// let text = r#"{"type":"stream","room":"r","stream":{"id":"a1","from":"bot","op":"append","n":2,"chunks":["c","d","e"]}}"#;
    /// let ServerFrame::Stream(frame) = ServerFrame::decode(text).unwrap() else { unreachable!() };
    /// let step: StreamUpdate = frame.update().unwrap();
    /// let texts = |have| step.chunks_after(have).iter().map(|c| c.as_text()).collect::<Vec<_>>();
    /// assert_eq!(texts(2), [r#""c""#, r#""d""#, r#""e""#]);
    /// assert_eq!(texts(3), [r#""d""#, r#""e""#]); // has chunk 2 already
    /// assert_eq!(texts(0), [r#""c""#, r#""d""#, r#""e""#]); // past a gap: all of them
    /// assert!(texts(5).is_empty());
    /// assert!(texts(9).is_empty());
    /// ```
    pub fn chunks_after(&self, have: u64) -> &[Json] {
        let skip = have.saturating_sub(self.n) as usize;
        self.chunks.get(skip..).unwrap_or_default()
    }
}

/// A progress stream's chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// How far, from 0 to 100.
    pub percent: f64,
    /// What is being done now, for humans.
    pub step: Option<String>,
    /// The estimated time left, in milliseconds.
    pub eta_ms: Option<u64>,
}

/// The body of the durable event a finished stream stores (its id is the stream's id, its
/// `from` the producer).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamResult {
    /// What the stream carried.
    pub stream: StreamKind,
    /// A text stream's chunks, concatenated.
    pub text: Option<String>,
    /// A progress stream's last chunk.
    pub progress: Option<Json>,
    /// The producer's meta.
    pub meta: Option<Json>,
}

/// `POST /v1/rooms/{room}/streams/{id}` (API key): one step of a stream the backend produces.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendStreamOp {
    /// Which step.
    pub op: StreamStep,
    /// The producer as members see it (default `"system"`); every step of one stream names
    /// the same one.
    pub from: Option<String>,
    /// `start`: what the stream carries (default `text`).
    pub kind: StreamKind,
    /// `append`: the chunk's index (see [`StreamOp::n`]).
    pub n: Option<u64>,
    /// `append`: the chunk.
    pub chunk: Option<Json>,
    /// `start`: free-form JSON that travels with the stream and into its result.
    pub meta: Option<Json>,
    /// `fail`: why, for humans.
    pub message: Option<String>,
}

impl BackendStreamOp {
    /// The step as a producer's step of stream `id` (the id is in the request's path; the
    /// producer, `from`, is not part of the step).
    pub fn into_step(self, id: EventId) -> StreamStepBody {
        StreamStepBody {
            id,
            op: self.op,
            kind: self.kind,
            n: self.n,
            chunk: self.chunk,
            meta: self.meta,
            message: self.message,
        }
    }
}

/// The answer to a backend stream step.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamAnswer {
    /// The room.
    pub room: RoomName,
    /// The stream's id.
    pub id: EventId,
    /// How many chunks the stream has now (`start`, `append`).
    pub chunks: Option<u64>,
    /// `finish`: the seq of the stored result.
    pub seq: Option<u64>,
    /// `finish`: the result was stored before (a retried finish).
    pub duplicate: bool,
}
