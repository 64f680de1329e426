//! History and sequencing storage behind one trait, chosen at start-up.
//!
//! The store is the room's *sequencer*: it decides each durable event's seq (gapless, strictly
//! increasing per room), refuses duplicates by client id, checks `if_seq`, and keeps the history
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

pub mod memory;
pub mod redis;
pub mod sqlite;

use std::time::Duration;

use chorus_sdk::wire::{Event, EventId, Json, RoomName};
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
}

/// An append together with who is waiting for its outcome.
#[derive(Debug)]
pub struct AppendJob {
    /// Handed back unchanged with the outcome, so the hub can route the ack.
    pub origin: Origin,
    /// The append itself.
    pub request: AppendRequest,
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
}

/// What became of an append. Expected conditions are outcomes, not errors.
#[derive(Clone, Debug, PartialEq)]
pub enum AppendOutcome {
    /// Stored under a new seq; the hub fans it out.
    Stored(StoredEvent),
    /// That id was already stored in the room (within the history window) under `seq`.
    Duplicate {
        /// The original seq.
        seq: u64,
    },
    /// `if_seq` did not match the room's head.
    Conflict {
        /// The current head.
        head: u64,
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
    ) -> BoxFuture<'_, Result<Page, StoreError>>;

    /// Resolves when every job submitted before the call has its outcome on the channel.
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// Whether the store can serve requests now (`/readyz`). By default, a read answers.
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let probe = RoomName::parse("_readyz").expect("a valid room name");
            self.read(&probe, 0, 0).await.map(drop)
        })
    }
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
        AppendRequest {
            room: RoomName::parse(room).unwrap(),
            id: EventId::parse(id).unwrap(),
            from: "ana".into(),
            at,
            body: Json::from_text(format!(r#"{{"n":"{id}"}}"#)).unwrap(),
            if_seq,
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
}
