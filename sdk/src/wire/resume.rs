//! The one rule for "can this cursor resume?": where a room's history stands ([`RoomHead`]) and
//! what a [`Cursor`] into it may do ([`RoomHead::resume`]).
//!
//! The hub asks it when a member joins with a cursor and again when its replay reads the
//! history, the long poll asks it for every cursor, and the client core asks it when a history
//! page repairs a gap: they must never disagree, so the rule is written only here. Pure logic:
//! no I/O, no clock.

use super::{Cursor, ResetReason};

/// Where a room's history stands: its epoch, its newest seq and the oldest seq still kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomHead {
    /// The history's epoch.
    pub epoch: u64,
    /// The newest seq (0 when nothing was ever stored).
    pub head: u64,
    /// The oldest seq still kept; `head + 1` when nothing is kept.
    pub oldest: u64,
}

impl RoomHead {
    /// Whether every event after `seq` is still kept.
    pub fn covers_after(&self, seq: u64) -> bool {
        seq >= self.head || self.oldest <= seq + 1
    }

    /// Whether a client at `cursor` can go on from here without missing anything (`Ok`: it
    /// needs the events after `cursor.seq` up to `head`, possibly none), or why it must start
    /// over from the head instead: another epoch, a cursor ahead of the head, or events after
    /// the cursor that retention already dropped.
    pub fn resume(&self, cursor: Cursor) -> Result<(), ResetReason> {
        if cursor.epoch != self.epoch {
            Err(ResetReason::EpochChanged)
        } else if cursor.seq > self.head {
            Err(ResetReason::CursorAhead)
        } else if !self.covers_after(cursor.seq) {
            Err(ResetReason::HistoryTrimmed)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cursor: (u64, u64), head: (u64, u64, u64), expect: Result<(), ResetReason>) {
        let (epoch, seq) = cursor;
        let (head_epoch, head, oldest) = head;
        let head = RoomHead {
            epoch: head_epoch,
            head,
            oldest,
        };
        assert_eq!(
            head.resume(Cursor { epoch, seq }),
            expect,
            "cursor {cursor:?} at {head:?}"
        );
    }

    #[test]
    fn one_rule_for_every_cursor() {
        use ResetReason::*;
        // Up to date, behind with everything kept, at the very start of a full history.
        check((1, 9), (1, 9, 1), Ok(()));
        check((1, 3), (1, 9, 1), Ok(()));
        check((1, 0), (1, 9, 1), Ok(()));
        // The next event kept is exactly the one after the cursor.
        check((1, 3), (1, 9, 4), Ok(()));
        // One event missing: trimmed.
        check((1, 3), (1, 9, 5), Err(HistoryTrimmed));
        // Nothing kept at all but the cursor is at the head: nothing to miss.
        check((1, 9), (1, 9, 10), Ok(()));
        check((1, 8), (1, 9, 10), Err(HistoryTrimmed));
        // Another epoch wins over everything else; then a cursor from the future.
        check((2, 3), (1, 9, 5), Err(EpochChanged));
        check((1, 10), (1, 9, 1), Err(CursorAhead));
    }
}
