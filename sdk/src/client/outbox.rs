//! The offline outbox: durable publishes waiting for their ack, in order, bounded by count
//! and bytes, expiring after a time-to-live (reported, never silently dropped), and persisted
//! (through the client's storage outputs) so a reload or restart loses nothing.

use crate::text::{Message, concat, decimal, message_display};
use crate::wire::{EventId, OutboxRecord, StoredOutbox};

/// Outbox bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutboxConfig {
    /// Most waiting publishes.
    pub max_items: usize,
    /// Most bytes of bodies waiting.
    pub max_bytes: usize,
    /// A publish not acked within this many milliseconds of being made is given up.
    pub ttl_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> OutboxConfig {
        OutboxConfig {
            max_items: 1000,
            max_bytes: 1024 * 1024,
            ttl_ms: 24 * 3600 * 1000,
        }
    }
}

/// Why a publish was not queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxError {
    /// The outbox holds `max_items` publishes already.
    TooManyItems {
        /// Waiting publishes.
        items: usize,
        /// The limit.
        limit: usize,
    },
    /// Adding this body would exceed `max_bytes`.
    TooManyBytes {
        /// Bytes waiting.
        bytes: usize,
        /// This body's size.
        adding: usize,
        /// The limit.
        limit: usize,
    },
}

impl Message for OutboxError {
    fn message(&self) -> String {
        let n = |n: usize| decimal(n as u64);
        match *self {
            OutboxError::TooManyItems { items, limit } => concat(&[
                "the outbox is full: ",
                &n(items),
                " publishes are waiting (the limit is ",
                &n(limit),
                ")",
            ]),
            OutboxError::TooManyBytes {
                bytes,
                adding,
                limit,
            } => concat(&[
                "the outbox is full: ",
                &n(bytes),
                " bytes are waiting and this body has ",
                &n(adding),
                " (the limit is ",
                &n(limit),
                ")",
            ]),
        }
    }
}

message_display!(OutboxError);

#[derive(Debug)]
struct Entry {
    record: OutboxRecord,
    /// The link it was last sent on (`None`: not sent on the current link).
    sent_on: Option<u64>,
}

/// Waiting publishes, oldest first.
#[derive(Debug)]
pub struct Outbox {
    config: OutboxConfig,
    /// A `Vec`, not a `VecDeque`: removing from the front moves at most `max_items` small
    /// entries, and a second collection type costs wasm size in the browser SDK.
    entries: Vec<Entry>,
    bytes: usize,
}

impl Outbox {
    /// An outbox holding `restored` (from storage), with these bounds.
    pub fn new(config: OutboxConfig, restored: StoredOutbox) -> Outbox {
        let mut outbox = Outbox {
            config,
            entries: Vec::new(),
            bytes: 0,
        };
        for record in restored.entries {
            outbox.bytes += record.body.len();
            outbox.entries.push(Entry {
                record,
                sent_on: None,
            });
        }
        outbox
    }

    /// Queues a publish.
    pub fn push(&mut self, record: OutboxRecord) -> Result<(), OutboxError> {
        if self.entries.len() >= self.config.max_items {
            return Err(OutboxError::TooManyItems {
                items: self.entries.len(),
                limit: self.config.max_items,
            });
        }
        let adding = record.body.len();
        if self.bytes + adding > self.config.max_bytes {
            return Err(OutboxError::TooManyBytes {
                bytes: self.bytes,
                adding,
                limit: self.config.max_bytes,
            });
        }
        self.bytes += adding;
        self.entries.push(Entry {
            record,
            sent_on: None,
        });
        Ok(())
    }

    /// Removes an answered publish; `None` if it was not waiting.
    pub fn remove(&mut self, id: &EventId) -> Option<OutboxRecord> {
        let index = self.entries.iter().position(|e| &e.record.id == id)?;
        let entry = self.entries.remove(index);
        self.bytes -= entry.record.body.len();
        Some(entry.record)
    }

    /// Publishes of `user` (or of no user yet) not yet sent on `link`, oldest first; marks them
    /// sent on it. Another user's publishes are held: kept, never sent as `user`. Nothing
    /// while the user is unknown (`None`).
    pub fn unsent(&mut self, link: u64, user: Option<&str>) -> Vec<OutboxRecord> {
        let mut unsent = Vec::new();
        if user.is_none() {
            return unsent;
        }
        for entry in &mut self.entries {
            let own = entry.record.user.is_none() || entry.record.user.as_deref() == user;
            if own && entry.sent_on != Some(link) {
                entry.sent_on = Some(link);
                unsent.push(entry.record.clone());
            }
        }
        unsent
    }

    /// Gives the publishes made before the server named the user (or restored without one) to
    /// `user`; whether any changed (the outbox must then be saved).
    pub fn claim(&mut self, user: &str) -> bool {
        let mut changed = false;
        for entry in &mut self.entries {
            if entry.record.user.is_none() {
                entry.record.user = Some(user.to_owned());
                changed = true;
            }
        }
        changed
    }

    /// Marks a publish to be sent again (after a transient refusal).
    pub fn resend(&mut self, id: &EventId) {
        if let Some(entry) = self.entries.iter_mut().find(|e| &e.record.id == id) {
            entry.sent_on = None;
        }
    }

