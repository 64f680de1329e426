//! Typing and presence updates: the `typing` and `set_presence` frames, and the broadcasts of
//! both to the room's members. Neither is stored; polling clients catch up through the versions
//! in [`Hub::room_view`]. (A room's presence itself, users aggregating connections, is
//! `presence.rs`.)
//!
//! Each of these frames is fanned out to every member, so one connection could make the hub
//! broadcast without end. Two rules keep them cheap: a frame that changes nothing is dropped
//! before it costs anything (typing `off` while not typing, a typing refresh sooner than
//! [`typing_refresh_min`] after the last one, presence meta equal to the current one), and the
//! rest draw from a per-connection token bucket (`HubConfig::signal_rate`/`signal_burst`).
//! A frame beyond the budget is dropped, and the connection hears `error rate_limited` once per
//! burst (not once per dropped frame, which would be an amplifier of its own).
//!
//! A presence change carries the user's whole entry (every connection's meta), so a user's
//! connections together are held to the same budget per room: their changes beyond it are
//! held and announced together (`Timer::PresenceFlush`), not dropped (see `presence.rs`).

use std::cmp::Reverse;

use chorus_sdk::wire::{
    ErrorCode, Json, PresenceDiff, RoomName, RoomState, ServerFrame, TypingNotice,
};

use super::federation::RoomSignal;
use super::presence::{Change, Flush, MetaChange};
use super::{ConnId, Hub, Now, Timer, Transmit, Typist, encode};

/// The shortest time between two forwarded typing refreshes of one user in one room: clients
/// refresh every few seconds (the SDK every 3 s), and receivers keep a user typing for the whole
/// TTL, so a refresh sooner than a sixth of the TTL changes nothing they can see.
pub(super) fn typing_refresh_min(typing_ttl: std::time::Duration) -> std::time::Duration {
    typing_ttl / 6
}

impl Hub {
    /// Takes one typing-or-presence token for `conn`; `false` when the budget is spent (the
    /// first refusal of a burst also sends `error rate_limited`).
    fn admit_signal(&mut self, now: Now, conn: ConnId, room: &RoomName) -> bool {
        let (rate, burst) = (self.config.signal_rate, self.config.signal_burst);
        let Some(state) = self.conns.get_mut(&conn) else {
            return false;
        };
        match state.signal_budget.take(now.instant, rate, burst) {
            Ok(()) => {
                state.signal_refused = false;
                true
            }
            Err(_) if state.signal_refused => false,
            Err(wait) => {
                state.signal_refused = true;
                let retry = wait.as_millis().max(1);
                let message = format!(
                    "at most {rate} typing and presence frames per second (bursts of {burst}); \
                     frames beyond it are dropped; retry in {retry} ms"
                );
                self.send_error(conn, ErrorCode::RateLimited, &message, Some(room.clone()));
                false
            }
        }
    }

    pub(super) fn typing(&mut self, now: Now, conn: ConnId, room_name: RoomName, on: bool) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let user = state.identity.user.clone();
        let Some(room) = self
            .rooms
            .get(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before signalling typing in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        let ttl = self.config.typing_ttl;
        let changes_nothing = match room.typing.get(&user) {
            // A refresh right after the last one: receivers still show the user typing.
            Some((until, _)) if on => now.instant + ttl < *until + typing_refresh_min(ttl),
            Some(_) => false,
            None => !on,
        };
        if changes_nothing || !self.admit_signal(now, conn, &room_name) {
            return;
        }
        let room = self.rooms.get_mut(&room_name).expect("checked above");
        if on {
            let until = now.instant + ttl;
            if room
                .typing
                .insert(user.clone(), (until, Typist::Local(conn)))
                .is_none()
            {
                room.typing_version += 1;
            }
            self.timers.push(Reverse((
                until,
                Timer::TypingExpiry(room_name.clone(), user.clone()),
            )));
            // Every refresh is forwarded: receivers expire typing locally unless refreshed.
            self.broadcast_typing(&room_name, user.clone(), true, Some(conn));
            self.signal(&room_name, &RoomSignal::Typing { user, on: true });
        } else if room.typing.remove(&user).is_some() {
            room.typing_version += 1;
            self.broadcast_typing(&room_name, user.clone(), false, Some(conn));
            self.signal(&room_name, &RoomSignal::Typing { user, on: false });
        }
    }

