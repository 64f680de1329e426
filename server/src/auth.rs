//! Access tokens: verifying a JWT into an [`Identity`] and checking room grants.
//!
//! Tokens are minted by the application's backend (HS256 with a shared secret by default) and
//! carry the user id (`sub`), display name, expiry and room grants (see
//! `chorus_sdk::wire::TokenClaims`). The hub trusts an [`Identity`] completely, so nothing may
//! construct one from client input except [`Authenticator::verify`] (and tests).

use chorus_sdk::wire::{ErrorCode, RoomName, RoomRight, TokenClaims, check_user_id};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

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
/// Inbox rooms (`@user`) are only matched by patterns that start with `@` themselves, so a
/// wildcard grant never opens other users' direct messages.
fn pattern_matches(pattern: &str, room: &str) -> bool {
    let inbox = chorus_sdk::wire::INBOX_PREFIX;
    if room.starts_with(inbox) && !pattern.starts_with(inbox) {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token was presented: send a hello frame with a token first")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token is malformed, forged, or its claims are invalid.
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// The wire code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::Missing | AuthError::Invalid(_) => ErrorCode::Unauthenticated,
        }
    }
}

/// Verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { HS256, secret hidden }")
    }
}

impl Authenticator {
    /// An authenticator for tokens signed with `secret` (HS256).
    pub fn hs256(secret: &[u8]) -> Authenticator {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
        Authenticator {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
        }
    }

    /// Checks the signature, expiry and claims of `token`.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(err.to_string()),
            })?;
        let claims = data.claims;
        check_user_id(&claims.sub).map_err(|err| AuthError::Invalid(err.to_string()))?;
        Ok(Identity {
            user: claims.sub,
            name: claims.name,
            grants: claims.rooms.into_iter().collect(),
            expires_at_ms: Some(claims.exp.saturating_mul(1000)),
        })
    }

    /// Signs `claims` with this authenticator's secret (the dev token endpoint and tests use it).
    pub fn issue(&self, claims: &TokenClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, exp: u64, rooms: &[(&str, RoomRight)]) -> TokenClaims {
        TokenClaims {
            sub: sub.into(),
            name: Some("Ana".into()),
            exp,
            rooms: rooms.iter().map(|&(p, r)| (p.to_owned(), r)).collect(),
        }
    }

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
        let support = Identity::new("s", None, &[("@*", RoomRight::Read)]);
        assert!(
            support.can_join(&room("@ana")),
            "an explicit inbox pattern does"
        );
    }

    #[test]
    fn tokens_verify_or_are_refused_with_their_code() {
        let auth = Authenticator::hs256(b"secret");
        let far = crate::clock::unix_ms_now() / 1000 + 3600;
        let token = auth.issue(&claims("ana", far, &[("doc:*", RoomRight::Publish)]));
        let who = auth.verify(&token).unwrap();
        assert_eq!(who.user, "ana");
        assert_eq!(who.name.as_deref(), Some("Ana"));
        assert_eq!(who.grants, vec![("doc:*".to_owned(), RoomRight::Publish)]);

        let expired = auth.issue(&claims("ana", 1_000, &[]));
        assert_eq!(
            auth.verify(&expired).unwrap_err().code(),
            ErrorCode::TokenExpired
        );
        let forged = Authenticator::hs256(b"other").issue(&claims("ana", far, &[]));
        assert_eq!(
            auth.verify(&forged).unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            auth.verify("garbage").unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        let bad_sub = auth.issue(&claims("", far, &[]));
        assert!(matches!(auth.verify(&bad_sub), Err(AuthError::Invalid(_))));
    }
}
