//! What the client knows about one room besides its timeline: presence, who is typing, and
//! its own typing signal (throttled outgoing "on", automatic "off").

use std::time::Duration;

use crate::time::Instant;

use super::Map;
use crate::wire::{PresenceDiff, PresenceSnapshot, PresenceUser};

/// A room's presence: one entry per user, applied from snapshots and diffs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Presence {
    version: u64,
    users: Map<String, PresenceUser>,
}

/// What applying a presence diff did.
#[derive(Debug, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Applied; the model changed.
    Applied,
    /// The diff is not the next version: a change was missed. The caller asks for a snapshot.
    OutOfSync,
    /// An old diff (already covered by a newer snapshot): ignored.
    Stale,
}

impl Presence {
    /// Replaces everything with a snapshot; `true` if anything changed.
    pub fn snapshot(&mut self, snapshot: PresenceSnapshot) -> bool {
        let mut users = Map::new();
        for user in snapshot.users {
            users.insert(user.user.clone(), user);
        }
        let changed = users != self.users;
        self.version = snapshot.version;
        self.users = users;
        changed
    }

    /// Applies a diff if it is the next version.
    pub fn diff(&mut self, diff: PresenceDiff) -> DiffOutcome {
        if diff.version <= self.version {
            return DiffOutcome::Stale;
        }
        if diff.version != self.version + 1 {
            return DiffOutcome::OutOfSync;
        }
        self.version = diff.version;
        for user in diff.joins.into_iter().chain(diff.updates) {
            self.users.insert(user.user.clone(), user);
        }
        for user in diff.leaves {
            self.users.remove(&user);
        }
        DiffOutcome::Applied
    }

    /// The version of the last applied change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Everyone present, ordered by user id.
    pub fn users(&self) -> Vec<PresenceUser> {
        let mut users = Vec::with_capacity(self.users.len());
        for user in self.users.values() {
            users.push(user.clone());
        }
        users
    }
}

/// Who else is typing, each until a local expiry unless refreshed.
#[derive(Debug, Default)]
pub struct TypingIn {
    users: Map<String, Instant>,
    version: u64,
}

impl TypingIn {
    /// `user` is typing (refreshes the expiry); `true` if the set changed.
    pub fn on(&mut self, user: String, now: Instant, ttl: Duration) -> bool {
        self.users.insert(user, now + ttl).is_none()
    }

    /// `user` stopped; `true` if the set changed.
    pub fn off(&mut self, user: &str) -> bool {
        self.users.remove(user).is_some()
    }

    /// Replaces the set (joins and polling state frames), leaving out `me` (own typing in
    /// another tab); `true` if it changed.
    pub fn replace(
        &mut self,
        users: Vec<String>,
        me: Option<&str>,
        version: u64,
        now: Instant,
        ttl: Duration,
    ) -> bool {
        self.version = version;
        let before = self.users();
        self.users = Map::new();
        for user in users {
            if Some(user.as_str()) != me {
                self.users.insert(user, now + ttl);
            }
        }
        before != self.users()
    }

    /// Drops users whose expiry passed; `true` if the set changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.users.len();
        self.users.retain(|_, until| *until > now);
        before != self.users.len()
    }

    /// The next local expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.users.values().min().copied()
    }

    /// Users typing now, ordered.
    pub fn users(&self) -> Vec<String> {
        let mut users = Vec::with_capacity(self.users.len());
        for user in self.users.keys() {
            users.push(user.clone());
        }
        users
    }

    /// The server's typing version last seen (polling).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// This client's own typing signal.
#[derive(Debug, Default)]
pub struct TypingOut {
    /// When "on" was last sent (while typing).
    last_on: Option<Instant>,
    /// When to send "off" if the user stays idle.
    idle_off_at: Option<Instant>,
}

/// Typing timings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypingConfig {
    /// At most one outgoing "on" per this interval while typing.
    pub throttle: Duration,
    /// Send "off" after this long without a keystroke.
    pub idle: Duration,
    /// Someone else's typing is dropped locally after this long without a refresh.
    pub incoming_ttl: Duration,
}

impl Default for TypingConfig {
    fn default() -> TypingConfig {
        TypingConfig {
            throttle: Duration::from_secs(3),
            idle: Duration::from_secs(5),
            incoming_ttl: Duration::from_secs(8),
        }
    }
}

