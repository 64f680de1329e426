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

#[cfg(test)]
pub(crate) mod contract {
    //! What every store's filtered reads must do (run by each store's tests on a store with
    //! the default retention).

    use chorus_sdk::wire::{EventId, Json, RoomName};
    use tokio::sync::mpsc;

    use super::*;
    use crate::store::contract::append;
    use crate::store::{AppendDone, AppendRequest, Store};

    /// The feed: (seq, sender, type). Seq 1 is too old to be kept.
    const FEED: [(u64, &str, Option<&str>); 8] = [
        (1, "ana", Some("comment")),
        (2, "ana", Some("comment")),
        (3, "ben", Some("like")),
        (4, "ana", Some("like")),
        (5, "ben", Some("comment")),
        (6, "ana", Some("comment")),
        (7, "cid", None),
        (8, "ben", Some("comment")),
    ];

    fn filter(event_type: Option<&str>, user: Option<&str>) -> EventFilter {
        EventFilter {
            event_type: event_type.map(str::to_owned),
            user: user.map(str::to_owned),
        }
    }

    /// Every page of a read, from `from` until the store says nothing is left, and the
    /// events they held (oldest first, as each page lists them), checking each page's bounds.
    async fn walk(
        store: &dyn Store,
        room: &RoomName,
        filter: &EventFilter,
        mut from: ReadFrom,
        limit: usize,
        budget: usize,
    ) -> Vec<u64> {
        let mut found = Vec::new();
        for _ in 0..100 {
            let read = FilteredRead {
                filter: filter.clone(),
                from,
                limit: PageLimit::events(limit),
                budget,
            };
            let page = store.read_filtered(room, read).await.unwrap();
            let seqs: Vec<u64> = page.events.iter().map(StoredEvent::seq).collect();
            assert!(
                seqs.len() <= limit.min(budget),
                "{filter:?} {from:?}: {seqs:?}"
            );
            assert!(seqs.is_sorted(), "oldest first: {seqs:?}");
            assert!(page.events.iter().all(|e| filter.matches(e)), "{seqs:?}");
            let Some(scanned) = page.scanned else {
                assert!(seqs.is_empty());
                break;
            };
            match from {
                ReadFrom::After(_) => {
                    assert!(seqs.last().is_none_or(|&last| last <= scanned));
                    found.extend(seqs);
                    if scanned >= page.head.head {
                        break;
                    }
                    from = ReadFrom::After(scanned);
                }
                ReadFrom::Before(_) => {
                    assert!(seqs.first().is_none_or(|&first| first >= scanned));
                    found.splice(0..0, seqs);
                    if scanned <= page.head.oldest {
                        break;
                    }
                    from = ReadFrom::Before(scanned);
                }
            }
        }
        found
    }

    /// Filters by type, by sender and both; forward and backward; in pages cut by the limit
    /// and by the scan budget: the pages together hold exactly the matching kept events.
    pub(crate) async fn check_filtered_reads(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
    ) {
        let now = crate::clock::unix_ms_now();
        let room = RoomName::parse("feed").unwrap();
        for (seq, from, kind) in FEED {
            let body = match kind {
                Some(kind) => format!(r#"{{"type":"{kind}","n":{seq}}}"#),
                None => format!(r#"{{"n":{seq}}}"#),
            };
            let at = if seq == 1 {
                now - 10 * 24 * 3600 * 1000
            } else {
                now
            };
            let request = AppendRequest {
                room: room.clone(),
                id: EventId::parse(format!("e{seq}")).unwrap(),
                from: from.into(),
                at,
                body: Json::from_text(body).unwrap(),
                if_seq: None,
                if_lock: None,
            };
            append(store, outcomes, request).await;
        }
        store.flush().await;
        let expected = |filter: &EventFilter, below: u64| -> Vec<u64> {
            FEED.iter()
                .filter(|(seq, from, kind)| {
                    *seq > 1
                        && *seq < below
                        && filter.user.as_deref().is_none_or(|u| u == *from)
                        && filter
                            .event_type
                            .as_deref()
                            .is_none_or(|t| Some(t) == *kind)
                })
                .map(|(seq, ..)| *seq)
                .collect()
        };
        let filters = [
            filter(Some("comment"), None),
            filter(Some("like"), None),
            filter(None, Some("ana")),
            filter(Some("comment"), Some("ana")),
            filter(Some("comment"), Some("cid")),
            filter(Some("nothing"), None),
            filter(None, None),
        ];
        for filter in &filters {
            for (limit, budget) in [(100, 1000), (1, 1000), (2, 2), (3, 1), (100, 3)] {
                assert_eq!(
                    walk(store, &room, filter, ReadFrom::After(0), limit, budget).await,
                    expected(filter, u64::MAX),
                    "{filter:?} forward, limit {limit}, budget {budget}"
                );
                assert_eq!(
                    walk(
                        store,
                        &room,
                        filter,
                        ReadFrom::Before(u64::MAX),
                        limit,
                        budget
                    )
                    .await,
                    expected(filter, u64::MAX),
                    "{filter:?} backward, limit {limit}, budget {budget}"
                );
                assert_eq!(
                    walk(store, &room, filter, ReadFrom::Before(8), limit, budget).await,
                    expected(filter, 8),
                    "{filter:?} backward from 8, limit {limit}, budget {budget}"
                );
            }
        }
        // One page: the newest two comments before 8, oldest first.
        let read = FilteredRead {
            filter: filter(Some("comment"), None),
            from: ReadFrom::Before(8),
            limit: PageLimit::events(2),
            budget: 1000,
        };
        let page = store.read_filtered(&room, read).await.unwrap();
        let seqs: Vec<u64> = page.events.iter().map(StoredEvent::seq).collect();
        assert_eq!((seqs, page.scanned), (vec![5, 6], Some(5)));
        assert_eq!((page.head.head, page.head.oldest), (8, 2));
        // A budget of one looks at one event.
        let read = FilteredRead {
            filter: filter(None, Some("cid")),
            from: ReadFrom::After(0),
            limit: PageLimit::events(10),
            budget: 1,
        };
        let page = store.read_filtered(&room, read).await.unwrap();
        assert!(page.events.len() <= 1 && page.scanned.is_some());
        // A room nobody published to: nothing looked at.
        let read = FilteredRead {
            filter: filter(Some("comment"), None),
            from: ReadFrom::After(0),
            limit: PageLimit::events(10),
            budget: 10,
        };
        let empty = store
            .read_filtered(&RoomName::parse("feed-empty").unwrap(), read)
            .await
            .unwrap();
        assert_eq!(
            (empty.events.len(), empty.scanned, empty.head.head),
            (0, None, 0)
        );
    }
}
