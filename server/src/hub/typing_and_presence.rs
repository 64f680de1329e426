//! Typing and presence updates: the `typing` and `set_presence` frames, and the broadcasts of
//! both to the room's members. Neither is stored; polling clients catch up through the versions
//! in [`Hub::room_view`]. (A room's presence itself, users aggregating connections, is
//! `presence.rs`.)

use std::cmp::Reverse;

use chorus_sdk::wire::{ErrorCode, Json, PresenceDiff, RoomName, ServerFrame, TypingNotice};

use super::presence::Change;
use super::{ConnId, Hub, Now, Timer, Transmit, encode};

impl Hub {
    pub(super) fn typing(&mut self, now: Now, conn: ConnId, room_name: RoomName, on: bool) {
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let user = state.identity.user.clone();
        let Some(room) = self
            .rooms
            .get_mut(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before signalling typing in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        if on {
            let until = now.instant + self.config.typing_ttl;
            if room.typing.insert(user.clone(), (until, conn)).is_none() {
                room.typing_version += 1;
            }
            self.timers.push(Reverse((
                until,
                Timer::TypingExpiry(room_name.clone(), user.clone()),
            )));
            // Every refresh is forwarded: receivers expire typing locally unless refreshed.
            self.broadcast_typing(&room_name, user, true, Some(conn));
        } else if room.typing.remove(&user).is_some() {
            room.typing_version += 1;
            self.broadcast_typing(&room_name, user, false, Some(conn));
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

    pub(super) fn set_presence(&mut self, conn: ConnId, room_name: RoomName, meta: Json) {
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
        let Some(room) = self
            .rooms
            .get_mut(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before updating presence in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        if let Some(change) = room.presence.set_meta(&user, conn, meta) {
            self.broadcast_presence(&room_name, change, None);
        }
    }

    pub(super) fn broadcast_presence(
        &mut self,
        room_name: &RoomName,
        change: Change,
        except: Option<ConnId>,
    ) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
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
        let payload = encode(&ServerFrame::Presence(diff));
        for &conn in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                conn,
                payload: payload.clone(),
            });
        }
    }
}
