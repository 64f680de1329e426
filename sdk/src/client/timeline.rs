//! One room's history position and the idempotent merge of incoming events.
//!
//! The timeline delivers each durable event exactly once and in seq order: anything at or below
//! the cursor (or with a sender and id already delivered) is dropped; events beyond the next seq are held
//! until the gap is filled, and the gap is reported so the client can resume to repair it.

use super::Map;
use super::recent::RecentIds;
use crate::wire::{Cursor, Event};

/// Most out-of-order events held while waiting for a gap to fill.
const MAX_HELD: usize = 1024;
/// How many delivered (sender, id) keys are remembered for dedupe by id.
const RECENT_IDS: usize = 1024;

/// What receiving an event led to.
#[derive(Debug, Default, PartialEq)]
pub struct Merge {
    /// Events to hand to the app, in order.
    pub deliver: Vec<Event>,
    /// Events are missing after this cursor: resume from it.
    pub gap: Option<Cursor>,
}

/// A room's position in its history.
#[derive(Debug)]
pub struct Timeline {
    cursor: Option<Cursor>,
    held: Map<u64, Event>,
    /// The last [`RECENT_IDS`] delivered events' (sender, id). Ids are idempotency keys per
    /// sender, so another sender's event with an equal id is a different event.
    recent: RecentIds,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::at(None)
    }
}

impl Timeline {
    /// A timeline resuming from `cursor` (restored from storage or another transport).
    pub fn at(cursor: Option<Cursor>) -> Timeline {
        Timeline {
            cursor,
            held: Map::new(),
            recent: RecentIds::new(RECENT_IDS),
        }
    }

    /// The last delivered event's position, if any.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }

    /// The server said where the room stands on join. A timeline without a cursor starts at the
    /// head (history before joining is the app's to fetch); one with a cursor keeps it (the
    /// server replays from it, or sends `reset`).
    pub fn joined(&mut self, epoch: u64, head: u64) {
        if self.cursor.is_none() {
            self.cursor = Some(Cursor { epoch, seq: head });
        }
    }

    /// The history can not be resumed: continue from the head, forgetting held events.
    pub fn reset(&mut self, epoch: u64, head: u64) {
        self.cursor = Some(Cursor { epoch, seq: head });
        self.held.clear();
    }

    /// Merges one event (durable: it has a seq).
    pub fn receive(&mut self, event: Event) -> Merge {
        let mut merge = Merge::default();
        let (Some(cursor), Some(seq)) = (self.cursor, event.seq) else {
            return merge; // Not positioned yet, or ephemeral: the caller handles those.
        };
        if seq <= cursor.seq {
            return merge; // Already delivered.
        }
        if seq > cursor.seq + 1 {
            if self.held.len() < MAX_HELD {
                self.held.insert(seq, event);
            }
            merge.gap = Some(cursor);
            return merge;
        }
        self.deliver(event, &mut merge);
        while let Some(next) = self.held.remove(&(self.cursor.expect("set").seq + 1)) {
            self.deliver(next, &mut merge);
        }
        // Held events at or below the cursor are stale now.
        let seq = self.cursor.expect("set").seq;
        self.held.retain(|&held, _| held > seq);
        if !self.held.is_empty() {
            merge.gap = self.cursor;
        }
        merge
    }

