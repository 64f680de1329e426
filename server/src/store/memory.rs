//! In-memory store: for tests, the deterministic simulation and `--store memory`.
//!
//! [`MemoryLog`] is the pure sequencing logic (no clock, no locks), so the hub simulation can
//! drive it synchronously; [`MemoryStore`] wraps it for the server. Nothing survives a restart:
//! each [`MemoryStore`] starts a new epoch, so clients resuming after a restart get `reset`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chorus_sdk::wire::{Event, EventId, LockInfo, RoomName};
use futures_util::future::BoxFuture;

use super::locks::{LockOp, LockOutcome, LockRequest, LockRow};
use super::{
    AppendDone, AppendJob, AppendOutcome, AppendRequest, DocSnapshot, FilteredPage, FilteredRead,
    OutcomeSender, Page, PageLimit, Retention, RoomHead, Store, StoreError, StoredEvent,
};

/// The sequencing and history logic of the memory store, with time passed in.
#[derive(Debug)]
pub struct MemoryLog {
    epoch: u64,
    retention: Retention,
    rooms: HashMap<RoomName, RoomLog>,
    /// Every lock's row, by room and name (see `store::locks`).
    locks: HashMap<RoomName, HashMap<EventId, LockRow>>,
    /// Every document's snapshot, by room and name (see `crate::docs`).
    docs: HashMap<(RoomName, EventId), DocSnapshot>,
}

#[derive(Debug, Default)]
struct RoomLog {
    head: u64,
    events: VecDeque<StoredEvent>,
    /// The kept events' seqs by sender and id: ids are idempotency keys per sender, so one
    /// user can never make another's publish a "duplicate".
    ids: HashMap<(String, EventId), u64>,
}

impl RoomLog {
    fn trim(&mut self, retention: &Retention, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(retention.max_age.as_millis() as u64);
        while let Some(front) = self.events.front() {
            let too_many = self.events.len() as u64 > retention.max_events;
            if !too_many && front.event.at >= cutoff {
                break;
            }
            let Some(gone) = self.events.pop_front() else {
                break;
            };
            self.ids.remove(&(gone.event.from, gone.event.id));
        }
    }

    fn room_head(&self, epoch: u64) -> RoomHead {
        let oldest = self.events.front().map_or(self.head + 1, StoredEvent::seq);
        RoomHead {
            epoch,
            head: self.head,
            oldest,
        }
    }
}

impl MemoryLog {
    /// An empty history under `epoch`.
    pub fn new(epoch: u64, retention: Retention) -> MemoryLog {
        MemoryLog {
            epoch,
            retention,
            rooms: HashMap::new(),
            locks: HashMap::new(),
            docs: HashMap::new(),
        }
    }

    /// Sequences and stores one event (see [`Store`] for the rules).
    pub fn append(&mut self, request: AppendRequest, now_ms: u64) -> AppendOutcome {
        let room = self.rooms.entry(request.room.clone()).or_default();
        room.trim(&self.retention, now_ms);
        let key = (request.from, request.id);
        if let Some(&seq) = room.ids.get(&key) {
            return AppendOutcome::Duplicate { seq };
        }
        let (from, id) = key;
        if request.if_seq.is_some_and(|expected| expected != room.head) {
            return AppendOutcome::Conflict { head: room.head };
        }
        if let Some(fence) = &request.if_lock {
            let row = (self.locks.get(&request.room)).and_then(|room| room.get(&fence.name));
            if !LockRow::admits(row, fence, &from, request.at) {
                let current = row.filter(|row| row.live(request.at));
                let current = current.map(|row| row.grant.clone());
                return AppendOutcome::LockLost { current };
            }
        }
        room.head += 1;
        let stored = StoredEvent {
            epoch: self.epoch,
            event: Event {
                room: request.room,
                seq: Some(room.head),
                id,
                from,
                at: request.at,
                body: request.body,
            },
        };
        let key = (stored.event.from.clone(), stored.event.id.clone());
        room.ids.insert(key, room.head);
        room.events.push_back(stored.clone());
        room.trim(&self.retention, now_ms);
        AppendOutcome::Stored(stored)
    }

