//! [`RecentIds`]: the (sender, id) keys of a room's last delivered events, for the timeline's
//! dedupe by id.
//!
//! It is asked about every received event, so it neither clones a key to look one up nor moves
//! keys around: the keys sit in a ring in delivery order (once it is full, the oldest is
//! overwritten), and a list of ring slots sorted by key finds one by binary search. Keeping that
//! list sorted moves two-byte slot numbers, not keys.

use crate::wire::EventId;

/// The last `capacity` distinct (sender, id) keys remembered.
#[derive(Debug)]
pub(crate) struct RecentIds {
    capacity: usize,
    /// Keys in the order they were remembered; `next` is overwritten next once it is full.
    ring: Vec<(String, EventId)>,
    next: usize,
    /// Every slot of `ring`, sorted by its key.
    sorted: Vec<u16>,
}

impl RecentIds {
    /// Remembers up to `capacity` keys (at most 65,536: slots are two bytes).
    pub(crate) fn new(capacity: usize) -> RecentIds {
        assert!(
            (1..=usize::from(u16::MAX) + 1).contains(&capacity),
            "1 to 65,536 keys"
        );
        RecentIds {
            capacity,
            ring: Vec::new(),
            next: 0,
            sorted: Vec::new(),
        }
    }

    /// Where `(from, id)` is in `sorted` (`Ok`), or where it would go (`Err`).
    fn search(&self, from: &str, id: &EventId) -> Result<usize, usize> {
        self.sorted.binary_search_by(|&slot| {
            let (f, i) = &self.ring[usize::from(slot)];
            (f.as_str(), i).cmp(&(from, id))
        })
    }

    /// Whether `(from, id)` is remembered.
    #[cfg(test)]
    pub(crate) fn contains(&self, from: &str, id: &EventId) -> bool {
        self.search(from, id).is_ok()
    }

    /// Remembers `(from, id)`, forgetting the oldest key once full; false (and nothing changes)
    /// when it is remembered already.
    pub(crate) fn insert(&mut self, from: &str, id: &EventId) -> bool {
        let Err(mut at) = self.search(from, id) else {
            return false;
        };
        let key = (from.to_owned(), id.clone());
        let slot = if self.ring.len() < self.capacity {
            self.ring.push(key);
            self.ring.len() - 1
        } else {
            let slot = self.next;
            let (old_from, old_id) = &self.ring[slot];
            let old = self.search(old_from, old_id).expect("every slot is sorted");
            self.sorted.remove(old);
            if old < at {
                at -= 1;
            }
            self.ring[slot] = key;
            self.next = (slot + 1) % self.capacity;
            slot
        };
        self.sorted
            .insert(at, u16::try_from(slot).expect("at most 65,536 slots"));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn id(n: u64) -> EventId {
        EventId::parse(format!("e{n}")).unwrap()
    }

    /// Against a plain list of the last keys, over a deterministic stream of keys that repeat
    /// (a small key space) and cross the capacity many times.
    #[test]
    fn matches_a_list_of_the_last_keys() {
        for capacity in [1, 2, 7, 64] {
            let mut recent = RecentIds::new(capacity);
            let mut model: VecDeque<(String, EventId)> = VecDeque::new();
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ capacity as u64;
            for _ in 0..20_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let from = ["ana", "bo", "cy"][(state % 3) as usize];
                let key = (from.to_owned(), id(state / 3 % (capacity as u64 * 3)));
                let known = model.contains(&key);
                assert_eq!(recent.contains(&key.0, &key.1), known, "{key:?}");
                assert_eq!(recent.insert(&key.0, &key.1), !known, "{key:?}");
                if !known {
                    if model.len() == capacity {
                        model.pop_front();
                    }
                    model.push_back(key);
                }
                assert_eq!(recent.sorted.len(), model.len());
            }
        }
    }

    #[test]
    fn the_sender_is_part_of_the_key() {
        let mut recent = RecentIds::new(4);
        assert!(recent.insert("mallory", &id(1)));
        assert!(!recent.contains("ana", &id(1)));
        assert!(recent.insert("ana", &id(1)));
        assert!(!recent.insert("ana", &id(1)));
    }
}
