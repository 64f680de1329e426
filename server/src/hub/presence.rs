//! One room's presence: one entry per user, aggregating that user's connections.
//!
//! When a user's last connection goes away without an explicit `leave` (a dropped socket, a
//! reload), its entry *lingers* until the grace period ends, so a quick reconnect shows no
//! leave/join flicker to everyone else. Pure data: no clock, no I/O; deadlines are passed in.
//!
//! A connection is known by its [`ConnKey`]: the node that holds it and its id there. With
//! several nodes (see `federation.rs`) a room's presence holds this node's connections and
//! the ones other nodes announced, side by side: a user with a tab on each of two nodes is one
//! user with two connections, and every rule here (lingering included) treats them alike.
//!
//! Every change to a user carries the user's whole entry, every connection's meta in it, to
//! every member. So the meta changes of a user's connections on this node share one budget per
//! room ([`Presence::set_local_meta`]): beyond it a change is *held* (in the entry, so late
//! joiners and snapshots here see it, but not announced), and one update carries every held
//! change when the budget allows ([`Presence::flush_held`]). A held change of a connection
//! that leaves or lingers before then is not flushed: the connection is going (and the other
//! nodes, told it is gone, must not hear it live again).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use litemap::LiteMap;

use chorus_sdk::wire::{Json, PresenceConn, PresenceSnapshot, PresenceUser};

use super::ConnId;
use super::federation::ConnState;
use super::publish::TokenBucket;

/// A connection as presence knows it: the node that holds it (`HubConfig::node`) and its id
/// there. Ordered by node, then id, so a user's connections are listed in the same order on
/// every node (and, on one node, in connection order as before).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConnKey {
    /// The node holding the connection.
    pub(crate) node: Arc<str>,
    /// Its id on that node.
    pub(crate) conn: ConnId,
}

/// A change everyone else in the room must hear about.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    /// A user arrived.
    Join(PresenceUser),
    /// A present user's connections or metas changed.
    Update(PresenceUser),
    /// A user left.
    Leave(String),
}

#[derive(Debug, Default)]
pub(crate) struct Presence {
    version: u64,
    /// The version the members were last told (see [`Presence::told_members`]).
    told: u64,
    users: BTreeMap<String, UserEntry>,
}

#[derive(Debug)]
struct UserEntry {
    name: Option<String>,
    /// Ordered by key. A `Vec` kept sorted: most users have one or a few connections, and a
    /// `BTreeMap` allocates a node for 11 entries (about 650 bytes) for the first one. A new
    /// connection goes at the end (ids only grow); removing one moves the later ones, which
    /// only a user with thousands of connections in one room would notice.
    conns: LiteMap<ConnKey, ConnEntry>,
    /// Set while only lingering connections remain: when the user is announced as gone.
    leave_at: Option<Instant>,
    /// This node's budget for announcing the user's meta changes; `None` until the first one
    /// (boxed: most users never change their meta, and an entry is per user and room).
    meta_budget: Option<Box<TokenBucket>>,
}

#[derive(Debug)]
struct ConnEntry {
    wire_id: String,
    meta: Json,
    since: u64,
    lingering: bool,
    /// Its meta changed and was not announced yet (see [`Presence::set_local_meta`]); never
    /// set on a lingering connection. While any is set, a flush is due.
    held: bool,
}

impl ConnEntry {
    fn to_state(&self, user: &str, entry: &UserEntry, key: &ConnKey) -> ConnState {
        ConnState {
            conn: key.conn,
            wire: self.wire_id.clone(),
            user: user.to_owned(),
            name: entry.name.clone(),
            meta: self.meta.clone(),
            since: self.since,
        }
    }
}

impl UserEntry {
    fn to_wire(&self, user: &str) -> PresenceUser {
        PresenceUser {
            user: user.to_owned(),
            name: self.name.clone(),
            conns: self
                .conns
                .values()
                .map(|c| PresenceConn {
                    conn: c.wire_id.clone(),
                    meta: c.meta.clone(),
                    since: c.since,
                })
                .collect(),
        }
    }
}

/// The shortest wait for a token: a wait rounded down to nothing would have a flush timer fire
/// again at the instant it fired, finding no token again.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// What became of a meta change of one of this node's connections.
#[derive(Debug, PartialEq)]
pub(crate) enum MetaChange {
    /// Nothing changed: no such connection, or the meta it has already.
    Unchanged,
    /// Announce it now.
    Announce(Change),
    /// Held: the user's budget is spent. The first held change says when to flush.
    Held(Option<Instant>),
}

