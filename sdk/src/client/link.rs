//! The connection and transport state machine: the [`Phase`]s, the socket and polling links
//! ([`SocketLink`], [`PollLink`]) and the background WebSocket probe; connection attempts with
//! backoff or the server's retry hint, the fallback to polling and the upgrade back, heartbeats,
//! token refusals, platform signals (online, visible, token), and the polling pump (one `POST`
//! per batch of frames, one long poll at a time).
//!
//! It decides when and over what the client talks, never what a frame means: incoming frames
//! go to `handle_frame` (`rooms.rs`) and the outbox is resent by `flush_outbox` (`publish.rs`).
//! It must never perform I/O (sockets and HTTP calls leave as [`Output`]s), read a clock (`now`
//! is a parameter) or draw randomness anywhere but the client's seeded `Rng`.

use std::time::Duration;

use super::{
    Client, ClientEvent, ConnectionState, FailReason, HttpCall, HttpResult, Output, TRANSPORT_KEY,
    Transport, TransportMode,
};
use crate::text::{concat, push_decimal};
use crate::time::{Instant, millis};
use crate::wire::{self, ClientFrame, ErrorCode, PollCursor, PollQuery, ServerFrame, close_code};

#[derive(Debug)]
pub(super) struct SocketLink {
    pub(super) link: u64,
    pub(super) welcomed: bool,
    /// Before `welcome`: give up at this time. After: ping at this time.
    pub(super) deadline: Instant,
    heartbeat: Duration,
    last_heard: Instant,
}

#[derive(Debug)]
pub(super) struct PollLink {
    /// Identifies this polling attempt (the outbox resends everything on a new one).
    pub(super) link: u64,
    connected: bool,
    pub(super) send_in_flight: Option<(u64, Instant)>,
    pub(super) poll_in_flight: Option<(u64, Instant)>,
    queued: Vec<ClientFrame>,
    /// A WebSocket tried in the background (Auto mode): the link, and its deadline.
    pub(super) probe: Option<(u64, Instant)>,
    pub(super) next_probe: Option<Instant>,
    /// Polling because a socket was refused at once, which a server that is down (or
    /// restarting) causes as well as a proxy blocking WebSocket: once polling works, the
    /// socket is probed at once, and polling is remembered only if that probe fails too.
    unsure: bool,
}

#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting to (re)connect.
    Waiting {
        next: Instant,
    },
    Offline,
    NeedToken,
    Failed,
    Closed,
    Socket(SocketLink),
    Polling(PollLink),
}

impl Client {
    // -----------------------------------------------------------------------------------------
    // Platform signals
    // -----------------------------------------------------------------------------------------

    /// The platform reports the network went away (`false`) or came back (`true`).
    pub fn handle_online(&mut self, now: Instant, online: bool) {
        match (online, &self.phase) {
            (false, Phase::Closed | Phase::Failed | Phase::Offline) => {}
            (false, _) => {
                self.drop_transport(false);
                self.phase = Phase::Offline;
                self.set_state(ConnectionState::Offline);
            }
            (true, Phase::Offline | Phase::Waiting { .. }) => {
                // Back online: retry at once, with a fresh backoff.
                self.backoff.reset();
                self.phase = Phase::Waiting { next: now };
                self.handle_timeout(now);
            }
            (true, _) => {}
        }
    }

    /// The page became visible (`true`) or hidden: a waiting reconnect starts at once.
    pub fn handle_visible(&mut self, now: Instant, visible: bool) {
        if visible && matches!(self.phase, Phase::Waiting { .. }) {
            self.phase = Phase::Waiting { next: now };
            self.handle_timeout(now);
        }
    }

