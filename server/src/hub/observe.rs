//! Presence of a room for the backend REST API on any node (`GET /v1/rooms/{room}/presence`).
//!
//! A node knows the presence of the rooms open on it. On one node (SQLite, memory) that is
//! every room anyone is in, and the answer is immediate. With several nodes a room may be open
//! only elsewhere, so a federated node that is asked about a room without members here opens it
//! as an *observer*: it follows the room and loads it as for a join, and its opening `state`
//! (`sync`, with no connections of its own) makes every node with members there answer with
//! theirs (see `federation.rs`). The answer is ready [`OBSERVE_SETTLE`] after that request
//! went out, time enough for the other nodes' answers to arrive over the bus. The room then
//! stays open [`OBSERVE_KEEP`] after the last such lookup (kept current by the nodes' signals,
//! so lookups meanwhile answer at once), and is forgotten as any idle room is (with a `bye`).

use std::cmp::Reverse;
use std::time::Duration;

use chorus_sdk::wire::{PresenceSnapshot, RoomName};

use super::presence::Presence;
use super::{Action, Hub, Now, Room, RoomLoad, Timer};

/// How long after its `sync` request an observing node answers: the other nodes' `state`
/// answers take a bus round trip (well under a millisecond on a LAN; this leaves room for a
/// loaded Redis).
pub const OBSERVE_SETTLE: Duration = Duration::from_millis(200);

/// How long a room opened to observe its presence stays open after the last lookup.
pub const OBSERVE_KEEP: Duration = Duration::from_secs(30);

/// What a presence lookup found.
#[derive(Debug, PartialEq)]
pub enum PresenceLookup {
    /// The room's presence (`None`: nobody is in it, as far as this node can know).
    Ready(Option<PresenceSnapshot>),
    /// The room is being opened to observe it: ask again after this long.
    Pending(Duration),
    /// The node observes as many rooms as it may (`HubConfig::max_observed_rooms`); ask again
    /// after [`OBSERVE_KEEP`], when the oldest may be forgotten.
    Busy,
}

impl Hub {
    /// A room's presence for the backend API: at once where this node knows it, or after the
    /// other nodes answered (see the module docs).
    pub fn lookup_presence(&mut self, now: Now, room_name: &RoomName) -> PresenceLookup {
        if !self.config.federated || self.draining.is_some() {
            return PresenceLookup::Ready(somebody(self.presence(room_name)));
        }
        let observing = self.observed_rooms >= self.config.max_observed_rooms;
        let known = self.rooms.get(room_name);
        let open_here =
            known.is_some_and(|room| !room.members.is_empty() || room.observed_until.is_some());
        if observing && !open_here {
            return PresenceLookup::Busy;
        }
        let base = self.config.version_base;
        let room = self.rooms.entry(room_name.clone()).or_insert_with(|| Room {
            presence: Presence::starting_at(base),
            typing_version: base,
            ..Room::default()
        });
        let ready_at = match (&room.state, room.synced_at) {
            // Open with members here: it asked the others when it opened.
            (Some(RoomLoad::Open { .. }), _) if !room.members.is_empty() => {
                return PresenceLookup::Ready(somebody(Some(room.presence.snapshot())));
            }
            (Some(RoomLoad::Open { .. }), Some(synced)) => synced + OBSERVE_SETTLE,
            (Some(_), _) => now.instant + OBSERVE_SETTLE,
            (None, _) => {
                room.state = Some(RoomLoad::Loading {
                    joins: Vec::new(),
                    early: Vec::new(),
                    publishes: Vec::new(),
                });
                self.actions.push_back(Action::Follow(room_name.clone()));
                self.actions.push_back(Action::LoadRoom(room_name.clone()));
                now.instant + OBSERVE_SETTLE
            }
        };
        // One timer per observed room at any time: it re-arms itself while lookups go on.
        let until = now.instant + OBSERVE_KEEP;
        if room.observed_until.replace(until).is_none() {
            self.observed_rooms += 1;
            self.timers
                .push(Reverse((until, Timer::ObserveEnd(room_name.clone()))));
        }
        if ready_at <= now.instant {
            PresenceLookup::Ready(somebody(Some(room.presence.snapshot())))
        } else {
            PresenceLookup::Pending(ready_at - now.instant)
        }
    }

    /// An observed room's keep time may have ended: forget it if nothing else holds it, or
    /// look again when the time a later lookup set ends.
    pub(super) fn end_observation(&mut self, now: Now, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        match room.observed_until {
            Some(until) if until <= now.instant => {
                room.observed_until = None;
                self.observed_rooms -= 1;
                self.forget_room_if_idle(room_name);
            }
            Some(until) => self
                .timers
                .push(Reverse((until, Timer::ObserveEnd(room_name.clone())))),
            None => {}
        }
    }
}

/// A presence with somebody in it; `None` for nobody, whatever version the room has here (a
/// room observed on one node has that node's version, which no other node shares).
fn somebody(presence: Option<PresenceSnapshot>) -> Option<PresenceSnapshot> {
    presence.filter(|presence| !presence.users.is_empty())
}
