//! [`Map`]: the client core's ordered map, a `Vec` of entries sorted by key.
//!
//! The core's maps are small (rooms, users in a room, held events, own pending publishes) and
//! read far more often than written, so a sorted `Vec` with binary search is the right shape;
//! it is written here instead of taken from `litemap` because each map type instantiates the
//! code of every method it uses, and this one has only what the core needs, in its simplest
//! form (the browser SDK has a size budget: ARCHITECTURE.md, "Browser build").

use std::borrow::Borrow;

/// An ordered map: entries sorted by key, each key once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Map<K, V>(Vec<(K, V)>);

impl<K, V> Default for Map<K, V> {
    fn default() -> Map<K, V> {
        Map(Vec::new())
    }
}

impl<K: Ord, V> Map<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Map<K, V> {
        Map::default()
    }

    /// Where `key` is (`Ok`), or where it would go (`Err`).
    fn search<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value for `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.search(key).ok()?;
        Some(&self.0[at].1)
    }

    /// The value for `key`, to change.
    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let at = self.search(key).ok()?;
        Some(&mut self.0[at].1)
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.search(key).is_ok()
    }

    /// Sets the value for `key`; returns the one it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    /// The value for `key`, inserting `value()` first if there is none.
    pub(crate) fn get_or_insert_with(&mut self, key: K, value: impl FnOnce() -> V) -> &mut V {
        let at = match self.search(&key) {
            Ok(at) => at,
            Err(at) => {
                self.0.insert(at, (key, value()));
                at
            }
        };
        &mut self.0[at].1
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let at = self.search(key).ok()?;
        Some(self.0.remove(at).1)
    }

    /// Keeps only the entries `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(key, value)| keep(key, value));
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

impl<K, V> Map<K, V> {
    /// The entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(key, value)| (key, value))
    }

    /// The entries in key order, values to change.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.0.iter_mut().map(|(key, value)| (&*key, value))
    }

    /// The keys in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(key, _)| key)
    }

    /// The values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, value)| value)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_unique_whatever_the_order_they_come_in() {
        let mut map = Map::new();
        for (key, value) in [(5, "e"), (1, "a"), (9, "i"), (1, "A")] {
            map.insert(key, value);
        }
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [1, 5, 9]);
        assert_eq!(
            map.get(&1),
            Some(&"A"),
            "a repeated key keeps its last value"
        );
        assert_eq!(map.insert(3, "c"), None);
        assert_eq!(map.insert(3, "C"), Some("c"));
        assert_eq!(*map.get_or_insert_with(7, || "g"), "g");
        assert_eq!(*map.get_or_insert_with(7, || "x"), "g");
        assert_eq!(map.remove(&5), Some("e"));
        assert_eq!(map.remove(&5), None);
        map.retain(|key, _| *key != 9);
        assert_eq!(
            map.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
            [(1, "A"), (3, "C"), (7, "g")]
        );
        *map.get_mut(&1).unwrap() = "z";
        assert!(map.contains_key(&1) && !map.contains_key(&2));
        assert_eq!(map.values().copied().collect::<Vec<_>>(), ["z", "C", "g"]);
        map.clear();
        assert!(map.is_empty());
    }
}
