//! History and sequencing storage behind one trait, chosen at start-up.
//!
//! The store is the room's *sequencer*: it decides each durable event's seq (gapless, strictly
//! increasing per room), refuses duplicates by (sender, id), checks `if_seq`, and keeps the history
//! for replay under a retention policy. The hub never assigns a seq itself; it fans out exactly
//! what the store reports as stored, in the order the store reports it. That boundary is what
//! lets a Redis engine later sequence one room for many server nodes.
//!
//! Implementations: [`memory::MemoryStore`] (tests, `--store memory`),
//! [`sqlite::SqliteStore`] (the durable embedded default) and [`redis::RedisStore`] (`--redis`:
//! several nodes share one Redis). None may call into the hub.
//!
//! Epochs: SQLite and memory have one epoch per store (per database file, per process); Redis
//! has one per room, because one room's keys can be lost while others survive (eviction, a
//! Cluster shard's failover). The contract asks what the hub relies on: a room's epoch is
//! stable while its history lasts, and a read of an unknown room agrees with its first append.

mod filter;
pub mod locks;
pub mod memory;
pub mod redis;
pub mod sqlite;

pub use filter::{EventFilter, FilteredPage, FilteredRead, ReadFrom};

use std::time::Duration;

pub use crate::docs::DocSnapshot;
use chorus_sdk::wire::{Event, EventId, Json, LockFence, LockInfo, RoomName};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// What the hub asks the store to append.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendRequest {
    /// The room.
    pub room: RoomName,
    /// The publisher's idempotency key.
    pub id: EventId,
    /// The authenticated publisher.
    pub from: String,
    /// Acceptance time in milliseconds since the Unix epoch.
    pub at: u64,
    /// The event content.
    pub body: Json,
    /// Store only if the room's head is exactly this seq.
    pub if_seq: Option<u64>,
    /// Store only while `from` holds this lock grant (checked with the append, atomically).
    pub if_lock: Option<LockFence>,
}

/// An append together with who is waiting for its outcome.
#[derive(Debug)]
pub struct AppendJob {
    /// Handed back unchanged with the outcome, so the hub can route the ack.
    pub origin: Origin,
    /// The append itself.
    pub request: AppendRequest,
}

impl AppendJob {
    /// The job's outcome as the hub receives it (every store reports through this).
    pub fn done(self, result: Result<AppendOutcome, StoreError>) -> AppendDone {
        AppendDone {
            origin: self.origin,
            room: self.request.room,
            id: self.request.id,
            from: self.request.from,
            result,
        }
    }
}

/// Who published: the hub routes the outcome back to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A connection of this node (the hub's connection id).
    Conn(u64),
    /// An HTTP request of this node (a backend publish), by ticket.
    Request(u64),
}

/// A stored event and the epoch of the history it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The history's epoch.
    pub epoch: u64,
    /// The event with its seq set.
    pub event: Event,
}

impl StoredEvent {
    /// The event's seq (always set for stored events).
    pub fn seq(&self) -> u64 {
        self.event.seq.expect("stored events have a seq")
    }

    /// About how many bytes the event takes as an `event` frame: its variable parts plus a
    /// fixed allowance for the field names, seq and time. What [`PageLimit::bytes`] counts.
    pub fn wire_bytes(&self) -> usize {
        let event = &self.event;
        128 + event.room.as_str().len()
            + event.id.as_str().len()
            + event.from.len()
            + event.body.len()
    }
}

/// What became of an append. Expected conditions are outcomes, not errors.
#[derive(Clone, Debug, PartialEq)]
pub enum AppendOutcome {
    /// Stored under a new seq; the hub fans it out.
    Stored(StoredEvent),
    /// The same sender already stored that id in the room (within the history window) under
    /// `seq`. Ids are idempotency keys per sender: another sender's equal id is no duplicate.
    Duplicate {
        /// The original seq.
        seq: u64,
    },
    /// `if_seq` did not match the room's head.
    Conflict {
        /// The current head.
        head: u64,
    },
    /// `if_lock` named a grant that is not live or not the publisher's.
    LockLost {
        /// The lock's live grant, if any.
        current: Option<LockInfo>,
    },
}