/// What [`Presence::flush_held`] found.
#[derive(Debug, PartialEq)]
pub(crate) enum Flush {
    /// Nothing is held (any more).
    Nothing,
    /// The budget has no token yet: try again then.
    Retry(Instant),
    /// Announce the update, and the connections whose changes it carries (for the other nodes).
    Announce(Change, Vec<ConnKey>),
}

/// Everything needed to add a connection to presence.
#[derive(Debug)]
pub(crate) struct Arrival<'a> {
    pub(crate) user: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) key: ConnKey,
    pub(crate) wire_id: &'a str,
    pub(crate) meta: Json,
    pub(crate) since: u64,
}

impl Presence {
    /// An empty presence whose first change is version `base + 1`.
    pub(crate) fn starting_at(base: u64) -> Presence {
        Presence {
            version: base,
            told: base,
            users: BTreeMap::new(),
        }
    }

    /// The version after the latest change.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Takes another node's version where it is higher (see `federation.rs`); nothing else
    /// changes, and the version never goes back.
    pub(crate) fn raise_version(&mut self, version: u64) {
        self.version = self.version.max(version);
    }

    /// The members are told the current version: `true` when it is exactly one past the last
    /// one they were told, so a diff brings them up to date; `false` when the version moved
    /// further (another node's versions were taken), and only the whole presence will do. On
    /// one node every change moves the version by one, so it is always `true` there.
    pub(crate) fn told_members(&mut self) -> bool {
        let next = self.version == self.told + 1;
        self.told = self.version;
        next
    }

    /// Whether nobody is present (not even lingering).
    pub(crate) fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn changed(&mut self, change: Change) -> Option<Change> {
        self.version += 1;
        Some(change)
    }

    /// Adds a connection; a user's lingering connections are replaced by the new one.
    pub(crate) fn add(&mut self, arrival: Arrival<'_>) -> Option<Change> {
        let conn = ConnEntry {
            wire_id: arrival.wire_id.to_owned(),
            meta: arrival.meta,
            since: arrival.since,
            lingering: false,
            held: false,
        };
        match self.users.get_mut(arrival.user) {
            Some(entry) => {
                entry.conns.retain(|_, c| !c.lingering);
                entry.conns.insert(arrival.key, conn);
                entry.leave_at = None;
                let wire = entry.to_wire(arrival.user);
                self.changed(Change::Update(wire))
            }
            None => {
                // Room for one: a `Vec` grown by a push takes room for four (the usual user
                // has one connection, and an entry is 80 bytes).
                let mut conns = LiteMap::with_capacity(1);
                conns.insert(arrival.key, conn);
                let entry = UserEntry {
                    name: arrival.name.map(str::to_owned),
                    conns,
                    leave_at: None,
                    meta_budget: None,
                };
                let wire = entry.to_wire(arrival.user);
                self.users.insert(arrival.user.to_owned(), entry);
                self.changed(Change::Join(wire))
            }
        }
    }

    /// One connection's meta, if it is present.
    pub(crate) fn meta_of(&self, user: &str, conn: &ConnKey) -> Option<&Json> {
        Some(&self.users.get(user)?.conns.get(conn)?.meta)
    }

    /// Replaces the meta of one of this node's connections, announcing it if the user's budget
    /// (`rate` per second, bursts of `burst`, shared by the user's connections here) allows,
    /// holding it otherwise.
    pub(crate) fn set_local_meta(
        &mut self,
        user: &str,
        conn: &ConnKey,
        meta: Json,
        (now, rate, burst): (Instant, f64, f64),
    ) -> MetaChange {
        let Some(entry) = self.users.get_mut(user) else {
            return MetaChange::Unchanged;
        };
        let flush_due = entry.conns.values().any(|slot| slot.held);
        let Some(slot) = entry.conns.get_mut(conn).filter(|slot| slot.meta != meta) else {
            return MetaChange::Unchanged;
        };
        slot.meta = meta;
        if flush_due {
            slot.held = true;
            return MetaChange::Held(None);
        }
        let budget =
            (entry.meta_budget).get_or_insert_with(|| Box::new(TokenBucket::full(burst, now)));
        match budget.take(now, rate, burst) {
            Ok(()) => {
                let wire = entry.to_wire(user);
                self.version += 1;
                MetaChange::Announce(Change::Update(wire))
            }
            Err(wait) => {
                slot.held = true;
                MetaChange::Held(Some(now + wait.max(MIN_WAIT)))
            }
        }
    }

