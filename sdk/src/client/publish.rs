//! Own publishes and their reconciliation: durable publishes go into the
//! [`Outbox`](super::outbox::Outbox) and show as `Pending`, ephemeral ones are sent only while
//! connected; the outbox is resent on each new link; acks, nacks (a passing refusal is retried,
//! any other gives up), pending publishes confirmed when their echo can no longer come, and
//! expiry.
//!
//! It must never confirm an own publish twice or before the room's cursor has passed its acked
//! seq (each is taken out of `pending` when confirmed), perform I/O (the outbox is saved by
//! `poll_outputs` through [`Output::Save`](super::Output::Save)) or read a clock.

use super::{Client, ClientEvent, ConnectionState, Phase, PublishError};
use crate::text::{concat, push_decimal};
use crate::time::Instant;
use crate::wire::{self, ClientFrame, ErrorCode, Event, EventId, Json, OutboxRecord, RoomName};

impl Client {
    // -----------------------------------------------------------------------------------------
    // App API
    // -----------------------------------------------------------------------------------------

    /// Publishes a durable event: shown at once as [`ClientEvent::Pending`], queued in the
    /// outbox (so it survives disconnects and reloads), sent when connected, retried until acked.
    pub fn publish(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
    ) -> Result<EventId, PublishError> {
        self.publish_with(now, room, body, None, None)
    }

