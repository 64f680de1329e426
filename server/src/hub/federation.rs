//! Federation: how the hubs of several nodes on one Redis act as one hub for presence, typing
//! and ephemeral events. Nothing here touches the network: the hub hands [`RoomSignal`]s out
//! as [`Action::Signal`] and takes the other nodes' in through [`Hub::handle_signal`]; the
//! driver's bus carries them (the Redis transport lands with the bus). A one-node hub
//! (`HubConfig::federated` false, the SQLite and memory engines) never emits a signal.
//!
//! # The protocol between nodes
//!
//! Every signal is about one room and goes to every other node following that room; the bus
//! tells the receiver which node sent it (that node's `HubConfig::node`, the prefix of its
//! wire connection ids) and delivers one node's signals in the order it sent them (Redis
//! pub/sub on one connection does), so a `state` never overtakes the `gone` sent after it. A signal is one JSON object, `{"v":1,"signal":{KIND:{...}}}` (or
//! `{"v":1,"signal":"bye"}`); a receiver refuses another `v` or an unknown kind with a
//! [`SignalError`] (the driver logs it and goes on).
//!
//! - `state`: the sender's live connections in the room, in full (`conns`), and `sync: true`
//!   when the sender just opened the room and asks the others for theirs (each answers with
//!   its own `state`). Sent every `HubConfig::federation_refresh` for every open room, so a
//!   lost delta heals: a receiver adds what it lacks, takes the new meta, and treats a
//!   connection of that node it still shows but the state leaves out as dropped (it lingers
//!   for the grace period).
//! - `conn`: one connection arrived or changed its meta (the same record as in `state`).
//! - `metas`: some of one user's connections changed their meta, as one change: the changes
//!   the sender held to the user's presence budget (see `presence.rs`). A receiver announces
//!   the ones it shows live as one update, and adds any other as a `conn` would.
//! - `gone`: one connection left the room; `linger` says whether it dropped (its user lingers
//!   for the grace period, as for a dropped socket here) or left explicitly (gone at once).
//! - `typing`: a user on the sender started (or refreshed) or stopped typing. Receivers expire
//!   it after `HubConfig::typing_ttl` without a refresh, as they do for their own members.
//! - `event`: an ephemeral (`"durable": false`) event, as the `event` frame members get. It is
//!   never stored; each receiver hands it once to each of its members.
//! - `cursor`: one of the sender's connections set its live cursor (coalesced by the sender,
//!   see `live_cursors.rs`), or removed it (`value: null`, also when it left the room).
//! - `cursors`: the sender's live cursors in the room, in full; sent with each refresh while
//!   the sender has had any there, so a lost `cursor` heals: what it no longer lists goes.
//!   A connection's cursor also goes with its `gone`, with a `bye` and with the lease.
//! - `bye`: the sender has nobody left in the room: it forgot the room (its last member
//!   left; each already had its `gone`), or it is shutting down (drain). Its connections in
//!   the room that receivers still show linger for the grace period, like dropped sockets,
//!   without waiting for the lease, and receivers forget the sender's lease for the room.
//!
//! # The lease
//!
//! A receiver remembers, per room, when it last heard from each other node. A node that
//! stays silent in a room for `HubConfig::federation_lease` (it died, or was cut off) loses
//! its connections there: they leave at once (the lease already outlasted any grace period).
//! The lease is checked at every refresh tick, so a dead node's members are gone between
//! `federation_lease` and `federation_lease + federation_refresh` after its last signal.
//!
//! # Versions agree across nodes
//!
//! A polling client carries the presence and typing versions it saw to whichever node answers
//! its next poll, and a node answers `state` at once when they differ from its own; so the
//! versions of one room must be the same on every node once their states are. Every signal
//! carries the sender's versions of the room after its change (`versions`), and every node
//! treats them as a Lamport clock: a change of its own takes its version plus one; a signal
//! first raises the receiver's versions to the sender's minus one, then applies (each change
//! it makes takes the version plus one, so a change the sender and receiver make alike lands
//! on the sender's version), then raises them to the sender's. So a change one node makes and
//! the others apply carries one version everywhere, concurrent changes end on one version too
//! (each node's count of changes is the same), and what ordering between nodes can still
//! leave unequal (a grace period or a typing TTL ending a moment apart on two nodes, a
//! receiver applying several changes from one `state`, or from a `metas` naming connections
//! it did not know) is evened out by the next refresh:
//! the `state` every node sends every `HubConfig::federation_refresh` carries its versions
//! and the others take the highest. Versions still only grow on each node. A member of a
//! node whose presence version moved by more than one since the last change it was told
//! gets the whole presence (a `state` frame) rather than a `presence` diff, which it could
//! not tell from a missed one.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use chorus_sdk::wire::{Json, RoomName, ServerFrame};
use serde::{Deserialize, Serialize};

