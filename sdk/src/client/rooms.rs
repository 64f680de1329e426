//! Per-room state and the frames about rooms: joining and leaving, presence, typing and the live
//! cursor set by the app, and everything the server sends (`handle_frame`: welcome, joined,
//! events merged through each room's [`Timeline`], presence snapshots and diffs, typing, live
//! cursors handed on, polling state, reset, errors, draining hints; acks and nacks are handed to
//! `publish.rs`), gap repair from history pages, and the typing and cursor timers.
//!
//! It must never choose a transport or change the connection phase (frames leave through
//! `send_frame`, which drops them while not connected: joins are re-sent on connect), perform
//! I/O or read a clock.

use std::time::Duration;

use super::live_cursors::CursorOut;
use super::presence::{DiffOutcome, Presence, TypingIn, TypingOut};
use super::timeline::Timeline;
use super::{Client, ClientEvent, HttpCall, Output, Phase};
use crate::time::Instant;
use crate::wire::{
    self, ClientFrame, Cursor, ErrorCode, Event, Json, ResetReason, RoomName, ServerFrame,
};

/// What the client keeps per joined room.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) meta: Json,
    pub(super) timeline: Timeline,
    pub(super) presence: Presence,
    pub(super) typing_in: TypingIn,
    pub(super) typing_out: TypingOut,
    /// A history fetch to repair a gap is under way.
    pub(super) repairing: Option<u64>,
    /// The locks held in the room, by name, as the server sent them (see `locks.rs`).
    #[cfg(feature = "locks")]
    pub(super) locks: Json,
    /// The lock version of the last polling `state` (0 = none).
    #[cfg(feature = "locks")]
    pub(super) lock_version: u64,
    /// The live cursors' version the server last sent (polling).
    pub(super) cursor_version: u64,
    /// This client's own live cursor.
    pub(super) cursor_out: CursorOut,
    /// The room's stream version the polls have brought (polling carries it).
    pub(super) stream_version: u64,
}

impl Client {
    // -----------------------------------------------------------------------------------------
    // App API
    // -----------------------------------------------------------------------------------------

    /// Joins `room` with this presence meta (or updates the meta of a joined room).
    pub fn join(&mut self, now: Instant, room: RoomName, meta: Json) {
        self.join_from(now, room, meta, None);
    }

    /// Joins `room` resuming from `cursor` (saved by an earlier run, from a `Joined`, `Reset`
    /// or the last `Event` seen): the server replays every event after it, or answers `reset`
    /// when its history cannot (the app gets [`ClientEvent::Reset`]). With `None`, or for a
    /// room already joined (which keeps its own position), this is [`Client::join`].
    pub fn join_from(&mut self, now: Instant, room: RoomName, meta: Json, cursor: Option<Cursor>) {
        let entry = self.rooms.get_or_insert_with(room.clone(), || Room {
            meta: Json::null(),
            timeline: Timeline::at(cursor),
            presence: Presence::default(),
            typing_in: TypingIn::default(),
            typing_out: TypingOut::default(),
            repairing: None,
            #[cfg(feature = "locks")]
            locks: Json::empty_list(),
            #[cfg(feature = "locks")]
            lock_version: 0,
            cursor_version: 0,
            cursor_out: CursorOut::default(),
            stream_version: 0,
        });
        entry.meta = meta.clone();
        let resume = entry.timeline.cursor();
        self.send_frame(ClientFrame::Join(wire::Join { room, meta, resume }));
        self.pump_polling(now);
    }

    /// Leaves `room`.
    pub fn leave(&mut self, now: Instant, room: RoomName) {
        if self.rooms.remove(&room).is_some() {
            self.send_frame(ClientFrame::Leave(wire::Leave { room }));
            self.pump_polling(now);
        }
    }

