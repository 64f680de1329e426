//! Copies of other nodes' streams (see the parent module's doc, "Several nodes"): following the
//! producer's node's signals ([`Hub::remote_stream`]), answering another node's `sync` with
//! this node's own streams ([`Hub::announce_streams`]), completing a copy from its stored result
//! when the last chunks have not arrived ([`Hub::complete_stream_copy`]), and ending copies
//! whose result the room is past ([`Hub::end_streams_past_head`]).

use std::sync::Arc;

use chorus_sdk::wire::{
    self, ErrorCode, Event, Json, RoomName, ServerFrame, StreamFrame, StreamKind, StreamResult,
    StreamStep, StreamUpdate,
};

use super::super::federation::RoomSignal;
use super::super::{Hub, Now, RoomLoad};
use super::{OpenStream, Producer, StreamKey, stream_frame_head};

impl Hub {
    /// Before a stored event is fanned out while a stream is open: when it is the result of a
    /// copy of another node's stream, the copy may not have heard its last chunks yet (they come
    /// as a signal, the result from the bus). Its members get what the result has beyond the
    /// copy first, as one `append`; the late signal then finds the stream ended.
    pub(in crate::hub) fn complete_stream_copy(&mut self, event: &Event) {
        let Some(room) = self.rooms.get_mut(&event.room) else {
            return;
        };
        // Found by a scan of the room's few open streams: no key to build for every event.
        let Some((key, open)) = (room.streams.open.iter_mut())
            .find(|((from, id), _)| *from == event.from && *id == event.id)
        else {
            return;
        };
        if !matches!(open.producer, Producer::Remote(_)) {
            return; // Its own producer's chunks all went out before the result was stored.
        }
        let Some(tail) = missing_tail(open, &event.body) else {
            return;
        };
        let n = open.count;
        open.keep(tail.clone());
        open.unsent = open.count;
        room.streams.version += 1;
        let frame = StreamUpdate {
            op: StreamStep::Append,
            n,
            chunks: vec![tail],
            ..stream_frame_head(key, open)
        };
        self.send_stream_frame(&event.room, frame, false);
    }

    /// Ends every finishing stream of the room whose result's seq the room has fanned out.
    pub(in crate::hub) fn end_streams_past_head(&mut self, now: Now, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let finishing: Vec<StreamKey> = (room.streams.open.iter())
            .filter(|(_, open)| open.result.is_some())
            .map(|(key, _)| key.clone())
            .collect();
        for key in finishing {
            self.end_if_result_fanned_out(now, room_name, &key);
        }
    }

