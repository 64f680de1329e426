//! Locks (leases) in rooms, as the hub sees them: admitting `lock`/`unlock` requests and
//! handing them to the store ([`Action::Lock`]), answering them, telling every member (here
//! and, through [`RoomSignal::Lock`], on the other nodes) what changed, giving the current
//! locks to joiners (`joined.locks`) and polls ([`Hub::room_view`]), expiring grants at their
//! `until` on this node's clock, and ending a connection's grants when it goes: released at
//! once when it leaves the room, cut to the presence grace period when it drops (its client
//! may renew them from a new connection meanwhile; see `store::locks`).
//!
//! The store is the authority (who holds a lock, the fencing token, whether a grant is live):
//! this module only mirrors what the store answered, here or on another node, so the hub
//! never grants anything itself. A room's view is a cache that may lag for a moment; every
//! node expires grants by their `until` on its own clock, so no node needs the holder's node
//! alive to see a lock lapse.
//!
//! With several nodes a node hears one grant's changes on two paths (the store's answers to
//! its own requests, the other nodes' signals), so it may hear them in another order than the
//! store made them: a holder that dropped on node a and renewed at once from node c may reach
//! node c's view as the older change, the cut to the grace period, last. So before a node
//! expires a grant by its clock it asks the store ([`Action::CheckLocks`]): a grant the store
//! still has live replaces the view's (`renewed`), and only the others expire. An expiry is
//! final: nothing heard later revives that grant.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use chorus_sdk::wire::{
    self, ErrorCode, EventId, LockChange, LockInfo, LockNotice, LockSnapshot, Nack, RoomName,
    ServerFrame, UnlockRequest,
};

use super::federation::RoomSignal;
use super::{Action, ConnId, Hub, Now, RoomLoad, Timer, Transmit, encode};
use crate::store::StoreError;
use crate::store::locks::{LockOp, LockOutcome, LockRequest};

/// The longest TTL a `lock` may ask for.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(3600);

/// How long a room's view keeps a grant after it ended (released or expired): a late word
/// about it, heard on the other path, must not revive it. After that it is forgotten, so
/// lock names used once do not pile up in a loaded room.
const ENDED_LOCK_KEPT: Duration = Duration::from_secs(60);

/// A lock operation for the store, and who waits for its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct LockJob {
    /// The connection and request id to answer; `None` for the hub's own operations (a
    /// connection's grants released or cut to the grace period when it goes).
    pub origin: Option<(ConnId, EventId)>,
    /// The operation.
    pub request: LockRequest,
}

/// What the store answered to a [`LockJob`]; fed to [`Hub::handle_lock_done`].
#[derive(Debug)]
pub struct LockDone {
    /// The job.
    pub job: LockJob,
    /// The store's answer.
    pub result: Result<LockOutcome, StoreError>,
}

/// A room's lock as this node last heard of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HubLock {
    pub(super) grant: LockInfo,
    pub(super) held: bool,
    /// When this lock's expiry timer fires; `None` when none is pending. One timer per lock:
    /// a renewal that moves `until` later leaves it, and it arms the next when it fires early.
    pub(super) timer: Option<Instant>,
}

impl Hub {
    /// A `lock` frame: acquire, or (with a token) renew.
    pub(super) fn lock_request(&mut self, now: Now, conn: ConnId, request: wire::LockRequest) {
        let ttl = request.ttl_ms;
        if ttl == 0 || ttl > MAX_LOCK_TTL.as_millis() as u64 {
            let message = format!(
                "ttl_ms must be between 1 and {} (an hour)",
                MAX_LOCK_TTL.as_millis()
            );
            let (room, id) = (request.room, request.id);
            return self.refuse_lock(conn, room, id, (ErrorCode::BadFrame, message, None));
        }
        let Some((user, wire_id)) = self.admit_lock(now, conn, &request.room, &request.id) else {
            return;
        };
        // Every lock frame carries the room's whole list, so a room holds only so many.
        let most = self.config.max_locks_per_room;
        let (held, named_held) = self.rooms.get(&request.room).map_or((0, false), |room| {
            let held = room.locks.values().filter(|lock| lock.held).count();
            let named_held = room.locks.get(&request.name).is_some_and(|lock| lock.held);
            (held + room.acquiring, named_held)
        });
        if request.token.is_none() && !named_held && held >= most {
            let message = format!(
                "room {} holds (or is granting) {held} locks, the most it may; release one first",
                request.room
            );
            let refusal = (ErrorCode::TooManyLocks, message, None);
            return self.refuse_lock(conn, request.room, request.id, refusal);
        }
        let op = match request.token {
            None => LockOp::Acquire {
                user,
                conn: wire_id,
                ttl_ms: ttl,
            },
            Some(token) => LockOp::Renew {
                user,
                conn: wire_id,
                token,
                ttl_ms: ttl,
            },
        };
        self.submit_lock(
            now,
            Some((conn, request.id)),
            request.room,
            request.name,
            op,
        );
    }

