//! The sans-IO client core: one state machine that the browser SDK, the native driver, the
//! Leptos app, the load generator and the tests all drive.
//!
//! It performs no I/O, reads no clock and has no entropy source of its own: time comes in as
//! `now`, randomness from a seeded [`Rng`](rng::Rng), and everything it wants done comes out.
//!
//! # Contract
//!
//! - Inputs: the `handle_*` methods (transport results, platform signals, timers) and the app
//!   API ([`Client::join`], [`Client::publish`], ...). Each takes `now`. An extra
//!   [`Client::handle_timeout`] is harmless.
//! - Outputs: after every input, take [`Client::poll_outputs`] (open/send/close a socket, make
//!   an HTTP call, save to storage; carrying them out may feed the core again, so take until
//!   none are left) and [`Client::poll_events`] (what the app should know), then arm one timer at
//!   [`Client::poll_timeout`].
//! - Sockets and HTTP calls carry ids (`link`, `request`); results for ids the core no longer
//!   cares about are ignored, so a driver never has to cancel anything in a hurry.
//!
//! # What it does
//!
//! Connects (WebSocket first; in `Auto` mode falls back to HTTP long polling when the socket
//! does not complete its first round trip in time, remembers that for a while, probes the
//! socket in the background and upgrades when it works; a socket refused outright is probed
//! again as soon as polling works, since a restarting server refuses it too), reconnects with jittered backoff,
//! detects dead sockets by heartbeat, rejoins rooms from their cursors, keeps an outbox of
//! publishes until acked (persisted through [`Output::Save`]), merges incoming events
//! idempotently (see [`timeline`]), reconciles optimistic publishes by id, and keeps presence
//! and typing per room.
//!
//! # Where things are
//!
//! - This file: [`Client`] (its state), its constructor, the outputs it hands over
//!   ([`Client::poll_outputs`], [`Client::poll_events`], [`Client::poll_timeout`]), the
//!   queries, [`Client::close`], and the conversions between `now` and the wall clock.
//! - `api.rs`: the public types ([`ClientConfig`], [`Output`], [`HttpCall`], [`HttpResult`],
//!   [`ClientEvent`], [`ConnectionState`], [`PublishError`], ...), re-exported here.
//! - `link.rs`: the connection and transport state machine (phases, socket, polling and probe
//!   links, attempts, fallback and upgrade, heartbeats, the polling pump) and the `handle_*`
//!   inputs from the driver and the platform.
//! - `rooms.rs`: joining and leaving, the server's frames about rooms (events, presence,
//!   typing, history pages, reset), typing timers.
//! - `live_cursors.rs`: this client's own live cursor per room, throttled
//!   ([`live_cursors::CursorOut`]; `Client::set_cursor` is in `rooms.rs`), and
//!   [`live_cursors::LiveCursors`], the others' folded from events for Rust apps.
//! - `publish.rs`: publishing, the outbox on each link, acks, nacks, confirming passed pending
//!   publishes, expiry.
//! - `streams.rs`: a producer's stream steps ([`Client::stream`]) and [`StreamView`], a stream
//!   folded from its frames.
//! - Parts each room or the client owns: [`timeline`] (merge), [`outbox`], [`presence`] (presence,
//!   typing), [`backoff`], [`rng`], `map.rs` (the core's ordered map).

mod api;
pub mod backoff;
mod link;
pub mod live_cursors;
#[cfg(feature = "locks")]
mod locks;
mod map;
pub mod outbox;
pub mod presence;
mod publish;
mod recent;
pub mod rng;
mod rooms;
mod streams;
pub mod timeline;

pub use api::{
    Badge, ClientConfig, ClientEvent, ConnectionState, FailReason, HttpCall, HttpResult,
    OUTBOX_KEY, Output, PublishError, Restored, TRANSPORT_KEY, Transport, TransportMode,
};
pub(crate) use map::Map;
use std::time::Duration;
pub use streams::{StreamStatus, StreamView};