    pub(super) fn broadcast_typing(
        &mut self,
        room_name: &RoomName,
        user: String,
        on: bool,
        except: Option<ConnId>,
    ) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let payload = encode(&ServerFrame::Typing(TypingNotice {
            room: room_name.clone(),
            user,
            on,
        }));
        for &conn in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                conn,
                payload: payload.clone(),
            });
        }
    }

    pub(super) fn set_presence(&mut self, now: Now, conn: ConnId, room_name: RoomName, meta: Json) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if meta.len() > self.config.max_meta_bytes {
            let message = format!(
                "presence meta is {} bytes; the limit is {}",
                meta.len(),
                self.config.max_meta_bytes
            );
            return self.send_error(conn, ErrorCode::MetaTooLarge, &message, Some(room_name));
        }
        let user = state.identity.user.clone();
        if !self
            .rooms
            .get(&room_name)
            .is_some_and(|room| room.members.contains_key(&conn))
        {
            let message = format!("join room {room_name} before updating presence in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        // The same meta again changes nothing, and costs nothing (like a typing refresh).
        let room = self.rooms.get(&room_name).expect("checked above");
        if room.presence.meta_of(&user, &self.local_key(conn)) == Some(&meta)
            || !self.admit_signal(now, conn, &room_name)
        {
            return;
        }
        self.apply_meta(now, conn, &room_name, meta);
    }

    /// Sets the meta of `conn` (a member of `room_name`; a `presence` frame, or a `join` of a
    /// room already joined) and tells the room when it changed, now or when the user's budget
    /// allows.
    pub(super) fn apply_meta(&mut self, now: Now, conn: ConnId, room_name: &RoomName, meta: Json) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let user = state.identity.user.clone();
        let key = self.local_key(conn);
        let budget = self.presence_budget(now);
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        match room.presence.set_local_meta(&user, &key, meta, budget) {
            MetaChange::Unchanged | MetaChange::Held(None) => {}
            MetaChange::Held(Some(at)) => {
                self.arm_presence_flush(at, room_name, user);
            }
            MetaChange::Announce(change) => {
                self.broadcast_presence(room_name, change, None);
                if self.config.federated {
                    self.announce_conn(room_name, &user, &key);
                }
            }
        }
    }

    /// A user's presence budget as `Presence` takes it: now, and one connection's signal rate.
    fn presence_budget(&self, now: Now) -> (std::time::Instant, f64, f64) {
        let config = &self.config;
        (now.instant, config.signal_rate, config.signal_burst)
    }

    fn arm_presence_flush(&mut self, at: std::time::Instant, room_name: &RoomName, user: String) {
        let timer = Timer::PresenceFlush(room_name.clone(), user);
        self.timers.push(Reverse((at, timer)));
    }

    /// `Timer::PresenceFlush`: announces `user`'s held meta changes in the room, if any.
    pub(super) fn presence_flush_timer(&mut self, now: Now, room_name: &RoomName, user: String) {
        let budget = self.presence_budget(now);
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        match room.presence.flush_held(&user, budget) {
            Flush::Nothing => {}
            Flush::Retry(at) => {
                self.arm_presence_flush(at, room_name, user);
            }
            Flush::Announce(change, held) => {
                let conns: Vec<_> = held
                    .iter()
                    .filter_map(|key| room.presence.conn_state(&user, key))
                    .collect();
                self.broadcast_presence(room_name, change, None);
                // One signal: the other nodes announce the changes as one too.
                if !conns.is_empty() {
                    self.signal(room_name, &RoomSignal::Metas { conns });
                }
            }
        }
    }

    pub(super) fn broadcast_presence(
        &mut self,
        room_name: &RoomName,
        change: Change,
        except: Option<ConnId>,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        // A diff that is not the next version would look like a missed one to the members
        // (the SDK joins again for a snapshot): after taking another node's higher version,
        // they get the whole presence instead.
        let frame = if room.presence.told_members() {
            let mut diff = PresenceDiff {
                room: room_name.clone(),
                version: room.presence.version(),
                joins: vec![],
                updates: vec![],
                leaves: vec![],
            };
            match change {
                Change::Join(user) => diff.joins.push(user),
                Change::Update(user) => diff.updates.push(user),
                Change::Leave(user) => diff.leaves.push(user),
            }
            ServerFrame::Presence(diff)
        } else {
            ServerFrame::State(RoomState {
                room: room_name.clone(),
                presence: Some(room.presence.snapshot()),
                typing: None,
                locks: None,
                cursors: None,
                cursor_version: None,
                streams: None,
            })
        };
        let payload = encode(&frame);
        for &conn in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                conn,
                payload: payload.clone(),
            });
        }
    }
}
