//! Locks (leases) in the store: the one authority for who holds a room's named lock, until
//! when, and under which fencing token, so that every node agrees, expiry needs no node alive
//! (a grant is live while its `until` is in the future, judged at each operation's time), and
//! a publish's `if_lock` is checked in the same step as its append.
//!
//! [`LockRow`] is the pure rule each store applies to its stored row ([`LockRow::apply`]; the
//! Redis store's Lua script says the same in Lua, and the contract suite checks all of them
//! alike). A lock's row outlives its grants by at least a minute (it keeps the last token), so
//! tokens strictly increase per lock while it is kept; and every new token is also at least
//! the grant's time in milliseconds, so tokens keep increasing past a row that is gone (deleted
//! as below, or lost: the memory store's restart, an evicted Redis key), as long as the clock
//! does not step back (and, with several nodes, their clocks differ by less than a minute).
//!
//! That second rule also lets a store forget rows, so lock names used once (a lock per document
//! section, say) do not stay stored forever: a row whose grant ended, and whose token is below
//! the time, a minute ([`FORGET_AFTER_MS`]) before `at` is [`LockRow::forgettable`]. Every
//! operation timed from a minute before `at` on acts on it exactly as on no row, so with
//! several nodes, whose clocks (the `at` of their operations) differ by less than that minute,
//! no node's later operation can tell it is gone: none finds a live grant in it, and a new
//! token is larger than its anyway. Each store deletes a room's forgettable rows at every
//! acquire in the room.
//!
//! Nothing here calls into the hub.

use chorus_sdk::wire::{EventId, LockChange, LockFence, LockInfo, RoomName};

/// How long after a grant ended its row may be deleted: more than the clocks of a
/// deployment's nodes differ (see [`LockRow::forgettable`]).
pub const FORGET_AFTER_MS: u64 = 60_000;

/// A lock operation, as the hub asks the store for it.
#[derive(Clone, Debug, PartialEq)]
pub struct LockRequest {
    /// The room.
    pub room: RoomName,
    /// The lock's name.
    pub name: EventId,
    /// What to do.
    pub op: LockOp,
    /// The operation's time, in milliseconds since the Unix epoch (the hub's clock).
    pub at: u64,
}

/// What to do to a lock.
#[derive(Clone, Debug, PartialEq)]
pub enum LockOp {
    /// Take the lock for `ttl_ms` (a new token), unless another connection holds it; the
    /// connection that holds it already gets its grant extended.
    Acquire {
        /// Who asks.
        user: String,
        /// Their connection's wire id.
        conn: String,
        /// How long the grant lasts.
        ttl_ms: u64,
    },
    /// Extend the grant with `token` by `ttl_ms` from now, moving it to `conn` (a client that
    /// reconnected renews from its new connection). Only the holder's user may.
    Renew {
        /// Who asks.
        user: String,
        /// Their connection's wire id.
        conn: String,
        /// The grant's token.
        token: u64,
        /// How long it lasts from now.
        ttl_ms: u64,
    },
    /// End the grant with `token`. Only the holder's user may; with `conn`, only while that
    /// connection holds it (the hub releasing a connection's grants when it leaves).
    Release {
        /// Who asks.
        user: String,
        /// The grant's token.
        token: u64,
        /// The connection that must hold it, if any.
        conn: Option<String>,
    },
    /// The holder's connection is gone: the grant with `token`, while `conn` holds it, lasts
    /// at most `grace_ms` more (its holder may renew it from a new connection meanwhile).
    Orphan {
        /// The gone connection's wire id.
        conn: String,
        /// The grant's token.
        token: u64,
        /// How long it may last from now, at most.
        grace_ms: u64,
    },
}

/// What became of a lock operation. Refusals are outcomes, not errors.
#[derive(Clone, Debug, PartialEq)]
pub enum LockOutcome {
    /// The lock changed: `granted`, `renewed` or `released`, with the grant as it is now (a
    /// released one's `until` is the release time).
    Changed(LockChange, LockInfo),
    /// Someone else holds it (acquire refused).
    Held(LockInfo),
    /// The stated grant is not live (released, expired, taken over, or another user's); the
    /// live grant, if any.
    Lost(Option<LockInfo>),
    /// Nothing to do (an orphaned grant already ends sooner, or is gone).
    Unchanged,
}

/// A lock as a store keeps it: the last grant, and whether it was released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRow {
    /// The last grant (its token is the lock's last token).
    pub grant: LockInfo,
    /// Whether that grant was released (it is then not live whatever its `until`).
    pub released: bool,
}

impl LockRow {
    /// Whether the grant holds at `at`.
    pub fn live(&self, at: u64) -> bool {
        !self.released && self.grant.until > at
    }

    /// Whether the row may be deleted at `at`: its grant ended (released, or its `until`
    /// passed) and its token is below the time, both [`FORGET_AFTER_MS`] before `at`. Every
    /// operation timed from then on acts on it as on no row: none finds a live grant, and an
    /// acquire's token, `max(last + 1, time)`, is the time either way.
    pub fn forgettable(&self, at: u64) -> bool {
        let before = at.saturating_sub(FORGET_AFTER_MS);
        self.grant.until <= before && self.grant.token < before
    }