    /// Removes and returns publishes older than the time-to-live. Entries are in publish
    /// order, so they expire from the front (one published later never expires before one
    /// published earlier, even if the wall clock went backwards in between).
    pub fn expire(&mut self, now_ms: u64) -> Vec<OutboxRecord> {
        let ttl_ms = self.config.ttl_ms;
        let count = self
            .entries
            .iter()
            .take_while(|e| now_ms.saturating_sub(e.record.created_ms) >= ttl_ms)
            .count();
        let mut expired = Vec::with_capacity(count);
        for entry in self.entries.drain(..count) {
            self.bytes -= entry.record.body.len();
            expired.push(entry.record);
        }
        expired
    }

    /// When the oldest publish expires, in Unix milliseconds.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.entries
            .first()
            .map(|e| e.record.created_ms + self.config.ttl_ms)
    }

    /// Number of waiting publishes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Copies of the waiting publishes, oldest first.
    fn records(&self) -> Vec<OutboxRecord> {
        let mut records = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            records.push(entry.record.clone());
        }
        records
    }

    /// The storage value for the current contents.
    pub fn stored(&self) -> StoredOutbox {
        StoredOutbox {
            entries: self.records(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Json, RoomName};

    fn record(id: &str, body: &str, created_ms: u64) -> OutboxRecord {
        OutboxRecord {
            room: RoomName::parse("r").unwrap(),
            id: EventId::parse(id).unwrap(),
            body: Json::from_text(body).unwrap(),
            if_seq: None,
            created_ms,
            user: None,
            if_lock: None,
        }
    }

    /// The ids of records, in order.
    fn ids(records: Vec<OutboxRecord>) -> Vec<String> {
        records.into_iter().map(|r| r.id.to_string()).collect()
    }

    #[test]
    fn bounded_by_count_and_bytes_with_clear_errors() {
        let mut outbox = Outbox::new(
            OutboxConfig {
                max_items: 2,
                max_bytes: 10,
                ttl_ms: 1000,
            },
            StoredOutbox::default(),
        );
        outbox.push(record("a", "\"1234\"", 0)).unwrap();
        assert!(matches!(
            outbox.push(record("b", "\"123456\"", 0)),
            Err(OutboxError::TooManyBytes {
                bytes: 6,
                adding: 8,
                limit: 10
            })
        ));
        outbox.push(record("b", "1", 0)).unwrap();
        let err = outbox.push(record("c", "1", 0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the outbox is full: 2 publishes are waiting (the limit is 2)"
        );
        outbox.remove(&EventId::parse("a").unwrap()).unwrap();
        outbox.push(record("c", "\"1234567\"", 0)).unwrap(); // 1 + 9 bytes: exactly the limit
    }

    #[test]
    fn sends_each_publish_once_per_link_in_order_and_again_on_a_new_link() {
        let mut outbox = Outbox::new(OutboxConfig::default(), StoredOutbox::default());
        for id in ["a", "b"] {
            outbox.push(record(id, "1", 0)).unwrap();
        }
        assert_eq!(ids(outbox.unsent(1, Some("me"))), ["a", "b"]);
        outbox.push(record("c", "1", 0)).unwrap();
        assert_eq!(ids(outbox.unsent(1, Some("me"))), ["c"]);
        outbox.remove(&EventId::parse("b").unwrap());
        assert_eq!(
            ids(outbox.unsent(2, Some("me"))),
            ["a", "c"],
            "a reconnect sends everything unacked again"
        );
        outbox.resend(&EventId::parse("c").unwrap());
        assert_eq!(ids(outbox.unsent(2, Some("me"))), ["c"]);
    }

    #[test]
    fn another_users_publishes_are_held_and_unclaimed_ones_go_to_the_welcomed_user() {
        let mut outbox = Outbox::new(OutboxConfig::default(), StoredOutbox::default());
        let of = |id: &str, user: Option<&str>| OutboxRecord {
            user: user.map(str::to_owned),
            ..record(id, "1", 0)
        };
        outbox.push(of("ana-1", Some("ana"))).unwrap();
        outbox.push(of("unclaimed", None)).unwrap();
        outbox.push(of("bob-1", Some("bob"))).unwrap();
        assert!(outbox.claim("bob"), "the unclaimed publish is bob's now");
        assert!(!outbox.claim("bob"), "nothing left to claim");
        assert_eq!(ids(outbox.unsent(1, Some("bob"))), ["unclaimed", "bob-1"]);
        assert_eq!(outbox.len(), 3, "ana's publish is held, not dropped");
        let mut reloaded = Outbox::new(
            OutboxConfig::default(),
            StoredOutbox::decode(&outbox.stored().encode()),
        );
        assert_eq!(
            ids(reloaded.unsent(1, Some("ana"))),
            ["ana-1"],
            "the user survives storage and ana's publish waits for her"
        );
    }

    #[test]
    fn expired_publishes_are_reported_and_the_rest_survive_a_reload() {
        let mut outbox = Outbox::new(
            OutboxConfig {
                ttl_ms: 100,
                ..OutboxConfig::default()
            },
            StoredOutbox::default(),
        );
        outbox.push(record("old", "1", 0)).unwrap();
        outbox.push(record("new", "2", 60)).unwrap();
        assert_eq!(outbox.next_expiry_ms(), Some(100));
        let expired = outbox.expire(120);
        assert_eq!(
            expired.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        let stored = StoredOutbox::decode(&outbox.stored().encode());
        let reloaded = Outbox::new(OutboxConfig::default(), stored);
        assert_eq!(reloaded.len(), 1);
        assert_eq!(
            StoredOutbox::decode("garbage"),
            StoredOutbox::default(),
            "damage reads as empty"
        );
    }
}
