//! Polling sessions in the driver, and how a poll is answered end to end.
//!
//! Polling (for networks where WebSocket does not work) has three parts: the HTTP handlers
//! (`http::poll`), this module (the driver's side), and two things the hub says: which frames
//! reply to a connection's own frames ([`Transmit::reply`]) and whether it still owes the
//! connection answers ([`Hub::owes_answers`]). A session is a hub connection of kind
//! [`ConnKind::Poll`]: it joins rooms, counts in presence and types like a socket, but the
//! driver keeps no frame queue for it.
//!
//! # `POST /v1/poll`: frames in, their replies out
//!
//! 1. `http::poll::send` checks the token and decodes the frames one by one, answers the ones it
//!    refuses itself (as a WebSocket connection task would), and sends the rest as
//!    [`HubMsg::PollSend`].
//! 2. `Driver::poll_send` opens the session's hub connection if needed (a [`SessionKey`]: the
//!    client-chosen id; the session belongs to the user who opened it and refuses everyone
//!    else's token; a new session only while its user and its client address are below
//!    [`PollLimits`]' session caps, see [`PollRefusal`]), hands the hub this request's identity
//!    (`Hub::handle_token`: every request acts with its own token's grants, and rooms it no
//!    longer grants are left), refuses a second `POST` in flight, sets up a `Collector`, and
//!    feeds the frames to the hub.
//! 3. The hub marks each frame that replies to the connection's own frames
//!    ([`Transmit::reply`]); the driver's output loop hands a session's replies to its
//!    collector (`PollSession::deliver`). A durable publish is answered after storing, a join
//!    after its room has loaded; until then the hub owes the session an answer.
//! 4. After every round of outputs, each `POST` whose session is owed nothing more (or whose
//!    caller gave up) gets its frames (`Driver::answer_complete_posts`). Asking the hub what
//!    it owes, rather than matching answers to frames, holds whatever the batch does: a join
//!    that a later `leave` cancels while its room loads, a room joined twice. The handler gives
//!    up after its timeout and tells the client to retry with the same ids.
//!
//! # `GET /v1/poll`: a long poll
//!
//! 1. `http::poll::poll` parses the cursors (room, epoch, seq, presence and typing versions),
//!    refuses rooms the token does not grant, and sends [`HubMsg::PollOpen`].
//! 2. `Driver::poll_open` takes the session and the request's identity as a `POST` does,
//!    counts the poll against [`PollLimits::max_held_polls`] and answers
//!    with a [`PollTicket`]: the session's wake counter, a [`RoomView`] per room (membership,
//!    presence and typing with their versions, from [`Hub::room_view`]) and the held-poll count
//!    the poll releases when it ends.
//! 3. The handler answers from what the poll carries: the stored history after each cursor (or
//!    a `reset`), a `state` frame where a version differs, an `error` where the session is not
//!    a member.
//! 4. When nothing is due it waits, up to the requested wait, on the wake counter: every frame
//!    the hub sends the session that is not a reply bumps it, and so does the session's end.
//!    A woken poll asks for fresh views ([`HubMsg::PollView`]) and answers from them.
//!
//! Nothing the driver keeps per session is needed to answer a poll correctly (only presence
//! membership and wake-ups), so any node, or a restarted one, can answer any poll. A session
//! without a request for `poll_session_timeout` is closed by the hub's sweep, like a silent
//! socket.
//!
//! # Sessions across nodes (Redis engine)
//!
//! Membership is what a node must know to hold a poll (and to accept a publish), so on the
//! Redis engine it is shared: after every answered `POST` the handler records the session's
//! rooms and metas ([`SessionRecord`], from [`HubMsg::PollRecord`]) in Redis
//! (`crate::bus::sessions`), and before every `POST` or `GET` it loads the record and sends
//! [`HubMsg::PollAdopt`]: `Driver::poll_adopt` opens the session here if needed and joins,
//! updates and leaves rooms to match the record, answering once the hub owes the session
//! nothing (the replies to those frames are dropped). A record of another user refuses the
//! request as a session of another user on this node would.
//!
//! [`HubMsg::PollAdopt`]: super::HubMsg::PollAdopt
//! [`HubMsg::PollRecord`]: super::HubMsg::PollRecord
//!
//! [`Hub::room_view`]: crate::hub::Hub::room_view
//! [`Hub::owes_answers`]: crate::hub::Hub::owes_answers
//! [`HubMsg::PollSend`]: super::HubMsg::PollSend
//! [`HubMsg::PollOpen`]: super::HubMsg::PollOpen
//! [`HubMsg::PollView`]: super::HubMsg::PollView

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chorus_sdk::wire::{ClientFrame, ErrorCode, RoomName};
use tokio::sync::{oneshot, watch};