    /// A fresh token (after [`ClientEvent::TokenNeeded`], or any time: a connected WebSocket
    /// renews it in place with an `auth` frame; polling uses it from the next request on).
    ///
    /// An empty token says the app could not get one (its token source failed): while a token
    /// is needed, that is a passing failure, and [`ClientEvent::TokenNeeded`] comes again after
    /// the next backoff step; otherwise it is ignored (the current token stays).
    pub fn handle_token(&mut self, now: Instant, token: String) {
        if token.is_empty() {
            if matches!(self.phase, Phase::NeedToken) {
                self.token = token;
                self.reconnect_later(now);
            }
            return;
        }
        self.token = token;
        match &self.phase {
            Phase::NeedToken => {
                self.phase = Phase::Waiting { next: now };
                self.handle_timeout(now);
            }
            Phase::Socket(socket) if socket.welcomed => {
                let (link, token) = (socket.link, self.token.clone());
                let frame = ClientFrame::Auth(wire::Auth { token });
                self.outputs.push(Output::Send { link, frame });
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // Transport results
    // -----------------------------------------------------------------------------------------

    /// The socket `link` is open.
    pub fn handle_socket_open(&mut self, now: Instant, link: u64) {
        // The token went in the subprotocol header; the server greets with `welcome`.
        let _ = (now, link);
    }

    /// A frame arrived on socket `link`.
    pub fn handle_socket_frame(&mut self, now: Instant, link: u64, frame: ServerFrame) {
        if let Phase::Polling(poll) = &self.phase
            && poll.probe.is_some_and(|(probe, _)| probe == link)
        {
            if matches!(frame, ServerFrame::Welcome(_)) {
                self.upgrade(now, link, frame);
            }
            return;
        }
        let Phase::Socket(socket) = &mut self.phase else {
            return;
        };
        if socket.link != link {
            return;
        }
        socket.last_heard = now;
        if !socket.welcomed {
            match &frame {
                ServerFrame::Welcome(welcome) => {
                    socket.welcomed = true;
                    socket.heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(1000));
                    socket.deadline = now + socket.heartbeat / 2;
                    self.connected(now, Transport::WebSocket);
                }
                ServerFrame::Error(error)
                    if matches!(
                        error.code,
                        ErrorCode::Unauthenticated | ErrorCode::TokenExpired
                    ) =>
                {
                    let message = error.message.clone();
                    self.auth_refused(now, message);
                    return;
                }
                _ => {}
            }
        }
        self.handle_frame(now, frame);
    }

    /// Socket `link` closed (or failed to open), with the close code if there was one.
    pub fn handle_socket_closed(&mut self, now: Instant, link: u64, code: Option<u16>) {
        if let Phase::Polling(poll) = &mut self.phase
            && poll.probe.is_some_and(|(probe, _)| probe == link)
        {
            return self.probe_failed(now);
        }
        let Phase::Socket(socket) = &self.phase else {
            return;
        };
        if socket.link != link {
            return;
        }
        let welcomed = socket.welcomed;
        // The driver closed it already: forget it without asking for another close.
        self.phase = Phase::Offline;
        if code == Some(close_code::UNAUTHENTICATED) {
            return self.auth_refused(now, "the server refused the token".into());
        }
        if !welcomed && self.config.transport == TransportMode::Auto {
            // The socket never worked: try polling right away (unsure why it failed).
            return self.start_polling(now, true);
        }
        self.reconnect_later(now);
    }

    /// An HTTP call finished.
    pub fn handle_http_response(&mut self, now: Instant, request: u64, result: HttpResult) {
        // History fetches (gap repair) work on any transport.
        let result = match result {
            HttpResult::Page(page) => return self.history_page(request, page),
            other => other,
        };
        if let Some(room) = self
            .rooms
            .iter_mut()
            .map(|(_, room)| room)
            .find(|r| r.repairing == Some(request))
        {
            room.repairing = None; // The repair failed; the next gap tries again.
            return;
        }
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        let is_send = poll.send_in_flight.is_some_and(|(id, _)| id == request);
        let is_poll = poll.poll_in_flight.is_some_and(|(id, _)| id == request);
        if !is_send && !is_poll {
            return;
        }
        if is_send {
            poll.send_in_flight = None;
        } else {
            poll.poll_in_flight = None;
        }
        match result {
            HttpResult::Frames(frames) => {
                // `welcome` comes only in the answer to the `POST` that opens the session.
                if is_send && frames.iter().any(|f| matches!(f, ServerFrame::Welcome(_))) {
                    self.session_welcomed = true;
                }
                if is_send && !poll.connected {
                    if !self.session_welcomed {
                        // The server holds the session, but the answer that opened it (and its
                        // `welcome`) was lost: no answer on this session will ever say who the
                        // client is, and nothing counts as connected before it does.
                        for frame in frames {
                            self.handle_frame(now, frame);
                        }
                        return self.renew_session(now);
                    }
                    poll.connected = true;
                    if self.config.transport == TransportMode::Auto {
                        if poll.unsure {
                            poll.next_probe = Some(now);
                        } else {
                            poll.next_probe = Some(now + self.config.probe_every);
                            self.remember_polling(now);
                        }
                    }
                    self.connected(now, Transport::Polling);
                }
                for frame in frames {
                    self.handle_frame(now, frame);
                }
                self.pump_polling(now);
            }
            HttpResult::Refused { status: 401, code } => {
                let message = concat(&["the server refused the token (", code.as_str(), ")"]);
                self.auth_refused(now, message)
            }
            HttpResult::Refused { .. } | HttpResult::Failed | HttpResult::Page(_) => {
                self.reconnect_later(now)
            }
        }
    }

    /// Timers: connection attempts, socket deadlines and heartbeats, HTTP timeouts, probes,
    /// typing, outbox expiry, publish retries.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Waiting { next } if *next <= now => self.attempt(now),
            Phase::Socket(socket) if socket.deadline <= now => {
                if !socket.welcomed {
                    // No first round trip in time.
                    let link = socket.link;
                    self.outputs.push(Output::CloseSocket { link });
                    if self.config.transport == TransportMode::Auto {
                        self.start_polling(now, false);
                    } else {
                        self.reconnect_later(now);
                    }
                } else if now.duration_since(socket.last_heard) >= socket.heartbeat * 2 {
                    // Silent for two heartbeats: the socket is dead even if nobody said so.
                    let link = socket.link;
                    self.outputs.push(Output::CloseSocket { link });
                    self.reconnect_later(now);
                } else {
                    socket.deadline = now + socket.heartbeat / 2;
                    let link = socket.link;
                    self.outputs.push(Output::Send {
                        link,
                        frame: ClientFrame::Ping(wire::Ping { nonce: None }),
                    });
                }
            }
            Phase::Polling(poll) => {
                let expired = |slot: &Option<(u64, Instant)>| slot.is_some_and(|(_, at)| at <= now);
                if expired(&poll.send_in_flight) || expired(&poll.poll_in_flight) {
                    return self.reconnect_later(now);
                }
                if let Some((link, at)) = poll.probe
                    && at <= now
                {
                    self.outputs.push(Output::CloseSocket { link });
                    self.probe_failed(now);
                } else if poll.probe.is_none() && poll.next_probe.is_some_and(|at| at <= now) {
                    let link = self.rng.next_u64();
                    poll.next_probe = None;
                    poll.probe = Some((link, now + self.config.socket_timeout));
                    self.outputs.push(Output::OpenSocket {
                        link,
                        token: self.token.clone(),
                    });
                }
            }
            _ => {}
        }
        self.room_timers(now);
        #[cfg(feature = "locks")]
        self.renew_locks(now);
        self.expire_outbox(now);
        if self.retry_refused_at.is_some_and(|at| at <= now) {
            self.retry_refused_at = None;
            self.flush_outbox();
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connection lifecycle
    // -----------------------------------------------------------------------------------------

    fn attempt(&mut self, now: Instant) {
        if self.token.is_empty() {
            // No token yet (the app's token source failed at start or since): ask for one
            // instead of being refused.
            self.phase = Phase::NeedToken;
            return self.events.push(ClientEvent::TokenNeeded);
        }
        let polling = match self.config.transport {
            TransportMode::Polling => true,
            TransportMode::WebSocket => false,
            TransportMode::Auto => self.polling_until_ms > self.unix_ms(now),
        };
        if polling {
            return self.start_polling(now, false);
        }
        let link = self.rng.next_u64();
        self.phase = Phase::Socket(self.new_socket(link, now));
        self.outputs.push(Output::OpenSocket {
            link,
            token: self.token.clone(),
        });
        self.set_state(ConnectionState::Connecting {
            transport: Transport::WebSocket,
        });
    }

    /// A socket that must deliver `welcome` within the socket timeout.
    fn new_socket(&self, link: u64, now: Instant) -> SocketLink {
        SocketLink {
            link,
            welcomed: false,
            deadline: now + self.config.socket_timeout,
            // Replaced by the server's value in `welcome`.
            heartbeat: Duration::from_secs(15),
            last_heard: now,
        }
    }

    /// Connects by polling; `unsure`: see [`PollLink::unsure`].
    fn start_polling(&mut self, now: Instant, unsure: bool) {
        let link = self.rng.next_u64();
        self.phase = Phase::Polling(PollLink {
            link,
            connected: false,
            send_in_flight: None,
            poll_in_flight: None,
            queued: Vec::new(),
            probe: None,
            next_probe: None,
            unsure,
        });
        self.set_state(ConnectionState::Connecting {
            transport: Transport::Polling,
        });
        // The first POST joins every room (and says the outbox); its answer means connected.
        let joins: Vec<ClientFrame> = self.join_frames();
        if let Phase::Polling(poll) = &mut self.phase {
            poll.queued.extend(joins);
        }
        self.flush_outbox();
        self.pump_polling(now);
    }

    /// Leaves the polling session whose `welcome` was lost (best effort, as on an upgrade) and
    /// picks a new session id, which the server greets, for the next attempt after a backoff
    /// step (a server that never greets, e.g. one draining, is not asked in a loop).
    fn renew_session(&mut self, now: Instant) {
        self.leave_polling_session();
        self.session = self.rng.token(16);
        self.reconnect_later(now);
    }

    /// The joins a new link starts with. Each room's live cursor waits for its `joined`: the
    /// server knows none on the new link until then.
    fn join_frames(&mut self) -> Vec<ClientFrame> {
        let mut frames = Vec::with_capacity(self.rooms.len());
        for (room, state) in self.rooms.iter_mut() {
            state.cursor_out.ready = false;
            frames.push(ClientFrame::Join(wire::Join {
                room: room.clone(),
                meta: state.meta.clone(),
                resume: state.timeline.cursor(),
            }));
        }
        frames
    }

    fn connected(&mut self, now: Instant, transport: Transport) {
        self.backoff.connected(now);
        self.token_refreshed = false;
        self.retry_hint = None;
        self.set_state(ConnectionState::Connected { transport });
        if transport == Transport::WebSocket {
            for frame in self.join_frames() {
                self.send_frame(frame);
            }
            self.flush_outbox();
        }
    }

    /// The probe socket was welcomed while polling: move everything onto it.
    fn upgrade(&mut self, now: Instant, link: u64, welcome: ServerFrame) {
        // Leave the polling session's rooms so presence does not show it until it expires.
        self.leave_polling_session();
        self.polling_until_ms = 0;
        self.outputs.push(Output::Save {
            key: TRANSPORT_KEY,
            value: String::new(),
        });
        self.phase = Phase::Socket(self.new_socket(link, now));
        // The socket is connected from here on: `welcome` sends the joins and the outbox.
        self.handle_socket_frame(now, link, welcome);
    }

    /// The background socket failed (closed or silent): polling it is, remembered, with the
    /// next probe later.
    fn probe_failed(&mut self, now: Instant) {
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        poll.probe = None;
        poll.next_probe = Some(now + self.config.probe_every);
        if std::mem::take(&mut poll.unsure) {
            self.remember_polling(now);
        }
    }

    fn remember_polling(&mut self, now: Instant) {
        self.polling_until_ms = self.unix_ms(now) + millis(self.config.remember_fallback);
        let mut value = "polling-until:".to_owned();
        push_decimal(&mut value, self.polling_until_ms);
        self.outputs.push(Output::Save {
            key: TRANSPORT_KEY,
            value,
        });
    }

    fn reconnect_later(&mut self, now: Instant) {
        self.drop_transport(false);
        let next = match self.retry_hint.take() {
            Some(hint) => now + hint + self.rng.below(hint / 2),
            None => self.backoff.next_attempt(now, &mut self.rng),
        };
        self.phase = Phase::Waiting { next };
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.backoff.attempt(),
            next_attempt: next,
        });
    }

