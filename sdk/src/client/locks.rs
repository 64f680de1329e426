//! Locks (leases) in joined rooms: the app's requests (`lock`, `unlock`), their answers
//! ([`ClientEvent::LockDone`], [`ClientEvent::LockFailed`]), each room's locks as the server
//! reports them ([`ClientEvent::Locks`], from `joined`, `lock` frames and polling `state`), and
//! the auto-renewal of the client's own grants (at half their TTL, and at once on a new link,
//! where the renewal moves the grant to the new connection).
//!
//! The server decides everything (who holds a lock, its fencing token, expiry) and sends the
//! room's whole set of locks with every change, which this file hands on as opaque JSON: it
//! only sends requests and remembers its own grants to renew. It must never perform I/O or
//! read a clock, and stays small: it runs in the browser (no list decoding, no sorting).

use std::time::Duration;

use super::{Client, ClientEvent, Phase, PublishError};
use crate::time::{Instant, millis};
use crate::wire::{
    ClientFrame, ErrorCode, EventId, Json, LockNotice, LockRequest, Nack, RoomName, UnlockRequest,
};

/// A lock request waiting for its answer.
#[derive(Debug)]
pub(super) struct PendingLock {
    id: EventId,
    room: RoomName,
    name: EventId,
    /// The link it was sent on: a request whose link ended gets no answer.
    link: u64,
    /// Renew the grant automatically (an acquire or renewal with auto-renew).
    auto: Option<Duration>,
}

/// An own grant renewed automatically.
#[derive(Debug)]
pub(super) struct HeldLock {
    room: RoomName,
    name: EventId,
    token: u64,
    ttl: Duration,
    renew_at: Instant,
    /// The link the grant was last renewed on (a new link renews at once).
    link: u64,
}

impl Client {
    /// Asks for the lock `name` in the joined `room` for `ttl` (with `token`: renews that
    /// grant instead). The answer is [`ClientEvent::LockDone`] or [`ClientEvent::LockFailed`]
    /// with the returned id; with `auto_renew` the grant is renewed at half its TTL until it is
    /// released or lost. Only while connected.
    pub fn lock(
        &mut self,
        now: Instant,
        room: RoomName,
        name: EventId,
        ttl: Duration,
        token: Option<u64>,
        auto_renew: bool,
    ) -> Result<EventId, PublishError> {
        let id = self.lock_id(&room)?;
        self.request_lock(
            room,
            id.clone(),
            name,
            ttl,
            token,
            auto_renew.then_some(ttl),
        );
        self.pump_polling(now);
        Ok(id)
    }

    /// Releases the grant of `name` with `token` (and stops renewing it).
    pub fn unlock(
        &mut self,
        now: Instant,
        room: RoomName,
        name: EventId,
        token: u64,
    ) -> Result<EventId, PublishError> {
        let id = self.lock_id(&room)?;
        self.held_locks
            .retain(|held| held.token != token || held.name != name);
        self.track_lock(id.clone(), room.clone(), name.clone(), None);
        self.send_frame(ClientFrame::Unlock(UnlockRequest {
            room,
            id: id.clone(),
            name,
            token,
        }));
        self.pump_polling(now);
        Ok(id)
    }

    /// The locks held in `room`, as last reported by the server: a list of
    /// [`LockInfo`](crate::wire::LockInfo) (read it with `LockInfo::list`).
    pub fn locks(&self, room: &RoomName) -> Json {
        self.rooms
            .get(room)
            .map_or_else(no_locks, |r| r.locks.clone())
    }

    fn lock_id(&mut self, room: &RoomName) -> Result<EventId, PublishError> {
        if !self.rooms.contains_key(room) {
            return Err(PublishError::NotJoined(room.clone()));
        }
        if self.current_link().is_none() {
            return Err(PublishError::Offline);
        }
        Ok(self.next_event_id())
    }

    fn request_lock(
        &mut self,
        room: RoomName,
        id: EventId,
        name: EventId,
        ttl: Duration,
        token: Option<u64>,
        auto: Option<Duration>,
    ) {
        self.track_lock(id.clone(), room.clone(), name.clone(), auto);
        self.send_frame(ClientFrame::Lock(LockRequest {
            room,
            id,
            name,
            ttl_ms: millis(ttl),
            token,
        }));
    }

    fn track_lock(&mut self, id: EventId, room: RoomName, name: EventId, auto: Option<Duration>) {
        let link = self.current_link().unwrap_or(0);
        self.pending_locks.push(PendingLock {
            id,
            room,
            name,
            link,
            auto,
        });
    }