    /// The user typed (`true`) or stopped (`false`) in `room`; throttled and auto-stopped.
    pub fn set_typing(&mut self, now: Instant, room: RoomName, on: bool) {
        let typing = self.config.typing;
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        if let Some(on) = state.typing_out.set(on, now, &typing) {
            self.send_frame(ClientFrame::Typing(wire::Typing { room, on }));
            self.pump_polling(now);
        }
    }

    /// Replaces this client's presence meta in `room`.
    pub fn set_presence(&mut self, now: Instant, room: RoomName, meta: Json) {
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        state.meta = meta.clone();
        self.send_frame(ClientFrame::SetPresence(wire::SetPresence { room, meta }));
        self.pump_polling(now);
    }

    /// Replaces this client's live cursor in `room` (any small JSON; `null` removes it). At
    /// most one frame per [`CURSOR_THROTTLE`](super::live_cursors::CURSOR_THROTTLE) goes out,
    /// the last value always among them; it is sent again after every rejoin.
    pub fn set_cursor(&mut self, now: Instant, room: RoomName, value: Json) {
        let Some(state) = self.rooms.get_mut(&room) else {
            return;
        };
        let due = state.cursor_out.set(value, now);
        self.send_cursor(room, due);
        self.pump_polling(now);
    }

    // -----------------------------------------------------------------------------------------
    // Receiving
    // -----------------------------------------------------------------------------------------