    fn deliver(&mut self, event: Event, merge: &mut Merge) {
        let cursor = self.cursor.as_mut().expect("positioned");
        cursor.seq = event.seq.expect("durable");
        // An event repeating a delivered (sender, id) under another seq (a publish the server
        // stored twice; it may have been held meanwhile) passes its seq without reaching the
        // app: the room does not wait for that seq, and the app does not get it twice.
        if self.recent.insert(&event.from, &event.id) {
            merge.deliver.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EventId, Json, RoomName};

    fn event(seq: u64, id: &str) -> Event {
        Event {
            room: RoomName::parse("r").unwrap(),
            seq: Some(seq),
            id: EventId::parse(id).unwrap(),
            from: "a".into(),
            at: 0,
            body: Json::null(),
        }
    }

    /// Feeds `(seq, id)` events in order; returns delivered seqs and the last gap report.
    fn check(start: Option<u64>, input: &[(u64, &str)], delivered: &[u64], gap: Option<u64>) {
        let mut timeline = Timeline::at(start.map(|seq| Cursor { epoch: 1, seq }));
        let mut got = Vec::new();
        let mut last_gap = None;
        for &(seq, id) in input {
            let merge = timeline.receive(event(seq, id));
            got.extend(merge.deliver.iter().map(|e| e.seq.unwrap()));
            last_gap = merge.gap.map(|c| c.seq);
        }
        assert_eq!(got, delivered, "for {input:?}");
        assert_eq!(last_gap, gap, "gap for {input:?}");
    }

    #[test]
    fn merge_table() {
        check(Some(0), &[(1, "a"), (2, "b"), (3, "c")], &[1, 2, 3], None);
        check(
            Some(0),
            &[(1, "a"), (1, "a"), (2, "b"), (1, "a")],
            &[1, 2],
            None,
        ); // duplicates by seq
        check(Some(5), &[(3, "x"), (5, "y"), (6, "z")], &[6], None); // replayed history below the cursor
        check(Some(0), &[(2, "b"), (3, "c")], &[], Some(0)); // a gap: held, reported
        check(Some(0), &[(2, "b"), (3, "c"), (1, "a")], &[1, 2, 3], None); // gap filled: all in order
        check(Some(0), &[(3, "c"), (1, "a")], &[1], Some(1)); // partly filled: still a gap after 1
        check(Some(0), &[(1, "a"), (2, "a")], &[1], None); // the same id under another seq is dropped
        check(Some(0), &[(1, "a"), (2, "a"), (3, "b")], &[1, 3], None); // ... and its seq passed
        check(Some(0), &[(3, "a"), (2, "a"), (1, "a")], &[1], None); // ... also when it was held
        // The held repeat passes its seq: the event after it is delivered.
        check(
            Some(0),
            &[(3, "c"), (2, "a"), (1, "a"), (4, "d")],
            &[1, 3, 4],
            None,
        );
        check(None, &[(1, "a")], &[], None); // not positioned yet: nothing delivered
    }

    #[test]
    fn an_equal_id_from_another_sender_is_another_event() {
        let mut timeline = Timeline::at(Some(Cursor { epoch: 1, seq: 0 }));
        let from = |seq: u64, sender: &str| Event {
            from: sender.into(),
            ..event(seq, "x")
        };
        assert_eq!(timeline.receive(from(1, "mallory")).deliver.len(), 1);
        assert_eq!(
            timeline.receive(from(2, "ana")).deliver.len(),
            1,
            "ana's x is not mallory's x"
        );
        assert!(
            timeline.receive(from(3, "ana")).deliver.is_empty(),
            "ana's x again (stored twice across an epoch) is dropped"
        );
    }

    #[test]
    fn joined_positions_only_a_fresh_timeline_and_reset_repositions() {
        let mut fresh = Timeline::default();
        fresh.joined(7, 40);
        assert_eq!(fresh.cursor(), Some(Cursor { epoch: 7, seq: 40 }));
        let mut resumed = Timeline::at(Some(Cursor { epoch: 7, seq: 12 }));
        resumed.joined(7, 40);
        assert_eq!(
            resumed.cursor(),
            Some(Cursor { epoch: 7, seq: 12 }),
            "the server replays from 12"
        );
        assert!(resumed.receive(event(14, "x")).gap.is_some());
        resumed.reset(8, 3);
        assert_eq!(resumed.cursor(), Some(Cursor { epoch: 8, seq: 3 }));
        assert_eq!(
            resumed.receive(event(4, "y")).deliver.len(),
            1,
            "held events were dropped by the reset"
        );
    }

    #[test]
    fn the_last_ids_are_remembered_and_older_ones_forgotten() {
        let total = RECENT_IDS as u64 + 100;
        let mut timeline = Timeline::at(Some(Cursor { epoch: 1, seq: 0 }));
        for seq in 1..=total {
            assert_eq!(
                timeline
                    .receive(event(seq, &format!("e{seq}")))
                    .deliver
                    .len(),
                1
            );
        }
        // Repeats take new seqs (as a publish stored twice does) and are not remembered again.
        for (seq, recent) in [
            (total + 1, total),
            (total + 2, total - RECENT_IDS as u64 + 1),
        ] {
            let merge = timeline.receive(event(seq, &format!("e{recent}")));
            assert!(merge.deliver.is_empty(), "e{recent} was delivered lately");
        }
        let forgotten = total - RECENT_IDS as u64;
        let merge = timeline.receive(event(total + 3, &format!("e{forgotten}")));
        assert_eq!(
            merge.deliver.len(),
            1,
            "e{forgotten} is no longer remembered"
        );
    }
}