    /// Announces the user's held meta changes, all in one update, once its budget allows.
    pub(crate) fn flush_held(
        &mut self,
        user: &str,
        (now, rate, burst): (Instant, f64, f64),
    ) -> Flush {
        let Some(entry) = self.users.get_mut(user) else {
            return Flush::Nothing;
        };
        // Held changes of connections gone since (or lingering: gone for the other nodes) are
        // not announced: nothing is left to flush.
        let flush_due = entry.conns.values().any(|slot| slot.held);
        let Some(budget) = entry.meta_budget.as_mut().filter(|_| flush_due) else {
            return Flush::Nothing;
        };
        if let Err(wait) = budget.take(now, rate, burst) {
            return Flush::Retry(now + wait.max(MIN_WAIT));
        }
        let mut held = Vec::new();
        for (key, slot) in entry.conns.iter_mut().filter(|(_, slot)| slot.held) {
            slot.held = false;
            held.push(key.clone());
        }
        let wire = entry.to_wire(user);
        self.version += 1;
        Flush::Announce(Change::Update(wire), held)
    }

    /// Replaces one connection's meta (another node's: that node held it to its budget).
    pub(crate) fn set_meta(&mut self, user: &str, conn: &ConnKey, meta: Json) -> Option<Change> {
        self.set_metas(user, [(conn.clone(), meta)])
    }

    /// Replaces the metas of some of a user's connections (another node's, which held them to
    /// its budget and announces them together): one change, however many of them changed.
    pub(crate) fn set_metas(
        &mut self,
        user: &str,
        metas: impl IntoIterator<Item = (ConnKey, Json)>,
    ) -> Option<Change> {
        let entry = self.users.get_mut(user)?;
        let mut changed = false;
        for (key, meta) in metas {
            if let Some(slot) = entry.conns.get_mut(&key).filter(|slot| slot.meta != meta) {
                slot.meta = meta;
                changed = true;
            }
        }
        if !changed {
            return None;
        }
        let wire = entry.to_wire(user);
        self.changed(Change::Update(wire))
    }

    /// Removes a connection. With `linger_until`, a user's last connection stays visible until
    /// then (the caller arms a timer and calls [`Presence::expire`]); without, the user leaves now.
    pub(crate) fn remove(
        &mut self,
        user: &str,
        conn: &ConnKey,
        linger_until: Option<Instant>,
    ) -> Option<Change> {
        let entry = self.users.get_mut(user)?;
        let mut removed = entry.conns.remove(conn)?;
        if entry.conns.values().any(|c| !c.lingering) {
            let wire = entry.to_wire(user);
            return self.changed(Change::Update(wire));
        }
        match linger_until {
            Some(deadline) => {
                removed.lingering = true;
                removed.held = false;
                entry.conns.insert(conn.clone(), removed);
                entry.leave_at = Some(deadline);
                None
            }
            None => {
                self.users.remove(user);
                self.changed(Change::Leave(user.to_owned()))
            }
        }
    }

    /// Announces a lingering user as gone if its grace period has ended by `now`.
    pub(crate) fn expire(&mut self, user: &str, now: Instant) -> Option<Change> {
        let entry = self.users.get(user)?;
        if entry.leave_at.is_some_and(|deadline| deadline <= now) {
            self.users.remove(user);
            return self.changed(Change::Leave(user.to_owned()));
        }
        None
    }

    /// One connection's meta and whether it is lingering, if it is present.
    pub(crate) fn conn(&self, user: &str, conn: &ConnKey) -> Option<(&Json, bool)> {
        let slot = self.users.get(user)?.conns.get(conn)?;
        Some((&slot.meta, slot.lingering))
    }

    /// Whether any connection of `node` is present (lingering ones too).
    pub(crate) fn has_conns_of(&self, node: &str) -> bool {
        self.users
            .values()
            .any(|entry| entry.conns.keys().any(|key| &*key.node == node))
    }

    /// Every connection of `node` that is present: (user, key, lingering), in order.
    pub(crate) fn conns_of(&self, node: &str) -> Vec<(String, ConnKey, bool)> {
        let mut found = Vec::new();
        for (user, entry) in &self.users {
            for (key, slot) in entry.conns.iter().filter(|(key, _)| &*key.node == node) {
                found.push((user.clone(), key.clone(), slot.lingering));
            }
        }
        found
    }