    fn auth_refused(&mut self, now: Instant, message: String) {
        self.drop_transport(false);
        if self.token_refreshed {
            self.phase = Phase::Failed;
            return self.set_state(ConnectionState::Failed {
                reason: FailReason::AuthRefused(message),
            });
        }
        self.token_refreshed = true;
        self.phase = Phase::NeedToken;
        self.events.push(ClientEvent::TokenNeeded);
        // The retry waits for the token, not for a backoff step: none is taken.
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.backoff.attempt(),
            next_attempt: now,
        });
    }

    /// Forgets the current transport (closing a socket), keeping rooms and the outbox.
    pub(super) fn drop_transport(&mut self, goodbye: bool) {
        match std::mem::replace(&mut self.phase, Phase::Offline) {
            Phase::Socket(socket) => self.outputs.push(Output::CloseSocket { link: socket.link }),
            Phase::Polling(poll) => {
                if let Some((link, _)) = poll.probe {
                    self.outputs.push(Output::CloseSocket { link });
                }
                if goodbye {
                    self.leave_polling_session();
                }
            }
            _ => {}
        }
    }

    /// `POST /v1/poll` with these frames for this client's polling session; returns the request id.
    fn post_frames(&mut self, frames: Vec<ClientFrame>) -> u64 {
        let request = self.rng.next_u64();
        let body = wire::PollSend {
            session: self.session.clone(),
            frames,
        };
        self.outputs.push(Output::Http {
            request,
            token: self.token.clone(),
            call: HttpCall::PollSend(body),
        });
        request
    }

    /// Leaves every room from the polling session (best effort, the answer is not awaited), so
    /// presence does not keep showing the session until it expires.
    fn leave_polling_session(&mut self) {
        if !self.rooms.is_empty() {
            let mut leaves = Vec::with_capacity(self.rooms.len());
            for room in self.rooms.keys() {
                leaves.push(ClientFrame::Leave(wire::Leave { room: room.clone() }));
            }
            self.post_frames(leaves);
        }
    }

    pub(super) fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state.clone();
            self.events.push(ClientEvent::State(state));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    /// Sends a frame on the current transport; while not connected it is dropped, because
    /// everything that matters is re-sent on connect (joins with metas, the outbox).
    pub(super) fn send_frame(&mut self, frame: ClientFrame) {
        match &mut self.phase {
            Phase::Socket(socket) if socket.welcomed => {
                let link = socket.link;
                self.outputs.push(Output::Send { link, frame });
            }
            Phase::Polling(poll) => poll.queued.push(frame),
            _ => {}
        }
    }

    /// Issues the next polling requests: queued frames as one POST, and a long poll.
    pub(super) fn pump_polling(&mut self, now: Instant) {
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        let batch = (poll.send_in_flight.is_none() && !poll.queued.is_empty())
            .then(|| std::mem::take(&mut poll.queued));
        if let Some(frames) = batch {
            let request = self.post_frames(frames);
            let deadline = now + self.config.http_timeout;
            if let Phase::Polling(poll) = &mut self.phase {
                poll.send_in_flight = Some((request, deadline));
            }
        }
        let Phase::Polling(poll) = &mut self.phase else {
            return;
        };
        if poll.connected && poll.poll_in_flight.is_none() && !self.rooms.is_empty() {
            let request = self.rng.next_u64();
            poll.poll_in_flight = Some((
                request,
                now + self.config.poll_wait + self.config.http_timeout,
            ));
            let mut rooms = Vec::with_capacity(self.rooms.len());
            for (room, state) in self.rooms.iter() {
                rooms.push(PollCursor {
                    room: room.clone(),
                    cursor: state.timeline.cursor(),
                    presence_version: state.presence.version(),
                    typing_version: state.typing_in.version(),
                    cursor_version: state.cursor_version,
                    stream_version: state.stream_version,
                    #[cfg(feature = "locks")]
                    lock_version: Some(state.lock_version),
                    // Without locks the client follows none (no `state.locks` comes).
                    #[cfg(not(feature = "locks"))]
                    lock_version: None,
                });
            }
            let query = PollQuery {
                session: self.session.clone(),
                wait_ms: Some(millis(self.config.poll_wait)),
                rooms,
            };
            self.outputs.push(Output::Http {
                request,
                token: self.token.clone(),
                call: HttpCall::Poll {
                    query: query.encode(),
                },
            });
        }
    }
}
