//! Notices: messages from the application's backend to connections, outside any room (a
//! maintenance warning to everyone, a note to one user's tabs, an answer to one tab).
//!
//! A notice is not a room event: nothing is stored, sequenced or replayed, and a connection
//! that is not open when the notice is sent never gets it. The hub hands the same serialized
//! `notice` frame to every connection the target names: a WebSocket gets it at once (like
//! any frame that is not a reply), a polling session keeps it for its next long poll
//! ([`Action::Notice`]: the driver holds a few per session, see `driver::poll`).
//!
//! On several nodes (a federated hub) a notice also goes to the other nodes as an
//! [`Action::Signal`] on the reserved room [`NOTICE_ROOM`], which every node's driver follows
//! for as long as it runs; each node hands it to its own connections
//! ([`Hub::handle_notice_signal`]). A connection target names its node (the prefix of a wire
//! connection id), so only that node looks for it. The signal is
//! `v1\n<target>\n<notice frame>`, the target `*` (everyone), `u:<user>` or `c:<connection>`.
//! Nothing here may store anything or wait for anyone.

use chorus_sdk::wire::{self, RoomName, ServerFrame};

use super::{Action, ConnId, ConnKind, Hub, Transmit, encode};

/// The room whose signal channel carries notices between nodes. It is an inbox name
/// (`@` + `@chorus:notices`) that no token names unless an application issues one for that
/// user; the driver never stops following it.
pub const NOTICE_ROOM: &str = "@@chorus:notices";

/// The room [`NOTICE_ROOM`] names.
pub fn notice_room() -> RoomName {
    RoomName::parse(NOTICE_ROOM).expect("a valid room name")
}

/// Which connections a notice is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeTarget {
    /// Every connection of every node.
    Everyone,
    /// Every connection of this user.
    User(String),
    /// One connection (WebSocket or polling session), by its wire id (`welcome.conn`, and
    /// `conns[].conn` in presence).
    Connection(String),
}

impl NoticeTarget {
    /// The target's name in metrics: `everyone`, `user` or `connection`.
    pub fn kind(&self) -> &'static str {
        match self {
            NoticeTarget::Everyone => "everyone",
            NoticeTarget::User(_) => "user",
            NoticeTarget::Connection(_) => "connection",
        }
    }

    fn encode(&self) -> String {
        match self {
            NoticeTarget::Everyone => "*".to_owned(),
            NoticeTarget::User(user) => format!("u:{user}"),
            NoticeTarget::Connection(conn) => format!("c:{conn}"),
        }
    }

    fn decode(text: &str) -> Option<NoticeTarget> {
        match text {
            "*" => Some(NoticeTarget::Everyone),
            _ => match text.split_at_checked(2)? {
                ("u:", user) => Some(NoticeTarget::User(user.to_owned())),
                ("c:", conn) => Some(NoticeTarget::Connection(conn.to_owned())),
                _ => None,
            },
        }
    }
}

/// What became of a notice on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Handed to this many connections of this node (and sent to the other nodes, if any).
    Delivered(usize),
    /// The target is a connection that does not exist: one of this node's that is not open,
    /// or (on one node) one of a node that is not this one.
    NoSuchConnection,
}

/// Counts for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoticeFigures {
    /// Notices sent through this node, by target: everyone, user, connection.
    pub sent: [u64; 3],
    /// Connections of this node a notice was handed to (from this node or another).
    pub delivered: u64,
}

