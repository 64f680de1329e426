//! Storage for several tabs and users in the Rust browser client (`web`): the npm package's layout
//! (`pkg/src/chorus.js`; ARCHITECTURE.md, "Client storage"), so that Leptos tabs and JS tabs of
//! one origin keep their outboxes the same way, and never overwrite each other's.
//!
//! Every client keeps its outbox and remembered transport under
//! `<storage_prefix><url>|<user>|<tab>:` (a fresh tab id per client; url and user encoded as
//! `encodeURIComponent` does, so no server's or user's keys start with another's prefix), and a
//! lease there that its driver renews every 5 s and removes when its page goes away or
//! it closes. A client that starts adopts the outboxes of its user's clients on that server
//! whose lease is gone or [`STALE_MS`] old: a closed, reloaded or crashed tab's publishes are
//! sent by the next tab of its user that starts.
//!
//! Plain logic over a [`KeyValue`] store (`localStorage` in the driver, a map in the tests).

use crate::client::{OUTBOX_KEY, TRANSPORT_KEY};
use crate::text::concat;
use crate::wire::{self, StoredOutbox, uri_component};

/// A lease older than this is a tab that is gone (crashed, or its page closed unseen).
pub(crate) const STALE_MS: f64 = 15_000.0;

/// A tab's keys under `<tab>:`: the core's own two, and the lease.
const OUTBOX: &str = OUTBOX_KEY;
const TRANSPORT: &str = TRANSPORT_KEY;
const LEASE: &str = "lease";

/// The key-value storage the layout lives in.
pub(crate) trait KeyValue {
    /// Every key (none where storage is forbidden).
    fn keys(&self) -> Vec<String>;
    fn load(&self, key: &str) -> Option<String>;
    fn save(&self, key: &str, value: &str);
    fn remove(&self, key: &str);
}

/// Where one client's keys live.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TabKeys {
    /// `<storage_prefix><url>|`: the server's keys (and its last user, `<base>user`).
    base: String,
    /// `<base><user>|`: the user's tabs.
    user_prefix: String,
    /// This client's tab id.
    tab: String,
}

impl TabKeys {
    /// The keys of tab `tab` of the token's user (`sub`) on `url`. Without a token (a start
    /// offline) the user is the last one started here for that server, or none.
    pub(crate) fn new(
        store: &impl KeyValue,
        storage_prefix: &str,
        url: &str,
        token: &str,
        tab: String,
    ) -> TabKeys {
        let base = concat(&[storage_prefix, &uri_component(url), "|"]);
        let last_user = concat(&[base.as_str(), "user"]);
        let user = match subject(token) {
            Some(user) => user,
            None if token.is_empty() => store.load(&last_user).unwrap_or_default(),
            None => String::new(),
        };
        if !user.is_empty() {
            store.save(&last_user, &user);
        }
        let user_prefix = concat(&[base.as_str(), &uri_component(&user), "|"]);
        TabKeys {
            base,
            user_prefix,
            tab,
        }
    }

    /// The prefix the core's own keys (`chorus.outbox`, `chorus.transport`) go under.
    pub(crate) fn core_prefix(&self) -> String {
        concat(&[self.user_prefix.as_str(), &self.tab, ":"])
    }

    /// The lease's key.
    pub(crate) fn lease(&self) -> String {
        self.key_of(&self.tab, LEASE)
    }