    pub(super) fn handle_frame(&mut self, now: Instant, frame: ServerFrame) {
        match frame {
            ServerFrame::Welcome(welcome) => {
                if self.outbox.claim(&welcome.user) {
                    self.outbox_changed();
                }
                self.user = Some(welcome.user.clone());
                // The outbox waited for the user: its publishes go now (over polling, in the
                // `POST` that follows the answer, once its other frames are applied).
                self.flush_outbox();
                self.events
                    .push(ClientEvent::Welcome { user: welcome.user });
            }
            ServerFrame::Joined(joined) => {
                let Some(room) = self.rooms.get_mut(&joined.room) else {
                    return;
                };
                room.timeline.joined(joined.epoch, joined.head);
                let cursor = room.timeline.cursor().expect("positioned by joined");
                let own = room.cursor_out.rejoined(now);
                let version = room.cursor_version;
                let cursors = joined.cursors.unwrap_or_else(Json::empty_list);
                self.all_cursors(&joined.room, cursors, version);
                self.send_cursor(joined.room.clone(), own);
                self.apply_presence(&joined.room, joined.presence);
                self.apply_typing(now, &joined.room, joined.typing, None);
                #[cfg(feature = "locks")]
                self.set_locks(now, &joined.room, joined.locks);
                self.events.push(ClientEvent::Joined {
                    room: joined.room,
                    cursor,
                });
            }
            ServerFrame::Event(event) => self.receive_event(event),
            ServerFrame::Ack(ack) => self.acked(ack),
            ServerFrame::Nack(nack) => self.nacked(now, nack),
            ServerFrame::Presence(diff) => {
                let room_name = diff.room.clone();
                let Some(room) = self.rooms.get_mut(&room_name) else {
                    return;
                };
                match room.presence.diff(diff) {
                    DiffOutcome::Applied => {
                        let users = room.presence.users();
                        self.events.push(ClientEvent::Presence {
                            room: room_name,
                            users,
                        });
                    }
                    DiffOutcome::OutOfSync => {
                        // A change was missed: joining again re-sends the snapshot (no replay).
                        let meta = room.meta.clone();
                        self.send_frame(ClientFrame::Join(wire::Join {
                            room: room_name,
                            meta,
                            resume: None,
                        }));
                    }
                    DiffOutcome::Stale => {}
                }
            }
            ServerFrame::Typing(typing) => {
                if Some(&typing.user) == self.user.as_ref() {
                    return; // Own typing from another tab.
                }
                let Some(room) = self.rooms.get_mut(&typing.room) else {
                    return;
                };
                let changed = if typing.on {
                    room.typing_in
                        .on(typing.user, now, self.config.typing.incoming_ttl)
                } else {
                    room.typing_in.off(&typing.user)
                };
                if changed {
                    let users = room.typing_in.users();
                    self.events.push(ClientEvent::Typing {
                        room: typing.room,
                        users,
                    });
                }
            }
            ServerFrame::State(state) => {
                if let Some(presence) = state.presence {
                    self.apply_presence(&state.room, presence);
                }
                if let Some(typing) = state.typing {
                    self.apply_typing(now, &state.room, typing.users, Some(typing.version));
                }
                if let Some(cursors) = state.cursors {
                    let version = state.cursor_version.unwrap_or(0);
                    self.all_cursors(&state.room, cursors, version);
                }
                if let (Some(version), Some(room)) =
                    (state.streams, self.rooms.get_mut(&state.room))
                {
                    room.stream_version = version;
                }
                #[cfg(feature = "locks")]
                if let Some(locks) = state.locks {
                    if let Some(room) = self.rooms.get_mut(&state.room) {
                        room.lock_version = locks.version;
                    }
                    self.set_locks(now, &state.room, Some(locks.locks));
                }
            }
            ServerFrame::Cursor(notice) => {
                if self.rooms.contains_key(&notice.room) {
                    self.events.push(ClientEvent::Cursors {
                        room: notice.room,
                        cursors: notice.cursor,
                        whole: false,
                    });
                }
            }
            ServerFrame::Reset(reset) => {
                self.reset_room(reset.room, reset.epoch, reset.head, reset.reason);
            }
            ServerFrame::Error(error) => {
                if error.code == ErrorCode::NotJoined
                    && let Some(room_name) = &error.room
                    && let (Some(room), Phase::Polling(_)) =
                        (self.rooms.get(room_name), &self.phase)
                {
                    // The polling session lost its membership (e.g. another node): join again.
                    let frame = ClientFrame::Join(wire::Join {
                        room: room_name.clone(),
                        meta: room.meta.clone(),
                        resume: None,
                    });
                    self.send_frame(frame);
                    return;
                }
                self.events.push(ClientEvent::Error {
                    code: error.code,
                    message: error.message,
                    room: error.room,
                });
            }
            ServerFrame::Draining(draining) => {
                self.retry_hint = Some(Duration::from_millis(draining.retry_after_ms))
            }
            #[cfg(feature = "locks")]
            ServerFrame::Lock(notice) => self.lock_changed(now, notice),
            #[cfg(not(feature = "locks"))]
            ServerFrame::Lock(_) => {}
            ServerFrame::Notice(notice) => self.events.push(ClientEvent::Notice(notice)),
            ServerFrame::Stream(stream) => {
                if self.rooms.contains_key(&stream.room) {
                    self.events.push(ClientEvent::Stream(stream));
                }
            }
            ServerFrame::Left(_) | ServerFrame::Pong(_) | ServerFrame::Authed(_) => {}
        }
    }