/// The outcome of one [`AppendJob`], delivered on the store's outcome channel in the order the
/// jobs were submitted (so per room, in seq order).
#[derive(Debug)]
pub struct AppendDone {
    /// The job's origin.
    pub origin: Origin,
    /// The job's room.
    pub room: RoomName,
    /// The job's id.
    pub id: EventId,
    /// The job's sender (an id is the sender's: two senders may use the same one).
    pub from: String,
    /// What happened; `Err` means nothing was stored.
    pub result: Result<AppendOutcome, StoreError>,
}

/// Where a room's history stands; the resume rule lives on it (`RoomHead::resume`).
pub use chorus_sdk::wire::RoomHead;

/// A page of history read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Where the history stood when the page was read (the same snapshot as `events`).
    pub head: RoomHead,
    /// Events after the requested seq, oldest first.
    pub events: Vec<StoredEvent>,
}

impl Page {
    /// Cuts the page before the event that would take its events' [`StoredEvent::wire_bytes`]
    /// past `bytes`, keeping the first event whatever its size (the rule of [`PageLimit`], for
    /// stores that cannot stop reading at the bound themselves).
    pub fn truncate_to(&mut self, bytes: usize) {
        let mut total = 0usize;
        let keep = self
            .events
            .iter()
            .enumerate()
            .take_while(|(n, event)| {
                total = total.saturating_add(event.wire_bytes());
                *n == 0 || total <= bytes
            })
            .count();
        self.events.truncate(keep);
    }
}

/// How much one read may return: at most `events` events, and no more events once their
/// [`StoredEvent::wire_bytes`] add up past `bytes` (the first event is always returned, so a
/// reader makes progress however large one event is). A page cut short by either bound simply
/// ends early; the reader continues after its last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit {
    /// Most events.
    pub events: usize,
    /// Most bytes of events, counted by [`StoredEvent::wire_bytes`].
    pub bytes: usize,
}

impl PageLimit {
    /// At most `events` events, however many bytes.
    pub fn events(events: usize) -> PageLimit {
        PageLimit {
            events,
            bytes: usize::MAX,
        }
    }

    /// Whether a page that holds `count` events of `bytes` bytes may take one more of
    /// `next_bytes` bytes.
    pub fn admits(&self, count: usize, bytes: usize, next_bytes: usize) -> bool {
        count < self.events && (count == 0 || bytes.saturating_add(next_bytes) <= self.bytes)
    }
}

/// How much history to keep per room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many newest events per room.
    pub max_events: u64,
    /// Forget events older than this.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            max_events: 1000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// A store failure. The event was not stored; the client may retry with the same id.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the operation.
    #[error("storage failed: {0}")]
    Backend(String),
    /// The store is shut down.
    #[error("storage is closed")]
    Closed,
}

/// History and sequencing storage. See the module docs for the contract.
pub trait Store: Send + Sync + 'static {
    /// Queues an append. The outcome arrives on the channel the store was opened with, in
    /// submission order. Never blocks.
    fn submit(&self, job: AppendJob);

    /// Reads up to `limit` events with seq > `after`, and the head, from one snapshot.
    fn read(
        &self,
        room: &RoomName,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, StoreError>> {
        self.read_bounded(room, after, PageLimit::events(limit))
    }

    /// Reads the events with seq > `after` that fit in `limit`, and the head, from one
    /// snapshot. Events past the bound are not read at all, so a page never holds more memory
    /// than the bound (and one event).
    fn read_bounded(
        &self,
        room: &RoomName,
        after: u64,
        limit: PageLimit,
    ) -> BoxFuture<'_, Result<Page, StoreError>>;

    /// Reads one page of the events that pass `read.filter`, forward or backward, looking at
    /// no more than `read.budget` candidate events (see `store::filter`), with the head, from
    /// one snapshot.
    fn read_filtered(
        &self,
        room: &RoomName,
        read: FilteredRead,
    ) -> BoxFuture<'_, Result<FilteredPage, StoreError>>;

    /// Resolves when every job submitted before the call has its outcome on the channel.
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// Applies a lock operation ([`locks::LockRow::apply`]), queued at the call in order with
    /// [`Store::submit`]'s appends (so an append submitted after a release sees it released).
    fn lock(
        &self,
        request: locks::LockRequest,
    ) -> BoxFuture<'static, Result<locks::LockOutcome, StoreError>>;

    /// The live grants of a room's locks at `at` (milliseconds since the Unix epoch), by name.
    fn locks(&self, room: &RoomName, at: u64) -> BoxFuture<'_, Result<Vec<LockInfo>, StoreError>>;

    /// A document's last snapshot (`crate::docs`), if the store has one.
    fn doc_snapshot(
        &self,
        room: &RoomName,
        doc: &EventId,
    ) -> BoxFuture<'_, Result<Option<DocSnapshot>, StoreError>>;

    /// Keeps `snapshot` as its document's snapshot, unless the one kept is newer
    /// ([`DocSnapshot::replaces`]).
    fn save_doc_snapshot(&self, snapshot: DocSnapshot) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Figures for `/metrics`, for stores that keep any (Redis).
    fn figures(&self) -> Option<StoreFigures> {
        None
    }

    /// Whether the store can serve requests now (`/readyz`). By default, a read answers.
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let probe = RoomName::parse("_readyz").expect("a valid room name");
            self.read(&probe, 0, 0).await.map(drop)
        })
    }
}