use crate::time::{Instant, millis};

use crate::wire::{self, Cursor, EventId, OutboxRecord, PresenceUser, RoomName, StoredOutbox};
use backoff::Backoff;
use link::Phase;
use outbox::Outbox;
use rng::Rng;
use rooms::Room;

/// The client state machine. See the module docs for the driving contract.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    rng: Rng,
    clock_origin: (Instant, u64),
    token: String,
    /// A token was refused and replaced; the next refusal is final.
    token_refreshed: bool,
    phase: Phase,
    /// In `Auto` mode: use polling first until this Unix time.
    polling_until_ms: u64,
    retry_hint: Option<Duration>,
    next_id: u64,
    id_prefix: String,
    /// The polling session id (a new one when the session's `welcome` was lost).
    session: String,
    /// The server greeted `session` with `welcome`; until then no polling link counts as
    /// connected (see `handle_http_response`).
    session_welcomed: bool,
    user: Option<String>,
    rooms: Map<RoomName, Room>,
    outbox: Outbox,
    /// The outbox changed since it was last handed out to be saved.
    outbox_unsaved: bool,
    /// Own publishes shown as pending and not yet confirmed by their echo, with their seq once
    /// acked.
    unconfirmed: Map<EventId, (OutboxRecord, Option<u64>)>,
    backoff: Backoff,
    retry_refused_at: Option<Instant>,
    /// Lock requests waiting for their answer (see `locks.rs`).
    #[cfg(feature = "locks")]
    pending_locks: Vec<locks::PendingLock>,
    /// Own lock grants renewed automatically (see `locks.rs`).
    #[cfg(feature = "locks")]
    held_locks: Vec<locks::HeldLock>,
    outputs: Vec<Output>,
    events: Vec<ClientEvent>,
    state: ConnectionState,
}

impl Client {
    /// A client that starts connecting at the first [`Client::handle_timeout`].
    ///
    /// `unix_ms` is the wall clock at `now` (for outbox timestamps); `seed` comes from the
    /// platform's entropy (tests: a constant).
    pub fn new(
        config: ClientConfig,
        token: String,
        now: Instant,
        unix_ms: u64,
        seed: u64,
        restored: Restored,
    ) -> Client {
        let mut rng = Rng::new(seed);
        let id_prefix = rng.token(10);
        let session = rng.token(16);
        let stored = restored
            .outbox
            .as_deref()
            .map(StoredOutbox::decode)
            .unwrap_or_default();
        let polling_until_ms = restored
            .transport
            .as_deref()
            .and_then(|value| value.strip_prefix("polling-until:"))
            .and_then(wire::json::parse_u64)
            .unwrap_or(0);
        // After a reload, what still waits is pending again, and shown as such.
        let mut unconfirmed = Map::new();
        let mut events = Vec::new();
        for record in &stored.entries {
            unconfirmed.insert(record.id.clone(), (record.clone(), None));
            events.push(ClientEvent::Pending {
                room: record.room.clone(),
                id: record.id.clone(),
                body: record.body.clone(),
            });
        }
        if !events.is_empty() {
            events.push(ClientEvent::Outbox {
                queued: stored.entries.len(),
            });
        }
        let transport = match config.transport {
            TransportMode::Polling => Transport::Polling,
            _ => Transport::WebSocket,
        };
        Client {
            outbox: Outbox::new(config.outbox, stored),
            outbox_unsaved: false,
            backoff: Backoff::new(config.backoff),
            config,
            rng,
            clock_origin: (now, unix_ms),
            token,
            token_refreshed: false,
            phase: Phase::Waiting { next: now },
            polling_until_ms,
            retry_hint: None,
            next_id: 0,
            id_prefix,
            session,
            session_welcomed: false,
            user: None,
            rooms: Map::new(),
            unconfirmed,
            retry_refused_at: None,
            #[cfg(feature = "locks")]
            pending_locks: Vec::new(),
            #[cfg(feature = "locks")]
            held_locks: Vec::new(),
            outputs: Vec::new(),
            events,
            state: ConnectionState::Connecting { transport },
        }
    }