    /// Like [`Client::publish`], stored only if the room's head is still `if_seq` and (with
    /// `if_lock`) while this user still holds that lock grant (refused `lock_lost` otherwise).
    pub fn publish_with(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
        if_seq: Option<u64>,
        if_lock: Option<wire::LockFence>,
    ) -> Result<EventId, PublishError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(PublishError::Closed);
        }
        if !self.rooms.contains_key(&room) {
            return Err(PublishError::NotJoined(room));
        }
        let id = self.next_event_id();
        let record = OutboxRecord {
            room: room.clone(),
            id: id.clone(),
            body: body.clone(),
            if_seq,
            created_ms: self.unix_ms(now),
            user: self.user.clone(),
            if_lock,
        };
        self.outbox.push(record.clone())?;
        let stop_typing = self
            .rooms
            .get_mut(&room)
            .and_then(|state| state.typing_out.stop());
        self.unconfirmed.insert(id.clone(), (record, None));
        self.events.push(ClientEvent::Pending {
            room: room.clone(),
            id: id.clone(),
            body,
        });
        self.outbox_changed();
        if let Some(on) = stop_typing {
            self.send_frame(ClientFrame::Typing(wire::Typing { room, on }));
        }
        self.flush_outbox();
        self.pump_polling(now);
        Ok(id)
    }

    /// Publishes an ephemeral event (cursor, progress): sent now if connected, never queued.
    pub fn publish_ephemeral(
        &mut self,
        now: Instant,
        room: RoomName,
        body: Json,
    ) -> Result<EventId, PublishError> {
        if !self.rooms.contains_key(&room) {
            return Err(PublishError::NotJoined(room));
        }
        if !matches!(self.state, ConnectionState::Connected { .. }) {
            return Err(PublishError::Offline);
        }
        let id = self.next_event_id();
        self.send_frame(ClientFrame::Publish(wire::Publish {
            room,
            id: id.clone(),
            body,
            durable: false,
            if_seq: None,
            if_lock: None,
        }));
        self.pump_polling(now);
        Ok(id)
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    pub(super) fn flush_outbox(&mut self) {
        let link = match &self.phase {
            Phase::Socket(socket) if socket.welcomed => socket.link,
            Phase::Polling(poll) => poll.link,
            _ => return,
        };
        for record in self.outbox.unsent(link, self.user.as_deref()) {
            self.send_frame(ClientFrame::Publish(wire::Publish {
                room: record.room,
                id: record.id,
                body: record.body,
                durable: true,
                if_seq: record.if_seq,
                if_lock: record.if_lock,
            }));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------------------------

    pub(super) fn acked(&mut self, ack: wire::Ack) {
        let Some(seq) = ack.seq else { return }; // Ephemeral.
        if self.outbox.remove(&ack.id).is_none() {
            return;
        }
        self.events.push(ClientEvent::Acked {
            room: ack.room.clone(),
            id: ack.id.clone(),
            seq,
        });
        self.outbox_changed();
        if let Some((_, acked_seq)) = self.unconfirmed.get_mut(&ack.id) {
            *acked_seq = Some(seq);
        }
        // If the event itself can no longer arrive (already behind the cursor), confirm it now.
        self.confirm_passed_pending(&ack.room);
    }

    /// Confirms acked pending publishes of `room` whose seq the timeline has already passed
    /// (their echo was skipped by a reset, or arrived before they were pending): each is shown
    /// as the server's copy, rebuilt from the outbox record and the acked seq.
    pub(super) fn confirm_passed_pending(&mut self, room: &RoomName) {
        let Some(cursor) = self.rooms.get(room).and_then(|r| r.timeline.cursor()) else {
            return;
        };
        // In seq order: the earliest passed one first, until none is left (there are few).
        while let Some((seq, id)) = self
            .unconfirmed
            .iter()
            .filter(|(_, (record, _))| &record.room == room)
            .filter_map(|(id, (_, seq))| seq.filter(|&seq| seq <= cursor.seq).map(|seq| (seq, id)))
            .min()
            .map(|(seq, id)| (seq, id.clone()))
        {
            let Some((record, _)) = self.unconfirmed.remove(&id) else {
                break;
            };
            let event = Event {
                room: record.room,
                seq: Some(seq),
                id: record.id,
                from: self.user.clone().unwrap_or_default(),
                at: record.created_ms,
                body: record.body,
            };
            self.events.push(ClientEvent::Event { event, own: true });
        }
    }

    pub(super) fn nacked(&mut self, now: Instant, nack: wire::Nack) {
        #[cfg(feature = "locks")]
        if self.lock_refused(&nack) {
            return;
        }
        let joined = nack.room.as_ref().and_then(|room| self.rooms.get(room));
        match (nack.code, joined) {
            (ErrorCode::NotJoined, Some(room)) => {
                // The server lost a membership this client holds (a polling session whose
                // request reached a node that did not know it): join again, then publish again
                // shortly (the join goes first, so the server has it by then).
                let frame = ClientFrame::Join(wire::Join {
                    room: nack.room.clone().expect("checked above"),
                    meta: room.meta.clone(),
                    resume: room.timeline.cursor(),
                });
                self.send_frame(frame);
                self.retry_refused(now, &nack.id);
            }
            (ErrorCode::RateLimited | ErrorCode::StorageUnavailable | ErrorCode::Draining, _) => {
                // Passing conditions: keep it and send it again shortly.
                self.retry_refused(now, &nack.id);
            }
            _ => {
                // Permanent (including `bad_frame`, whose nack may lack the room: the outbox
                // record has it).
                if let Some(record) = self.outbox.remove(&nack.id) {
                    self.unconfirmed.remove(&nack.id);
                    self.outbox_changed();
                    self.events.push(ClientEvent::PublishFailed {
                        room: record.room,
                        id: nack.id,
                        code: nack.code,
                        message: nack.message,
                    });
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers and helpers
    // -----------------------------------------------------------------------------------------

    /// Keeps a refused publish and sends it again after `retry_refused_after`.
    fn retry_refused(&mut self, now: Instant, id: &wire::EventId) {
        self.outbox.resend(id);
        let at = now + self.config.retry_refused_after;
        self.retry_refused_at = Some(self.retry_refused_at.map_or(at, |t| t.min(at)));
    }

    pub(super) fn expire_outbox(&mut self, now: Instant) {
        let expired = self.outbox.expire(self.unix_ms(now));
        if expired.is_empty() {
            return;
        }
        for record in expired {
            self.unconfirmed.remove(&record.id);
            self.events.push(ClientEvent::Expired {
                room: record.room,
                id: record.id,
            });
        }
        self.outbox_changed();
    }

    pub(super) fn outbox_changed(&mut self) {
        self.outbox_unsaved = true;
        self.events.push(ClientEvent::Outbox {
            queued: self.outbox.len(),
        });
    }

    /// A fresh id for an own publish: this client's random prefix and a counter.
    pub(super) fn next_event_id(&mut self) -> EventId {
        self.next_id += 1;
        let mut id = concat(&[&self.id_prefix, "-"]);
        push_decimal(&mut id, self.next_id);
        EventId::parse(id).expect("generated ids are valid")
    }
}