    /// Takes over the outboxes (and the remembered transport) of this user's tabs on this
    /// server whose lease is gone or stale at `now_ms`: one moves as it is, several are merged
    /// in publish order. Their keys are removed only once the outbox is under this tab's (a
    /// crash in between sends twice, which the server dedupes; it never loses).
    pub(crate) fn adopt(&self, store: &impl KeyValue, now_ms: f64) {
        let mut others: Vec<String> = Vec::new();
        for key in store.keys() {
            let Some(rest) = key.strip_prefix(&self.user_prefix) else {
                continue;
            };
            let Some(other) = rest.rfind(':').map(|at| &rest[..at]) else {
                continue;
            };
            if other == self.tab || other.is_empty() || others.iter().any(|o| o == other) {
                continue;
            }
            let lease = store.load(&self.key_of(other, LEASE));
            let renewed = lease.and_then(|at| at.parse::<u64>().ok()).unwrap_or(0) as f64;
            if now_ms - renewed >= STALE_MS {
                others.push(other.to_owned());
            }
        }
        let outboxes: Vec<String> = others
            .iter()
            .filter_map(|other| store.load(&self.key_of(other, OUTBOX)))
            .collect();
        let merged = match outboxes.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            several => {
                let mut entries = Vec::new();
                for text in several {
                    if let Ok(outbox) = wire::json::from_str::<StoredOutbox>(text) {
                        entries.extend(outbox.entries);
                    }
                }
                entries.sort_by_key(|entry| entry.created_ms);
                Some(wire::json::to_string(&StoredOutbox { entries }))
            }
        };
        if let Some(merged) = merged {
            store.save(&self.key_of(&self.tab, OUTBOX), &merged);
        }
        for other in &others {
            if let Some(transport) = store.load(&self.key_of(other, TRANSPORT)) {
                store.save(&self.key_of(&self.tab, TRANSPORT), &transport);
            }
            for part in [OUTBOX, TRANSPORT, LEASE] {
                store.remove(&self.key_of(other, part));
            }
        }
    }

    /// Removes every key of this user on this server (all their tabs' outboxes, transports and
    /// leases) and the server's last-user key.
    pub(crate) fn sign_out(&self, store: &impl KeyValue) {
        let last_user = concat(&[self.base.as_str(), "user"]);
        for key in store.keys() {
            if key.starts_with(&self.user_prefix) || key == last_user {
                store.remove(&key);
            }
        }
    }

    fn key_of(&self, tab: &str, key: &str) -> String {
        concat(&[self.user_prefix.as_str(), tab, ":", key])
    }
}

/// A JWT's `sub`, read without checking the signature (the server does): `None` for a token
/// that is no JWT or has no string `sub`.
fn subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url(payload)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let claims = wire::json::parse(text).ok()?;
    claims.object().ok()?.get::<String>("sub").ok()
}

