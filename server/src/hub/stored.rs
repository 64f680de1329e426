//! Stored events into a room: whoever stored them (this node's appends, another node's through
//! the bus), each is queued to the room's members once, in seq order, and none is skipped.
//!
//! # Gaps, repairs and resets
//!
//! Events reach a room from two sources that do not agree on order: this node's append outcomes
//! and the bus ([`Hub::handle_stored`]: events other nodes stored, and this node's own again).
//! An event with seq = head + 1 is fanned out at once; one at or below the head was already.
//! One past a gap (seq > head + 1) is *held* (per room, at most [`MAX_HELD`]) while the gap
//! fills from the bus; if it is still open after [`HubConfig::gap_wait`] the hub asks the
//! driver to read the room's history after its head ([`Action::Repair`], answered through
//! [`Hub::handle_repaired`]) and fans out what it reads, then the held events that follow.
//!
//! An event of another epoch than the room's, or a repair that finds the store's head behind
//! the room's or the events after it trimmed, means the lineage the members follow is gone
//! (Redis lost the room, rolled back, or the node missed more than retention keeps): the room
//! takes the store's epoch and every member gets `reset` with the reason a client resuming with
//! the room's cursor would get (see `RoomHead::resume`). The reset's head is the seq before the
//! oldest kept event for a new or trimmed lineage, and the kept events follow it, so members
//! lose nothing the store still has; for a rolled-back room (`cursor_ahead`) it is the store's
//! head.
//!
//! When the bus lost its subscription for a while ([`Hub::handle_resynced`]), every room it
//! names is repaired the same way, since anything may have been stored meanwhile.
//!
//! # Acks after their event
//!
//! What answers a publish (`ack`, or a backend request's completion) is a [`Settle`]: it runs
//! once the room's head has reached its event's seq, so the publisher never has its `ack`
//! before the event is queued to the members. A held event holds its settle too.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Duration;

use chorus_sdk::wire::{Cursor, EventId, ResetReason, RoomName, ServerFrame};

use super::{Action, ConnId, Hub, Member, Now, RoomLoad, Timer, Transmit, encode, encode_event};
use crate::store::{AppendOutcome, Page, RoomHead, StoreError, StoredEvent};

/// Most events held past a gap per room. Beyond it, later events are not kept: the repair reads
/// them from the store instead.
pub const MAX_HELD: usize = 4096;

/// How long a failed repair waits before it is tried again.
pub(super) const REPAIR_RETRY: Duration = Duration::from_millis(250);

/// What answers a publish once its event has been queued to the room's members.
#[derive(Debug)]
pub(super) enum Settle {
    /// Acknowledge a connection's publish.
    Ack {
        conn: ConnId,
        room: RoomName,
        id: EventId,
        seq: u64,
        /// The store had the id already (`"duplicate":true`).
        duplicate: bool,
    },
    /// Complete a backend publish's request.
    Complete {
        ticket: u64,
        result: Result<AppendOutcome, StoreError>,
    },
}

/// One room's gap bookkeeping (all empty while nothing is missing).
#[derive(Debug, Default)]
pub(super) struct Gaps {
    /// Events past the gap, by seq.
    held: BTreeMap<u64, StoredEvent>,
    /// Settles waiting for the head to reach their seq.
    settles: BTreeMap<u64, Vec<Settle>>,
    /// Settles of events of another epoch, with that epoch and the event's seq: once a repair
    /// said which lineage is current, those of it wait for their event, the others run.
    foreign: Vec<(u64, u64, Settle)>,
    /// A repair read is in flight.
    repairing: bool,
    /// The head it reads after: the store had that event when it read (the room's head may
    /// have moved on since, from this node's appends), so it is what the store's answer is
    /// checked against.
    repair_after: u64,
    /// A repair is owed: something happened during the one in flight that it may not have
    /// seen (a resync), or it failed (the retry timer runs it again).
    again: bool,
    /// A [`Timer::RepairGap`] is pending.
    timer: bool,
    /// The highest seq the store is known to have from a word other than its event (a
    /// duplicate's answer, another node's stream `finish`): a head short of it is a gap.
    awaited: u64,
    /// The room was resynced while it loaded: repair once it is open.
    after_load: bool,
}