    /// An `unlock` frame.
    pub(super) fn unlock_request(&mut self, now: Now, conn: ConnId, request: UnlockRequest) {
        let Some((user, _)) = self.admit_lock(now, conn, &request.room, &request.id) else {
            return;
        };
        let op = LockOp::Release {
            user,
            token: request.token,
            conn: None,
        };
        self.submit_lock(
            now,
            Some((conn, request.id)),
            request.room,
            request.name,
            op,
        );
    }

    /// The store answered a lock operation.
    pub fn handle_lock_done(&mut self, now: Now, done: LockDone) {
        let LockDone { job, result } = done;
        let (room, name) = (job.request.room, job.request.name);
        if matches!(job.request.op, LockOp::Acquire { .. })
            && let Some(room) = self.rooms.get_mut(&room)
        {
            // Saturating: the room may have been forgotten and opened again meanwhile.
            room.acquiring = room.acquiring.saturating_sub(1);
        }
        if let Some((conn, _)) = &job.origin
            && let Some(state) = self.conns.get_mut(conn)
        {
            state.locks_in_flight = state.locks_in_flight.saturating_sub(1);
        }
        let refusal = match result {
            Ok(LockOutcome::Changed(change, grant)) => {
                return self.apply_lock(now, &room, change, grant, job.origin, true);
            }
            Ok(LockOutcome::Unchanged) => return,
            Ok(LockOutcome::Held(grant)) => {
                let message = format!(
                    "lock {name} is held by {} until {} (ms since the Unix epoch)",
                    grant.user, grant.until
                );
                // The store knows best: a grant this node had not heard of is news here too.
                self.apply_lock(now, &room, LockChange::Granted, grant, None, false);
                (ErrorCode::LockHeld, message)
            }
            Ok(LockOutcome::Lost(current)) => {
                let message = match &current {
                    Some(grant) => format!(
                        "lock {name} is now held by {} with token {}: your grant is gone",
                        grant.user, grant.token
                    ),
                    None => format!("lock {name} is not held by you (released or expired)"),
                };
                (ErrorCode::LockLost, message)
            }
            Err(err) => (
                ErrorCode::StorageUnavailable,
                format!("{err}; the lock did not change, try again"),
            ),
        };
        if let Some((conn, id)) = job.origin {
            self.refuse_lock(conn, room, id, (refusal.0, refusal.1, None));
        }
    }

    /// The room's locks as the store had them when it opened here (read after its follow,
    /// before its head: the driver's room load).
    pub fn handle_locks_loaded(
        &mut self,
        now: Now,
        room_name: RoomName,
        result: Result<Vec<LockInfo>, StoreError>,
    ) {
        match result {
            Ok(locks) => {
                for grant in locks {
                    self.apply_lock(now, &room_name, LockChange::Granted, grant, None, false);
                }
            }
            Err(err) => tracing::warn!(room = %room_name, "locks could not be read: {err}"),
        }
    }

    /// A connection left `room_name` (`linger` false: its grants are released) or dropped
    /// (`linger`: each lasts at most the presence grace period more).
    pub(super) fn end_locks_of(
        &mut self,
        now: Now,
        conn: ConnId,
        user: &str,
        room_name: &RoomName,
        linger: bool,
    ) {
        let wire_id = self.wire_id(conn);
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let grace_ms = self.config.presence_grace.as_millis() as u64;
        let theirs: Vec<(EventId, u64)> = room
            .locks
            .values()
            .filter(|lock| lock.held && lock.grant.conn == wire_id)
            .map(|lock| (lock.grant.name.clone(), lock.grant.token))
            .collect();
        for (name, token) in theirs {
            let op = if linger {
                LockOp::Orphan {
                    conn: wire_id.clone(),
                    token,
                    grace_ms,
                }
            } else {
                LockOp::Release {
                    user: user.to_owned(),
                    token,
                    conn: Some(wire_id.clone()),
                }
            };
            self.submit_lock(now, None, room_name.clone(), name, op);
        }
    }