use super::live_cursors::CursorState;
use super::presence::{Arrival, ConnKey};
use super::{Action, Hub, Now, RoomLoad, Timer, Transmit, Typist, encode};

/// The version of the signal encoding; a receiver refuses any other.
pub const SIGNAL_VERSION: u32 = 1;

/// One live connection of the sending node, as `state` and `conn` carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnState {
    /// The connection's id on its node.
    pub conn: u64,
    /// Its wire id (what clients see in presence).
    pub wire: String,
    /// Its user.
    pub user: String,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its presence meta.
    pub meta: Json,
    /// When it joined, in milliseconds since the Unix epoch.
    pub since: u64,
}

/// What one node tells the others about one room (see the module docs).
// Externally tagged: serde then reads each variant straight from the JSON text, which the wire
// types inside (`Json`, `ServerFrame`, read as raw JSON) need; an internally tagged enum or a
// flattened field would buffer them first, and they cannot be read back from that buffer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomSignal {
    /// The sender's live connections in the room, in full; `sync` asks for the receivers'.
    State {
        /// Every live connection the sender holds in the room.
        conns: Vec<ConnState>,
        /// Whether the receivers must answer with their own `state`.
        #[serde(default)]
        sync: bool,
    },
    /// A connection arrived or changed its meta.
    Conn(ConnState),
    /// Some of one user's connections changed their meta, announced as one change: the
    /// sender held them to the user's budget (see `presence.rs`).
    Metas {
        /// The connections, each as `conn` carries it.
        conns: Vec<ConnState>,
    },
    /// A connection left the room.
    Gone {
        /// Its id on the sender.
        conn: u64,
        /// Its user.
        user: String,
        /// Whether the user lingers for the grace period (a drop) or leaves at once.
        linger: bool,
    },
    /// A user started, refreshed or stopped typing.
    Typing {
        /// The user.
        user: String,
        /// On or off.
        on: bool,
    },
    /// An ephemeral event, as the `event` frame members get.
    Event {
        /// The frame (an `event` without a seq, for this room).
        frame: ServerFrame,
    },
    /// The sender has nobody left in the room (it forgot it, or it is shutting down).
    Bye,
    /// A lock changed, as the store answered the sender (see `locks.rs`).
    Lock {
        /// What happened.
        change: chorus_sdk::wire::LockChange,
        /// The grant it happened to.
        lock: chorus_sdk::wire::LockInfo,
    },
    /// One of the sender's connections set (or removed, `null`) its live cursor.
    Cursor(CursorState),
    /// The sender's live cursors in the room, in full (with each refresh, while it has had any).
    Cursors {
        /// Every cursor the sender's connections show in the room.
        cursors: Vec<CursorState>,
    },
    /// A stream frame the sender's producer made (`start`, coalesced `append`, `fail`,
    /// `finish`), as the sender's members get it (see `streams.rs`).
    Stream {
        /// The frame (a `stream` frame of this room).
        frame: ServerFrame,
    },
}

/// The sender's presence and typing versions of the room, after the change its signal
/// carries (see the module docs: receivers merge them as a Lamport clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomVersions {
    /// The room's presence version on the sender.
    pub presence: u64,
    /// The room's typing version on the sender.
    pub typing: u64,
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    signal: &'a RoomSignal,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<RoomVersions>,
}

/// The version alone, read first so a newer node's signal is refused for its version rather
/// than for a kind this node does not know.
#[derive(Deserialize)]
struct VersionIn {
    v: u32,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    signal: RoomSignal,
    #[serde(default)]
    versions: Option<RoomVersions>,
}