    /// Reads up to `limit` events after `after`, with the head.
    pub fn read(&mut self, room: &RoomName, after: u64, limit: usize, now_ms: u64) -> Page {
        self.read_bounded(room, after, PageLimit::events(limit), now_ms)
    }

    /// A filtered read (see `store::filter`): the kept log scanned in reading order, at most
    /// `read.budget` events of it.
    pub fn read_filtered(
        &mut self,
        room: &RoomName,
        read: &FilteredRead,
        now_ms: u64,
    ) -> FilteredPage {
        // The head, with retention applied as any read applies it.
        let head = self
            .read_bounded(room, 0, PageLimit::events(0), now_ms)
            .head;
        let log = match self.rooms.get_mut(room) {
            Some(log) => &*log.events.make_contiguous(),
            None => &[],
        };
        FilteredPage::from_log(head, log, read)
    }

    /// Reads the events after `after` that fit in `limit`, with the head.
    pub fn read_bounded(
        &mut self,
        room: &RoomName,
        after: u64,
        limit: PageLimit,
        now_ms: u64,
    ) -> Page {
        let Some(log) = self.rooms.get_mut(room) else {
            return Page {
                head: RoomHead {
                    epoch: self.epoch,
                    head: 0,
                    oldest: 1,
                },
                events: Vec::new(),
            };
        };
        log.trim(&self.retention, now_ms);
        let mut events: Vec<StoredEvent> = Vec::new();
        let mut bytes = 0;
        for stored in log.events.iter().filter(|e| e.seq() > after) {
            let size = stored.wire_bytes();
            if !limit.admits(events.len(), bytes, size) {
                break;
            }
            bytes += size;
            events.push(stored.clone());
        }
        Page {
            head: log.room_head(self.epoch),
            events,
        }
    }

    /// Applies a lock operation (see `store::locks`); an acquire first deletes the room's
    /// forgettable rows.
    pub fn lock(&mut self, request: &LockRequest) -> LockOutcome {
        let rows = self.locks.entry(request.room.clone()).or_default();
        if matches!(request.op, LockOp::Acquire { .. }) {
            rows.retain(|_, row| !row.forgettable(request.at));
        }
        let (row, outcome) = LockRow::apply(rows.get(&request.name), request);
        if let Some(row) = row {
            rows.insert(request.name.clone(), row);
        }
        if rows.is_empty() {
            self.locks.remove(&request.room);
        }
        outcome
    }

    /// How many lock rows it keeps for `room` (live grants and those not yet forgettable).
    #[cfg(test)]
    pub fn lock_rows_of(&self, room: &RoomName) -> usize {
        self.locks.get(room).map_or(0, HashMap::len)
    }

    /// The live grants in `room` at `at`, by name.
    pub fn locks(&self, room: &RoomName, at: u64) -> Vec<LockInfo> {
        let rows = self.locks.get(room).into_iter().flat_map(HashMap::values);
        let mut live: Vec<LockInfo> = rows
            .filter(|row| row.live(at))
            .map(|row| row.grant.clone())
            .collect();
        live.sort_by(|a, b| a.name.cmp(&b.name));
        live
    }

    /// A document's snapshot.
    pub fn doc_snapshot(&self, room: &RoomName, doc: &EventId) -> Option<DocSnapshot> {
        self.docs.get(&(room.clone(), doc.clone())).cloned()
    }

    /// Keeps a document's snapshot unless the kept one is newer.
    pub fn save_doc_snapshot(&mut self, snapshot: DocSnapshot) {
        let key = (snapshot.room.clone(), snapshot.doc.clone());
        if self
            .docs
            .get(&key)
            .is_none_or(|kept| snapshot.replaces(kept))
        {
            self.docs.insert(key, snapshot);
        }
    }