use super::{Driver, Peer};
use crate::hub::{ConnId, ConnKind, Now, Payload, RoomView, Transmit};
use crate::identity::Identity;

/// Identifies a polling session: the client-chosen session id. The session belongs to the user
/// whose token opened it.
pub type SessionKey = String;

/// A polling session as the nodes on one Redis share it (see `crate::bus::sessions`): whose it
/// is, and its rooms with their presence metas.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    /// The user who opened the session.
    pub user: String,
    /// Its rooms, in name order, with its presence meta in each.
    pub rooms: Vec<(RoomName, chorus_sdk::wire::Json)>,
}

/// What a long poll gets when it starts.
#[derive(Debug)]
pub struct PollTicket {
    /// The session's hub connection.
    pub conn: ConnId,
    /// Changes whenever something happened in one of the session's rooms after `views`.
    pub wake: watch::Receiver<u64>,
    /// The rooms as they were when the poll started.
    pub views: Vec<Option<RoomView>>,
    /// Held polls of this session; the poll decrements it when it ends.
    pub held: Arc<AtomicUsize>,
}

/// Limits the driver enforces for polling sessions.
#[derive(Clone, Copy, Debug)]
pub struct PollLimits {
    /// Held polls per session at once.
    pub max_held_polls: usize,
    /// Polling sessions one user may have open at once.
    pub max_sessions_per_user: usize,
    /// Polling sessions one client address may have open at once.
    pub max_sessions_per_address: usize,
}

/// Why the driver refused a polling request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PollRefusal {
    /// The session already has a `POST` in flight.
    #[error("this session already has a POST in flight; send one at a time")]
    PostInFlight,
    /// The session holds its maximum of long polls.
    #[error("at most {0} polls may wait at once per session")]
    HeldPolls(usize),
    /// Opening the session would exceed the user's session limit.
    #[error("at most {0} polling sessions per user; close one (or let it expire) first")]
    SessionsPerUser(usize),
    /// Opening the session would exceed the client address's session limit.
    #[error("at most {0} polling sessions per client address")]
    SessionsPerAddress(usize),
    /// The session id belongs to another user's session.
    #[error("this polling session belongs to another user: open your own with a new session id")]
    OtherUser,
    /// The session vanished while the request was handled.
    #[error("the polling session is gone")]
    Gone,
}

impl PollRefusal {
    /// The stable code a client gets.
    pub fn code(self) -> ErrorCode {
        match self {
            PollRefusal::PostInFlight | PollRefusal::HeldPolls(_) => ErrorCode::TooManyPolls,
            PollRefusal::SessionsPerUser(_) | PollRefusal::SessionsPerAddress(_) => {
                ErrorCode::TooManyConnections
            }
            PollRefusal::OtherUser => ErrorCode::Forbidden,
            PollRefusal::Gone => ErrorCode::Internal,
        }
    }
}

/// Open polling sessions per user and per client address, the counts the session limits
/// are checked against.
#[derive(Default)]
pub(super) struct SessionCounts {
    per_user: HashMap<String, usize>,
    per_address: HashMap<IpAddr, usize>,
}

impl SessionCounts {
    fn admit(
        &mut self,
        limits: &PollLimits,
        user: &str,
        address: IpAddr,
    ) -> Result<(), PollRefusal> {
        if self.per_user.get(user).copied().unwrap_or(0) >= limits.max_sessions_per_user {
            return Err(PollRefusal::SessionsPerUser(limits.max_sessions_per_user));
        }
        if self.per_address.get(&address).copied().unwrap_or(0) >= limits.max_sessions_per_address {
            return Err(PollRefusal::SessionsPerAddress(
                limits.max_sessions_per_address,
            ));
        }
        *self.per_user.entry(user.to_owned()).or_default() += 1;
        *self.per_address.entry(address).or_default() += 1;
        Ok(())
    }

    fn release(&mut self, user: &str, address: IpAddr) {
        fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        decrement(&mut self.per_user, &user.to_owned());
        decrement(&mut self.per_address, &address);
    }
}

/// A polling session as the driver keeps it: no frame queue, only what its requests wait on.
pub(super) struct PollSession {
    key: SessionKey,
    /// Whose session it is: requests with another user's token are refused.
    user: String,
    /// The client address it counts against (the per-address key, see `http::limits`).
    address: IpAddr,
    wake: watch::Sender<u64>,
    held: Arc<AtomicUsize>,
    collector: Option<Collector>,
    /// Notices for the session's next long poll, oldest first, at most [`MAX_KEPT_NOTICES`]
    /// (the one exception to "nothing per session": a notice is not in any history).
    notices: VecDeque<Payload>,
}

/// The most notices a polling session keeps for its next poll; past it the oldest go.
pub const MAX_KEPT_NOTICES: usize = 16;