impl DocSnapshot {
    /// Whether this snapshot should replace `kept`: one of another epoch always does (it was
    /// made from the history there is now), one of the same epoch only with a higher seq.
    pub fn replaces(&self, kept: &DocSnapshot) -> bool {
        self.epoch != kept.epoch || self.seq > kept.seq
    }
}

/// A store's figures for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreFigures {
    /// Append round trips (pipelines of append scripts) sent.
    pub append_round_trips: u64,
    /// Their total duration, in microseconds.
    pub append_round_trip_micros: u64,
    /// The longest one, in microseconds.
    pub append_round_trip_micros_max: u64,
}

/// The sending half of a store's outcome channel.
pub type OutcomeSender = mpsc::UnboundedSender<AppendDone>;

/// Makes a fresh random epoch below 2^53.
pub fn random_epoch() -> u64 {
    use rand::Rng;
    rand::rng().random_range(1..=chorus_sdk::wire::MAX_SAFE_INTEGER)
}

#[cfg(test)]
pub(crate) mod contract {
    //! One behavioural test suite that every store must pass.

    use super::*;
    use chorus_sdk::wire::Json;

    pub(crate) fn request(room: &str, id: &str, at: u64, if_seq: Option<u64>) -> AppendRequest {
        request_from("ana", room, id, at, if_seq)
    }