impl TypingOut {
    /// The user typed (`on`) or cleared/blurred (`!on`) at `now`: the frame to send, if any.
    pub fn set(&mut self, on: bool, now: Instant, config: &TypingConfig) -> Option<bool> {
        if !on {
            return self.stop();
        }
        self.idle_off_at = Some(now + config.idle);
        match self.last_on {
            Some(sent) if now.duration_since(sent) < config.throttle => None,
            _ => {
                self.last_on = Some(now);
                Some(true)
            }
        }
    }

    /// Stop (on publish, blur, leave): `Some(false)` if "on" was sent.
    pub fn stop(&mut self) -> Option<bool> {
        self.idle_off_at = None;
        self.last_on.take().map(|_| false)
    }

    /// Time passed: `Some(false)` when the idle deadline is reached.
    pub fn timeout(&mut self, now: Instant) -> Option<bool> {
        if self.idle_off_at.is_some_and(|at| at <= now) {
            self.stop()
        } else {
            None
        }
    }

    /// The idle deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.idle_off_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_typing_is_throttled_and_stops_when_idle_or_on_publish() {
        let t0 = crate::client::tests::t0();
        let config = TypingConfig::default();
        let mut out = TypingOut::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Keystrokes every 500 ms for 7 s: "on" at 0, 3 s and 6 s only.
        let mut sent = Vec::new();
        for ms in (0..7000).step_by(500) {
            if let Some(on) = out.set(true, at(ms), &config) {
                sent.push((ms, on));
            }
        }
        assert_eq!(sent, [(0, true), (3000, true), (6000, true)]);
        assert_eq!(
            out.timeout(at(11_000)),
            None,
            "5 s after the last keystroke at 6.5 s is 11.5 s"
        );
        assert_eq!(out.timeout(at(11_500)), Some(false));
        assert_eq!(out.timeout(at(20_000)), None, "off is sent once");
        assert_eq!(out.set(true, at(21_000), &config), Some(true));
        assert_eq!(out.stop(), Some(false), "publishing stops typing");
        assert_eq!(out.stop(), None);
    }

    #[test]
    fn incoming_typing_expires_locally_unless_refreshed() {
        let t0 = crate::client::tests::t0();
        let ttl = Duration::from_secs(8);
        let mut typing = TypingIn::default();
        assert!(typing.on("ana".into(), t0, ttl));
        assert!(
            !typing.on("ana".into(), t0 + Duration::from_secs(5), ttl),
            "a refresh is not a change"
        );
        assert!(
            !typing.expire(t0 + Duration::from_secs(12)),
            "refreshed at 5 s, so alive until 13 s"
        );
        assert!(typing.expire(t0 + Duration::from_secs(13)));
        assert!(typing.users().is_empty());
        let users = vec!["me".into(), "ben".into()];
        assert!(typing.replace(users, Some("me"), 9, t0, ttl));
        assert_eq!(
            (typing.users(), typing.version()),
            (vec!["ben".to_owned()], 9),
            "own typing (another tab) is left out"
        );
        assert!(!typing.replace(vec!["ben".into()], Some("me"), 10, t0, ttl));
    }

    #[test]
    fn presence_applies_consecutive_diffs_and_detects_a_missed_one() {
        let user = |name: &str| PresenceUser {
            user: name.into(),
            name: None,
            conns: vec![],
        };
        let room = crate::wire::RoomName::parse("r").unwrap();
        let diff = |version: u64, joins: Vec<PresenceUser>, leaves: Vec<String>| PresenceDiff {
            room: room.clone(),
            version,
            joins,
            updates: vec![],
            leaves,
        };
        let mut presence = Presence::default();
        assert!(presence.snapshot(PresenceSnapshot {
            version: 10,
            users: vec![user("ana")]
        }));
        assert_eq!(
            presence.diff(diff(11, vec![user("ben")], vec![])),
            DiffOutcome::Applied
        );
        assert_eq!(
            presence.diff(diff(11, vec![user("cal")], vec![])),
            DiffOutcome::Stale
        );
        assert_eq!(
            presence.diff(diff(13, vec![], vec!["ana".into()])),
            DiffOutcome::OutOfSync
        );
        assert_eq!(
            presence
                .users()
                .iter()
                .map(|u| u.user.as_str())
                .collect::<Vec<_>>(),
            ["ana", "ben"]
        );
        assert_eq!(
            presence.diff(diff(12, vec![], vec!["ana".into()])),
            DiffOutcome::Applied
        );
        assert_eq!(presence.version(), 12);
    }
}
