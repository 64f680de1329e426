//! Live cursors: each member connection's cursor in a room (any small JSON the app chooses: a
//! position, a selection, a viewport), fanned out to the other members, never stored.
//!
//! - Latest value wins per connection; JSON `null` means "no cursor".
//! - Coalesced per connection: at most one broadcast per [`HubConfig::cursor_interval`]
//!   (`Timer::CursorFlush` sends the latest value at the end of the interval), so a client that
//!   sends faster than the SDK's throttle floods nobody; the value a late joiner gets
//!   (`joined.cursors`) is always the latest.
//! - A cursor goes (a `cursor` frame with `value: null`) when its connection leaves the room or
//!   drops (no grace period: a cursor of someone gone is wrong at once), or, for another node's
//!   connection, when that node says `gone`/`bye` or its lease runs out (`federation.rs`).
//! - Polling sessions read them from `state` frames: [`RoomCursors::version`] names the set by
//!   its contents, so every node computes the same version for the same cursors without
//!   exchanging versions.
//!
//! This module must never store a cursor or hold one past its connection's membership.
//!
//! [`HubConfig::cursor_interval`]: super::HubConfig::cursor_interval

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Instant;

use chorus_sdk::wire::{
    CursorNotice, CursorSnapshot, ErrorCode, Json, LiveCursor, RoomName, ServerFrame, SetCursor,
};
use fnv::FnvHasher;
use serde::{Deserialize, Serialize};

use super::federation::RoomSignal;
use super::presence::ConnKey;
use super::{ConnId, Hub, Now, Timer, Transmit, encode};

/// One connection's cursor, as nodes exchange it (`cursor` and `cursors` signals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CursorState {
    /// The connection's id on its node.
    pub conn: u64,
    /// Its wire id (what clients see).
    pub wire: String,
    /// Its user.
    pub user: String,
    /// The cursor (`null`: none).
    pub value: Json,
}

/// Every live cursor of one room on this node (its own connections' and other nodes').
#[derive(Debug, Default)]
pub(crate) struct RoomCursors {
    /// By connection key: the same order on every node.
    entries: BTreeMap<ConnKey, Entry>,
}

#[derive(Debug)]
struct Entry {
    wire: String,
    user: String,
    /// The latest value (`null`: none; kept so the coalescing interval still holds).
    value: Json,
    /// Local connections only: when the last broadcast went, and whether a newer value waits.
    sent_at: Option<Instant>,
    pending: bool,
}

fn is_null(value: &Json) -> bool {
    value.as_text() == "null"
}

impl Entry {
    /// The entry as nodes exchange it, for connection `conn` on its node.
    fn state(&self, conn: u64) -> CursorState {
        CursorState {
            conn,
            wire: self.wire.clone(),
            user: self.user.clone(),
            value: self.value.clone(),
        }
    }
}

impl CursorState {
    /// The cursor as clients see it.
    fn live(&self) -> LiveCursor {
        LiveCursor {
            conn: self.wire.clone(),
            user: self.user.clone(),
            value: self.value.clone(),
        }
    }
}

impl RoomCursors {
    /// The cursors that show (not `null`), `except`'s own left out, ordered by connection.
    fn shown<'a>(
        &'a self,
        except: Option<&'a ConnKey>,
    ) -> impl Iterator<Item = (&'a ConnKey, &'a Entry)> {
        self.entries
            .iter()
            .filter(move |(key, entry)| Some(*key) != except && !is_null(&entry.value))
    }

    /// The cursors shown to `except`'s owner (its own left out), ordered by connection.
    pub(crate) fn list(&self, except: Option<&ConnKey>) -> Vec<LiveCursor> {
        self.shown(except)
            .map(|(key, entry)| entry.state(key.conn).live())
            .collect()
    }

    /// Names the set of cursors `except`'s owner is shown by its contents (FNV-1a over each
    /// cursor's connection, user and value, each followed by a 0xff byte, in connection order;
    /// below 2^53 for JavaScript; 0 for none): equal on every node holding the same cursors,
    /// and a poll that carries it has exactly these cursors. The owner's own cursor is left
    /// out, so moving it does not answer its own long poll.
    pub(crate) fn version(&self, except: Option<&ConnKey>) -> u64 {
        let mut hash = FnvHasher::default();
        let mut any = false;
        for (_, entry) in self.shown(except) {
            any = true;
            for part in [&entry.wire, &entry.user, entry.value.as_text()] {
                // Explicit bytes, not `str::hash`, whose encoding std does not promise to keep.
                hash.write(part.as_bytes());
                hash.write_u8(0xff);
            }
        }
        match hash.finish() & chorus_sdk::wire::MAX_SAFE_INTEGER {
            _ if !any => 0,
            0 => 1,
            version => version,
        }
    }

    /// The snapshot a polling `state` frame carries for `except`'s owner.
    pub(crate) fn snapshot(&self, except: Option<&ConnKey>) -> CursorSnapshot {
        CursorSnapshot {
            version: self.version(except),
            cursors: LiveCursor::list_json(&self.list(except)),
        }
    }

    /// What `node` tells the others about its own connections' cursors.
    fn state_of(&self, node: &str) -> Vec<CursorState> {
        self.shown(None)
            .filter(|(key, _)| &*key.node == node)
            .map(|(key, entry)| entry.state(key.conn))
            .collect()
    }

    /// Whether this node holds any cursor entry of its own in the room.
    fn has_own(&self, node: &str) -> bool {
        self.entries.keys().any(|key| &*key.node == node)
    }
}

