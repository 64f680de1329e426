//! Access tokens: verifying a JWT into an [`Identity`] (what an identity may do is
//! `crate::identity`'s business).
//!
//! Tokens are minted by the application's backend (HS256 with a shared secret by default) and
//! carry the user id (`sub`), display name, expiry and room grants (see
//! `chorus_sdk::wire::TokenClaims`). The hub trusts an [`Identity`] completely, so nothing may
//! construct one from client input except [`Authenticator::verify`] (and tests).

use crate::identity::Identity;
use chorus_sdk::wire::{ErrorCode, TokenClaims, check_user_id};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token was presented: send a hello frame with a token first")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` has not come yet.
    #[error("the token is not valid yet (its nbf is in the future)")]
    NotYetValid,
    /// The token is malformed, forged, or its claims are invalid.
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl AuthError {
    /// The wire code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::Missing | AuthError::NotYetValid | AuthError::Invalid(_) => {
                ErrorCode::Unauthenticated
            }
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
        // `exp` and `nbf` are both checked, with the same leeway (none): a token is used only
        // inside the window its issuer wrote, `nbf <= now <= exp` in whole seconds.
        validation.leeway = 0;
        validation.validate_nbf = true;
        // An `aud` (which many issuers add) is not this server's business: the secret is.
        validation.validate_aud = false;
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
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => AuthError::NotYetValid,
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
    use chorus_sdk::wire::RoomRight;

    fn claims(sub: &str, exp: u64, rooms: &[(&str, RoomRight)]) -> TokenClaims {
        TokenClaims {
            sub: sub.into(),
            name: Some("Ana".into()),
            exp,
            rooms: rooms.iter().map(|&(p, r)| (p.to_owned(), r)).collect(),
        }
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

    /// A token signed with `secret` carrying exactly these claims (`TokenClaims` has no `nbf`:
    /// jsonwebtoken reads the registered claims from the payload itself).
    fn raw_token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap()
    }

    #[test]
    fn a_token_is_refused_before_its_nbf_and_accepted_from_it() {
        let auth = Authenticator::hs256(b"secret");
        let now = crate::clock::unix_ms_now() / 1000;
        let check = |nbf: u64, accepted: bool| {
            let token = raw_token(serde_json::json!({"sub": "ana", "exp": now + 7200, "nbf": nbf}));
            let result = auth.verify(&token);
            assert_eq!(result.is_ok(), accepted, "nbf {nbf} at {now}: {result:?}");
            if let Err(err) = result {
                assert!(matches!(err, AuthError::NotYetValid), "{err:?}");
                assert_eq!(err.code(), ErrorCode::Unauthenticated);
                assert!(err.to_string().contains("not valid yet"));
            }
        };
        check(now + 3600, false); // An hour ahead: the issue's case.
        check(now + 5, false); // No leeway, as for `exp`.
        check(now.saturating_sub(1), true);
        check(now.saturating_sub(3600), true);
        let without_nbf = raw_token(serde_json::json!({"sub": "ana", "exp": now + 60}));
        assert!(auth.verify(&without_nbf).is_ok(), "nbf stays optional");
    }

    #[test]
    fn an_audience_or_issuer_claim_does_not_refuse_a_token() {
        let auth = Authenticator::hs256(b"secret");
        let exp = crate::clock::unix_ms_now() / 1000 + 60;
        for claims in [
            serde_json::json!({"sub": "ana", "exp": exp, "aud": "chorus"}),
            serde_json::json!({"sub": "ana", "exp": exp, "aud": ["a", "b"], "iss": "https://id"}),
        ] {
            let identity = auth.verify(&raw_token(claims.clone()));
            assert_eq!(
                identity.map(|i| i.user).ok(),
                Some("ana".into()),
                "{claims}"
            );
        }
    }
}