/// Why a signal from another node was refused. The driver logs it and goes on; nothing else
/// changes.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The bytes are not a signal this node understands.
    #[error("malformed signal from node {node}: {reason}")]
    Malformed {
        /// The sender.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// The signal is of an encoding version this node does not speak.
    #[error("signal version {version} from node {node}; this node speaks {SIGNAL_VERSION}")]
    Version {
        /// The sender.
        node: String,
        /// The version it used.
        version: u32,
    },
}

impl RoomSignal {
    /// The bytes that travel between nodes, without versions (a node that forgot the room).
    pub fn encode(&self) -> Bytes {
        self.encode_with(None)
    }

    /// The bytes that travel between nodes, with the sender's versions of the room.
    pub fn encode_with(&self, versions: Option<RoomVersions>) -> Bytes {
        let envelope = EnvelopeOut {
            v: SIGNAL_VERSION,
            signal: self,
            versions,
        };
        Bytes::from(serde_json::to_vec(&envelope).expect("a signal always serializes"))
    }

    /// What a well-formed signal about `room` must also be: an `event` carries an ephemeral
    /// event of that room, and every meta is within the limit this node enforces on its own
    /// clients (nodes of one deployment share it).
    fn check(
        &self,
        room: &RoomName,
        max_meta_bytes: usize,
        max_cursor_bytes: usize,
    ) -> Result<(), &'static str> {
        let meta_fits = |conn: &ConnState| conn.meta.len() <= max_meta_bytes;
        let cursor_fits = |cursor: &CursorState| cursor.value.len() <= max_cursor_bytes;
        match self {
            RoomSignal::Event { frame } => match frame {
                ServerFrame::Event(event) if event.room == *room && event.seq.is_none() => Ok(()),
                _ => Err("an `event` signal must carry an ephemeral event of its room"),
            },
            RoomSignal::Stream { frame } => match frame {
                ServerFrame::Stream(stream) if stream.room == *room => Ok(()),
                _ => Err("a `stream` signal must carry a stream frame of its room"),
            },
            RoomSignal::State { conns, .. } if !conns.iter().all(meta_fits) => {
                Err("a connection's meta is over the size limit")
            }
            RoomSignal::Conn(conn) if !meta_fits(conn) => {
                Err("a connection's meta is over the size limit")
            }
            RoomSignal::Metas { conns } if !conns.iter().all(meta_fits) => {
                Err("a connection's meta is over the size limit")
            }
            RoomSignal::Metas { conns } if conns.windows(2).any(|w| w[0].user != w[1].user) => {
                Err("a `metas` signal must list connections of one user")
            }
            RoomSignal::Cursor(cursor) if !cursor_fits(cursor) => {
                Err("a cursor is over the size limit")
            }
            RoomSignal::Cursors { cursors } if !cursors.iter().all(cursor_fits) => {
                Err("a cursor is over the size limit")
            }
            _ => Ok(()),
        }
    }

    /// Reads a signal another node (`node`) sent.
    pub fn decode(node: &str, bytes: &[u8]) -> Result<RoomSignal, SignalError> {
        Ok(RoomSignal::decode_with_versions(node, bytes)?.0)
    }

    /// Reads a signal another node (`node`) sent, with the versions it carries (none from a
    /// node that sends none: it forgot the room, or it is of a release before them).
    pub fn decode_with_versions(
        node: &str,
        bytes: &[u8],
    ) -> Result<(RoomSignal, Option<RoomVersions>), SignalError> {
        let malformed = |err: serde_json::Error| SignalError::Malformed {
            node: node.to_owned(),
            reason: err.to_string(),
        };
        let version: VersionIn = serde_json::from_slice(bytes).map_err(malformed)?;
        if version.v != SIGNAL_VERSION {
            return Err(SignalError::Version {
                node: node.to_owned(),
                version: version.v,
            });
        }
        let envelope: EnvelopeIn = serde_json::from_slice(bytes).map_err(malformed)?;
        Ok((envelope.signal, envelope.versions))
    }
}