/// Decodes unpadded base64url (a JWT segment).
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Map(RefCell<BTreeMap<String, String>>);

    impl KeyValue for Map {
        fn keys(&self) -> Vec<String> {
            self.0.borrow().keys().cloned().collect()
        }
        fn load(&self, key: &str) -> Option<String> {
            self.0.borrow().get(key).cloned()
        }
        fn save(&self, key: &str, value: &str) {
            self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
        }
        fn remove(&self, key: &str) {
            self.0.borrow_mut().remove(key);
        }
    }

    /// An unsigned JWT for `sub` (the payload is all that is read).
    fn token(sub: &str) -> String {
        let payload = format!(r#"{{"sub":"{sub}","exp":9999999999}}"#);
        let mut encoded = String::new();
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for chunk in payload.as_bytes().chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                encoded.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            }
        }
        format!("eyJhbGciOiJIUzI1NiJ9.{encoded}.c2ln")
    }

    fn outbox(ids: &[(&str, u64)]) -> String {
        let entries = ids
            .iter()
            .map(|(id, at)| {
                format!(r#"{{"room":"r","id":"{id}","body":1,"created_ms":{at},"user":"ana"}}"#)
            })
            .collect::<Vec<_>>()
            .join(",");
        format!(r#"{{"entries":[{entries}]}}"#)
    }

    /// Where the core of the client with these keys saves its outbox (the core's own key under
    /// the prefix it is given), which adoption must find.
    fn outbox_of(keys: &TabKeys) -> String {
        concat(&[&keys.core_prefix(), crate::client::OUTBOX_KEY])
    }

    fn transport_of(keys: &TabKeys) -> String {
        concat(&[&keys.core_prefix(), crate::client::TRANSPORT_KEY])
    }

    fn ids(text: &str) -> Vec<String> {
        wire::json::from_str::<StoredOutbox>(text)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.id.to_string())
            .collect()
    }

    #[test]
    fn keys_follow_the_npm_packages_layout() {
        let store = Map::default();
        let keys = TabKeys::new(
            &store,
            "chorus:",
            "https://rt.example.com",
            &token("ana b"),
            "t1".into(),
        );
        assert_eq!(
            keys.core_prefix(),
            "chorus:https%3A%2F%2Frt.example.com|ana%20b|t1:"
        );
        assert_eq!(
            keys.lease(),
            "chorus:https%3A%2F%2Frt.example.com|ana%20b|t1:lease"
        );
        assert_eq!(
            store
                .load("chorus:https%3A%2F%2Frt.example.com|user")
                .as_deref(),
            Some("ana b")
        );
        // Started without a token, a client is the last user started here.
        let offline = TabKeys::new(&store, "chorus:", "https://rt.example.com", "", "t2".into());
        assert_eq!(
            offline.core_prefix(),
            "chorus:https%3A%2F%2Frt.example.com|ana%20b|t2:"
        );
        // A token that is no JWT has no user.
        let odd = TabKeys::new(
            &store,
            "chorus:",
            "https://rt.example.com",
            "opaque",
            "t3".into(),
        );
        assert_eq!(
            odd.core_prefix(),
            "chorus:https%3A%2F%2Frt.example.com||t3:"
        );
        assert_eq!(subject(&token("ben")).as_deref(), Some("ben"));
        // Encoded as `encodeURIComponent` does (it keeps `!*'()`), like the npm package's keys.
        let bang = TabKeys::new(&store, "p:", "h", &token("o'k!(1)*"), "t".into());
        assert_eq!(bang.core_prefix(), "p:h|o'k!(1)*|t:");
        assert_eq!(subject("a.!!.c"), None);
    }

    #[test]
    fn a_starting_tab_adopts_the_outboxes_of_gone_tabs_only() {
        let store = Map::default();
        let url = "http://h";
        let tab =
            |name: &str, user: &str| TabKeys::new(&store, "p:", url, &token(user), name.into());
        let (gone, crashed, live, other) = (
            tab("a", "ana"),
            tab("b", "ana"),
            tab("c", "ana"),
            tab("d", "ben"),
        );
        let now = 100_000.0;
        store.save(&outbox_of(&gone), &outbox(&[("a2", 20), ("a1", 10)]));
        store.save(&transport_of(&gone), "polling-until:5");
        store.save(&outbox_of(&crashed), &outbox(&[("b1", 15)]));
        store.save(&crashed.lease(), &((now - STALE_MS) as u64).to_string());
        store.save(&outbox_of(&live), &outbox(&[("c1", 12)]));
        store.save(&live.lease(), &((now - 1_000.0) as u64).to_string());
        store.save(&outbox_of(&other), &outbox(&[("d1", 1)]));

        let new = tab("e", "ana");
        new.adopt(&store, now);
        let adopted = store.load(&outbox_of(&new)).unwrap();
        assert_eq!(ids(&adopted), ["a1", "b1", "a2"], "merged in publish order");
        assert_eq!(
            store.load(&transport_of(&new)).as_deref(),
            Some("polling-until:5")
        );
        for gone in [&gone, &crashed] {
            assert!(
                store
                    .keys()
                    .iter()
                    .all(|k| !k.starts_with(&gone.core_prefix())),
                "{:?}",
                store.keys()
            );
        }
        // The live tab and the other user keep theirs.
        assert!(store.load(&outbox_of(&live)).is_some());
        assert!(store.load(&outbox_of(&other)).is_some());

        // One outbox moves as it is.
        let store2 = Map::default();
        let one = TabKeys::new(&store2, "p:", url, &token("ana"), "x".into());
        store2.save(&outbox_of(&one), "{\"entries\":[]}");
        let next = TabKeys::new(&store2, "p:", url, &token("ana"), "y".into());
        next.adopt(&store2, now);
        assert_eq!(
            store2.load(&outbox_of(&next)).as_deref(),
            Some("{\"entries\":[]}")
        );
    }

    #[test]
    fn signing_out_removes_the_users_keys_on_that_server_only() {
        let store = Map::default();
        let ana = TabKeys::new(&store, "p:", "http://h", &token("ana"), "a".into());
        let ben = TabKeys::new(&store, "p:", "http://h", &token("ben"), "b".into());
        let elsewhere = TabKeys::new(&store, "p:", "http://other", &token("ana"), "c".into());
        for keys in [&ana, &ben, &elsewhere] {
            store.save(&outbox_of(keys), "{}");
            store.save(&keys.lease(), "1");
        }
        ana.sign_out(&store);
        let left = store.keys();
        assert!(
            left.iter().all(|k| !k.starts_with("p:http%3A%2F%2Fh|ana|")),
            "{left:?}"
        );
        assert!(!left.contains(&"p:http%3A%2F%2Fh|user".to_owned()));
        assert!(left.iter().any(|k| k.starts_with("p:http%3A%2F%2Fh|ben|")));
        assert!(
            left.iter()
                .any(|k| k.starts_with("p:http%3A%2F%2Fother|ana|"))
        );
    }
}
