//! Membership: joining a room (loading it from the store first when it is not open here),
//! resuming with a history replay, and leaving, including leaving and rejoining while a replay
//! still streams.
//!
//! # Joining and resuming without gaps or doubles
//!
//! A room is *loaded* (its epoch and head read from the store) when its first member joins.
//! A joiner with a resume cursor behind the head becomes a *replaying* member: the driver streams
//! history `(cursor, head]` straight into the connection's queue while the hub buffers the room's
//! live events with seq > head for that member; when the replay is done the buffer follows.
//! Seqs are strictly increasing, so the boundary has neither a gap nor a double.
//!
//! # Leaving while replaying
//!
//! A member that leaves while its replay streams leaves an *orphaned* replay behind. Its
//! `left`, and any rejoin of the room by the same connection (a [`Rejoin`], with the publishes
//! sent after it), wait until [`Hub::handle_replay_done`], so no replayed event can arrive
//! after them.

use std::cmp::Reverse;
use std::sync::Arc;

use chorus_sdk::wire::{
    ErrorCode, Join, Joined, Left, LiveCursor, Publish, Reset, ResetReason, RoomName, ServerFrame,
};

use super::federation::RoomSignal;
use super::presence::{Arrival, ConnKey};
use super::{
    Action, ConnId, ConnKind, Hub, Member, Now, ReplayOutcome, Room, RoomLoad, Timer, Transmit,
    Typist,
};
use crate::store::{RoomHead, StoreError};

/// A rejoin (and the publishes sent after it) waiting for an orphaned replay to end.
#[derive(Default)]
pub(super) struct Rejoin {
    pub(super) join: Option<Join>,
    pub(super) publishes: Vec<Publish>,
}

