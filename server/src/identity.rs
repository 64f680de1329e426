//! Who a connection is and what it may do: [`Identity`] and the room grant rules.
//!
//! Pure data and logic, below the hub (which checks every join and publish with it) and below
//! `crate::auth`, the only place that makes an [`Identity`] from client input (by verifying a
//! token). It must never verify tokens, read a clock or do I/O itself.

use chorus_sdk::wire::{RoomName, RoomRight};

/// Who a connection is and what it may do, as proven by its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user id (`sub`); stamped as `from` on everything the user publishes.
    pub user: String,
    /// The display name, if the token has one.
    pub name: Option<String>,
    /// Room patterns and the right each grants.
    pub grants: Vec<(String, RoomRight)>,
    /// When the token expires (ms since the Unix epoch); a WebSocket is closed then.
    /// `None` for identities that are not from a token (tools, tests).
    pub expires_at_ms: Option<u64>,
}

impl Identity {
    /// The strongest right any grant gives on `room`, if any does.
    pub fn right_on(&self, room: &RoomName) -> Option<RoomRight> {
        // Every user may read their own inbox (`@user`), where direct messages are kept.
        let own_inbox =
            room.as_str().strip_prefix(chorus_sdk::wire::INBOX_PREFIX) == Some(self.user.as_str());
        let granted = self
            .grants
            .iter()
            .filter(|(pattern, _)| pattern_matches(pattern, room.as_str()))
            .map(|&(_, right)| right)
            .max();
        match (granted, own_inbox) {
            (None, true) => Some(RoomRight::Read),
            (granted, _) => granted,
        }
    }

    /// Whether the user may join `room`.
    pub fn can_join(&self, room: &RoomName) -> bool {
        self.right_on(room).is_some()
    }

    /// Whether the user may publish to `room`.
    pub fn can_publish(&self, room: &RoomName) -> bool {
        self.right_on(room) == Some(RoomRight::Publish)
    }

    /// An identity with the given grants, for tests and tools.
    pub fn new(user: &str, name: Option<&str>, grants: &[(&str, RoomRight)]) -> Identity {
        Identity {
            user: user.to_owned(),
            name: name.map(str::to_owned),
            grants: grants
                .iter()
                .map(|&(pattern, right)| (pattern.to_owned(), right))
                .collect(),
            expires_at_ms: None,
        }
    }
}

/// `*` matches every room, `doc:*` every room starting with `doc:`, anything else only itself.
///
/// Inbox rooms (`@user`) are matched only by a pattern that names them exactly: no wildcard
/// reaches an inbox, not `*`, not `@an*` (which would open `@anabel` too), not `@*`. A user's
/// direct messages are theirs; a tool that must read many inboxes (support) uses the backend API
/// key, which is the operator's, not a user token that could leak with a browser.
fn pattern_matches(pattern: &str, room: &str) -> bool {
    if room.starts_with(chorus_sdk::wire::INBOX_PREFIX) {
        return pattern == room;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_by_exact_name_prefix_and_wildcard() {
        let who = Identity::new(
            "ana",
            None,
            &[
                ("doc:*", RoomRight::Read),
                ("doc:7", RoomRight::Publish),
                ("lobby", RoomRight::Publish),
            ],
        );
        let room = |name: &str| RoomName::parse(name).unwrap();
        let check = |name: &str, expect: Option<RoomRight>| {
            assert_eq!(who.right_on(&room(name)), expect, "{name}")
        };
        check("doc:1", Some(RoomRight::Read));
        check("doc:7", Some(RoomRight::Publish));
        check("lobby", Some(RoomRight::Publish));
        check("lobby2", None);
        check("doc", None);
        assert!(who.can_join(&room("doc:1")) && !who.can_publish(&room("doc:1")));
        assert_eq!(
            who.right_on(&room("@ana")),
            Some(RoomRight::Read),
            "everyone reads their own inbox"
        );
        assert_eq!(who.right_on(&room("@ben")), None, "but nobody else's");
        let everyone = Identity::new("b", None, &[("*", RoomRight::Publish)]);
        assert!(everyone.can_publish(&room("anything/at@all")));
        assert!(
            !everyone.can_join(&room("@ana")),
            "wildcards do not reach inboxes"
        );
    }

    #[test]
    fn inboxes_are_reached_only_by_their_exact_name() {
        let room = |name: &str| RoomName::parse(name).unwrap();
        let check = |pattern: &str, inbox: &str, expect: Option<RoomRight>| {
            let who = Identity::new("zed", None, &[(pattern, RoomRight::Read)]);
            assert_eq!(who.right_on(&room(inbox)), expect, "{pattern} on {inbox}");
        };
        // The case: a grant meant for `@an` (or `@ana`) must not open `@anabel`.
        check("@an*", "@anabel", None);
        check("@an*", "@an", None);
        check("@*", "@ana", None);
        check("*", "@ana", None);
        check("@ana", "@anabel", None);
        check("@ana", "@ana", Some(RoomRight::Read));
        // Wildcards still work for every other room.
        check("an*", "anabel", Some(RoomRight::Read));
        // The own inbox needs no grant, and an exact grant can raise its right.
        let ana = Identity::new("ana", None, &[("@ana", RoomRight::Publish)]);
        assert_eq!(ana.right_on(&room("@ana")), Some(RoomRight::Publish));
        let anabel = Identity::new("anabel", None, &[("@an*", RoomRight::Publish)]);
        assert_eq!(anabel.right_on(&room("@anabel")), Some(RoomRight::Read));
        assert_eq!(anabel.right_on(&room("@ana")), None);
    }
}