/// Gathers the replies to one `POST` until the hub owes the session no more answers
/// ([`Hub::owes_answers`](crate::hub::Hub::owes_answers): no join waiting for its room to load, no publish waiting for its room
/// or the store).
struct Collector {
    frames: Vec<Payload>,
    reply: oneshot::Sender<Result<Vec<Payload>, PollRefusal>>,
}

impl Driver {
    /// The session's connection, opening it (as a hub connection of kind poll) if needed and
    /// if the user and the address are below their session limits (`address` is the client's
    /// per-address key; a session counts against the address that opened it). Every request is
    /// authorized by its own token: an open session takes this request's identity (and leaves
    /// rooms it no longer grants); another user's token is refused.
    fn session(
        &mut self,
        now: Now,
        key: SessionKey,
        identity: Arc<Identity>,
        address: IpAddr,
    ) -> Result<ConnId, PollRefusal> {
        if let Some(&conn) = self.sessions.get(&key) {
            if let Some(Peer::Poll(session)) = self.peers.get(&conn)
                && session.user != identity.user
            {
                return Err(PollRefusal::OtherUser);
            }
            self.hub.handle_activity(now, conn);
            self.hub.handle_token(now, conn, identity);
            return Ok(conn);
        }
        self.session_counts
            .admit(&self.limits, &identity.user, address)?;
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (wake, _) = watch::channel(0);
        let session = PollSession {
            key: key.clone(),
            user: identity.user.clone(),
            address,
            wake,
            held: Arc::new(AtomicUsize::new(0)),
            collector: None,
            notices: VecDeque::new(),
        };
        self.peers.insert(conn, Peer::Poll(Box::new(session)));
        self.sessions.insert(key, conn);
        self.hub.handle_connect(now, conn, identity, ConnKind::Poll);
        Ok(conn)
    }