    // -----------------------------------------------------------------------------------------
    // Outputs and queries
    // -----------------------------------------------------------------------------------------

    /// What the driver must do, in order (empty when nothing is waiting).
    pub fn poll_outputs(&mut self) -> Vec<Output> {
        let mut outputs = std::mem::take(&mut self.outputs);
        // The outbox is saved once per drain, whatever number of changes led to it, and before
        // anything else goes out (a publish is on disk before it is on the wire).
        if self.outbox_unsaved {
            self.outbox_unsaved = false;
            let save = Output::Save {
                key: OUTBOX_KEY,
                value: self.outbox.stored().encode(),
            };
            outputs.insert(0, save);
        }
        outputs
    }

    /// What the app should know, in order (empty when nothing happened).
    pub fn poll_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    /// When [`Client::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        match &self.phase {
            Phase::Waiting { next } => consider(Some(*next)),
            Phase::Socket(socket) => consider(Some(socket.deadline)),
            Phase::Polling(poll) => {
                consider(poll.send_in_flight.map(|(_, at)| at));
                consider(poll.poll_in_flight.map(|(_, at)| at));
                consider(poll.probe.map(|(_, at)| at));
                consider(poll.next_probe);
            }
            Phase::Offline | Phase::NeedToken | Phase::Failed | Phase::Closed => {}
        }
        for room in self.rooms.values() {
            consider(room.typing_in.next_expiry());
            consider(room.typing_out.next_timeout());
            consider(room.cursor_out.next_timeout());
        }
        consider(self.outbox.next_expiry_ms().map(|ms| self.instant_of(ms)));
        consider(self.retry_refused_at);
        #[cfg(feature = "locks")]
        consider(self.next_lock_renewal());
        next
    }

    /// The current connection state.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// Publishes waiting for their ack.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// A room's presence, if the room is joined.
    pub fn presence(&self, room: &RoomName) -> Option<Vec<PresenceUser>> {
        self.rooms.get(room).map(|r| r.presence.users())
    }

    /// This client's publishes in `room` that have not come back as its own events yet (in the
    /// outbox, or acked with their event still to come), oldest first. Their `Pending` events
    /// were emitted when they were published (or restored): a view opened later shows these.
    pub fn unconfirmed(&self, room: &RoomName) -> Vec<OutboxRecord> {
        let mut records = Vec::new();
        for (record, _) in self.unconfirmed.values() {
            if &record.room == room {
                records.push(record.clone());
            }
        }
        records.sort_by_key(|record| record.created_ms);
        records
    }

    /// A room's cursor, if it has one.
    pub fn cursor(&self, room: &RoomName) -> Option<Cursor> {
        self.rooms.get(room).and_then(|r| r.timeline.cursor())
    }

    /// The authenticated user, once welcomed.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    // -----------------------------------------------------------------------------------------
    // App API
    // -----------------------------------------------------------------------------------------

    /// Closes the client for good.
    pub fn close(&mut self, now: Instant) {
        let _ = now;
        self.drop_transport(true);
        self.phase = Phase::Closed;
        self.set_state(ConnectionState::Closed);
    }

    // -----------------------------------------------------------------------------------------
    // Clock
    // -----------------------------------------------------------------------------------------

    fn unix_ms(&self, now: Instant) -> u64 {
        let (origin, origin_ms) = self.clock_origin;
        origin_ms + millis(now.saturating_duration_since(origin))
    }

    fn instant_of(&self, unix_ms: u64) -> Instant {
        let (origin, origin_ms) = self.clock_origin;
        origin + Duration::from_millis(unix_ms.saturating_sub(origin_ms))
    }
}

#[cfg(test)]
pub(crate) mod tests;