    /// What `node` announces to the others about its own connections: the live ones (a
    /// lingering connection is already announced as gone).
    pub(crate) fn state_of(&self, node: &str) -> Vec<ConnState> {
        let mut state = Vec::new();
        for (user, entry) in &self.users {
            let live = entry
                .conns
                .iter()
                .filter(|(key, slot)| &*key.node == node && !slot.lingering);
            for (key, slot) in live {
                state.push(slot.to_state(user, entry, key));
            }
        }
        state
    }

    /// One connection as its node announces it, if it is present.
    pub(crate) fn conn_state(&self, user: &str, key: &ConnKey) -> Option<ConnState> {
        let entry = self.users.get(user)?;
        Some(entry.conns.get(key)?.to_state(user, entry, key))
    }

    /// Everyone present, ordered by user id.
    pub(crate) fn snapshot(&self) -> PresenceSnapshot {
        PresenceSnapshot {
            version: self.version,
            users: self
                .users
                .iter()
                .map(|(user, entry)| entry.to_wire(user))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrive(presence: &mut Presence, user: &str, conn: ConnId) -> Option<Change> {
        presence.add(Arrival {
            user,
            name: None,
            key: key(conn),
            wire_id: &format!("c{conn}"),
            meta: Json::null(),
            since: 1,
        })
    }

    fn key(conn: ConnId) -> ConnKey {
        ConnKey {
            node: "n".into(),
            conn,
        }
    }

    fn conns(change: &Option<Change>) -> Vec<String> {
        match change {
            Some(Change::Join(user) | Change::Update(user)) => {
                user.conns.iter().map(|c| c.conn.clone()).collect()
            }
            other => panic!("expected a join or update, got {other:?}"),
        }
    }

    #[test]
    fn tabs_of_one_user_are_one_entry_and_reconnects_do_not_flicker() {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        let grace = Duration::from_secs(5);
        let mut p = Presence::default();
        assert!(matches!(arrive(&mut p, "ana", 1), Some(Change::Join(_))));
        assert_eq!(
            conns(&arrive(&mut p, "ana", 2)),
            ["c1", "c2"],
            "a second tab is an update"
        );
        assert_eq!(p.snapshot().users.len(), 1);
        assert_eq!(
            conns(&p.remove("ana", &key(1), Some(t0 + grace))),
            ["c2"],
            "closing one tab is an update"
        );
        assert_eq!(
            p.remove("ana", &key(2), Some(t0 + grace)),
            None,
            "the last tab lingers silently"
        );
        assert_eq!(
            p.snapshot().users[0].conns.len(),
            1,
            "a lingering user still shows"
        );
        assert_eq!(p.expire("ana", t0 + grace - Duration::from_millis(1)), None);
        assert_eq!(
            conns(&arrive(&mut p, "ana", 3)),
            ["c3"],
            "a reconnect within grace replaces the lingering tab"
        );
        assert_eq!(
            p.expire("ana", t0 + grace),
            None,
            "the old deadline no longer applies"
        );
        assert_eq!(p.remove("ana", &key(3), Some(t0 + grace * 2)), None);
        assert_eq!(
            p.expire("ana", t0 + grace * 2),
            Some(Change::Leave("ana".into()))
        );
        assert!(p.is_empty());
        let version = p.version();
        assert!(matches!(arrive(&mut p, "ben", 4), Some(Change::Join(_))));
        assert_eq!(
            p.remove("ben", &key(4), None),
            Some(Change::Leave("ben".into())),
            "an explicit leave is immediate"
        );
        assert_eq!(
            p.version(),
            version + 2,
            "every announced change bumps the version"
        );
    }
    #[test]
    fn a_users_meta_changes_beyond_its_budget_are_held_and_announced_together() {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        let budget = |at: Duration| (t0 + at, 10.0, 2.0);
        let meta = |n: u32| Json::from_text(format!("{{\"n\":{n}}}")).unwrap();
        let metas = |change: &Change| match change {
            Change::Update(user) => user
                .conns
                .iter()
                .map(|c| c.meta.as_text().to_owned())
                .collect::<Vec<_>>(),
            other => panic!("expected an update, got {other:?}"),
        };
        let mut p = Presence::default();
        arrive(&mut p, "ana", 1);
        arrive(&mut p, "ana", 2);
        let version = p.version();
        let zero = Duration::ZERO;
        assert!(matches!(
            p.set_local_meta("ana", &key(1), meta(1), budget(zero)),
            MetaChange::Announce(_)
        ));
        assert_eq!(
            p.set_local_meta("ana", &key(1), meta(1), budget(zero)),
            MetaChange::Unchanged,
            "the same meta again"
        );
        assert!(matches!(
            p.set_local_meta("ana", &key(2), meta(2), budget(zero)),
            MetaChange::Announce(_)
        ));
        // The budget (bursts of 2) is spent: held, the first saying when a token is back.
        let due = Duration::from_millis(100);
        assert_eq!(
            p.set_local_meta("ana", &key(1), meta(3), budget(zero)),
            MetaChange::Held(Some(t0 + due))
        );
        assert_eq!(
            p.set_local_meta("ana", &key(2), meta(4), budget(zero)),
            MetaChange::Held(None)
        );
        assert_eq!(
            p.set_local_meta("ana", &key(2), meta(5), budget(zero)),
            MetaChange::Held(None)
        );
        assert_eq!(p.version(), version + 2, "held changes take no version");
        let shown: Vec<_> = p.snapshot().users[0]
            .conns
            .iter()
            .map(|c| c.meta.as_text().to_owned())
            .collect();
        assert_eq!(
            shown,
            [r#"{"n":3}"#, r#"{"n":5}"#],
            "a snapshot shows them at once"
        );
        assert_eq!(
            p.flush_held("ana", budget(due / 2)),
            Flush::Retry(t0 + due),
            "no token yet"
        );
        let Flush::Announce(change, held) = p.flush_held("ana", budget(due)) else {
            panic!("a token is back: the held changes go");
        };
        assert_eq!(metas(&change), [r#"{"n":3}"#, r#"{"n":5}"#]);
        assert_eq!(held, [key(1), key(2)]);
        assert_eq!(p.version(), version + 3, "one version for all of them");
        assert_eq!(p.flush_held("ana", budget(due)), Flush::Nothing);
        // A held change of a connection that leaves goes with its departure's update: the
        // flush finds nothing left, takes no token and no version.
        let held = |change| matches!(change, MetaChange::Held(Some(_)));
        assert!(held(p.set_local_meta("ana", &key(1), meta(6), budget(due))));
        assert!(matches!(
            p.remove("ana", &key(1), None),
            Some(Change::Update(_))
        ));
        let version = p.version();
        assert_eq!(p.flush_held("ana", budget(due * 2)), Flush::Nothing);
        // So does one of a last connection that lingers (the other nodes were told it is gone).
        let announced = p.set_local_meta("ana", &key(2), meta(7), budget(due * 2));
        assert!(
            matches!(announced, MetaChange::Announce(_)),
            "the token was not taken"
        );
        assert!(held(p.set_local_meta(
            "ana",
            &key(2),
            meta(8),
            budget(due * 2)
        )));
        assert_eq!(p.remove("ana", &key(2), Some(t0 + due * 10)), None);
        assert_eq!(p.flush_held("ana", budget(due * 3)), Flush::Nothing);
        assert_eq!(p.version(), version + 1);
        // A user who left has nothing to flush.
        p.remove("ana", &key(2), None);
        assert_eq!(p.flush_held("ana", budget(due * 4)), Flush::Nothing);
    }

    /// Tokens left fractional by a hold's moment can fall short of one by a rounding error at
    /// the flush's deadline: the retry is then later, never at that same instant (a timer at
    /// the instant it fired would fire again and again).
    #[test]
    fn a_flush_at_its_deadline_announces_or_retries_later() {
        #[allow(clippy::disallowed_methods)] // Only the origin of virtual time.
        let t0 = Instant::now();
        let budget = |at: Instant| (at, 3.0, 1.0);
        for step in 0..500 {
            let mut p = Presence::default();
            arrive(&mut p, "ana", 1);
            let first = p.set_local_meta("ana", &key(1), Json::from_text("1").unwrap(), budget(t0));
            assert!(matches!(first, MetaChange::Announce(_)));
            let hold_at = t0 + Duration::from_micros(step * 617 + 1);
            let change = p.set_local_meta(
                "ana",
                &key(1),
                Json::from_text("2").unwrap(),
                budget(hold_at),
            );
            let MetaChange::Held(Some(due)) = change else {
                panic!("no token {step}: held, got {change:?}");
            };
            assert!(due > hold_at);
            match p.flush_held("ana", budget(due)) {
                Flush::Announce(..) => {}
                Flush::Retry(later) => {
                    assert!(later > due, "step {step}: a retry at the same instant")
                }
                Flush::Nothing => panic!("step {step}: the change is still held"),
            }
        }
    }
}
