//! Filtered history reads for the activity feed: events of one type and/or one sender, forward
//! after a seq or backward before one, with a bounded scan per page.
//!
//! A page of N matching events must never scan a room's whole history: every store looks at
//! no more than [`FilteredRead::budget`] candidate events per page and reports the last seq it
//! looked at ([`FilteredPage::scanned`]), so a reader goes on from there even when the page
//! came back short (or empty) because few events matched. Which events are candidates is the
//! store's business (SQLite walks an index of the filtered type or sender, so every candidate
//! matches that filter; Redis and memory walk the room's log).

use super::{PageLimit, RoomHead, StoredEvent};

/// Which events a filtered read keeps. Both filters absent keeps every event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of this type ([`chorus_sdk::wire::Json::event_type`] of the body).
    pub event_type: Option<String>,
    /// Only events published by this user (`from`).
    pub user: Option<String>,
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        self.user
            .as_deref()
            .is_none_or(|user| event.event.from == user)
            && self
                .event_type
                .as_deref()
                .is_none_or(|kind| event.event.body.event_type().as_deref() == Some(kind))
    }
}

/// Where a filtered read starts and which way it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// Events with seq greater than this, oldest first.
    After(u64),
    /// Events with seq less than this, newest first (the page still lists them oldest first).
    Before(u64),
}

/// A filtered read: what to keep, from where, how much to return and how much to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilteredRead {
    /// Which events to keep.
    pub filter: EventFilter,
    /// Where to start.
    pub from: ReadFrom,
    /// At most this many matching events (and bytes of them).
    pub limit: PageLimit,
    /// At most this many candidate events looked at for the page.
    pub budget: usize,
}

/// A page of a filtered read.
#[derive(Clone, Debug, PartialEq)]
pub struct FilteredPage {
    /// Where the history stood when the page was read.
    pub head: RoomHead,
    /// The matching events, oldest first.
    pub events: Vec<StoredEvent>,
    /// The last seq the read looked at (reading forward the highest, backward the lowest):
    /// the next page starts after (before) it. `None` when there was nothing to look at.
    pub scanned: Option<u64>,
}

impl FilteredPage {
    /// Keeps the events within `limit.bytes` (in reading order, the first always), and moves
    /// `scanned` back to the last event kept when any were cut, so none is skipped.
    pub fn bound_bytes(&mut self, from: ReadFrom, limit: PageLimit) {
        let mut total = 0usize;
        let mut count = 0usize;
        let fits = |event: &StoredEvent, count: &mut usize, total: &mut usize| {
            let fits = limit.admits(*count, *total, event.wire_bytes());
            *count += 1;
            *total = total.saturating_add(event.wire_bytes());
            fits
        };
        match from {
            ReadFrom::After(_) => {
                let keep = self
                    .events
                    .iter()
                    .take_while(|e| fits(e, &mut count, &mut total))
                    .count();
                if keep < self.events.len() {
                    self.events.truncate(keep);
                    self.scanned = self.events.last().map(StoredEvent::seq);
                }
            }
            ReadFrom::Before(_) => {
                let keep = self
                    .events
                    .iter()
                    .rev()
                    .take_while(|e| fits(e, &mut count, &mut total))
                    .count();
                if keep < self.events.len() {
                    self.events.drain(..self.events.len() - keep);
                    self.scanned = self.events.first().map(StoredEvent::seq);
                }
            }
        }
    }

    /// Filters an unfiltered run of events (oldest first, as a page of the log is) the way
    /// every store must: candidates taken in reading order, at most `read.budget` of them,
    /// until `read.limit.events` match. `log` is a room's kept events, oldest first (the
    /// memory store's log).
    pub fn from_log(head: RoomHead, log: &[StoredEvent], read: &FilteredRead) -> FilteredPage {
        let mut events = Vec::new();
        let mut scanned = None;
        let mut take = |event: &StoredEvent| {
            scanned = Some(event.seq());
            if read.filter.matches(event) {
                events.push(event.clone());
            }
            events.len() < read.limit.events
        };
        match read.from {
            ReadFrom::After(after) => {
                let first = after.max(head.oldest.saturating_sub(1));
                let start = log.partition_point(|e| e.seq() <= first);
                for event in log[start..].iter().take(read.budget) {
                    if !take(event) {
                        break;
                    }
                }
            }
            ReadFrom::Before(before) => {
                let start = log.partition_point(|e| e.seq() < head.oldest);
                let end = log.partition_point(|e| e.seq() < before).max(start);
                for event in log[start..end].iter().rev().take(read.budget) {
                    if !take(event) {
                        break;
                    }
                }
                events.reverse();
            }
        }
        let mut page = FilteredPage {
            head,
            events,
            scanned,
        };
        page.bound_bytes(read.from, read.limit);
        page
    }
}