impl Hub {
    /// The store reported a room's head (or failed to).
    pub fn handle_room_loaded(
        &mut self,
        now: Now,
        room_name: RoomName,
        result: Result<RoomHead, StoreError>,
    ) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(RoomLoad::Loading { .. }) = room.state else {
            return;
        };
        let Some(RoomLoad::Loading {
            joins,
            early,
            publishes,
        }) = room.state.take()
        else {
            unreachable!()
        };
        match result {
            Ok(head) => {
                room.state = Some(RoomLoad::Open {
                    epoch: head.epoch,
                    head: head.head,
                    oldest: head.oldest,
                });
                for (conn, join) in joins {
                    self.complete_join(now, conn, join);
                }
                for stored in early {
                    self.accept_stored(now, stored, None);
                }
                // Streams whose result the room is past already (their `finish` came while
                // it loaded) end now.
                self.end_streams_past_head(now, &room_name);
                self.repair_if_resynced_while_loading(&room_name);
                // Admitted when they arrived: they go on without being charged again.
                for (conn, publish) in publishes {
                    self.send_on_admitted(now, conn, publish);
                }
                // The other nodes hear who is here and answer with who is there, so a member
                // sees everyone at once rather than at the next refresh.
                if let Some(room) = self.rooms.get_mut(&room_name) {
                    room.synced_at = Some(now.instant);
                }
                self.announce_state(&room_name, true);
                self.arm_refresh(now);
                // Everyone who waited may have gone while the room loaded.
                self.forget_room_if_idle(&room_name);
            }
            Err(err) => {
                if self
                    .rooms
                    .remove(&room_name)
                    .is_some_and(|r| r.observed_until.is_some())
                {
                    self.observed_rooms -= 1;
                }
                self.actions.push_back(Action::Unfollow(room_name.clone()));
                let message = format!("could not open room {room_name}: {err}");
                for (conn, _) in joins {
                    if let Some(state) = self.conns.get_mut(&conn) {
                        state.rooms.remove(&room_name);
                    }
                    self.refuse_join(
                        conn,
                        ErrorCode::StorageUnavailable,
                        &message,
                        room_name.clone(),
                    );
                }
                for (conn, publish) in publishes {
                    self.send_nack(
                        conn,
                        publish.room,
                        publish.id,
                        ErrorCode::StorageUnavailable,
                        message.clone(),
                        None,
                    );
                }
            }
        }
    }

    /// A replay requested by [`Action::Replay`] ended.
    pub fn handle_replay_done(
        &mut self,
        now: Now,
        conn: ConnId,
        room_name: RoomName,
        outcome: ReplayOutcome,
    ) {
        if let Some(rejoin) = self.orphaned_replays.remove(&(conn, room_name.clone())) {
            self.send(conn, &ServerFrame::Left(Left { room: room_name }));
            if let Some(join) = rejoin.join {
                self.join(now, conn, join);
            }
            for publish in rejoin.publishes {
                self.publish(now, conn, publish);
            }
            return;
        }
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(Some(RoomLoad::Open { epoch, .. })) = Some(&room.state) else {
            return;
        };
        let epoch = *epoch;
        let Some(member) = room.members.get_mut(&conn) else {
            return;
        };
        if let ReplayOutcome::Interrupted { after } = outcome {
            if matches!(member, Member::Replaying { .. }) {
                let at = now.instant + super::REPLAY_RETRY;
                let timer = Timer::RetryReplay(conn, room_name, after);
                self.timers.push(Reverse((at, timer)));
            }
            return;
        }
        let Member::Replaying { until, buffered } = std::mem::replace(member, Member::Live) else {
            return;
        };
        let reason = match outcome {
            ReplayOutcome::Done | ReplayOutcome::Interrupted { .. } => None,
            ReplayOutcome::NotCovered => Some(ResetReason::HistoryTrimmed),
        };
        if let Some(reason) = reason {
            self.send_reset(conn, room_name, reason, epoch, until);
        }
        for payload in buffered {
            self.transmits.push_back(Transmit {
                reply: false,
                conn,
                payload,
            });
        }
    }

    /// A [`Timer::RetryReplay`] fired: the replay goes on from `after` while the member is
    /// still replaying in that room (it may have left, or its connection gone, meanwhile).
    pub(super) fn retry_replay(&mut self, now: Now, conn: ConnId, room_name: RoomName, after: u64) {
        let replaying = self
            .rooms
            .get(&room_name)
            .and_then(|room| room.members.get(&conn));
        if let Some(&Member::Replaying { until, .. }) = replaying {
            self.actions.push_back(Action::Replay {
                conn,
                room: room_name,
                after,
                until,
            });
        } else if self
            .orphaned_replays
            .contains_key(&(conn, room_name.clone()))
        {
            // Left while the replay waited to go on: nothing runs that would end it, so end it
            // here (the `left`, and any rejoin, follow).
            self.handle_replay_done(now, conn, room_name, ReplayOutcome::Done);
        }
    }

    pub(super) fn join(&mut self, now: Now, conn: ConnId, join: Join) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, join.room.clone())) {
            waiting.join = Some(join);
            return;
        }
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let room_name = join.room.clone();
        if !state.identity.can_join(&room_name) {
            let message = format!("your token grants no access to room {room_name}");
            return self.refuse_join(conn, ErrorCode::Forbidden, &message, room_name);
        }
        if join.meta.len() > self.config.max_meta_bytes {
            let message = format!(
                "presence meta is {} bytes; the limit is {}",
                join.meta.len(),
                self.config.max_meta_bytes
            );
            return self.refuse_join(conn, ErrorCode::MetaTooLarge, &message, room_name);
        }
        if state.rooms.contains_key(&room_name) {
            // Joining again refreshes the meta and re-sends the room's state; no replay.
            let joined_already = self
                .rooms
                .get(&room_name)
                .is_some_and(|room| room.members.contains_key(&conn));
            // It re-sends the whole state, so it draws a join token as a first join does (and
            // no connection presence token for a new meta; the user's presence budget applies).
            if joined_already && self.admit_join(now, conn, &room_name) {
                self.apply_meta(now, conn, &room_name, join.meta);
                self.send_joined(conn, &room_name);
                self.send_stream_catch_up(conn, &room_name);
            }
            return;
        }
        if state.rooms.len() >= self.config.max_rooms_per_conn {
            let message = format!(
                "a connection may be in at most {} rooms; leave one first",
                self.config.max_rooms_per_conn
            );
            return self.refuse_join(conn, ErrorCode::TooManyRooms, &message, room_name);
        }
        if !self.admit_join(now, conn, &room_name) {
            return;
        }
        self.conns
            .get_mut(&conn)
            .expect("checked above")
            .rooms
            .insert(room_name.clone(), ());
        let base = self.config.version_base;
        let room = self
            .rooms
            .entry(room_name.clone())
            .or_insert_with(|| Room::opening(base, None));
        match &mut room.state {
            Some(RoomLoad::Open { .. }) => self.complete_join(now, conn, join),
            Some(RoomLoad::Loading { joins, .. }) => joins.push((conn, join)),
            None => {
                room.state = Some(RoomLoad::Loading {
                    joins: vec![(conn, join)],
                    early: Vec::new(),
                    publishes: Vec::new(),
                });
                self.actions.push_back(Action::Follow(room_name.clone()));
                self.actions.push_back(Action::LoadRoom(room_name));
            }
        }
    }

    fn complete_join(&mut self, now: Now, conn: ConnId, join: Join) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if !state.rooms.contains_key(&join.room) {
            return; // Left again (or disconnected) while the room was loading.
        }
        let identity = Arc::clone(&state.identity);
        let wire_id = state.wire_id.clone();
        let kind = state.kind;
        let room_name = join.room;
        let key = self.local_key(conn);
        let room = self
            .rooms
            .get_mut(&room_name)
            .expect("joins are only completed for existing rooms");
        let Some(RoomLoad::Open {
            epoch,
            head,
            oldest,
        }) = room.state
        else {
            return;
        };
        let change = room.presence.add(Arrival {
            user: &identity.user,
            name: identity.name.as_deref(),
            key: key.clone(),
            wire_id: &wire_id,
            meta: join.meta,
            since: now.unix_ms,
        });
        if let Some(change) = change {
            self.broadcast_presence(&room_name, change, None);
        }
        if self.config.federated {
            self.announce_conn(&room_name, &identity.user, &key);
        }
        let room = self.rooms.get_mut(&room_name).expect("still there");
        // Polling sessions carry their cursors in every poll; the hub never replays to them.
        let resume = if kind == ConnKind::Poll {
            None
        } else {
            join.resume
        };
        // The one resume rule (`RoomHead::resume`): behind the head with the history kept
        // means a replay; up to date means live; anything else a reset after `joined`.
        let verdict = resume.map(|cursor| {
            let span = RoomHead {
                epoch,
                head,
                oldest,
            };
            (cursor, span.resume(cursor))
        });
        let member = match verdict {
            Some((cursor, Ok(()))) if cursor.seq < head => {
                self.actions.push_back(Action::Replay {
                    conn,
                    room: room_name.clone(),
                    after: cursor.seq,
                    until: head,
                });
                Member::Replaying {
                    until: head,
                    buffered: Vec::new(),
                }
            }
            _ => Member::Live,
        };
        room.members.insert(conn, member);
        self.send_joined(conn, &room_name);
        let reset = verdict.and_then(|(_, verdict)| verdict.err());
        if let Some(reason) = reset {
            self.send_reset(conn, room_name.clone(), reason, epoch, head);
        }
        // A member joining mid-stream gets everything so far, after `joined` (and after a
        // `reset`, which drops what the client held of the room).
        self.send_stream_catch_up(conn, &room_name);
    }

    /// Tells `conn` to start `room` over from `head` in `epoch`, and why.
    fn send_reset(
        &mut self,
        conn: ConnId,
        room: RoomName,
        reason: ResetReason,
        epoch: u64,
        head: u64,
    ) {
        let reset = Reset {
            room,
            reason,
            epoch,
            head,
        };
        self.send(conn, &ServerFrame::Reset(reset));
    }

    fn send_joined(&mut self, conn: ConnId, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let Some(RoomLoad::Open { epoch, head, .. }) = room.state else {
            return;
        };
        let mut typing: Vec<String> = room.typing.keys().cloned().collect();
        typing.sort_unstable();
        // Absent when nobody else shows a cursor.
        let cursors = room.cursors.list(Some(&self.local_key(conn)));
        let cursors = (!cursors.is_empty()).then(|| LiveCursor::list_json(&cursors));
        let joined = Joined {
            room: room_name.clone(),
            epoch,
            head,
            presence: room.presence.snapshot(),
            typing,
            locks: self.joined_locks(room_name),
            cursors,
        };
        self.send(conn, &ServerFrame::Joined(joined));
    }

    /// Takes a join token for `conn` (every join is told to the whole room or re-sends its
    /// state); `false`, with `error rate_limited` naming the room, when the budget is spent.
    pub(super) fn admit_join(&mut self, now: Now, conn: ConnId, room_name: &RoomName) -> bool {
        let (rate, burst) = (self.config.join_rate, self.config.join_burst);
        let Some(state) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Err(wait) = state.join_budget.take(now.instant, rate, burst) else {
            return true;
        };
        let message = format!(
            "at most {rate} joins per second (bursts of {burst}); retry in {} ms",
            wait.as_millis().max(1)
        );
        self.refuse_join(conn, ErrorCode::RateLimited, &message, room_name.clone());
        false
    }

    /// Answers a `join` with an error.
    fn refuse_join(&mut self, conn: ConnId, code: ErrorCode, message: &str, room: RoomName) {
        self.send(conn, &ServerFrame::error(code, message, Some(room)));
    }

    pub(super) fn leave(&mut self, now: Now, conn: ConnId, room_name: RoomName) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, room_name.clone())) {
            // Leaving again before the deferred rejoin happened cancels it; the one `left`
            // frame sent when the replay ends answers both leaves.
            waiting.join = None;
            let overtaken = std::mem::take(&mut waiting.publishes);
            self.refuse_overtaken_publishes(conn, overtaken);
            return;
        }
        let removed = self
            .conns
            .get_mut(&conn)
            .is_some_and(|state| state.rooms.remove(&room_name).is_some());
        let replaying = self
            .rooms
            .get(&room_name)
            .and_then(|room| room.members.get(&conn))
            .is_some_and(|member| matches!(member, Member::Replaying { .. }));
        if removed {
            self.remove_member(now, conn, &room_name, false);
        }
        if replaying {
            self.orphaned_replays
                .insert((conn, room_name), Rejoin::default());
        } else {
            // Leaving a room one is not in is not an error: the outcome is the same.
            self.send(conn, &ServerFrame::Left(Left { room: room_name }));
        }
    }

    fn remove_member(&mut self, now: Now, conn: ConnId, room_name: &RoomName, linger: bool) {
        let Some(user) = self
            .conns
            .get(&conn)
            .map(|state| state.identity.user.clone())
        else {
            return;
        };
        self.remove_member_of(now, conn, &user, room_name, linger);
    }

    pub(super) fn remove_member_of(
        &mut self,
        now: Now,
        conn: ConnId,
        user: &str,
        room_name: &RoomName,
        linger: bool,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if let Some(RoomLoad::Loading {
            joins, publishes, ..
        }) = &mut room.state
        {
            joins.retain(|(c, _)| *c != conn);
            let (theirs, others): (Vec<_>, Vec<_>) = std::mem::take(publishes)
                .into_iter()
                .partition(|(c, _)| *c == conn);
            *publishes = others;
            self.refuse_overtaken_publishes(conn, theirs.into_iter().map(|(_, p)| p));
        }
        // Its grants end (at once on a leave, after the grace on a drop); the store decides.
        self.end_locks_of(now, conn, user, room_name, linger);
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        room.members.remove(&conn);
        let typing_by_this_conn = room
            .typing
            .get(user)
            .is_some_and(|(_, by)| *by == Typist::Local(conn));
        if typing_by_this_conn {
            room.typing.remove(user);
            room.typing_version += 1;
        }
        let linger_until = linger.then(|| now.instant + self.config.presence_grace);
        let key = ConnKey {
            node: Arc::clone(&self.node_id),
            conn,
        };
        let present = self.config.federated && room.presence.conn(user, &key).is_some();
        let change = room.presence.remove(user, &key, linger_until);
        if let Some(deadline) = linger_until {
            self.timers.push(Reverse((
                deadline,
                Timer::PresenceLeave(room_name.clone(), user.to_owned()),
            )));
        }
        if typing_by_this_conn {
            self.broadcast_typing(room_name, user.to_owned(), false, None);
            let off = RoomSignal::Typing {
                user: user.to_owned(),
                on: false,
            };
            self.signal(room_name, &off);
        }
        if let Some(change) = change {
            self.broadcast_presence(room_name, change, None);
        }
        self.drop_cursor(room_name, &key);
        if present {
            let gone = RoomSignal::Gone {
                conn,
                user: user.to_owned(),
                linger,
            };
            self.signal(room_name, &gone);
        }
        self.forget_room_if_idle(room_name);
    }
}
