//! The wire types of locks (leases; docs/PROTOCOL.md, "Locks"): the `lock` and `unlock`
//! requests, a publish's `if_lock` fence, the server's `lock` frame and a polling `state`'s
//! locks, and one grant ([`LockInfo`]).
//!
//! They exist in every build, but only the `locks` feature of the crate gives the frame and field
//! types values: without it (the npm package's build, which offers no locks and follows none)
//! [`LockRequest`], [`UnlockRequest`], [`LockFence`], [`LockNotice`] and [`LockSnapshot`] are
//! enums without variants, so the frames and fields that carry them are always absent, code
//! matching on them still compiles, and the module carries none of their codec, clones or drops
//! (docs/SIZE.md). [`LockInfo`] is a plain struct either way.

use super::{EventId, Json};
#[cfg(feature = "locks")]
use super::{LockChange, RoomName};

/// `lock`: acquires a named lock in a joined room for `ttl_ms`, or (with `token`) renews the
/// grant with that fencing token for another `ttl_ms` from now. Answered by a `lock` frame
/// carrying the request's `id`, or a `nack` with that `id`.
#[cfg(feature = "locks")]
#[derive(Clone, Debug, PartialEq)]
pub struct LockRequest {
    /// The room.
    pub room: RoomName,
    /// The request's id, echoed in its answer (same rules as event ids).
    pub id: EventId,
    /// The lock's name within the room (same rules as event ids).
    pub name: EventId,
    /// How long the grant lasts without a renewal, in milliseconds.
    pub ttl_ms: u64,
    /// The fencing token of the grant to renew; absent to acquire.
    pub token: Option<u64>,
}

/// `unlock`: releases the grant of a lock with this fencing token. Answered by a `lock` frame
/// carrying the request's `id`, or a `nack` with that `id`.
#[cfg(feature = "locks")]
#[derive(Clone, Debug, PartialEq)]
pub struct UnlockRequest {
    /// The room.
    pub room: RoomName,
    /// The request's id, echoed in its answer.
    pub id: EventId,
    /// The lock's name.
    pub name: EventId,
    /// The fencing token of the grant to release.
    pub token: u64,
}

/// What a publish's `if_lock` states: the lock and the fencing token of the publisher's grant.
#[cfg(feature = "locks")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockFence {
    /// The lock's name.
    pub name: EventId,
    /// The fencing token of the grant.
    pub token: u64,
}

/// The locks held in a room at `version`.
#[cfg(feature = "locks")]
#[derive(Clone, Debug, PartialEq)]
pub struct LockSnapshot {
    /// Names this set of locks: equal sets have equal versions on every node (compare only
    /// for equality); 0 for none held.
    pub version: u64,
    /// The locks held, by name: a list of [`LockInfo`] ([`LockInfo::list`] reads it).
    pub locks: Json,
}

/// `lock` (from the server): a lock changed in a joined room. A request's own answer carries
/// its `id`.
#[cfg(feature = "locks")]
#[derive(Clone, Debug, PartialEq)]
pub struct LockNotice {
    /// The room.
    pub room: RoomName,
    /// What happened.
    pub change: LockChange,
    /// The grant it happened to.
    pub lock: LockInfo,
    /// Every lock held in the room after the change, by name: a list of [`LockInfo`], so a
    /// client mirrors the room's locks without logic of its own ([`LockInfo::list`] reads it).
    pub locks: Json,
    /// The `lock` or `unlock` request this answers, for its sender only.
    pub id: Option<EventId>,
}

/// One grant of a named lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock's name.
    pub name: EventId,
    /// The grant's fencing token: strictly increasing per lock, across restarts and nodes.
    pub token: u64,
    /// The holder's user id.
    pub user: String,
    /// The holder's connection id (as in `welcome` and presence).
    pub conn: String,
    /// Until when the grant lasts without a renewal (milliseconds since the Unix epoch); for a
    /// released or expired grant, when it ended.
    pub until: u64,
}

impl LockInfo {
    /// Reads a list of grants (`joined.locks`, a `lock` frame's `locks`, polling state).
    pub fn list(locks: &Json) -> Result<Vec<LockInfo>, super::json::JsonError> {
        super::json::from_str(locks.as_text())
    }

    /// Writes a list of grants as the opaque JSON those fields carry.
    pub fn to_list(locks: &[LockInfo]) -> Json {
        Json(super::json::to_string(&locks.to_vec()).into())
    }
}

/// Without the `locks` feature: each lock frame and field type as an enum without variants, with
/// the codec traits its containers need (never called: no value of it exists).
#[cfg(not(feature = "locks"))]
macro_rules! without_locks {
    ($($ty:ident),*) => {
        $(
            #[doc = concat!("`", stringify!($ty), "` without the `locks` feature: there is none.")]
            #[derive(Clone, Debug, PartialEq, Eq)]
            pub enum $ty {}

            impl super::json::Wire for $ty {
                fn write(&self, _: &mut super::json::Writer) {
                    match *self {}
                }
                fn read(_: &super::json::Node<'_>) -> Result<Self, super::json::JsonError> {
                    Err(super::json::JsonError::new("locks are not built in"))
                }
            }

            impl super::json::WireObject for $ty {
                fn write_fields(&self, _: &mut super::json::ObjectWriter<'_>) {
                    match *self {}
                }
            }

            super::shapes::serde_via_wire!($ty);
        )*
    };
}

#[cfg(not(feature = "locks"))]
without_locks!(
    LockRequest,
    UnlockRequest,
    LockFence,
    LockSnapshot,
    LockNotice
);