    pub(crate) fn request_from(
        from: &str,
        room: &str,
        id: &str,
        at: u64,
        if_seq: Option<u64>,
    ) -> AppendRequest {
        AppendRequest {
            room: RoomName::parse(room).unwrap(),
            id: EventId::parse(id).unwrap(),
            from: from.into(),
            at,
            body: Json::from_text(format!(r#"{{"n":"{id}"}}"#)).unwrap(),
            if_seq,
            if_lock: None,
        }
    }

    pub(crate) async fn append(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
        request: AppendRequest,
    ) -> AppendOutcome {
        store.submit(AppendJob {
            origin: Origin::Conn(1),
            request,
        });
        outcomes
            .recv()
            .await
            .expect("store answers")
            .result
            .expect("store works")
    }

    fn seq_of(outcome: &AppendOutcome) -> u64 {
        match outcome {
            AppendOutcome::Stored(stored) => stored.seq(),
            other => panic!("expected stored, got {other:?}"),
        }
    }

    /// Ids are idempotency keys per sender (issue 14): `mallory` publishing `ana`'s next id
    /// first neither takes `ana`'s event's place nor makes it a duplicate; each sender's retry is
    /// still a duplicate of its own event.
    async fn check_ids_are_per_sender(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
        now: u64,
    ) {
        let first = append(
            store,
            outcomes,
            request_from("mallory", "c", "x", now, None),
        )
        .await;
        assert_eq!(seq_of(&first), 1);
        let victim = append(store, outcomes, request_from("ana", "c", "x", now, None)).await;
        assert_eq!(
            seq_of(&victim),
            2,
            "another sender's equal id is no duplicate"
        );
        assert_eq!(
            append(store, outcomes, request_from("ana", "c", "x", now, None)).await,
            AppendOutcome::Duplicate { seq: 2 },
            "a sender's retry is a duplicate of its own event"
        );
        assert_eq!(
            append(
                store,
                outcomes,
                request_from("mallory", "c", "x", now, None)
            )
            .await,
            AppendOutcome::Duplicate { seq: 1 }
        );
        let page = store
            .read(&RoomName::parse("c").unwrap(), 0, 10)
            .await
            .unwrap();
        let kept: Vec<(u64, &str)> = page
            .events
            .iter()
            .map(|e| (e.seq(), e.event.from.as_str()))
            .collect();
        assert_eq!(kept, vec![(1, "mallory"), (2, "ana")]);
        assert_eq!(page.events[1].event.body.as_text(), r#"{"n":"x"}"#);
    }

    /// Reads bounded by bytes ([`PageLimit`]): a page ends before the event that would take it
    /// past its bytes, but always holds at least one event.
    pub(crate) async fn check_page_bytes(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
    ) {
        let now = crate::clock::unix_ms_now();
        let room = RoomName::parse("big").unwrap();
        for n in 1..=5 {
            let mut big = request("big", &n.to_string(), now, None);
            big.body = Json::from_text(format!("\"{}\"", "x".repeat(1000))).unwrap();
            append(store, outcomes, big).await;
        }
        let read = |after, events, bytes| {
            let room = room.clone();
            async move {
                let page = store
                    .read_bounded(&room, after, PageLimit { events, bytes })
                    .await
                    .unwrap();
                assert_eq!(
                    page.head.head, 5,
                    "the head is known however short the page"
                );
                let seqs: Vec<u64> = page.events.iter().map(StoredEvent::seq).collect();
                seqs
            }
        };
        let one = store.read(&room, 0, 1).await.unwrap().events[0].wire_bytes();
        assert!(one > 1000, "an event's size counts its body");
        assert_eq!(
            read(0, 100, 2 * one).await,
            [1, 2],
            "two fit, the third would not"
        );
        assert_eq!(read(0, 100, 3 * one - 1).await, [1, 2]);
        assert_eq!(read(2, 100, 3 * one).await, [3, 4, 5]);
        assert_eq!(
            read(0, 2, usize::MAX).await,
            [1, 2],
            "the event count still bounds"
        );
        assert_eq!(
            read(0, 100, 0).await,
            [1],
            "one event always, so readers progress"
        );
        assert_eq!(read(5, 100, 0).await, Vec::<u64>::new());
    }

    /// For stores with one epoch per lineage (SQLite, memory; not Redis, see the module doc):
    /// rooms share it, known or not.
    pub(crate) async fn check_one_epoch_per_store(store: &dyn Store) {
        let mut epochs = Vec::new();
        for room in ["one-epoch-a", "one-epoch-b"] {
            let page = store
                .read(&RoomName::parse(room).unwrap(), 0, 1)
                .await
                .unwrap();
            epochs.push(page.head.epoch);
        }
        assert_eq!(epochs[0], epochs[1], "one epoch per store lineage");
    }

    /// Sequencing, dedupe, `if_seq`, reads, and count retention (`max_events` must be 5).
    /// Document snapshots: none until saved; bytes kept exactly; an older one of the same
    /// epoch never replaces a newer one, one of another epoch always does; per room and name.
    async fn check_doc_snapshots(store: &dyn Store) {
        let room = RoomName::parse("docs").unwrap();
        let doc = EventId::parse("notes").unwrap();
        let snapshot = |epoch: u64, seq: u64| DocSnapshot {
            room: room.clone(),
            doc: doc.clone(),
            epoch,
            seq,
            state: (0..=255u8).chain([seq as u8]).collect(),
        };
        assert_eq!(store.doc_snapshot(&room, &doc).await.unwrap(), None);
        store.save_doc_snapshot(snapshot(7, 5)).await.unwrap();
        assert_eq!(
            store.doc_snapshot(&room, &doc).await.unwrap(),
            Some(snapshot(7, 5))
        );
        store.save_doc_snapshot(snapshot(7, 3)).await.unwrap();
        assert_eq!(
            store.doc_snapshot(&room, &doc).await.unwrap(),
            Some(snapshot(7, 5)),
            "an older snapshot does not replace a newer one"
        );
        store.save_doc_snapshot(snapshot(7, 9)).await.unwrap();
        assert_eq!(
            store.doc_snapshot(&room, &doc).await.unwrap(),
            Some(snapshot(7, 9))
        );
        store.save_doc_snapshot(snapshot(8, 1)).await.unwrap();
        assert_eq!(
            store.doc_snapshot(&room, &doc).await.unwrap(),
            Some(snapshot(8, 1)),
            "a snapshot of another epoch replaces it"
        );
        let other = EventId::parse("other").unwrap();
        assert_eq!(store.doc_snapshot(&room, &other).await.unwrap(), None);
        let elsewhere = RoomName::parse("docs-2").unwrap();
        assert_eq!(store.doc_snapshot(&elsewhere, &doc).await.unwrap(), None);
    }

    pub(crate) async fn check_store(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
    ) {
        let now = crate::clock::unix_ms_now();
        assert_eq!(
            seq_of(&append(store, outcomes, request("a", "1", now, None)).await),
            1
        );
        assert_eq!(
            seq_of(&append(store, outcomes, request("a", "2", now, Some(1))).await),
            2
        );
        assert_eq!(
            seq_of(&append(store, outcomes, request("b", "1", now, None)).await),
            1,
            "seqs are per room"
        );
        assert_eq!(
            append(store, outcomes, request("a", "1", now, None)).await,
            AppendOutcome::Duplicate { seq: 1 }
        );
        assert_eq!(
            append(store, outcomes, request("a", "3", now, Some(1))).await,
            AppendOutcome::Conflict { head: 2 }
        );
        assert_eq!(
            append(store, outcomes, request("a", "2", now, Some(0))).await,
            AppendOutcome::Duplicate { seq: 2 },
            "a stored id is a duplicate whatever its if_seq says"
        );
        check_ids_are_per_sender(store, outcomes, now).await;
        check_doc_snapshots(store).await;
        // Many jobs in flight at once keep their order and get one outcome each.
        for n in 3..=9 {
            store.submit(AppendJob {
                origin: Origin::Conn(n),
                request: request("a", &n.to_string(), now, None),
            });
        }
        for n in 3..=9 {
            let done = outcomes.recv().await.unwrap();
            assert_eq!(done.origin, Origin::Conn(n));
            assert_eq!(seq_of(&done.result.unwrap()), n);
        }
        store.flush().await;

        let page = store
            .read(&RoomName::parse("a").unwrap(), 0, 100)
            .await
            .unwrap();
        assert_eq!(page.head.head, 9);
        assert_eq!(page.head.oldest, 5, "only the newest 5 are kept");
        let seqs: Vec<u64> = page.events.iter().map(StoredEvent::seq).collect();
        assert_eq!(seqs, vec![5, 6, 7, 8, 9]);
        assert_eq!(page.events[0].event.body.as_text(), r#"{"n":"5"}"#);
        assert_eq!(page.events[0].event.from, "ana");
        assert!(!page.head.covers_after(3));
        assert!(page.head.covers_after(4));
        let page = store
            .read(&RoomName::parse("a").unwrap(), 6, 2)
            .await
            .unwrap();
        let seqs: Vec<u64> = page.events.iter().map(StoredEvent::seq).collect();
        assert_eq!(seqs, vec![7, 8]);
        // A cursor past every seq reads nothing, however large (SQLite's integers are signed).
        for after in [10, 1 << 63, u64::MAX] {
            let page = store
                .read(&RoomName::parse("a").unwrap(), after, 10)
                .await
                .unwrap();
            assert_eq!((page.head.head, page.events.len()), (9, 0), "after {after}");
        }
        let empty = store
            .read(&RoomName::parse("nobody-here").unwrap(), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            (empty.head.head, empty.head.oldest, empty.events.len()),
            (0, 1, 0)
        );
        let nobody = RoomName::parse("nobody-here").unwrap();
        let again = store.read(&nobody, 0, 10).await.unwrap();
        assert_eq!(again.head, empty.head, "an unknown room's epoch is stable");
        match append(store, outcomes, request("nobody-here", "1", now, None)).await {
            AppendOutcome::Stored(stored) => assert_eq!(
                (stored.epoch, stored.seq()),
                (empty.head.epoch, 1),
                "the first append keeps the epoch a read reported"
            ),
            other => panic!("expected stored, got {other:?}"),
        }
        let page_a = store
            .read(&RoomName::parse("a").unwrap(), 0, 1)
            .await
            .unwrap();
        assert_eq!(
            page_a.head.epoch, page.head.epoch,
            "a room's epoch is stable"
        );
        // A trimmed id is no longer deduplicated: the window is the kept history.
        assert_eq!(
            seq_of(&append(store, outcomes, request("a", "1", now, None)).await),
            10
        );
        // Age retention: an event older than max_age disappears from reads.
        let old = now - 10 * 24 * 3600 * 1000;
        assert_eq!(
            seq_of(&append(store, outcomes, request("old", "x", old, None)).await),
            1
        );
        let page = store
            .read(&RoomName::parse("old").unwrap(), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            (page.head.head, page.head.oldest, page.events.len()),
            (1, 2, 0)
        );
    }

    pub(crate) fn lock_request(room: &str, op: locks::LockOp, at: u64) -> locks::LockRequest {
        locks::LockRequest {
            room: RoomName::parse(room).unwrap(),
            name: EventId::parse("title").unwrap(),
            op,
            at,
        }
    }

    pub(crate) fn acquire(user: &str, conn: &str, ttl_ms: u64) -> locks::LockOp {
        locks::LockOp::Acquire {
            user: user.into(),
            conn: conn.into(),
            ttl_ms,
        }
    }

    /// Lock rows are forgotten once forgettable (`locks::LockRow::forgettable`): at a room's
    /// acquire, the rows whose grant ended, and whose token is below the time, a minute before;
    /// rows that ended later stay, and a name used again still gets a larger token. `rows`
    /// counts the rows of `room`, which must be unused.
    pub(crate) async fn check_forgotten_locks(
        store: &dyn Store,
        room: &str,
        rows: impl AsyncFn() -> usize,
    ) {
        use locks::FORGET_AFTER_MS;
        let now = crate::clock::unix_ms_now();
        let lock = async |name: &str, op, at| {
            let request = locks::LockRequest {
                name: EventId::parse(name).unwrap(),
                ..lock_request(room, op, at)
            };
            store.lock(request).await.unwrap()
        };
        let release = |token| locks::LockOp::Release {
            user: "ana".into(),
            token,
            conn: None,
        };
        let mut first = 0;
        for n in 0..100 {
            let (name, at) = (format!("section-{n}"), now + 2 * n);
            let token = granted(&lock(&name, acquire("ana", "n-1", 60_000), at).await);
            first = first.max(token);
            let released = lock(&name, release(token), at + 1).await;
            assert!(matches!(released, locks::LockOutcome::Changed(..)));
        }
        for n in 0..10 {
            lock(&format!("lapse-{n}"), acquire("ana", "n-1", 5), now + 1000).await;
        }
        assert_eq!(rows().await, 110, "ended rows stay at least a minute");
        let later = now + 1010 + FORGET_AFTER_MS;
        lock("other", acquire("ben", "n-2", 60_000), later).await;
        assert_eq!(
            rows().await,
            1,
            "an acquire deletes the rows ended a minute before"
        );
        let again = granted(&lock("section-0", acquire("ben", "n-2", 10), later).await);
        assert!(again > first, "a forgotten name still gets a larger token");
        let token = granted(&lock("recent", acquire("ana", "n-1", 60_000), later).await);
        lock("recent", release(token), later + 1).await;
        lock(
            "another",
            acquire("ana", "n-1", 60_000),
            later + FORGET_AFTER_MS / 2,
        )
        .await;
        assert_eq!(rows().await, 4, "rows ended less than a minute before stay");
    }

    /// The token of a grant (panics on any other outcome).
    pub(crate) fn granted(outcome: &locks::LockOutcome) -> u64 {
        match outcome {
            locks::LockOutcome::Changed(chorus_sdk::wire::LockChange::Granted, grant) => {
                grant.token
            }
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    /// Locks: one holder at a time, renewals, releases, expiry judged by time alone, tokens
    /// that only grow, and `if_lock` checked with the append (in submission order with lock
    /// operations). `room` must be unused.
    pub(crate) async fn check_locks(
        store: &dyn Store,
        outcomes: &mut mpsc::UnboundedReceiver<AppendDone>,
        room: &str,
    ) {
        use locks::{LockOp, LockOutcome};
        let now = crate::clock::unix_ms_now();
        let name = RoomName::parse(room).unwrap();
        let fenced = |id: &str, from: &str, token: u64| {
            let mut request = request_from(from, room, id, now, None);
            request.if_lock = Some(LockFence {
                name: EventId::parse("title").unwrap(),
                token,
            });
            request
        };
        let first = store
            .lock(lock_request(room, acquire("ana", "n-1", 60_000), now))
            .await
            .unwrap();
        let token = granted(&first);
        assert!(token >= now, "a token is at least the grant's time");
        match store
            .lock(lock_request(room, acquire("ben", "n-2", 60_000), now))
            .await
            .unwrap()
        {
            LockOutcome::Held(held) => {
                assert_eq!((held.user.as_str(), held.token), ("ana", token));
                assert_eq!(held.until, now + 60_000);
            }
            other => panic!("expected held, got {other:?}"),
        }
        let listed = store.locks(&name, now).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].user.as_str(), listed[0].conn.as_str()),
            ("ana", "n-1")
        );
        assert!(
            store.locks(&name, now + 60_000).await.unwrap().is_empty(),
            "lapsed at until"
        );

        // The holder's fenced publish is stored; a stale token's, or another user's, is not.
        assert!(matches!(
            append(store, outcomes, fenced("f1", "ana", token)).await,
            AppendOutcome::Stored(_)
        ));
        match append(store, outcomes, fenced("f2", "ana", token - 1)).await {
            AppendOutcome::LockLost { current } => {
                assert_eq!(current.map(|c| c.token), Some(token))
            }
            other => panic!("expected lock_lost, got {other:?}"),
        }
        assert!(matches!(
            append(store, outcomes, fenced("f3", "ben", token)).await,
            AppendOutcome::LockLost { .. }
        ));

        // A release queued before a fenced append is seen by it.
        let release = store.lock(lock_request(
            room,
            LockOp::Release {
                user: "ana".into(),
                token,
                conn: None,
            },
            now,
        ));
        store.submit(AppendJob {
            origin: Origin::Conn(7),
            request: fenced("f4", "ana", token),
        });
        assert!(matches!(
            release.await.unwrap(),
            LockOutcome::Changed(chorus_sdk::wire::LockChange::Released, _)
        ));
        let done = outcomes.recv().await.unwrap();
        assert_eq!(
            done.result.unwrap(),
            AppendOutcome::LockLost { current: None }
        );
        assert!(store.locks(&name, now).await.unwrap().is_empty());

        // Another holder gets a larger token; the old holder's renewal is refused.
        let second = granted(
            &store
                .lock(lock_request(room, acquire("ben", "n-2", 1_000), now + 1))
                .await
                .unwrap(),
        );
        assert!(second > token, "tokens strictly increase per lock");
        let renew = |user: &str, token, at| {
            lock_request(
                room,
                LockOp::Renew {
                    user: user.into(),
                    conn: "n-9".into(),
                    token,
                    ttl_ms: 1_000,
                },
                at,
            )
        };
        assert_eq!(
            store.lock(renew("ana", token, now + 2)).await.unwrap(),
            LockOutcome::Lost(store.locks(&name, now + 2).await.unwrap().pop())
        );
        match store.lock(renew("ben", second, now + 500)).await.unwrap() {
            LockOutcome::Changed(chorus_sdk::wire::LockChange::Renewed, grant) => {
                assert_eq!((grant.conn.as_str(), grant.until), ("n-9", now + 1_500));
            }
            other => panic!("expected renewed, got {other:?}"),
        }
        // Not renewed: it lapses by time alone, and the next grant's token is larger still.
        let third = granted(
            &store
                .lock(lock_request(
                    room,
                    acquire("ana", "n-1", 1_000),
                    now + 1_500,
                ))
                .await
                .unwrap(),
        );
        assert!(third > second);
    }

    /// A store opened again on the same data (or, for the memory store, a new one) grants
    /// larger tokens than it granted before.
    pub(crate) async fn first_token(store: &dyn Store, room: &str, at: u64) -> u64 {
        granted(
            &store
                .lock(lock_request(room, acquire("ana", "n-1", 10), at))
                .await
                .unwrap(),
        )
    }
}