    /// The lock's expiry timer, armed for `at`, fired: its grant's `until` may have passed,
    /// and then the members are told it expired.
    pub(super) fn expire_lock(
        &mut self,
        now: Now,
        room_name: &RoomName,
        name: &EventId,
        at: Instant,
    ) {
        let Some(lock) = (self.rooms.get_mut(room_name)).and_then(|room| room.locks.get_mut(name))
        else {
            return;
        };
        if lock.timer != Some(at) {
            return; // A timer replaced by a sooner one (which fired, or is pending).
        }
        lock.timer = None;
        if !lock.held {
            return;
        }
        if lock.grant.until > now.unix_ms {
            // Renewed meanwhile, or this clock ran behind the instant.
            let grant = lock.grant.clone();
            return self.arm_lock_timer(now, room_name, &grant);
        }
        if !self.config.federated {
            // One node hears every change from the store's answers, in the store's order.
            let grant = lock.grant.clone();
            return self.apply_lock(now, room_name, LockChange::Expired, grant, None, false);
        }
        let room = self.rooms.get_mut(room_name).expect("found above");
        if !room.checking_locks {
            room.checking_locks = true;
            self.actions
                .push_back(Action::CheckLocks(room_name.clone()));
        }
    }

    /// The store's live locks of a room, read because a grant's `until` passed here
    /// ([`Action::CheckLocks`]): the view takes each (a grant it had with another `until` or
    /// connection is `renewed`, a new one `granted`), and every grant it holds past its `until`
    /// that the store does not have expires. When the store could not answer, those expire
    /// by this node's clock alone.
    pub fn handle_locks_checked(
        &mut self,
        now: Now,
        room_name: RoomName,
        result: Result<Vec<LockInfo>, StoreError>,
    ) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if !room.checking_locks {
            return; // Asked for by an earlier opening of the room, forgotten since.
        }
        room.checking_locks = false;
        let live = match result {
            Ok(live) => live,
            Err(err) => {
                tracing::warn!(room = %room_name, "locks not checked, expired by this clock: {err}");
                Vec::new()
            }
        };
        let changes: Vec<(LockChange, LockInfo)> = live
            .iter()
            .map(|grant| {
                let same = (room.locks.get(&grant.name))
                    .is_some_and(|lock| lock.grant.token == grant.token);
                let change = if same {
                    LockChange::Renewed
                } else {
                    LockChange::Granted
                };
                (change, grant.clone())
            })
            .collect();
        let over: Vec<LockInfo> = (room.locks.values())
            .filter(|lock| lock.held && lock.grant.until <= now.unix_ms)
            .filter(|lock| !live.iter().any(|grant| grant.name == lock.grant.name))
            .map(|lock| lock.grant.clone())
            .collect();
        for (change, grant) in changes {
            // Armed again either way: a timer of this grant may have fired while the check
            // was in flight (that fire asked nothing).
            self.arm_lock_timer(now, &room_name, &grant);
            self.apply_lock(now, &room_name, change, grant, None, false);
        }
        for grant in over {
            self.apply_lock(now, &room_name, LockChange::Expired, grant, None, false);
        }
    }

    /// Another node's lock change.
    pub(super) fn remote_lock(
        &mut self,
        now: Now,
        room: &RoomName,
        change: LockChange,
        grant: LockInfo,
    ) {
        self.apply_lock(now, room, change, grant, None, false);
    }

    /// The locks held in a room on this node's view, by name.
    pub(super) fn held_locks(&self, room_name: &RoomName) -> Vec<LockInfo> {
        self.rooms.get(room_name).map_or_else(Vec::new, |room| {
            room.locks
                .values()
                .filter(|lock| lock.held)
                .map(|lock| lock.grant.clone())
                .collect()
        })
    }

    /// The locks held in a room with their version (what a poll compares).
    pub(super) fn lock_snapshot(&self, room_name: &RoomName) -> LockSnapshot {
        let locks = self.held_locks(room_name);
        LockSnapshot {
            version: lock_version(&locks),
            locks: LockInfo::to_list(&locks),
        }
    }

    /// What `joined.locks` says: the locks held, or nothing when none is.
    pub(super) fn joined_locks(&self, room_name: &RoomName) -> Option<wire::Json> {
        let locks = self.held_locks(room_name);
        (!locks.is_empty()).then(|| LockInfo::to_list(&locks))
    }

    /// Takes a change into the room's view (unless the view already has it, or something
    /// newer), tells the members (the request's sender, if any, gets it with its id even when
    /// the view had it) and, when `announce`, the other nodes; arms the grant's expiry.
    fn apply_lock(
        &mut self,
        now: Now,
        room_name: &RoomName,
        change: LockChange,
        grant: LockInfo,
        origin: Option<(ConnId, EventId)>,
        announce: bool,
    ) {
        if announce {
            let signal = RoomSignal::Lock {
                change,
                lock: grant.clone(),
            };
            self.signal(room_name, &signal);
        }
        let news = match self.rooms.get_mut(room_name) {
            Some(room) => {
                let held = change.held();
                let known = room.locks.get(&grant.name);
                // Per grant the last word heard wins (a renewal moves `until` either way: later,
                // or sooner when its holder dropped), but nothing revives a grant that ended,
                // and an older grant never replaces a newer one.
                let stale = known.is_some_and(|lock| {
                    lock.grant.token > grant.token
                        || (lock.grant.token == grant.token
                            && (!lock.held || (held && lock.grant == grant)))
                });
                if !stale {
                    let lock = HubLock {
                        grant: grant.clone(),
                        held,
                        timer: known.and_then(|lock| lock.timer),
                    };
                    room.locks.insert(grant.name.clone(), lock);
                    let kept_from =
                        (now.unix_ms).saturating_sub(ENDED_LOCK_KEPT.as_millis() as u64);
                    room.locks
                        .retain(|_, lock| lock.held || lock.grant.until > kept_from);
                }
                !stale
            }
            None => false,
        };
        if news && change.held() {
            self.arm_lock_timer(now, room_name, &grant);
        }
        let answer = origin.filter(|(conn, _)| self.conns.contains_key(conn));
        if !news && answer.is_none() {
            return;
        }
        let mut notice = LockNotice {
            room: room_name.clone(),
            change,
            lock: grant,
            locks: LockInfo::to_list(&self.held_locks(room_name)),
            id: None,
        };
        let payload = encode(&ServerFrame::Lock(notice.clone()));
        let members: Vec<ConnId> = match (news, self.rooms.get(room_name)) {
            (true, Some(room)) => room.members.keys().copied().collect(),
            _ => Vec::new(),
        };
        let answered = answer.as_ref().map(|(conn, _)| *conn);
        for member in members.into_iter().filter(|&m| Some(m) != answered) {
            self.transmits.push_back(Transmit {
                reply: false,
                conn: member,
                payload: payload.clone(),
            });
        }
        if let Some((conn, id)) = answer {
            notice.id = Some(id);
            self.send(conn, &ServerFrame::Lock(notice));
        }
    }

    /// Makes the room's lock `grant.name` fire its expiry timer by `grant.until`: a timer
    /// pending at or before that instant does (it arms the next if `until` is still ahead),
    /// else a new one, sooner, replaces it.
    fn arm_lock_timer(&mut self, now: Now, room_name: &RoomName, grant: &LockInfo) {
        let wait = Duration::from_millis(grant.until.saturating_sub(now.unix_ms));
        let at = now.instant + wait;
        let Some(lock) =
            (self.rooms.get_mut(room_name)).and_then(|room| room.locks.get_mut(&grant.name))
        else {
            return;
        };
        if lock.timer.is_some_and(|pending| pending <= at) {
            return;
        }
        lock.timer = Some(at);
        let timer = Timer::LockExpiry(room_name.clone(), grant.name.clone());
        self.timers.push(Reverse((at, timer)));
    }

    /// Checks a lock request of `conn`: known, not draining, a member of the open room, with
    /// a publish grant, within the publish rate. Answers a refusal itself; on success, the
    /// connection's user and wire id.
    fn admit_lock(
        &mut self,
        now: Now,
        conn: ConnId,
        room: &RoomName,
        id: &EventId,
    ) -> Option<(String, String)> {
        let (rate, burst) = (self.config.publish_rate, self.config.publish_burst);
        let draining = self.draining;
        let member = self.rooms.get(room).is_some_and(|r| {
            r.members.contains_key(&conn) && matches!(r.state, Some(RoomLoad::Open { .. }))
        });
        let state = self.conns.get_mut(&conn)?;
        // A draining or rate-limited refusal says when to ask again, as a publish's does.
        let refusal = if let Some(retry) = draining {
            let message = super::draining_message(retry);
            Some((ErrorCode::Draining, message, Some(retry)))
        } else if !member {
            let message = format!("join room {room} before locking in it");
            Some((ErrorCode::NotJoined, message, None))
        } else if !state.identity.can_publish(room) {
            let message =
                format!("your token does not grant publishing to room {room}, which locks need");
            Some((ErrorCode::Forbidden, message, None))
        } else if let Err(wait) = state.publish_budget.take(now.instant, rate, burst) {
            let wait = wait.max(Duration::from_millis(1));
            let message = format!(
                "at most {rate} publishes and lock requests per second (bursts of {burst}); retry in {} ms",
                wait.as_millis()
            );
            Some((ErrorCode::RateLimited, message, Some(wait)))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.refuse_lock(conn, room.clone(), id.clone(), refusal);
            return None;
        }
        state_user(self, conn)
    }

    fn submit_lock(
        &mut self,
        now: Now,
        origin: Option<(ConnId, EventId)>,
        room: RoomName,
        name: EventId,
        op: LockOp,
    ) {
        if let Some((conn, _)) = &origin
            && let Some(state) = self.conns.get_mut(conn)
        {
            state.locks_in_flight += 1;
        }
        if matches!(op, LockOp::Acquire { .. })
            && let Some(room) = self.rooms.get_mut(&room)
        {
            room.acquiring += 1;
        }
        let request = LockRequest {
            room,
            name,
            op,
            at: now.unix_ms,
        };
        self.actions
            .push_back(Action::Lock(LockJob { origin, request }));
    }

    /// Nacks a lock request: its code, message and, for `draining` and `rate_limited`, when to
    /// ask again.
    fn refuse_lock(
        &mut self,
        conn: ConnId,
        room: RoomName,
        id: EventId,
        (code, message, retry): (ErrorCode, String, Option<Duration>),
    ) {
        if self.conns.contains_key(&conn) {
            let nack = Nack {
                room: Some(room),
                id,
                code,
                message,
                head: None,
                retry_after_ms: retry.map(|wait| wait.as_millis() as u64),
            };
            self.send(conn, &ServerFrame::Nack(nack));
        }
    }

    /// A local connection's id on the wire.
    fn wire_id(&self, conn: ConnId) -> String {
        format!("{}-{conn}", self.config.node)
    }
}

fn state_user(hub: &Hub, conn: ConnId) -> Option<(String, String)> {
    let state = hub.conns.get(&conn)?;
    Some((state.identity.user.clone(), state.wire_id.clone()))
}

/// The version of a set of held locks: equal sets give equal versions on every node (so a
/// poll on another node compares them as it would here), 0 for none. FNV-1a over each grant's
/// name, token and `until`, kept below 2^53 so JavaScript reads it exactly.
pub fn lock_version(locks: &[LockInfo]) -> u64 {
    if locks.is_empty() {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for lock in locks {
        eat(lock.name.as_str().as_bytes());
        eat(&lock.token.to_le_bytes());
        eat(&lock.until.to_le_bytes());
        eat(lock.conn.as_bytes());
    }
    (hash & wire::MAX_SAFE_INTEGER).max(1)
}

/// The message of a publish refused for its `if_lock`.
pub(super) fn fence_refusal(current: Option<&LockInfo>) -> String {
    match current {
        Some(held) => format!(
            "lock {} is now held by {} with token {}: the grant this publish stated is gone; nothing was stored",
            held.name, held.user, held.token
        ),
        None => "the lock grant this publish stated is no longer held (released or expired); nothing was stored".to_owned(),
    }
}