    /// The history's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The in-memory [`Store`].
#[derive(Debug, Clone)]
pub struct MemoryStore {
    log: Arc<Mutex<MemoryLog>>,
    outcomes: OutcomeSender,
}

impl MemoryStore {
    /// A fresh store with a random epoch; outcomes go to `outcomes`.
    pub fn new(retention: Retention, outcomes: OutcomeSender) -> MemoryStore {
        let log = MemoryLog::new(super::random_epoch(), retention);
        MemoryStore {
            log: Arc::new(Mutex::new(log)),
            outcomes,
        }
    }
}

impl Store for MemoryStore {
    fn submit(&self, job: AppendJob) {
        let room = job.request.room.clone();
        let id = job.request.id.clone();
        let from = job.request.from.clone();
        let outcome = self
            .log
            .lock()
            .expect("memory store lock")
            .append(job.request, crate::clock::unix_ms_now());
        // The receiver is gone only when the hub stopped; then nobody waits for the outcome.
        let _ = self.outcomes.send(AppendDone {
            origin: job.origin,
            room,
            id,
            from,
            result: Ok(outcome),
        });
    }

    fn read_bounded(
        &self,
        room: &RoomName,
        after: u64,
        limit: PageLimit,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        let page = self.log.lock().expect("memory store lock").read_bounded(
            room,
            after,
            limit,
            crate::clock::unix_ms_now(),
        );
        Box::pin(async move { Ok(page) })
    }

    fn read_filtered(
        &self,
        room: &RoomName,
        read: FilteredRead,
    ) -> BoxFuture<'_, Result<FilteredPage, StoreError>> {
        let page = self.log.lock().expect("memory store lock").read_filtered(
            room,
            &read,
            crate::clock::unix_ms_now(),
        );
        Box::pin(async move { Ok(page) })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn lock(&self, request: LockRequest) -> BoxFuture<'static, Result<LockOutcome, StoreError>> {
        let outcome = self.log.lock().expect("memory store lock").lock(&request);
        Box::pin(async move { Ok(outcome) })
    }

    fn locks(&self, room: &RoomName, at: u64) -> BoxFuture<'_, Result<Vec<LockInfo>, StoreError>> {
        let locks = self.log.lock().expect("memory store lock").locks(room, at);
        Box::pin(async move { Ok(locks) })
    }

    fn doc_snapshot(
        &self,
        room: &RoomName,
        doc: &EventId,
    ) -> BoxFuture<'_, Result<Option<DocSnapshot>, StoreError>> {
        let snapshot = self
            .log
            .lock()
            .expect("memory store lock")
            .doc_snapshot(room, doc);
        Box::pin(async move { Ok(snapshot) })
    }

    fn save_doc_snapshot(&self, snapshot: DocSnapshot) -> BoxFuture<'_, Result<(), StoreError>> {
        self.log
            .lock()
            .expect("memory store lock")
            .save_doc_snapshot(snapshot);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    #[tokio::test]
    async fn memory_store_passes_the_store_contract() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let retention = Retention {
            max_events: 5,
            ..Retention::default()
        };
        let store = MemoryStore::new(retention, tx);
        contract::check_store(&store, &mut rx).await;
        contract::check_one_epoch_per_store(&store).await;
        contract::check_locks(&store, &mut rx, "locks").await;
        let log = Arc::clone(&store.log);
        let rows = async || {
            log.lock()
                .unwrap()
                .lock_rows_of(&RoomName::parse("forget").unwrap())
        };
        contract::check_forgotten_locks(&store, "forget", rows).await;
    }

    /// A restarted memory store has forgotten its locks, yet grants larger tokens than before
    /// (tokens are at least the grant's time).
    #[tokio::test]
    async fn memory_store_tokens_keep_growing_across_a_restart() {
        let now = crate::clock::unix_ms_now();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let before = MemoryStore::new(Retention::default(), tx.clone());
        let old = contract::first_token(&before, "r", now).await;
        let again = contract::first_token(&before, "r", now + 20).await;
        assert!(again > old);
        let after = MemoryStore::new(Retention::default(), tx);
        assert!(contract::first_token(&after, "r", now + 40).await > again);
    }

    #[tokio::test]
    async fn memory_store_filters_history_by_type_and_sender_with_a_bounded_scan() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = MemoryStore::new(Retention::default(), tx);
        crate::store::filter::contract::check_filtered_reads(&store, &mut rx).await;
    }

    #[tokio::test]
    async fn memory_store_bounds_pages_by_bytes() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let store = MemoryStore::new(Retention::default(), tx);
        contract::check_page_bytes(&store, &mut rx).await;
    }
}
