//! The claims of a Chorus access token ([`TokenClaims`]) and what a room grant allows
//! ([`RoomRight`]).
//!
//! Only the data lives here: signing and verifying tokens and matching grants to rooms is the
//! server's job (`server/src/auth.rs`). This module must never check or trust claims itself.

use std::collections::BTreeMap;

use super::shapes::wire_enum;

/// The claims of a Chorus access token (a JWT, HS256 by default).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenClaims {
    /// The user id.
    pub sub: String,
    /// The user's display name.
    pub name: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Room grants: pattern (`doc:42`, `doc:*`, `*`) to right.
    pub rooms: BTreeMap<String, RoomRight>,
}

wire_enum! {
    /// What a token allows in the rooms matching a grant's pattern.
    pub enum RoomRight [Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord] {
        /// Join, receive events, presence and typing; send presence and typing.
        Read => "read",
        /// Everything `read` allows, and publish.
        Publish => "publish",
    }
}
