//! `grants`: token verification never panics and room grants keep their rules.
//!
//! The rules checked (`chorus_server::identity`), for any user, grants and room:
//! - a user's rights are the strongest any one of their grants gives (plus reading their own
//!   inbox): grants compose, none takes away what another gives;
//! - every user reads their own inbox;
//! - another user's inbox is reached only by a pattern that names inboxes itself (starts with
//!   `@`): no wildcard for ordinary rooms opens direct messages;
//! - a pattern without `*` reaches exactly the room it names; one equal to the room always
//!   reaches it;
//! - `can_join` and `can_publish` say what `right_on` says.
//!
//! Tokens: any text given to `Authenticator::verify` is refused or accepted without a panic;
//! a token signed with any claims verifies to exactly those claims (or is refused as expired
//! or invalid for its user id); a damaged token is refused or verifies to the same identity.

use arbitrary::Arbitrary;
use chorus_sdk::wire::{INBOX_PREFIX, RoomName, RoomRight, TokenClaims, check_user_id};
use chorus_server::auth::{AuthError, Authenticator};
use chorus_server::identity::Identity;

/// What the `grants` target generates.
#[derive(Arbitrary, Debug)]
pub struct Input {
    user: String,
    room: String,
    grants: Vec<(Pattern, bool)>,
    token: String,
    claims: Option<Claims>,
}

/// A grant pattern, mostly made from the room and the user so that matches happen.
#[derive(Arbitrary, Debug)]
enum Pattern {
    Room,
    RoomPrefix(u8),
    Everything,
    InboxOf(String),
    InboxPrefix(String),
    OwnInbox,
    Text(String),
}

/// Claims to sign, then to verify.
#[derive(Arbitrary, Debug)]
struct Claims {
    sub: String,
    name: Option<String>,
    expired: bool,
    rooms: Vec<(String, bool)>,
    damage: Option<(u16, u8)>,
}

impl Pattern {
    fn text(&self, user: &str, room: &str) -> String {
        match self {
            Pattern::Room => room.to_owned(),
            Pattern::RoomPrefix(cut) => {
                let mut at = usize::from(*cut).min(room.len());
                while !room.is_char_boundary(at) {
                    at -= 1;
                }
                [&room[..at], "*"].concat()
            }
            Pattern::Everything => "*".to_owned(),
            Pattern::InboxOf(other) => [INBOX_PREFIX, other].concat(),
            Pattern::InboxPrefix(other) => [INBOX_PREFIX, other, "*"].concat(),
            Pattern::OwnInbox => [INBOX_PREFIX, user].concat(),
            Pattern::Text(text) => text.clone(),
        }
    }
}

fn right(publish: bool) -> RoomRight {
    if publish {
        RoomRight::Publish
    } else {
        RoomRight::Read
    }
}

/// Checks every rule above on one input.
pub fn check(input: Input) {
    check_rules(&input);
    check_tokens(&input);
}

fn check_rules(input: &Input) {
    let Ok(room) = RoomName::parse(&input.room) else {
        return;
    };
    let user = input.user.as_str();
    let grants: Vec<(String, RoomRight)> = input
        .grants
        .iter()
        .map(|(pattern, publish)| (pattern.text(user, room.as_str()), right(*publish)))
        .collect();
    let borrowed: Vec<(&str, RoomRight)> = grants.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    let who = Identity::new(user, None, &borrowed);
    let got = who.right_on(&room);
    assert_eq!(who.can_join(&room), got.is_some());
    assert_eq!(who.can_publish(&room), got == Some(RoomRight::Publish));

    let own_inbox = room.as_str().strip_prefix(INBOX_PREFIX) == Some(user);
    let alone = |grant: &(&str, RoomRight)| Identity::new(user, None, &[*grant]).right_on(&room);
    let composed = borrowed
        .iter()
        .filter_map(alone)
        .chain(own_inbox.then_some(RoomRight::Read))
        .max();
    assert_eq!(got, composed, "grants {grants:?} on {room} do not compose");
    if own_inbox {
        assert!(got.is_some(), "{user} cannot read their own inbox");
    }
    if room.as_str().starts_with(INBOX_PREFIX) && !own_inbox {
        for grant in &borrowed {
            if alone(grant).is_some() {
                assert!(
                    grant.0.starts_with(INBOX_PREFIX),
                    "{:?} opens another user's inbox {room}",
                    grant.0
                );
            }
        }
    }
    for grant in &borrowed {
        let reached = alone(grant);
        if grant.0 == room.as_str() {
            assert!(
                reached >= Some(grant.1),
                "{:?} does not reach itself",
                grant.0
            );
        } else if !grant.0.contains('*') && !own_inbox {
            assert_eq!(reached, None, "{:?} reaches {room}", grant.0);
        }
    }
}

fn check_tokens(input: &Input) {
    let auth = Authenticator::hs256(b"fuzz secret");
    // Any text: refused or accepted, never a panic.
    let _ = auth.verify(&input.token);
    let Some(claims) = &input.claims else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // Tokens are checked against the real clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let exp = if claims.expired {
        now - 3600
    } else {
        now + 3600
    };
    // Built through the wire codec from JSON, so claims that gain optional fields still build.
    let rooms: serde_json::Map<String, serde_json::Value> = claims
        .rooms
        .iter()
        .map(|(pattern, publish)| {
            let right = if *publish { "publish" } else { "read" };
            (pattern.clone(), right.into())
        })
        .collect();
    let json =
        serde_json::json!({"sub": claims.sub, "name": claims.name, "exp": exp, "rooms": rooms});
    let claims_value: TokenClaims =
        serde_json::from_value(json).expect("claims with any strings decode");
    let token = auth.issue(&claims_value);
    let verified = auth.verify(&token);
    match &verified {
        Err(AuthError::Expired) => assert!(claims.expired, "a live token refused as expired"),
        Err(AuthError::Invalid(_)) => assert!(
            check_user_id(&claims_value.sub).is_err(),
            "a valid token refused: {verified:?}"
        ),
        Err(AuthError::Missing) => panic!("a token refused as missing"),
        Err(AuthError::NotYetValid) => panic!("a token without nbf refused as not yet valid"),
        Ok(identity) => {
            assert!(!claims.expired, "an expired token accepted");
            assert_eq!(identity.user, claims_value.sub);
            assert_eq!(identity.name, claims_value.name);
            let granted: Vec<(String, RoomRight)> =
                claims_value.rooms.clone().into_iter().collect();
            assert_eq!(identity.grants, granted);
        }
    }
    if let Some((at, byte)) = claims.damage {
        let mut damaged = token.clone().into_bytes();
        let at = usize::from(at) % damaged.len();
        damaged[at] = byte;
        let Ok(damaged) = String::from_utf8(damaged) else {
            return;
        };
        if damaged != token
            && let Ok(identity) = auth.verify(&damaged)
        {
            assert_eq!(
                Some(&identity),
                verified.as_ref().ok(),
                "a damaged token {damaged} verifies to another identity"
            );
        }
    }
}