    /// Replaces a room's presence with a snapshot; tells the app if anything changed.
    fn apply_presence(&mut self, room_name: &RoomName, snapshot: wire::PresenceSnapshot) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.presence.snapshot(snapshot) {
            self.events.push(ClientEvent::Presence {
                room: room_name.clone(),
                users: room.presence.users(),
            });
        }
    }

    /// Sends this client's cursor in `room`, when the throttle let one go.
    fn send_cursor(&mut self, room: RoomName, value: Option<Json>) {
        if let Some(value) = value {
            self.send_frame(ClientFrame::SetCursor(wire::SetCursor { room, value }));
        }
    }

    /// A room's live cursors, all of them (a `joined`, a polling `state`): handed to the app
    /// as they came.
    fn all_cursors(&mut self, room_name: &RoomName, cursors: Json, version: u64) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        room.cursor_version = version;
        self.events.push(ClientEvent::Cursors {
            room: room_name.clone(),
            cursors,
            whole: true,
        });
    }

    /// Replaces who is typing in a room (this user left out); `version` is the server's, when
    /// it sent one (polling). Tells the app if anything changed.
    fn apply_typing(
        &mut self,
        now: Instant,
        room_name: &RoomName,
        users: Vec<String>,
        version: Option<u64>,
    ) {
        let ttl = self.config.typing.incoming_ttl;
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let version = version.unwrap_or(room.typing_in.version());
        let me = self.user.as_deref();
        if room.typing_in.replace(users, me, version, now, ttl) {
            self.events.push(ClientEvent::Typing {
                room: room_name.clone(),
                users: room.typing_in.users(),
            });
        }
    }

    fn receive_event(&mut self, event: Event) {
        let room_name = event.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if event.seq.is_none() {
            self.events.push(ClientEvent::Event { event, own: false });
            return;
        }
        let merge = room.timeline.receive(event);
        let repair = merge
            .gap
            .filter(|_| room.repairing.is_none() && matches!(self.phase, Phase::Socket(_)));
        for event in merge.deliver {
            // Ids are idempotency keys per sender: another user's event with the id of one of
            // ours (ids travel in every event, so anyone can copy one) is theirs, not our echo.
            let own = self.user.as_deref() == Some(event.from.as_str())
                && self.unconfirmed.remove(&event.id).is_some();
            self.events.push(ClientEvent::Event { event, own });
        }
        if let Some(cursor) = repair {
            // Missing events on a socket: fetch them from history (held ones wait meanwhile).
            let request = self.rng.next_u64();
            if let Some(room) = self.rooms.get_mut(&room_name) {
                room.repairing = Some(request);
            }
            let call = HttpCall::History {
                room: room_name,
                after: cursor.seq,
            };
            self.outputs.push(Output::Http {
                request,
                token: self.token.clone(),
                call,
            });
        }
    }

    pub(super) fn history_page(&mut self, request: u64, page: wire::EventsPage) {
        let Some(room) = self.rooms.get_mut(&page.room) else {
            return;
        };
        if room.repairing != Some(request) {
            return;
        }
        room.repairing = None;
        let span = wire::RoomHead {
            epoch: page.epoch,
            head: page.head,
            oldest: page.oldest,
        };
        if let Some(Err(reason)) = room.timeline.cursor().map(|cursor| span.resume(cursor)) {
            return self.reset_room(page.room, page.epoch, page.head, reason);
        }
        for event in page.events {
            self.receive_event(event);
        }
    }

    /// The room's history can not be resumed: start again from `head` in `epoch`, tell the
    /// app, and confirm own publishes the new position has passed (their echo will not come).
    fn reset_room(&mut self, room_name: RoomName, epoch: u64, head: u64, reason: ResetReason) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        room.timeline.reset(epoch, head);
        self.events.push(ClientEvent::Reset {
            room: room_name.clone(),
            reason,
            cursor: Cursor { epoch, seq: head },
        });
        self.confirm_passed_pending(&room_name);
    }

    // -----------------------------------------------------------------------------------------
    // Timers
    // -----------------------------------------------------------------------------------------

    pub(super) fn room_timers(&mut self, now: Instant) {
        // Typing "off"s and cursors whose throttle interval ended.
        let mut frames = Vec::new();
        for (name, room) in self.rooms.iter_mut() {
            if room.typing_in.expire(now) {
                self.events.push(ClientEvent::Typing {
                    room: name.clone(),
                    users: room.typing_in.users(),
                });
            }
            if let Some(on) = room.typing_out.timeout(now) {
                frames.push(ClientFrame::Typing(wire::Typing {
                    room: name.clone(),
                    on,
                }));
            }
            if let Some(value) = room.cursor_out.due(now) {
                let room = name.clone();
                frames.push(ClientFrame::SetCursor(wire::SetCursor { room, value }));
            }
        }
        for frame in frames {
            self.send_frame(frame);
        }
        self.pump_polling(now);
    }
}