impl Hub {
    /// A `cursor` frame: the connection's new cursor in a room it joined.
    pub(super) fn set_cursor(&mut self, now: Now, conn: ConnId, frame: SetCursor) {
        let SetCursor {
            room: room_name,
            value,
        } = frame;
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if value.len() > self.config.max_cursor_bytes {
            let message = format!(
                "a cursor is {} bytes; the limit is {}",
                value.len(),
                self.config.max_cursor_bytes
            );
            return self.send_error(conn, ErrorCode::CursorTooLarge, &message, Some(room_name));
        }
        let (user, wire) = (state.identity.user.clone(), state.wire_id.clone());
        let interval = self.config.cursor_interval;
        let key = self.local_key(conn);
        let Some(room) = self
            .rooms
            .get_mut(&room_name)
            .filter(|room| room.members.contains_key(&conn))
        else {
            let message = format!("join room {room_name} before setting a cursor in it");
            return self.send_error(conn, ErrorCode::NotJoined, &message, Some(room_name));
        };
        let entry = room.cursors.entries.entry(key).or_insert_with(|| Entry {
            wire,
            user,
            value: Json::null(),
            sent_at: None,
            pending: false,
        });
        if entry.value == value && !entry.pending {
            return; // Changes nothing anyone sees.
        }
        entry.value = value;
        if entry.pending {
            return; // The flush already armed sends the latest value.
        }
        match entry.sent_at.map(|at| at + interval) {
            Some(due) if due > now.instant => {
                entry.pending = true;
                let timer = Timer::CursorFlush(room_name, conn);
                self.timers.push(Reverse((due, timer)));
            }
            _ => self.flush_cursor(now, &room_name, conn),
        }
    }

    /// `Timer::CursorFlush`: the coalescing interval of `conn`'s cursor ended.
    pub(super) fn cursor_flush_timer(&mut self, now: Now, room_name: &RoomName, conn: ConnId) {
        let key = self.local_key(conn);
        let pending = self
            .rooms
            .get(room_name)
            .and_then(|room| room.cursors.entries.get(&key))
            .is_some_and(|entry| entry.pending);
        if pending {
            self.flush_cursor(now, room_name, conn);
        }
    }

    /// Sends `conn`'s latest cursor to the other members here and to the other nodes.
    fn flush_cursor(&mut self, now: Now, room_name: &RoomName, conn: ConnId) {
        let key = self.local_key(conn);
        let Some(entry) = self
            .rooms
            .get_mut(room_name)
            .and_then(|room| room.cursors.entries.get_mut(&key))
        else {
            return;
        };
        entry.pending = false;
        entry.sent_at = Some(now.instant);
        let state = entry.state(conn);
        self.broadcast_cursor(room_name, &state, Some(conn));
        self.signal(room_name, &RoomSignal::Cursor(state));
    }

