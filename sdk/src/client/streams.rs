//! Streams on the client: sending a stream's steps ([`Client::stream`]) and folding the
//! `stream` frames a room receives into what an app shows ([`StreamView`]).
//!
//! The core itself keeps nothing per stream and never reads a step: each `stream` frame of a
//! joined room becomes one [`ClientEvent::Stream`](super::ClientEvent::Stream) as it came (the
//! browser package folds them in JavaScript, `pkg/src/chorus.js`; Rust apps with
//! [`StreamView`]), and a producer's step goes out as the app gave it, so the browser core's
//! share of streams is one small frame type each way. A producer that reconnects resends its
//! stream (`start`, then every chunk with its index `n`): the server ignores what it has.
//!
//! It must never perform I/O or read a clock.

use super::{Client, ConnectionState, PublishError};
use crate::time::Instant;
use crate::wire::{
    ClientFrame, ErrorCode, EventId, Json, RoomName, StreamKind, StreamOp, StreamStep, StreamUpdate,
};

impl Client {
    /// Sends one step of a stream this client produces in a joined room: `step` is a
    /// [`StreamStepBody`](crate::wire::StreamStepBody) object (the server checks it). Steps
    /// are not queued while disconnected ([`PublishError::Offline`]): after the room is joined
    /// again, send `start` and the chunks again (the server ignores chunks it has, by `n`).
    pub fn stream(&mut self, now: Instant, room: RoomName, step: Json) -> Result<(), PublishError> {
        if !self.rooms.contains_key(&room) {
            return Err(PublishError::NotJoined(room));
        }
        if !matches!(self.state, ConnectionState::Connected { .. }) {
            return Err(PublishError::Offline);
        }
        self.send_frame(ClientFrame::Stream(StreamOp { room, stream: step }));
        self.pump_polling(now);
        Ok(())
    }
}

/// Where a stream is.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamStatus {
    /// Chunks may still come.
    Open,
    /// Complete; its result is stored as the event with this seq (and the stream's id).
    Finished(u64),
    /// Ended without a result.
    Failed {
        /// Why (`stream_failed`, `stream_abandoned`).
        code: ErrorCode,
        /// Why, for humans.
        message: String,
    },
}

/// One stream as a member sees it, folded from its steps (a `stream` frame's
/// [`StreamFrame::update`](crate::wire::StreamFrame::update)): the text so far (a text
/// stream), the latest progress (a progress stream), and whether it ended.
///
/// ```
/// use chorus_sdk::client::{StreamStatus, StreamView};
/// use chorus_sdk::wire::{ServerFrame, StreamUpdate};
///
/// let step = |text: &str| -> StreamUpdate {
///     match ServerFrame::decode(text).unwrap() {
///         ServerFrame::Stream(frame) => frame.update().unwrap(),
///         _ => unreachable!(),
///     }
/// };
/// let mut view = StreamView::new(&step(r#"{"type":"stream","room":"r","stream":{"id":"a1","from":"bot","op":"start","chunks":["Hel"]}}"#));
/// view.apply(&step(r#"{"type":"stream","room":"r","stream":{"id":"a1","from":"bot","op":"append","n":1,"chunks":["lo"," there"]}}"#));
/// view.apply(&step(r#"{"type":"stream","room":"r","stream":{"id":"a1","from":"bot","op":"append","n":2,"chunks":[" there"]}}"#)); // had it
/// assert_eq!(view.text, "Hello there");
/// view.apply(&step(r#"{"type":"stream","room":"r","stream":{"id":"a1","from":"bot","op":"finish","seq":44}}"#));
/// assert_eq!(view.status, StreamStatus::Finished(44));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StreamView {
    /// The stream's id (its stored result's id too).
    pub id: EventId,
    /// Its producer.
    pub from: String,
    /// What it carries.
    pub kind: StreamKind,
    /// The producer's meta.
    pub meta: Option<Json>,
    /// A text stream's chunks so far, concatenated.
    pub text: String,
    /// A progress stream's latest chunk (a `Progress` object).
    pub progress: Option<Json>,
    /// How many chunks it has had.
    pub chunks: u64,
    /// Open, finished or failed.
    pub status: StreamStatus,
}

impl StreamView {
    /// A view of the stream `frame` is about, with that frame applied.
    pub fn new(frame: &StreamUpdate) -> StreamView {
        let mut view = StreamView {
            id: frame.id.clone(),
            from: frame.from.clone(),
            kind: frame.kind,
            meta: None,
            text: String::new(),
            progress: None,
            chunks: 0,
            status: StreamStatus::Open,
        };
        view.apply(frame);
        view
    }

    /// Applies a frame of this stream; `false` when it changed nothing (another stream's, or
    /// chunks it has already).
    pub fn apply(&mut self, frame: &StreamUpdate) -> bool {
        if frame.id != self.id || frame.from != self.from {
            return false;
        }
        match frame.op {
            StreamStep::Start => {
                // Everything so far: it replaces what the view had.
                self.meta = frame.meta.clone();
                self.text.clear();
                self.progress = None;
                self.chunks = frame.n;
                self.status = StreamStatus::Open;
                self.take_chunks(frame);
                true
            }
            StreamStep::Append => self.take_chunks(frame),
            StreamStep::Finish => {
                self.status = StreamStatus::Finished(frame.seq.unwrap_or(0));
                true
            }
            StreamStep::Fail => {
                self.status = StreamStatus::Failed {
                    code: frame.code.unwrap_or(ErrorCode::StreamFailed),
                    message: frame.message.clone().unwrap_or_default(),
                };
                true
            }
        }
    }

    /// Takes the chunks from index `self.chunks` on (the ones before it the view has).
    fn take_chunks(&mut self, frame: &StreamUpdate) -> bool {
        let new = frame.chunks_after(self.chunks);
        if new.is_empty() {
            return false;
        }
        for chunk in new {
            match self.kind {
                StreamKind::Text => {
                    if let Ok(piece) = crate::wire::json::from_str::<String>(chunk.as_text()) {
                        self.text.push_str(&piece);
                    }
                }
                StreamKind::Progress => self.progress = Some(chunk.clone()),
            }
        }
        // Past a gap (chunks this view never got), the count follows the frame's index.
        self.chunks = self.chunks.max(frame.n) + new.len() as u64;
        true
    }
}