    /// Applies `request` to the stored row (`None`: the lock was never granted, or its row is
    /// gone): the row to store afterwards (`None`: unchanged) and the outcome.
    pub fn apply(row: Option<&LockRow>, request: &LockRequest) -> (Option<LockRow>, LockOutcome) {
        let at = request.at;
        let live = row.filter(|row| row.live(at));
        let current = || live.map(|row| row.grant.clone());
        match &request.op {
            LockOp::Acquire { user, conn, ttl_ms } => match live {
                Some(row) if &row.grant.conn != conn => {
                    (None, LockOutcome::Held(row.grant.clone()))
                }
                Some(row) => extend(row, conn, at + ttl_ms),
                None => {
                    let last = row.map_or(0, |row| row.grant.token);
                    let grant = LockInfo {
                        name: request.name.clone(),
                        token: (last + 1).max(at),
                        user: user.clone(),
                        conn: conn.clone(),
                        until: at + ttl_ms,
                    };
                    let outcome = LockOutcome::Changed(LockChange::Granted, grant.clone());
                    let row = LockRow {
                        grant,
                        released: false,
                    };
                    (Some(row), outcome)
                }
            },
            LockOp::Renew {
                user,
                conn,
                token,
                ttl_ms,
            } => match live {
                Some(row) if row.grant.token == *token && &row.grant.user == user => {
                    extend(row, conn, at + ttl_ms)
                }
                _ => (None, LockOutcome::Lost(current())),
            },
            LockOp::Release { user, token, conn } => match live {
                Some(row)
                    if row.grant.token == *token
                        && &row.grant.user == user
                        && conn.as_ref().is_none_or(|conn| &row.grant.conn == conn) =>
                {
                    let mut grant = row.grant.clone();
                    grant.until = at;
                    let outcome = LockOutcome::Changed(LockChange::Released, grant.clone());
                    let row = LockRow {
                        grant,
                        released: true,
                    };
                    (Some(row), outcome)
                }
                _ => (None, LockOutcome::Lost(current())),
            },
            LockOp::Orphan {
                conn,
                token,
                grace_ms,
            } => match live {
                Some(row)
                    if row.grant.token == *token
                        && &row.grant.conn == conn
                        && row.grant.until > at + grace_ms =>
                {
                    extend(row, conn, at + grace_ms)
                }
                _ => (None, LockOutcome::Unchanged),
            },
        }
    }

    /// Whether an append by `from` at `at` stating `fence` may be stored: the grant with that
    /// token is live and `from`'s.
    pub fn admits(row: Option<&LockRow>, fence: &LockFence, from: &str, at: u64) -> bool {
        row.is_some_and(|row| {
            row.live(at) && row.grant.token == fence.token && row.grant.user == from
        })
    }
}

/// The grant of `row` held by `conn` until `until`.
fn extend(row: &LockRow, conn: &str, until: u64) -> (Option<LockRow>, LockOutcome) {
    let mut grant = row.grant.clone();
    grant.conn = conn.to_owned();
    grant.until = until;
    let outcome = LockOutcome::Changed(LockChange::Renewed, grant.clone());
    let row = LockRow {
        grant,
        released: false,
    };
    (Some(row), outcome)
}