    /// Tells the members here (but `except`) that a cursor changed or went.
    fn broadcast_cursor(
        &mut self,
        room_name: &RoomName,
        state: &CursorState,
        except: Option<ConnId>,
    ) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let payload = encode(&ServerFrame::Cursor(CursorNotice {
            room: room_name.clone(),
            cursor: state.live().to_json(),
        }));
        for &member in room.members.keys().filter(|&&c| Some(c) != except) {
            self.transmits.push_back(Transmit {
                reply: false,
                conn: member,
                payload: payload.clone(),
            });
        }
    }

    /// A connection (this node's or another's) is no longer in the room: its cursor goes, and
    /// the members still here hear so (the other nodes too, for one of this node's).
    pub(super) fn drop_cursor(&mut self, room_name: &RoomName, key: &ConnKey) {
        let Some(entry) = self
            .rooms
            .get_mut(room_name)
            .and_then(|room| room.cursors.entries.remove(key))
        else {
            return;
        };
        if is_null(&entry.value) && !entry.pending {
            return; // Nobody was shown it.
        }
        let gone = CursorState {
            conn: key.conn,
            wire: entry.wire,
            user: entry.user,
            value: Json::null(),
        };
        self.broadcast_cursor(room_name, &gone, None);
        if *key.node == *self.node_id {
            self.signal(room_name, &RoomSignal::Cursor(gone));
        }
    }

    /// Another node's connection set (or removed, `null`) its cursor.
    pub(super) fn apply_remote_cursor(
        &mut self,
        room_name: &RoomName,
        node: &Arc<str>,
        state: CursorState,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let key = ConnKey {
            node: Arc::clone(node),
            conn: state.conn,
        };
        let shown = room.cursors.entries.get(&key).map(|e| &e.value);
        let unchanged = match shown {
            Some(value) => *value == state.value,
            None => is_null(&state.value),
        };
        if unchanged {
            return;
        }
        if is_null(&state.value) {
            room.cursors.entries.remove(&key);
        } else {
            room.cursors.entries.insert(
                key,
                Entry {
                    wire: state.wire.clone(),
                    user: state.user.clone(),
                    value: state.value.clone(),
                    sent_at: None,
                    pending: false,
                },
            );
        }
        self.broadcast_cursor(room_name, &state, None);
    }

    /// Another node's full list of its cursors in the room (its refresh): what it no longer
    /// lists goes, the rest is applied.
    pub(super) fn apply_remote_cursors(
        &mut self,
        room_name: &RoomName,
        node: &Arc<str>,
        cursors: Vec<CursorState>,
    ) {
        self.drop_node_cursors(room_name, node, |key| {
            cursors.iter().all(|c| c.conn != key.conn)
        });
        for state in cursors {
            self.apply_remote_cursor(room_name, node, state);
        }
    }

    /// Drops the cursors of `node`'s connections in the room that `gone` picks.
    pub(super) fn drop_node_cursors(
        &mut self,
        room_name: &RoomName,
        node: &Arc<str>,
        gone: impl Fn(&ConnKey) -> bool,
    ) {
        let keys: Vec<ConnKey> = self.rooms.get(room_name).map_or_else(Vec::new, |room| {
            room.cursors
                .entries
                .keys()
                .filter(|key| key.node == *node && gone(key))
                .cloned()
                .collect()
        });
        for key in keys {
            self.drop_cursor(room_name, &key);
        }
    }

    /// The refresh's word on cursors: this node's full list in the room, when it has had any
    /// there (so a lost `cursor` signal heals, removals included).
    pub(super) fn announce_cursors(&mut self, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        if room.cursors.has_own(&self.node_id) {
            let cursors = room.cursors.state_of(&self.node_id);
            self.signal(room_name, &RoomSignal::Cursors { cursors });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes of different builds (a rolling upgrade) must name the same cursors alike: the
    /// version is FNV-1a over fixed bytes, pinned here to a value computed by hand.
    #[test]
    fn the_version_of_a_set_of_cursors_is_fixed_across_builds() {
        let mut cursors = RoomCursors::default();
        assert_eq!(cursors.version(None), 0, "no cursors");
        let key = ConnKey {
            node: Arc::from("n1"),
            conn: 7,
        };
        let entry = Entry {
            wire: "n1-7".into(),
            user: "ana".into(),
            value: Json::from_text(r#"{"x":1}"#).unwrap(),
            sent_at: None,
            pending: false,
        };
        cursors.entries.insert(key.clone(), entry);
        assert_eq!(cursors.version(None), 0x0013_caeb_709d_07ac);
        assert_eq!(cursors.version(Some(&key)), 0, "its owner is shown none");
    }
}