    /// The link frames go out on now, if any.
    fn current_link(&self) -> Option<u64> {
        match &self.phase {
            Phase::Socket(socket) if socket.welcomed => Some(socket.link),
            Phase::Polling(poll) => Some(poll.link),
            _ => None,
        }
    }

    /// Takes a room's locks (from `joined`, a `lock` frame or polling `state`; `None`: none
    /// held) and tells the app when they changed. On a new link, the room's own grants are
    /// renewed at once (moving them to it), and requests sent on an ended link are answered
    /// as failed.
    pub(super) fn set_locks(&mut self, now: Instant, room_name: &RoomName, locks: Option<Json>) {
        let link = self.current_link().unwrap_or(0);
        let mut at = 0;
        while at < self.pending_locks.len() {
            let pending = &self.pending_locks[at];
            if &pending.room == room_name && pending.link != link {
                let pending = self.pending_locks.remove(at);
                let message = "the connection ended before the answer came".to_owned();
                self.lock_failed(pending.room, pending.id, ErrorCode::LockLost, message);
            } else {
                at += 1;
            }
        }
        for held in self.held_locks.iter_mut() {
            if &held.room == room_name && held.link != link {
                held.renew_at = now;
                held.link = link;
            }
        }
        let locks = locks.unwrap_or_else(no_locks);
        if let Some(room) = self.rooms.get_mut(room_name)
            && room.locks != locks
        {
            room.locks = locks.clone();
            self.events.push(ClientEvent::Locks {
                room: room_name.clone(),
                locks,
            });
        }
    }

    /// A `lock` frame: a change in a room, maybe the answer to a request of this client.
    pub(super) fn lock_changed(&mut self, now: Instant, notice: LockNotice) {
        let (room, lock, held) = (notice.room, notice.lock, notice.change.held());
        if let Some(id) = notice.id
            && let Some(at) = self.pending_locks.iter().position(|p| p.id == id)
        {
            let pending = self.pending_locks.remove(at);
            if let Some(ttl) = pending.auto
                && held
            {
                self.held_locks
                    .retain(|held| held.name != lock.name || held.room != room);
                self.held_locks.push(HeldLock {
                    room: room.clone(),
                    name: lock.name.clone(),
                    token: lock.token,
                    ttl,
                    renew_at: now + ttl / 2,
                    link: pending.link,
                });
            }
            self.events.push(ClientEvent::LockDone {
                room: room.clone(),
                id,
                change: notice.change,
                lock: lock.clone(),
            });
        }
        if !held {
            self.held_locks
                .retain(|held| held.token != lock.token || held.name != lock.name);
        }
        self.set_locks(now, &room, Some(notice.locks));
    }

    /// A `nack` for one of this client's lock requests; `false` when it is not one.
    pub(super) fn lock_refused(&mut self, nack: &Nack) -> bool {
        let Some(at) = self.pending_locks.iter().position(|p| p.id == nack.id) else {
            return false;
        };
        let pending = self.pending_locks.remove(at);
        // A refused renewal means the grant is gone: stop renewing it.
        if pending.auto.is_some() && nack.code == ErrorCode::LockLost {
            self.held_locks
                .retain(|held| held.room != pending.room || held.name != pending.name);
        }
        self.lock_failed(pending.room, pending.id, nack.code, nack.message.clone());
        true
    }

    fn lock_failed(&mut self, room: RoomName, id: EventId, code: ErrorCode, message: String) {
        self.events.push(ClientEvent::LockFailed {
            room,
            id,
            code,
            message,
        });
    }

    /// Renews the own grants that are due (see [`HeldLock`]).
    pub(super) fn renew_locks(&mut self, now: Instant) {
        let Some(link) = self.current_link() else {
            return;
        };
        let mut due = Vec::new();
        for held in self.held_locks.iter_mut() {
            // A grant from an earlier link waits for its room's `joined` on this one.
            if held.renew_at <= now && held.link == link {
                held.renew_at = now + held.ttl / 2;
                due.push((held.room.clone(), held.name.clone(), held.ttl, held.token));
            }
        }
        if due.is_empty() {
            return;
        }
        for (room, name, ttl, token) in due {
            let id = self.next_event_id();
            self.request_lock(room, id, name, ttl, Some(token), Some(ttl));
        }
        self.pump_polling(now);
    }

    /// When the next own grant is due for renewal.
    pub(super) fn next_lock_renewal(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for held in &self.held_locks {
            next = Some(next.map_or(held.renew_at, |at| at.min(held.renew_at)));
        }
        next
    }
}

/// No locks: an empty list.
fn no_locks() -> Json {
    Json::empty_list()
}
