//! Connections: greeting a new one with `welcome`, noticing that it is alive, and forgetting it
//! (disconnect, slow consumer, or silence: two heartbeats for a socket, found by the periodic
//! sweep; [`HubConfig::poll_session_timeout`](super::HubConfig::poll_session_timeout) for a
//! polling session, found by its own expiry timer, so it goes on time rather than at the next
//! sweep, which may be a heartbeat later).

use std::cmp::Reverse;
use std::sync::Arc;

use chorus_sdk::wire::{self, ErrorCode, RoomName, ServerFrame, Welcome, close_code};
use litemap::LiteMap;

use super::publish::TokenBucket;
use super::{Action, Conn, ConnId, ConnKind, Hub, Now, Timer, Transmit};
use crate::identity::Identity;

impl Hub {
    /// An authenticated connection opened; it is greeted with `welcome` (or, while the server
    /// drains, told `draining` and closed).
    pub fn handle_connect(
        &mut self,
        now: Now,
        conn: ConnId,
        identity: Arc<Identity>,
        kind: ConnKind,
    ) {
        if let Some(retry_after) = self.draining {
            // Shutting down: come back later. The connection is never registered.
            self.transmits.push_back(Transmit {
                reply: true,
                conn,
                payload: super::draining_payload(retry_after),
            });
            return self.actions.push_back(Action::Close {
                conn,
                code: close_code::SERVICE_RESTART,
                reason: ErrorCode::Draining,
            });
        }
        let wire_id = format!("{}-{conn}", self.config.node);
        let welcome = Welcome {
            conn: wire_id.clone(),
            user: identity.user.clone(),
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            protocol: wire::PROTOCOL_VERSION.into(),
        };
        self.send(conn, &ServerFrame::Welcome(welcome));
        self.conns.insert(
            conn,
            Box::new(Conn {
                identity,
                wire_id,
                kind,
                last_seen: now.instant,
                // Room for one, which most connections join (a push would take room for four).
                rooms: LiteMap::with_capacity(1),
                publish_budget: TokenBucket::full(self.config.publish_burst, now.instant),
                appends_in_flight: 0,
                signal_budget: TokenBucket::full(self.config.signal_burst, now.instant),
                signal_refused: false,
                join_budget: TokenBucket::full(self.config.join_burst, now.instant),
                locks_in_flight: 0,
            }),
        );
        if kind == ConnKind::Poll {
            self.poll_sessions += 1;
            let deadline = now.instant + self.config.poll_session_timeout;
            self.timers
                .push(Reverse((deadline, Timer::PollSessionExpiry(conn))));
        } else if self.next_sweep.is_none() {
            self.next_sweep = Some(now.instant + self.config.heartbeat);
        }
    }

    /// The connection is alive (e.g. a WebSocket-level ping) without sending a frame.
    pub fn handle_activity(&mut self, now: Now, conn: ConnId) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.last_seen = now.instant;
        }
    }

    /// The connection presented a token again (every polling request carries its own): from
    /// now on it acts with `identity`, and it leaves every room that token no longer grants,
    /// each with an `error` `forbidden` that says so. The driver makes sure the user is the
    /// same (a session belongs to one user); a token for another user is refused before this.
    pub fn handle_token(&mut self, now: Now, conn: ConnId, identity: Arc<Identity>) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        debug_assert_eq!(
            state.identity.user, identity.user,
            "one user per connection"
        );
        if state.identity == identity {
            return;
        }
        state.identity = identity;
        let mut revoked: Vec<RoomName> = state
            .rooms
            .keys()
            .filter(|room| !state.identity.can_join(room))
            .cloned()
            .collect();
        revoked.sort(); // Deterministic output order (`rooms` is a hash set).
        for room in revoked {
            let message = format!("your token no longer grants access to room {room}; it was left");
            self.send_error(conn, ErrorCode::Forbidden, &message, Some(room.clone()));
            self.leave(now, conn, room);
        }
    }

    /// A WebSocket renewed its token with an `auth` frame (verified by the driver, same user):
    /// as [`Hub::handle_token`], then `authed`, which therefore follows any `forbidden` for a
    /// room the new token no longer grants.
    pub fn handle_auth(&mut self, now: Now, conn: ConnId, identity: Arc<Identity>) {
        let user = identity.user.clone();
        self.handle_token(now, conn, identity);
        self.send(conn, &ServerFrame::Authed(wire::Authed { user }));
    }

    /// The connection closed. Its presence lingers for the grace period.
    pub fn handle_disconnect(&mut self, now: Now, conn: ConnId) {
        self.drop_conn(now, conn);
    }

    /// The connection's outbound queue is full: close it (it can resume to catch up).
    pub fn handle_slow_consumer(&mut self, now: Now, conn: ConnId) {
        if self.drop_conn(now, conn) {
            self.actions.push_back(Action::Close {
                conn,
                code: close_code::SLOW_CONSUMER,
                reason: ErrorCode::SlowConsumer,
            });
        }
    }

    /// Forgets a connection everywhere; returns whether it was known.
    fn drop_conn(&mut self, now: Now, conn: ConnId) -> bool {
        let Some(state) = self.conns.remove(&conn) else {
            return false;
        };
        if state.kind == ConnKind::Poll {
            self.poll_sessions -= 1;
        }
        self.orphaned_replays
            .retain(|(orphan, _), _| *orphan != conn);
        for (room_name, ()) in state.rooms {
            self.remove_member_of(now, conn, &state.identity.user, &room_name, true);
        }
        if self.conns.len() == self.poll_sessions {
            self.next_sweep = None;
        }
        true
    }

    /// A polling session's expiry timer fired: close the session if it made no request for
    /// [`HubConfig::poll_session_timeout`](super::HubConfig::poll_session_timeout), or re-arm
    /// the timer at the deadline its last request set.
    pub(super) fn expire_poll_session(&mut self, now: Now, conn: ConnId) {
        let Some(state) = self.conns.get(&conn) else {
            return; // Gone already; its timer outlived it.
        };
        let deadline = state.last_seen + self.config.poll_session_timeout;
        if deadline > now.instant {
            self.timers
                .push(Reverse((deadline, Timer::PollSessionExpiry(conn))));
        } else if self.drop_conn(now, conn) {
            self.actions.push_back(Action::Close {
                conn,
                code: close_code::IDLE_TIMEOUT,
                reason: ErrorCode::IdleTimeout,
            });
        }
    }

    /// Closes every socket silent for two heartbeats (polling sessions have their own timers).
    pub(super) fn sweep_dead_connections(&mut self, now: Now) {
        let socket_limit = self.config.heartbeat * 2;
        let mut dead: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.kind == ConnKind::Socket
                    && now.instant.duration_since(c.last_seen) >= socket_limit
            })
            .map(|(&id, _)| id)
            .collect();
        dead.sort_unstable();
        for conn in dead {
            if self.drop_conn(now, conn) {
                self.actions.push_back(Action::Close {
                    conn,
                    code: close_code::IDLE_TIMEOUT,
                    reason: ErrorCode::IdleTimeout,
                });
            }
        }
        let sockets = self.conns.len() - self.poll_sessions;
        self.next_sweep = (sockets > 0).then(|| now.instant + self.config.heartbeat);
    }
}
