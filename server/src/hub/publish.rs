//! Publishing: admitting a publish (rate limit, membership, grants; refused while the server
//! shuts down), handing a durable one to the store as [`Action::Append`], and answering the
//! publisher with `ack` or `nack`.
//!
//! The order that keeps the invariants: a stored event is queued to every member before its
//! publisher's `ack` is queued: [`Hub::handle_append_done`] hands the event to `stored` with the
//! ack as its settle, which runs once the event is fanned out (after any gap before it is
//! filled). An ephemeral publish goes straight to the other members and is acked at once.

use std::time::{Duration, Instant};

use chorus_sdk::wire::{self, Ack, ErrorCode, Event, Nack, Publish, RoomName, ServerFrame};

use super::federation::RoomSignal;
use super::stored::Settle;
use super::{Action, ConnId, Hub, Now, RoomLoad, Transmit, encode};
use crate::store::{AppendDone, AppendJob, AppendOutcome, AppendRequest, Origin, StoreError};

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Copy, Debug)]
pub(super) struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub(super) fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub(super) fn take(&mut self, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

/// Why a publish is refused before it reaches the store.
struct Refusal {
    code: ErrorCode,
    message: String,
    /// When to publish again, if waiting helps.
    retry_after_ms: Option<u64>,
}

impl Refusal {
    fn new(code: ErrorCode, message: String) -> Refusal {
        Refusal {
            code,
            message,
            retry_after_ms: None,
        }
    }

    fn nack(self, publish: Publish) -> Nack {
        Nack {
            room: Some(publish.room),
            id: publish.id,
            code: self.code,
            message: self.message,
            head: None,
            retry_after_ms: self.retry_after_ms,
        }
    }
}

impl Hub {
    /// A backend publishes to a room (REST, API key). The outcome comes back as
    /// [`Action::Complete`] with `ticket`, after the event was fanned out.
    pub fn handle_backend_publish(&mut self, _now: Now, ticket: u64, request: AppendRequest) {
        if self.draining.is_some() {
            // Nothing new is stored once the drain began: every append it waits for was
            // submitted before, so all of them are answered before the connections close.
            let result = Err(StoreError::Closed);
            return self.actions.push_back(Action::Complete { ticket, result });
        }
        self.actions.push_back(Action::Append(AppendJob {
            origin: Origin::Request(ticket),
            request,
        }));
    }

    /// The store finished an append.
    pub fn handle_append_done(&mut self, now: Now, done: AppendDone) {
        self.stream_append_done(now, &done);
        let conn = match done.origin {
            Origin::Conn(conn) => {
                // A stored event's publish is answered once its ack goes out, which may wait
                // for a gap before the event (`stored`), and a duplicate's once its event was
                // fanned out here: until then the hub still owes it.
                let stored = matches!(
                    done.result,
                    Ok(AppendOutcome::Stored(_) | AppendOutcome::Duplicate { .. })
                );
                if let Some(state) = self.conns.get_mut(&conn)
                    && !stored
                {
                    state.appends_in_flight = state.appends_in_flight.saturating_sub(1);
                }
                conn
            }
            Origin::Request(ticket) => {
                let stored = match &done.result {
                    Ok(AppendOutcome::Stored(stored)) => Some(stored.clone()),
                    _ => None,
                };
                let duplicate = match done.result {
                    Ok(AppendOutcome::Duplicate { seq }) => Some(seq),
                    _ => None,
                };
                let settle = Settle::Complete {
                    ticket,
                    result: done.result,
                };
                match (stored, duplicate) {
                    (Some(stored), _) => self.accept_stored(now, stored, Some(settle)),
                    (None, Some(seq)) => self.settle_after(now, &done.room, seq, settle),
                    (None, None) => self.run_settle(settle),
                }
                return;
            }
        };
        match done.result {
            Ok(AppendOutcome::Stored(stored)) => {
                let settle = Settle::Ack {
                    conn,
                    room: done.room,
                    id: done.id,
                    seq: stored.seq(),
                    duplicate: false,
                };
                // The ack follows its event, which may wait for a gap before it.
                self.accept_stored(now, stored, Some(settle));
            }
            Ok(AppendOutcome::Duplicate { seq }) => {
                // Its event may not have reached this node yet (stored through another node,
                // or waiting for a gap before it): the ack follows it.
                let room = done.room.clone();
                let settle = Settle::Ack {
                    conn,
                    room: done.room,
                    id: done.id,
                    seq,
                    duplicate: true,
                };
                self.settle_after(now, &room, seq, settle);
            }
            Ok(AppendOutcome::LockLost { current }) => {
                let message = super::locks::fence_refusal(current.as_ref());
                let (room, id) = (done.room, done.id);
                self.send_nack(conn, room, id, ErrorCode::LockLost, message, None);
            }
            Ok(AppendOutcome::Conflict { head }) => {
                let message = format!("the room's head is {head}: someone published first");
                self.send_nack(
                    conn,
                    done.room,
                    done.id,
                    ErrorCode::Conflict,
                    message,
                    Some(head),
                );
            }
            Err(err) => {
                let message = format!("{err}; nothing was stored, retry with the same id");
                self.send_nack(
                    conn,
                    done.room,
                    done.id,
                    ErrorCode::StorageUnavailable,
                    message,
                    None,
                );
            }
        }
    }

    pub(super) fn publish(&mut self, now: Now, conn: ConnId, publish: Publish) {
        if let Some(waiting) = self.orphaned_replays.get_mut(&(conn, publish.room.clone()))
            && waiting.join.is_some()
        {
            // Held until the replay ends and the join goes on (then admitted as usual); at
            // most a burst's worth, so a client that never reads cannot pile them up.
            let most = self.config.publish_burst.max(1.0) as usize;
            if waiting.publishes.len() < most {
                waiting.publishes.push(publish);
                return;
            }
            let retry = super::REPLAY_RETRY.as_millis() as u64;
            let refusal = Refusal {
                code: ErrorCode::RateLimited,
                message: format!(
                    "at most {most} publishes wait for room {}'s join to go on; retry in {retry} ms",
                    publish.room
                ),
                retry_after_ms: Some(retry),
            };
            return self.answer_publish(conn, &ServerFrame::Nack(refusal.nack(publish)));
        }
        if !self.conns.contains_key(&conn) {
            return;
        }
        if let Err(refusal) = self.admit_publish(now, conn, &publish) {
            return self.answer_publish(conn, &ServerFrame::Nack(refusal.nack(publish)));
        }
        self.send_on_admitted(now, conn, publish);
    }

    /// Sends an admitted publish on: it waits while its room loads (and is not admitted, nor
    /// charged against the rate limit, a second time when the room opens), an ephemeral one is
    /// fanned out at once, a durable one goes to the store.
    pub(super) fn send_on_admitted(&mut self, now: Now, conn: ConnId, publish: Publish) {
        let Some(from) = self.conns.get(&conn).map(|c| c.identity.user.clone()) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&publish.room) else {
            return;
        };
        if let Some(RoomLoad::Loading { publishes, .. }) = &mut room.state {
            publishes.push((conn, publish));
            return;
        }
        if !publish.durable {
            let event = Event {
                room: publish.room.clone(),
                seq: None,
                id: publish.id.clone(),
                from,
                at: now.unix_ms,
                body: publish.body,
            };
            let frame = ServerFrame::Event(event);
            let payload = encode(&frame);
            for &member in room.members.keys() {
                if member != conn {
                    self.transmits.push_back(Transmit {
                        reply: false,
                        conn: member,
                        payload: payload.clone(),
                    });
                }
            }
            // Members on other nodes get it from their node, once each; still never stored.
            self.signal(&publish.room, &RoomSignal::Event { frame });
            return self.send_ack(conn, publish.room, publish.id, None, false);
        }
        let request = AppendRequest {
            room: publish.room,
            id: publish.id,
            from,
            at: now.unix_ms,
            body: publish.body,
            if_seq: publish.if_seq,
            if_lock: publish.if_lock,
        };
        if let Some(state) = self.conns.get_mut(&conn) {
            state.appends_in_flight += 1;
        }
        self.actions.push_back(Action::Append(AppendJob {
            origin: Origin::Conn(conn),
            request,
        }));
    }

    /// Checks a publish from a known connection against the rate limit, membership and grants;
    /// says why it is refused, if it is.
    fn admit_publish(&mut self, now: Now, conn: ConnId, publish: &Publish) -> Result<(), Refusal> {
        let (rate, burst) = (self.config.publish_rate, self.config.publish_burst);
        let state = self
            .conns
            .get_mut(&conn)
            .expect("the caller checked the connection");
        if let Err(wait) = state.publish_budget.take(now.instant, rate, burst) {
            let retry = (wait.as_millis() as u64).max(1);
            return Err(Refusal {
                code: ErrorCode::RateLimited,
                message: format!(
                    "at most {rate} publishes per second (bursts of {burst}); retry in {retry} ms"
                ),
                retry_after_ms: Some(retry),
            });
        }
        // `Conn::rooms` and `rooms` agree, so a joined room exists; check both anyway.
        if !state.rooms.contains_key(&publish.room) || !self.rooms.contains_key(&publish.room) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {} before publishing to it", publish.room),
            ));
        }
        if !state.identity.can_publish(&publish.room) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "your token does not grant publishing to room {}",
                    publish.room
                ),
            ));
        }
        // A document update no client could apply is never stored or passed on.
        crate::docs::check_body(&publish.body)
            .map_err(|reason| Refusal::new(ErrorCode::BadFrame, reason))?;
        Ok(())
    }

    /// Refuses a publish because the server is shutting down, with the drain's reconnect hint.
    /// It answers whoever sent it, known connection or not (after the drain completed the hub
    /// knows none), so no publish goes unanswered.
    pub(super) fn refuse_draining(
        &mut self,
        conn: ConnId,
        publish: Publish,
        retry_after: Duration,
    ) {
        let refusal = Refusal {
            code: ErrorCode::Draining,
            message: draining_message(retry_after),
            retry_after_ms: Some(retry_after.as_millis() as u64),
        };
        self.send(conn, &ServerFrame::Nack(refusal.nack(publish)));
    }

    /// Nacks publishes that were waiting for a room the connection has left since.
    pub(super) fn refuse_overtaken_publishes(
        &mut self,
        conn: ConnId,
        publishes: impl IntoIterator<Item = Publish>,
    ) {
        for publish in publishes {
            let message = format!(
                "room {} was left before this publish could be sent",
                publish.room
            );
            self.send_nack(
                conn,
                publish.room,
                publish.id,
                ErrorCode::NotJoined,
                message,
                None,
            );
        }
    }

    pub(super) fn send_ack(
        &mut self,
        conn: ConnId,
        room: RoomName,
        id: wire::EventId,
        seq: Option<u64>,
        duplicate: bool,
    ) {
        let ack = Ack {
            room,
            id,
            seq,
            duplicate,
        };
        self.answer_publish(conn, &ServerFrame::Ack(ack));
    }

    pub(super) fn send_nack(
        &mut self,
        conn: ConnId,
        room: RoomName,
        id: wire::EventId,
        code: ErrorCode,
        message: String,
        head: Option<u64>,
    ) {
        let nack = Nack {
            room: Some(room),
            id,
            code,
            message,
            head,
            retry_after_ms: None,
        };
        self.answer_publish(conn, &ServerFrame::Nack(nack));
    }

    /// Sends a publish's `ack` or `nack`, unless its connection has gone meanwhile (a durable
    /// publish is answered after storing).
    fn answer_publish(&mut self, conn: ConnId, frame: &ServerFrame) {
        if self.conns.contains_key(&conn) {
            self.send(conn, frame);
        }
    }
}

/// The message of a `nack draining`: when to reconnect (the `draining` frame's hint, which the
/// connection got first) and that the publish was not stored.
pub fn draining_message(retry_after: Duration) -> String {
    format!(
        "the server is shutting down and did not store this publish; reconnect in {} ms and publish it again",
        retry_after.as_millis()
    )
}
