//! Connections: greeting a new one with `welcome`, noticing that it is alive, and forgetting it
//! (disconnect, slow consumer, or silence found by the periodic sweep: two heartbeats for a
//! socket, [`HubConfig::poll_session_timeout`](super::HubConfig::poll_session_timeout) for a
//! polling session).

use std::collections::HashSet;
use std::sync::Arc;

use chorus_sdk::wire::{self, ErrorCode, ServerFrame, Welcome, close_code};

use super::publish::TokenBucket;
use super::{Action, Conn, ConnId, ConnKind, Hub, Now};
use crate::identity::Identity;

impl Hub {
    /// An authenticated connection opened; it is greeted with `welcome`.
    pub fn handle_connect(
        &mut self,
        now: Now,
        conn: ConnId,
        identity: Arc<Identity>,
        kind: ConnKind,
    ) {
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
            Conn {
                identity,
                wire_id,
                kind,
                last_seen: now.instant,
                rooms: HashSet::new(),
                publish_budget: TokenBucket::full(self.config.publish_burst, now.instant),
                signal_budget: TokenBucket::full(self.config.signal_burst, now.instant),
                signal_refused: false,
            },
        );
        if kind == ConnKind::Poll {
            self.poll_sessions += 1;
        }
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now.instant + self.config.heartbeat);
        }
    }

    /// The connection is alive (e.g. a WebSocket-level ping) without sending a frame.
    pub fn handle_activity(&mut self, now: Now, conn: ConnId) {
        if let Some(state) = self.conns.get_mut(&conn) {
            state.last_seen = now.instant;
        }
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
        for room_name in state.rooms {
            self.remove_member_of(now, conn, &state.identity.user, &room_name, true);
        }
        if self.conns.is_empty() {
            self.next_sweep = None;
        }
        true
    }

    pub(super) fn sweep_dead_connections(&mut self, now: Now) {
        let socket_limit = self.config.heartbeat * 2;
        let poll_limit = self.config.poll_session_timeout;
        let mut dead: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let limit = match c.kind {
                    ConnKind::Socket => socket_limit,
                    ConnKind::Poll => poll_limit,
                };
                now.instant.duration_since(c.last_seen) >= limit
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
        self.next_sweep = (!self.conns.is_empty()).then(|| now.instant + self.config.heartbeat);
    }
}