/// The message of a refused `if_lock`, for a `nack` or an HTTP error.
pub fn lock_lost_message(fence: &LockFence, current: Option<&LockInfo>) -> String {
    match current {
        Some(held) => format!(
            "lock {} is now held by {} with token {} (this publish stated token {}); nothing was stored",
            fence.name, held.user, held.token, fence.token
        ),
        None => format!(
            "lock {} with token {} is no longer held (released or expired); nothing was stored",
            fence.name, fence.token
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: LockOp, at: u64) -> LockRequest {
        LockRequest {
            room: RoomName::parse("r").unwrap(),
            name: EventId::parse("title").unwrap(),
            op,
            at,
        }
    }

    fn acquire(user: &str, conn: &str, at: u64) -> LockRequest {
        request(
            LockOp::Acquire {
                user: user.into(),
                conn: conn.into(),
                ttl_ms: 1000,
            },
            at,
        )
    }

    /// Runs requests through one row; each line: what the outcome is called and its token.
    fn check(requests: &[LockRequest], expect: &[(&str, u64)]) {
        let mut row: Option<LockRow> = None;
        let mut seen = Vec::new();
        for request in requests {
            let (next, outcome) = LockRow::apply(row.as_ref(), request);
            if next.is_some() {
                row = next;
            }
            seen.push(match outcome {
                LockOutcome::Changed(change, grant) => (change.as_str(), grant.token),
                LockOutcome::Held(grant) => ("held", grant.token),
                LockOutcome::Lost(grant) => ("lost", grant.map_or(0, |g| g.token)),
                LockOutcome::Unchanged => ("unchanged", 0),
            });
        }
        let expect: Vec<(&str, u64)> = expect.to_vec();
        assert_eq!(seen, expect);
    }

    #[test]
    fn one_holder_at_a_time_and_tokens_only_grow() {
        let renew = |user: &str, conn: &str, token, at| {
            request(
                LockOp::Renew {
                    user: user.into(),
                    conn: conn.into(),
                    token,
                    ttl_ms: 1000,
                },
                at,
            )
        };
        let release = |user: &str, token, at| {
            request(
                LockOp::Release {
                    user: user.into(),
                    token,
                    conn: None,
                },
                at,
            )
        };
        check(
            &[
                acquire("ana", "c1", 10),
                acquire("ben", "c2", 20),
                acquire("ana", "c1", 30),
                renew("ben", "c2", 10, 40),
                release("ben", 10, 50),
                renew("ana", "c3", 10, 60),
                release("ana", 10, 70),
                acquire("ben", "c2", 70),
                // Lapsed without renewal: anyone may take it, with a larger token.
                acquire("ana", "c1", 1071),
                renew("ben", "c2", 70, 1072),
            ],
            &[
                ("granted", 10),
                ("held", 10),
                ("renewed", 10),
                ("lost", 10),
                ("lost", 10),
                ("renewed", 10),
                ("released", 10),
                ("granted", 70),
                ("granted", 1071),
                ("lost", 1071),
            ],
        );
    }

    #[test]
    fn an_orphaned_grant_ends_after_the_grace_unless_renewed() {
        let orphan = |token, at| {
            request(
                LockOp::Orphan {
                    conn: "c1".into(),
                    token,
                    grace_ms: 100,
                },
                at,
            )
        };
        check(
            &[
                acquire("ana", "c1", 10),
                orphan(10, 20),
                orphan(10, 21),
                acquire("ben", "c2", 119),
                acquire("ben", "c2", 120),
            ],
            &[
                ("granted", 10),
                ("renewed", 10),
                ("unchanged", 0),
                ("held", 10),
                ("granted", 120),
            ],
        );
    }

    #[test]
    fn a_fence_admits_only_the_live_grant_of_its_user() {
        let (row, _) = LockRow::apply(None, &acquire("ana", "c1", 10));
        let row = row.unwrap();
        let fence = |token| LockFence {
            name: EventId::parse("title").unwrap(),
            token,
        };
        assert!(LockRow::admits(Some(&row), &fence(10), "ana", 500));
        assert!(!LockRow::admits(Some(&row), &fence(9), "ana", 500));
        assert!(!LockRow::admits(Some(&row), &fence(10), "ben", 500));
        assert!(!LockRow::admits(Some(&row), &fence(10), "ana", 1010));
        assert!(!LockRow::admits(None, &fence(10), "ana", 500));
    }

    #[test]
    fn a_forgettable_row_acts_as_no_row_for_every_later_operation() {
        let row = |token, until, released| LockRow {
            grant: LockInfo {
                name: EventId::parse("title").unwrap(),
                token,
                user: "ana".into(),
                conn: "c1".into(),
                until,
            },
            released,
        };
        let ops = |token| {
            [
                LockOp::Acquire {
                    user: "ben".into(),
                    conn: "c2".into(),
                    ttl_ms: 1000,
                },
                LockOp::Acquire {
                    user: "ana".into(),
                    conn: "c1".into(),
                    ttl_ms: 1000,
                },
                LockOp::Renew {
                    user: "ana".into(),
                    conn: "c1".into(),
                    token,
                    ttl_ms: 1000,
                },
                LockOp::Release {
                    user: "ana".into(),
                    token,
                    conn: None,
                },
                LockOp::Orphan {
                    conn: "c1".into(),
                    token,
                    grace_ms: 10,
                },
            ]
        };
        // Released at 50, or lapsed at 60 (the token is 50): forgettable a minute later.
        const M: u64 = FORGET_AFTER_MS;
        for stored in [row(50, 50, true), row(50, 60, false)] {
            let from = if stored.released { 51 + M } else { 60 + M };
            assert!(
                !stored.forgettable(from - 1),
                "{stored:?} is kept until {from}"
            );
            for at in [from, from + 1, from + 5000] {
                assert!(stored.forgettable(at), "{stored:?} at {at}");
                // Any operation timed from a minute before on (another node's clock).
                for time in [at - M, at - M + 1, at, at + 5000] {
                    for op in ops(50) {
                        let request = request(op, time);
                        assert_eq!(
                            LockRow::apply(Some(&stored), &request),
                            LockRow::apply(None, &request),
                            "{request:?} on {stored:?}"
                        );
                    }
                }
            }
        }
        // A live grant, or one whose token is not below the time, is kept.
        assert!(!row(50, 100, false).forgettable(60 + M));
        assert!(!row(70 + M, 60, true).forgettable(65 + M));
        assert!(!row(70, 60, true).forgettable(70 + M));
    }
}