    pub(super) fn poll_send(
        &mut self,
        now: Now,
        key: SessionKey,
        identity: Arc<Identity>,
        address: IpAddr,
        frames: Vec<ClientFrame>,
        reply: oneshot::Sender<Result<Vec<Payload>, PollRefusal>>,
    ) {
        let conn = match self.session(now, key, identity, address) {
            Ok(conn) => conn,
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
                return;
            }
        };
        let Some(Peer::Poll(session)) = self.peers.get_mut(&conn) else {
            let _ = reply.send(Err(PollRefusal::Gone));
            return;
        };
        if session
            .collector
            .as_ref()
            .is_some_and(|c| !c.reply.is_closed())
        {
            let _ = reply.send(Err(PollRefusal::PostInFlight));
            return;
        }
        let replaced = session.collector.replace(Collector {
            frames: Vec::new(),
            reply,
        });
        if replaced.is_none() {
            self.collecting.push(conn);
        }
        for frame in frames {
            self.hub.handle_frame(now, conn, frame);
        }
    }

    /// Brings the session on this node in line with its shared record (another node may have
    /// handled its last `POST`): opens it if needed, joins the rooms of the record it is not in
    /// here (with the recorded meta), updates metas that differ, leaves the rooms the record
    /// no longer has. The replies to those frames are dropped; `reply` is answered once the
    /// hub owes the session nothing (the joined rooms are loaded), so the request that follows
    /// sees the session as a member. A session with a `POST` in flight here is left as it is.
    pub(super) fn poll_adopt(
        &mut self,
        now: Now,
        key: SessionKey,
        identity: Arc<Identity>,
        address: IpAddr,
        record: SessionRecord,
        reply: oneshot::Sender<Result<Vec<Payload>, PollRefusal>>,
    ) {
        let user = identity.user.clone();
        let conn = match self.session(now, key, identity, address) {
            Ok(conn) => conn,
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
                return;
            }
        };
        let local = self.hub.conn_rooms(conn);
        let mut frames = Vec::new();
        if record.user == user {
            for (room, meta) in &record.rooms {
                match local.iter().find(|(r, _)| r == room) {
                    None => frames.push(ClientFrame::Join(chorus_sdk::wire::Join {
                        room: room.clone(),
                        meta: meta.clone(),
                        resume: None,
                    })),
                    Some((_, here)) if here != meta => {
                        frames.push(ClientFrame::SetPresence(chorus_sdk::wire::SetPresence {
                            room: room.clone(),
                            meta: meta.clone(),
                        }))
                    }
                    Some(_) => {}
                }
            }
            for (room, _) in &local {
                if !record.rooms.iter().any(|(r, _)| r == room) {
                    frames.push(ClientFrame::Leave(chorus_sdk::wire::Leave {
                        room: room.clone(),
                    }));
                }
            }
        }
        let Some(Peer::Poll(session)) = self.peers.get_mut(&conn) else {
            let _ = reply.send(Err(PollRefusal::Gone));
            return;
        };
        if frames.is_empty()
            || session
                .collector
                .as_ref()
                .is_some_and(|c| !c.reply.is_closed())
        {
            let _ = reply.send(Ok(Vec::new()));
            return;
        }
        let replaced = session.collector.replace(Collector {
            frames: Vec::new(),
            reply,
        });
        if replaced.is_none() {
            self.collecting.push(conn);
        }
        for frame in frames {
            self.hub.handle_frame(now, conn, frame);
        }
    }

    /// The session's record as this node has it (`None` when the session is not open here).
    pub(super) fn session_record(&self, key: &SessionKey) -> Option<SessionRecord> {
        let conn = *self.sessions.get(key)?;
        let Some(Peer::Poll(session)) = self.peers.get(&conn) else {
            return None;
        };
        Some(SessionRecord {
            user: session.user.clone(),
            rooms: self.hub.conn_rooms(conn),
        })
    }

    pub(super) fn poll_open(
        &mut self,
        now: Now,
        key: SessionKey,
        identity: Arc<Identity>,
        address: IpAddr,
        rooms: &[RoomName],
    ) -> Option<Result<PollTicket, PollRefusal>> {
        let conn = match self.session(now, key, identity, address) {
            Ok(conn) => conn,
            Err(refusal) => return Some(Err(refusal)),
        };
        let views = self.views(conn, rooms);
        // No session: the hub closed it as it opened (the server drains). No answer tells the
        // poll to answer `draining`.
        let Some(Peer::Poll(session)) = self.peers.get(&conn) else {
            return None;
        };
        if session.held.fetch_add(1, Ordering::AcqRel) >= self.limits.max_held_polls {
            session.held.fetch_sub(1, Ordering::AcqRel);
            return Some(Err(PollRefusal::HeldPolls(self.limits.max_held_polls)));
        }
        Some(Ok(PollTicket {
            conn,
            wake: session.wake.subscribe(),
            views,
            held: Arc::clone(&session.held),
        }))
    }

    /// The rooms as a woken poll sees them; `None` when the session is gone.
    pub(super) fn poll_view(
        &self,
        conn: ConnId,
        rooms: &[RoomName],
    ) -> Option<Vec<Option<RoomView>>> {
        self.peers
            .contains_key(&conn)
            .then(|| self.views(conn, rooms))
    }

    fn views(&self, conn: ConnId, rooms: &[RoomName]) -> Vec<Option<RoomView>> {
        rooms
            .iter()
            .map(|room| self.hub.room_view(room, conn))
            .collect()
    }

    /// Answers every `POST` that has all its replies (or whose caller gave up).
    pub(super) fn answer_complete_posts(&mut self) {
        let (peers, hub) = (&mut self.peers, &self.hub);
        self.collecting.retain(|conn| {
            let Some(Peer::Poll(session)) = peers.get_mut(conn) else {
                return false;
            };
            let complete = !hub.owes_answers(*conn);
            let Some(collector) = session
                .collector
                .take_if(|c| complete || c.reply.is_closed())
            else {
                return session.collector.is_some();
            };
            let _ = collector.reply.send(Ok(collector.frames));
            false
        });
    }

    /// Takes the notices the session keeps (see [`PollSession::keep_notice`]).
    pub(super) fn take_poll_notices(&mut self, conn: ConnId) -> Vec<Payload> {
        match self.peers.get_mut(&conn) {
            Some(Peer::Poll(session)) => session.notices.drain(..).collect(),
            _ => Vec::new(),
        }
    }

    /// The hub closed the session (it timed out, or the server drains).
    pub(super) fn forget_session(&mut self, session: PollSession) {
        self.sessions.remove(&session.key);
        self.session_counts.release(&session.user, session.address);
        // A `POST` still waiting gets what it has: an ack already sent is never lost.
        if let Some(collector) = session.collector {
            let _ = collector.reply.send(Ok(collector.frames));
        }
        // Held polls notice the session is gone when they look again.
        session.wake.send_modify(|n| *n += 1);
    }
}

impl PollSession {
    /// Keeps a notice for the session's next long poll and wakes the polls it holds.
    pub(super) fn keep_notice(&mut self, payload: Payload) {
        if self.notices.len() == MAX_KEPT_NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(payload);
        self.wake.send_modify(|n| *n += 1);
    }

    /// Takes a frame the hub sent this session: a reply goes into the waiting `POST`'s
    /// response; anything else only wakes the held polls, which read history and state
    /// themselves.
    pub(super) fn deliver(&mut self, transmit: Transmit) {
        if transmit.reply {
            if let Some(collector) = &mut self.collector {
                collector.frames.push(transmit.payload);
            }
        } else {
            self.wake.send_modify(|n| *n += 1);
        }
    }
}