impl Hub {
    /// Another node (`from_node`, its `HubConfig::node`) sent a signal about `room`. Signals
    /// about rooms not open here (and this node's own, should the bus echo one) are ignored.
    pub fn handle_signal(
        &mut self,
        now: Now,
        room: RoomName,
        from_node: &str,
        bytes: &[u8],
    ) -> Result<(), SignalError> {
        let (signal, versions) = RoomSignal::decode_with_versions(from_node, bytes)?;
        // Checked before anything changes: a refused signal does not even renew the lease.
        signal
            .check(
                &room,
                self.config.max_meta_bytes,
                self.config.max_cursor_bytes,
            )
            .map_err(|reason| SignalError::Malformed {
                node: from_node.to_owned(),
                reason: reason.to_owned(),
            })?;
        if from_node == &*self.node_id {
            return Ok(());
        }
        let Some(state) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let node: Arc<str> = match state.heard.get_key_value(from_node) {
            Some((node, _)) => Arc::clone(node),
            None => from_node.into(),
        };
        state.heard.insert(Arc::clone(&node), now.instant);
        // A change this signal makes here lands on the sender's version (see the module docs).
        if let Some(versions) = versions {
            state.raise_versions(
                versions.presence.saturating_sub(1),
                versions.typing.saturating_sub(1),
            );
        }
        match signal {
            RoomSignal::State { conns, sync } => {
                let before = self.rooms.get(&room).map(|r| r.presence.version());
                let listed: HashSet<u64> = conns.iter().map(|c| c.conn).collect();
                for conn in conns {
                    self.apply_remote_conn(&room, &node, conn);
                }
                let dropped = self
                    .rooms
                    .get(&room)
                    .map_or_else(Vec::new, |r| r.presence.conns_of(&node));
                for (user, key, lingering) in dropped {
                    if !lingering && !listed.contains(&key.conn) {
                        self.remove_remote_conn(now, &room, &user, &key, true);
                    }
                }
                // A cursor of a connection the sender no longer has goes too (its `gone`, or
                // the `cursor` that removed it, may have been lost).
                self.drop_node_cursors(&room, &node, |key| !listed.contains(&key.conn));
                let after = self.rooms.get(&room).map(|r| r.presence.version());
                // A `state` that changed several things here leaves this node's version above
                // the sender's (each change took one): saying so at once, rather than at the
                // next refresh, lets the others take it now (what a room opening on one more
                // node does every time). It ends there: taking a version changes nothing.
                let ahead = versions.is_some_and(|v| after.is_some_and(|a| a > v.presence));
                if sync || (after != before && ahead) {
                    self.announce_state(&room, false);
                }
                if sync {
                    self.announce_streams(&room);
                }
            }
            RoomSignal::Conn(conn) => self.apply_remote_conn(&room, &node, conn),
            RoomSignal::Metas { conns } => self.apply_remote_metas(&room, &node, conns),
            RoomSignal::Gone { conn, user, linger } => {
                let key = ConnKey { node, conn };
                self.remove_remote_conn(now, &room, &user, &key, linger);
            }
            RoomSignal::Typing { user, on } => self.remote_typing(now, &room, &node, user, on),
            RoomSignal::Event { frame } => {
                let payload = encode(&frame);
                let Some(state) = self.rooms.get(&room) else {
                    return Ok(());
                };
                for &conn in state.members.keys() {
                    self.transmits.push_back(Transmit {
                        reply: false,
                        conn,
                        payload: payload.clone(),
                    });
                }
            }
            RoomSignal::Lock { change, lock } => self.remote_lock(now, &room, change, lock),
            RoomSignal::Stream { frame } => {
                if let ServerFrame::Stream(frame) = frame {
                    self.remote_stream(now, &room, &node, frame);
                }
            }
            RoomSignal::Bye => {
                self.forget_node_in(now, &room, &node, true);
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.heard.remove(&node);
                }
            }
            RoomSignal::Cursor(cursor) => self.apply_remote_cursor(&room, &node, cursor),
            RoomSignal::Cursors { cursors } => self.apply_remote_cursors(&room, &node, cursors),
        }
        if let Some(versions) = versions
            && let Some(state) = self.rooms.get_mut(&room)
        {
            state.raise_versions(versions.presence, versions.typing);
        }
        self.forget_room_if_idle(&room);
        Ok(())
    }

    /// Sends `signal` about `room` to the other nodes, if there are any and this node is not
    /// shutting down (after its `bye`, nothing it says may bring its connections back). Lock
    /// changes still go out while it shuts down: they are the store's facts (a holder that
    /// left, or dropped, during the drain), about no connection of this node's.
    pub(super) fn signal(&mut self, room: &RoomName, signal: &RoomSignal) {
        let lock = matches!(signal, RoomSignal::Lock { .. });
        if self.config.federated && (self.draining.is_none() || lock) {
            let versions = self.rooms.get(room).map(|state| RoomVersions {
                presence: state.presence.version(),
                typing: state.typing_version,
            });
            self.actions.push_back(Action::Signal {
                room: room.clone(),
                bytes: signal.encode_with(versions),
            });
        }
    }

    /// Announces this node's live connections in `room` (a `state`), asking the others for
    /// theirs when `sync`.
    pub(super) fn announce_state(&mut self, room: &RoomName, sync: bool) {
        if !self.config.federated {
            return;
        }
        let Some(state) = self.rooms.get(room) else {
            return;
        };
        let conns = state.presence.state_of(&self.node_id);
        self.signal(room, &RoomSignal::State { conns, sync });
    }

    /// Announces one of this node's connections in `room` after it changed (a `conn`).
    pub(super) fn announce_conn(&mut self, room: &RoomName, user: &str, key: &ConnKey) {
        let state = self
            .rooms
            .get(room)
            .and_then(|state| state.presence.conn_state(user, key));
        if let Some(state) = state {
            self.signal(room, &RoomSignal::Conn(state));
        }
    }

    /// The periodic refresh: re-announces every open room's state and drops the connections
    /// of nodes whose lease ran out. Rooms in name order, so the output is deterministic.
    pub(super) fn refresh_federation(&mut self, now: Now) {
        let mut rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
        rooms.sort_unstable();
        let lease = self.config.federation_lease;
        for room in rooms {
            let Some(state) = self.rooms.get(&room) else {
                continue;
            };
            let open = matches!(state.state, Some(RoomLoad::Open { .. }));
            let mut expired: Vec<Arc<str>> = state
                .heard
                .iter()
                .filter(|(_, heard)| now.instant.saturating_duration_since(**heard) >= lease)
                .map(|(node, _)| Arc::clone(node))
                .collect();
            expired.sort_unstable();
            for node in expired {
                tracing::info!(%room, %node, "no signal from a node for the lease: its connections leave");
                self.forget_node_in(now, &room, &node, false);
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.heard.remove(&node);
                }
            }
            if open {
                self.announce_state(&room, false);
                self.announce_cursors(&room);
            }
            self.forget_room_if_idle(&room);
        }
        self.next_refresh = (!self.rooms.is_empty() && self.draining.is_none())
            .then(|| now.instant + self.config.federation_refresh);
    }

    /// Arms the refresh timer if it is not armed (a federated hub with a room open).
    pub(super) fn arm_refresh(&mut self, now: Now) {
        if self.config.federated && self.next_refresh.is_none() && self.draining.is_none() {
            self.next_refresh = Some(now.instant + self.config.federation_refresh);
        }
    }

    /// Tells the other nodes this one is shutting down: in every room it has open, its
    /// connections are gone (and linger there for the grace period).
    pub(super) fn announce_bye(&mut self) {
        if !self.config.federated {
            return;
        }
        let mut rooms: Vec<RoomName> = self
            .rooms
            .iter()
            .filter(|(_, room)| matches!(room.state, Some(RoomLoad::Open { .. })))
            .map(|(name, _)| name.clone())
            .collect();
        rooms.sort_unstable();
        for room in rooms {
            // Pushed directly: `signal` is silent once draining, and this is the last word.
            self.actions.push_back(Action::Signal {
                room,
                bytes: RoomSignal::Bye.encode(),
            });
        }
        self.next_refresh = None;
    }

    /// A remote connection arrived or its meta changed (or a `state` lists it).
    fn apply_remote_conn(&mut self, room_name: &RoomName, node: &Arc<str>, c: ConnState) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let key = ConnKey {
            node: Arc::clone(node),
            conn: c.conn,
        };
        let change = match room.presence.conn(&c.user, &key) {
            Some((meta, false)) if *meta == c.meta => None,
            Some((_, false)) => room.presence.set_meta(&c.user, &key, c.meta),
            // New here, or lingering here while its node says it is live: adding it replaces
            // the user's lingering connections, as a reconnect does.
            _ => room.presence.add(Arrival {
                user: &c.user,
                name: c.name.as_deref(),
                key,
                wire_id: &c.wire,
                meta: c.meta,
                since: c.since,
            }),
        };
        if let Some(change) = change {
            self.broadcast_presence(room_name, change, None);
        }
    }

    /// Some of one user's remote connections changed their meta: one update for the ones live
    /// here, and any other as a `conn` signal would bring it.
    fn apply_remote_metas(&mut self, room_name: &RoomName, node: &Arc<str>, conns: Vec<ConnState>) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(user) = conns.first().map(|c| c.user.clone()) else {
            return;
        };
        let (mut live, mut others) = (Vec::new(), Vec::new());
        for c in conns {
            let key = ConnKey {
                node: Arc::clone(node),
                conn: c.conn,
            };
            match room.presence.conn(&user, &key) {
                Some((_, false)) => live.push((key, c.meta)),
                _ => others.push(c),
            }
        }
        if let Some(change) = room.presence.set_metas(&user, live) {
            self.broadcast_presence(room_name, change, None);
        }
        for c in others {
            self.apply_remote_conn(room_name, node, c);
        }
    }

    /// A remote connection left: it lingers for the grace period (`linger`) or leaves now.
    fn remove_remote_conn(
        &mut self,
        now: Now,
        room_name: &RoomName,
        user: &str,
        key: &ConnKey,
        linger: bool,
    ) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        match room.presence.conn(user, key) {
            Some((_, false)) => {}
            // Already lingering: its own deadline stands, unless it must go now.
            Some((_, true)) if !linger => {}
            _ => return,
        }
        let linger_until = linger.then(|| now.instant + self.config.presence_grace);
        let change = room.presence.remove(user, key, linger_until);
        self.drop_cursor(room_name, key);
        if let Some(deadline) = linger_until {
            self.timers.push(std::cmp::Reverse((
                deadline,
                Timer::PresenceLeave(room_name.clone(), user.to_owned()),
            )));
        }
        if let Some(change) = change {
            self.broadcast_presence(room_name, change, None);
        }
    }

    /// Every connection and typist of `node` in the room goes: lingering (`bye`) or at once
    /// (the lease ran out).
    fn forget_node_in(&mut self, now: Now, room_name: &RoomName, node: &Arc<str>, linger: bool) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let conns = room.presence.conns_of(node);
        let mut typists: Vec<String> = room
            .typing
            .iter()
            .filter(|(_, (_, typist))| matches!(typist, Typist::Remote(n) if n == node))
            .map(|(user, _)| user.clone())
            .collect();
        typists.sort_unstable();
        for user in typists {
            self.remote_typing(now, room_name, node, user, false);
        }
        for (user, key, _) in conns {
            self.remove_remote_conn(now, room_name, &user, &key, linger);
        }
        // Its cursors go at once, lingering or not (and any whose `conn` never came).
        self.drop_node_cursors(room_name, node, |_| true);
    }

    /// A user on `node` started, refreshed or stopped typing.
    fn remote_typing(
        &mut self,
        now: Now,
        room_name: &RoomName,
        node: &Arc<str>,
        user: String,
        on: bool,
    ) {
        let ttl = self.config.typing_ttl;
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if on {
            let until = now.instant + ttl;
            let typist = Typist::Remote(Arc::clone(node));
            if room.typing.insert(user.clone(), (until, typist)).is_none() {
                room.typing_version += 1;
            }
            self.timers.push(std::cmp::Reverse((
                until,
                Timer::TypingExpiry(room_name.clone(), user.clone()),
            )));
            self.broadcast_typing(room_name, user, true, None);
        } else {
            // Only that node's typing stops: the user may type in a tab here too.
            let theirs =
                matches!(room.typing.get(&user), Some((_, Typist::Remote(n))) if n == node);
            if theirs {
                room.typing.remove(&user);
                room.typing_version += 1;
                self.broadcast_typing(room_name, user, false, None);
            }
        }
    }
}