impl Gaps {
    /// Whether nothing waits on the room (it may be forgotten).
    pub(super) fn is_idle(&self) -> bool {
        !self.repairing && self.settles.is_empty() && self.foreign.is_empty()
    }
}

impl Hub {
    /// An event another node stored (or this node, heard again), from the bus. It goes through
    /// the same fan-out as this node's appends; a room not open here ignores it.
    pub fn handle_stored(&mut self, now: Now, stored: StoredEvent) {
        self.accept_stored(now, stored, None);
    }

    /// The bus lost its subscriptions for a while and has them back: `rooms` may have missed
    /// events, so each is repaired from the store.
    pub fn handle_resynced(&mut self, now: Now, mut rooms: Vec<RoomName>) {
        rooms.sort_unstable();
        for room_name in rooms {
            let Some(room) = self.rooms.get_mut(&room_name) else {
                continue;
            };
            match room.state {
                Some(RoomLoad::Loading { .. }) => room.gaps.after_load = true,
                Some(RoomLoad::Open { .. }) if room.gaps.repairing => room.gaps.again = true,
                Some(RoomLoad::Open { .. }) => self.request_repair(&room_name),
                None => {}
            }
        }
        let _ = now;
    }

    /// A repair requested by [`Action::Repair`] read the room's history after `after`.
    pub fn handle_repaired(
        &mut self,
        now: Now,
        room_name: RoomName,
        result: Result<Page, StoreError>,
    ) {
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        let Some(RoomLoad::Open { epoch, .. }) = room.state else {
            return;
        };
        room.gaps.repairing = false;
        let head = room.gaps.repair_after;
        let page = match result {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(room = %room_name, "repairing a gap failed: {err}");
                room.gaps.again = true;
                return self.arm_repair_timer(now, &room_name, REPAIR_RETRY);
            }
        };
        if let Err(reason) = page.head.resume(Cursor { epoch, seq: head }) {
            // A new lineage (or one trimmed past the head) is followed from its oldest kept
            // event, so the members get all of it that is left; a rolled-back one from its head
            // (the members saw the seqs before it, under other events).
            let restart = match reason {
                ResetReason::CursorAhead => page.head.head,
                _ => page.head.oldest.saturating_sub(1).min(page.head.head),
            };
            let to = RoomHead {
                head: restart,
                ..page.head
            };
            self.reset_room(now, &room_name, reason, to);
            if restart < page.head.head {
                self.request_repair(&room_name);
            }
        } else {
            for stored in page.events {
                self.accept_stored(now, stored, None);
            }
            let Some(room) = self.rooms.get_mut(&room_name) else {
                return;
            };
            let Some(RoomLoad::Open { head, .. }) = room.state else {
                return;
            };
            // The lineage stands: publishes whose events were of another epoch (stale: heard
            // late from a lineage already replaced) are answered now; none can be of this one,
            // or the event would have matched.
            let foreign = std::mem::take(&mut room.gaps.foreign);
            for (_, _, settle) in foreign {
                self.run_settle(settle);
            }
            let Some(room) = self.rooms.get_mut(&room_name) else {
                return;
            };
            if head < page.head.head || std::mem::take(&mut room.gaps.again) {
                // The page was bounded, or a resync came after the read: read on.
                self.request_repair(&room_name);
            } else if room
                .gaps
                .held
                .keys()
                .next()
                .is_some_and(|&seq| seq > head + 1)
            {
                // Held events stored after the read: the events before them are on their way.
                self.arm_repair_timer(now, &room_name, self.config.gap_wait);
            }
        }
        self.forget_room_if_idle(&room_name);
    }

    /// The room finished loading: a resync that came meanwhile repairs it now.
    pub(super) fn repair_if_resynced_while_loading(&mut self, room_name: &RoomName) {
        let resynced = self
            .rooms
            .get_mut(room_name)
            .is_some_and(|room| std::mem::take(&mut room.gaps.after_load));
        if resynced {
            self.request_repair(room_name);
        }
    }

    /// A [`Timer::RepairGap`] fired.
    pub(super) fn repair_gap_timer(&mut self, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        room.gaps.timer = false;
        let Some(RoomLoad::Open { head, .. }) = room.state else {
            return;
        };
        let gap = room
            .gaps
            .held
            .keys()
            .next()
            .is_some_and(|&seq| seq > head + 1)
            || !room.gaps.settles.is_empty()
            || !room.gaps.foreign.is_empty()
            || room.gaps.awaited > head;
        if !room.gaps.repairing && (std::mem::take(&mut room.gaps.again) || gap) {
            self.request_repair(room_name);
        }
    }

    /// Takes a stored event: fans it out if it is next, holds it past a gap, drops it if it was
    /// delivered already; `settle` runs once the event is queued to the members.
    pub(super) fn accept_stored(&mut self, now: Now, stored: StoredEvent, settle: Option<Settle>) {
        let seq = stored.seq();
        let room_name = stored.event.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return self.run_settles(settle);
        };
        let (epoch, head) = match &mut room.state {
            Some(RoomLoad::Loading { early, .. }) => {
                early.push(stored);
                return self.run_settles(settle);
            }
            Some(RoomLoad::Open { epoch, head, .. }) => (*epoch, *head),
            None => return self.run_settles(settle),
        };
        if stored.epoch != epoch {
            // Which lineage is current only the store can say: ask it.
            if let Some(settle) = settle {
                room.gaps.foreign.push((stored.epoch, seq, settle));
            }
            if !room.gaps.repairing {
                self.request_repair(&room_name);
            }
            return;
        }
        if seq <= head {
            return self.run_settles(settle); // Already delivered.
        }
        if seq > head + 1 {
            if room.gaps.held.len() < MAX_HELD {
                room.gaps.held.insert(seq, stored);
            }
            if let Some(settle) = settle {
                room.gaps.settles.entry(seq).or_default().push(settle);
            }
            if !room.gaps.repairing {
                self.arm_repair_timer(now, &room_name, self.config.gap_wait);
            }
            return;
        }
        if let Some(settle) = settle {
            room.gaps.settles.entry(seq).or_default().push(settle);
        }
        self.fan_out(now, stored);
        // The held events that follow without a gap now.
        loop {
            let Some(room) = self.rooms.get_mut(&room_name) else {
                return;
            };
            let Some(RoomLoad::Open { head, .. }) = room.state else {
                return;
            };
            let waiting = room.gaps.settles.split_off(&(head + 1));
            let ready = std::mem::replace(&mut room.gaps.settles, waiting);
            // Held events at or below the head were delivered already (a repair read them).
            room.gaps.held = room.gaps.held.split_off(&(head + 1));
            let next = room.gaps.held.remove(&(head + 1));
            for settle in ready.into_values().flatten() {
                self.run_settle(settle);
            }
            match next {
                Some(stored) => self.fan_out(now, stored),
                None => return,
            }
        }
    }

    /// The lineage the members follow is gone: the room takes the store's, every member is told
    /// to start over from its head, and every publish waiting on the room is answered.
    fn reset_room(&mut self, now: Now, room_name: &RoomName, reason: ResetReason, to: RoomHead) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        tracing::warn!(room = %room_name, ?reason, epoch = to.epoch, head = to.head, "the room's history changed under it: its members are reset");
        room.state = Some(RoomLoad::Open {
            epoch: to.epoch,
            head: to.head,
            oldest: to.oldest,
        });
        room.gaps.held.clear();
        room.gaps.awaited = 0; // A seq of the old lineage.
        // The old lineage's publishes are answered now (their events are gone with it); the new
        // one's wait for their events, which the repair reads, unless the reset's head is past.
        let mut settle_now: Vec<Settle> = std::mem::take(&mut room.gaps.settles)
            .into_values()
            .flatten()
            .collect();
        for (epoch, seq, settle) in std::mem::take(&mut room.gaps.foreign) {
            if epoch == to.epoch && seq > to.head {
                room.gaps.settles.entry(seq).or_default().push(settle);
            } else {
                settle_now.push(settle);
            }
        }
        let payload = encode(&ServerFrame::Reset(chorus_sdk::wire::Reset {
            room: room_name.clone(),
            reason,
            epoch: to.epoch,
            head: to.head,
        }));
        for (&conn, member) in room.members.iter_mut() {
            match member {
                Member::Live => self.transmits.push_back(Transmit {
                    reply: false,
                    conn,
                    payload: payload.clone(),
                }),
                Member::Replaying { until, buffered } => {
                    // The replay still streams the old lineage: the reset follows it, and only
                    // events of the new lineage after its head follow the reset.
                    buffered.clear();
                    buffered.push(payload.clone());
                    *until = to.head;
                }
            }
        }
        for settle in settle_now {
            self.run_settle(settle);
        }
        let _ = now;
    }

    fn request_repair(&mut self, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(RoomLoad::Open { head, .. }) = room.state else {
            return;
        };
        room.gaps.repairing = true;
        room.gaps.repair_after = head;
        self.actions.push_back(Action::Repair {
            room: room_name.clone(),
            after: head,
        });
    }

    /// Runs `settle` once the room's head reaches `seq`: at once when it has (or the room is
    /// not open here), else after that event's fan-out. A duplicate's answer names an event
    /// this node may not have fanned out yet (stored through another node and still on the
    /// bus, or behind a gap): it follows the event, as a stored event's does. Should the bus
    /// have lost the event, the gap timer's repair reads it.
    pub(super) fn settle_after(
        &mut self,
        now: Now,
        room_name: &RoomName,
        seq: u64,
        settle: Settle,
    ) {
        if !self.await_event(now, room_name, seq) {
            return self.run_settle(settle);
        }
        let room = self.rooms.get_mut(room_name).expect("awaiting");
        room.gaps.settles.entry(seq).or_default().push(settle);
    }

    /// Whether the open room's head is short of `seq`, an event the store has (a duplicate's,
    /// a stream result another node named). Then, should nothing bring it within the gap
    /// wait, a repair reads it.
    pub(super) fn await_event(&mut self, now: Now, room_name: &RoomName, seq: u64) -> bool {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return false;
        };
        match room.state {
            Some(RoomLoad::Open { head, .. }) if seq > head => {
                room.gaps.awaited = room.gaps.awaited.max(seq);
                if room.gaps.repairing {
                    // The read in flight may predate the event: read again after it.
                    room.gaps.again = true;
                } else {
                    self.arm_repair_timer(now, room_name, self.config.gap_wait);
                }
                true
            }
            _ => false,
        }
    }

    fn arm_repair_timer(&mut self, now: Now, room_name: &RoomName, after: Duration) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.gaps.timer {
            return;
        }
        room.gaps.timer = true;
        self.timers.push(Reverse((
            now.instant + after,
            Timer::RepairGap(room_name.clone()),
        )));
    }

    fn run_settles(&mut self, settle: Option<Settle>) {
        if let Some(settle) = settle {
            self.run_settle(settle);
        }
    }

    pub(super) fn run_settle(&mut self, settle: Settle) {
        match settle {
            Settle::Ack {
                conn,
                room,
                id,
                seq,
                duplicate,
            } => {
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.appends_in_flight = state.appends_in_flight.saturating_sub(1);
                }
                self.send_ack(conn, room, id, Some(seq), duplicate)
            }
            Settle::Complete { ticket, result } => {
                self.actions.push_back(Action::Complete { ticket, result })
            }
        }
    }

    /// Queues the next stored event (seq = head + 1) to every member and moves the head.
    fn fan_out(&mut self, now: Now, stored: StoredEvent) {
        let seq = stored.seq();
        let Some(room) = self.rooms.get_mut(&stored.event.room) else {
            return;
        };
        let Some(RoomLoad::Open { head, .. }) = &mut room.state else {
            return;
        };
        *head = seq;
        let payload = encode_event(&stored);
        let streaming = !room.streams.is_idle();
        let room = if streaming {
            // A copy of another node's stream gets its last chunks first (see `streams.rs`).
            self.complete_stream_copy(&stored.event);
            self.rooms.get_mut(&stored.event.room).expect("open")
        } else {
            room
        };
        let mut overflowed = Vec::new();
        for (&conn, member) in room.members.iter_mut() {
            match member {
                Member::Live => self.transmits.push_back(Transmit {
                    reply: false,
                    conn,
                    payload: payload.clone(),
                }),
                Member::Replaying { until, buffered } => {
                    if seq > *until {
                        buffered.push(payload.clone());
                        if buffered.len() > self.config.replay_buffer {
                            overflowed.push(conn);
                        }
                    }
                }
            }
        }
        for conn in overflowed {
            self.handle_slow_consumer(now, conn);
        }
        let result = self.config.federated && super::streams::looks_like_result(&stored.event.body);
        if streaming || result {
            // The result of an open stream ends it, after the event (see `streams.rs`).
            self.close_stored_stream(now, &stored.event, seq);
        }
    }
}