/// Why a notice signal from another node was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("notice signal from node {node} refused: {reason}")]
pub struct NoticeSignalError {
    /// The sending node.
    pub node: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Hub {
    /// The backend sends `notice` to `target`: handed to the target's connections on this
    /// node, and (federated) sent to the other nodes, which hand it to theirs.
    pub fn handle_notice(&mut self, target: &NoticeTarget, notice: wire::Notice) -> NoticeOutcome {
        let payload = encode(&ServerFrame::Notice(notice));
        let slot = match target {
            NoticeTarget::Everyone => 0,
            NoticeTarget::User(_) => 1,
            NoticeTarget::Connection(_) => 2,
        };
        if let NoticeTarget::Connection(wire_id) = target {
            let here = self.local_connection(wire_id);
            let elsewhere = self.config.federated
                && wire_id
                    .rsplit_once('-')
                    .is_some_and(|(node, _)| node != self.config.node);
            if here.is_none() && !elsewhere {
                return NoticeOutcome::NoSuchConnection;
            }
        }
        self.notice_figures.sent[slot] += 1;
        if self.config.federated {
            let mut bytes = format!("v1\n{}\n", target.encode()).into_bytes();
            bytes.extend_from_slice(payload.as_str().as_bytes());
            self.actions.push_back(Action::Signal {
                room: notice_room(),
                bytes: bytes.into(),
            });
        }
        NoticeOutcome::Delivered(self.deliver_notice(target, &payload))
    }

    /// Another node's notice (see the module doc): handed to the target's connections here.
    pub fn handle_notice_signal(
        &mut self,
        from_node: &str,
        bytes: &[u8],
    ) -> Result<usize, NoticeSignalError> {
        let refused = |reason| NoticeSignalError {
            node: from_node.to_owned(),
            reason,
        };
        if from_node == self.config.node {
            return Ok(0);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| refused("not UTF-8"))?;
        let mut parts = text.splitn(3, '\n');
        if parts.next() != Some("v1") {
            return Err(refused("not a notice of version 1"));
        }
        let target = parts
            .next()
            .and_then(NoticeTarget::decode)
            .ok_or_else(|| refused("no target"))?;
        let frame = parts.next().ok_or_else(|| refused("no notice"))?;
        // Checked, so that nothing a client can not read is handed to it.
        let Ok(ServerFrame::Notice(_)) = ServerFrame::decode(frame) else {
            return Err(refused("not a notice frame"));
        };
        let payload = super::Payload::from(frame.to_owned());
        Ok(self.deliver_notice(&target, &payload))
    }

    /// The counts for `/metrics`.
    pub fn notice_figures(&self) -> NoticeFigures {
        self.notice_figures
    }

    /// This node's connection with that wire id, if it is open.
    fn local_connection(&self, wire_id: &str) -> Option<ConnId> {
        let (node, conn) = wire_id.rsplit_once('-')?;
        if node != self.config.node {
            return None;
        }
        let conn: ConnId = conn.parse().ok()?;
        let state = self.conns.get(&conn)?;
        (state.wire_id == wire_id).then_some(conn)
    }

    /// Hands the notice to the target's connections here, in connection order; how many.
    fn deliver_notice(&mut self, target: &NoticeTarget, payload: &super::Payload) -> usize {
        let mut conns: Vec<(ConnId, ConnKind)> = match target {
            NoticeTarget::Everyone => self.conns.iter().map(|(id, c)| (*id, c.kind)).collect(),
            NoticeTarget::User(user) => self
                .conns
                .iter()
                .filter(|(_, c)| c.identity.user == *user)
                .map(|(id, c)| (*id, c.kind))
                .collect(),
            NoticeTarget::Connection(wire_id) => self
                .local_connection(wire_id)
                .and_then(|id| self.conns.get(&id).map(|c| (id, c.kind)))
                .into_iter()
                .collect(),
        };
        // Connections are a hash map: a fixed order keeps the hub deterministic.
        conns.sort_unstable_by_key(|(conn, _)| *conn);
        for &(conn, kind) in &conns {
            match kind {
                ConnKind::Socket => self.transmits.push_back(Transmit {
                    conn,
                    payload: payload.clone(),
                    reply: false,
                }),
                ConnKind::Poll => self.actions.push_back(Action::Notice {
                    conn,
                    payload: payload.clone(),
                }),
            }
        }
        self.notice_figures.delivered += conns.len() as u64;
        conns.len()
    }
}