    /// Ends a finishing stream whose result's seq the room has fanned out already.
    pub(super) fn end_if_result_fanned_out(
        &mut self,
        now: Now,
        room_name: &RoomName,
        key: &StreamKey,
    ) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let Some(RoomLoad::Open { head, .. }) = room.state else {
            return;
        };
        let Some(seq) = room.streams.open.get(key).and_then(|open| open.result) else {
            return;
        };
        if seq <= head {
            let code = ErrorCode::StreamFailed;
            self.end_stream(now, room_name, key, Some(seq), code, String::new());
        }
    }

    /// Another node's stream frame (a [`RoomSignal::Stream`]): this node's copy follows it and
    /// its members get it.
    pub(in crate::hub) fn remote_stream(
        &mut self,
        now: Now,
        room_name: &RoomName,
        node: &Arc<str>,
        frame: StreamFrame,
    ) {
        let Ok(frame) = frame.update() else {
            tracing::warn!(room = %room_name, node = %node, "a stream signal without a readable step");
            return;
        };
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let key = (frame.from.clone(), frame.id.clone());
        let streams = &mut room.streams;
        match frame.op {
            StreamStep::Start => {
                let ended = streams.ended.iter().any(|e| e.key == key)
                    || streams.results_without_copy.contains(&key);
                if ended {
                    return; // A late answer to a `sync`: its members had the end.
                }
                let count = frame.n + frame.chunks.len() as u64;
                let fresh = !streams.open.contains_key(&key);
                streams.version += 1;
                streams.open.insert(
                    key.clone(),
                    OpenStream {
                        kind: frame.kind,
                        meta: frame.meta.clone(),
                        producer: Producer::Remote(Arc::clone(node)),
                        bytes: frame.chunks.iter().map(Json::len).sum(),
                        chunks: frame.chunks.clone(),
                        first: frame.n,
                        count,
                        unsent: count,
                        last_flush: Some(now.instant),
                        flush_armed: false,
                        active: now.instant,
                        finishing: false,
                        result: None,
                    },
                );
                if fresh {
                    let at = now.instant + self.config.stream_timeout;
                    self.arm_stream_timer(at, room_name, &key);
                }
            }
            StreamStep::Append => {
                let Some(open) = streams.open.get_mut(&key) else {
                    return; // Its `start` (or the answer to this node's `sync`) comes.
                };
                streams.version += 1;
                open.active = now.instant;
                let new = frame.chunks_after(open.count);
                if new.is_empty() {
                    return;
                }
                // Past a gap (chunks this copy never got), the count follows the frame's index
                // and a text copy keeps its chunks from there on: a late joiner's `start` then
                // begins at the gap (the stored result has the whole text).
                if frame.n > open.count && open.kind == StreamKind::Text {
                    open.chunks.clear();
                    open.bytes = 0;
                    open.first = frame.n;
                }
                open.count = open.count.max(frame.n);
                for chunk in new {
                    open.keep(chunk.clone());
                }
                open.unsent = open.count;
            }
            StreamStep::Fail => {
                if streams.open.contains_key(&key) {
                    let message = frame.message.clone().unwrap_or_default();
                    let code = frame.code.unwrap_or(ErrorCode::StreamFailed);
                    return self.end_stream(now, room_name, &key, None, code, message);
                }
                return;
            }
            // The result's fan-out ends the copy (`close_stored_stream`): members get the event
            // first. It may have been fanned out already, or never be here (the room opened
            // past it): then the copy ends now.
            StreamStep::Finish => {
                if let (Some(open), Some(seq)) = (streams.open.get_mut(&key), frame.seq) {
                    open.finishing = true;
                    open.result = Some(seq);
                    open.active = now.instant;
                    self.end_if_result_fanned_out(now, room_name, &key);
                    // Not here yet: the bus brings it, or a repair reads it.
                    self.await_event(now, room_name, seq);
                }
                return;
            }
        }
        self.send_stream_frame(room_name, frame, false);
    }

    /// Another node opened the room and asks for everyone's state: this node's own streams
    /// there, each as a `start` with everything so far.
    pub(in crate::hub) fn announce_streams(&mut self, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let keys: Vec<StreamKey> = room
            .streams
            .open
            .iter()
            .filter(|(_, open)| !matches!(open.producer, Producer::Remote(_)))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let snapshot = self.stream_snapshot(room_name, &key);
            let frame = ServerFrame::Stream(StreamFrame::new(room_name.clone(), &snapshot));
            self.signal(room_name, &RoomSignal::Stream { frame });
        }
    }
}

/// What a stream's stored result has beyond a copy's chunks: the rest of a text (one chunk), or
/// a progress stream's last chunk when the copy's differs. `None` when the copy is whole (or
/// is not the start of the result: a copy that missed chunks in between, or keeps them only
/// from a later index).
fn missing_tail(open: &OpenStream, body: &Json) -> Option<Json> {
    let result = wire::json::from_str::<StreamResult>(body.as_text()).ok()?;
    match open.kind {
        StreamKind::Text if open.first > 0 => None,
        StreamKind::Text => {
            let text = result.text?;
            let mut rest = text.as_str();
            for chunk in &open.chunks {
                let piece = wire::json::from_str::<String>(chunk.as_text()).ok()?;
                rest = rest.strip_prefix(piece.as_str())?;
            }
            (!rest.is_empty()).then(|| Json::encode(&rest.to_owned()))
        }
        StreamKind::Progress => {
            let last = result.progress?;
            let same = open.chunks.last().map(Json::as_text) == Some(last.as_text());
            (!same).then_some(last)
        }
    }
}
