//! The polling transport, for networks where WebSocket does not work.
//!
//! - `POST /v1/poll` takes a batch of client frames and answers with the frames that reply to
//!   them (joined, ack, nack, error, ...), waiting until every durable publish is acked.
//! - `GET /v1/poll?session=S&r=ROOM~EPOCH~SEQ~PV~TV&...&wait=MS` is a long poll. It is stateless
//!   for correctness: it answers from the cursors it carries, the stored history and the room's
//!   current presence and typing state, so any node can answer any poll and nothing is buffered
//!   per session. When nothing is due it waits (up to the configured hold) on the session's wake
//!   counter, which the hub driver bumps the moment anything happens in one of its rooms.
//!
//! A session exists in the hub as a connection of kind `Poll` (it counts in presence and can
//! type); it expires after `--poll-session-timeout-ms` without a request. Each request is
//! authorized by its own token (the session takes that token's identity and grants), and a
//! session belongs to the user who opened it.
//!
//! How a poll is answered end to end, across these handlers, the driver and the hub, is told
//! once, in [`crate::driver::poll`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::StringRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chorus_sdk::wire::{
    self, ClientFrame, ErrorCode, Nack, PollBatch, PollCursor, PollFrames, Reset, RoomName,
    RoomState, ServerFrame,
};

use super::metrics::EdgeCounters;
use super::rest::{bearer, body_refused};
use super::{ApiError, AppState};
use crate::driver::HubMsg;
use crate::driver::poll::{PollRefusal, PollTicket, SessionKey};
use crate::hub::{Payload, RoomView, encode, encode_event};
use crate::store::PageLimit;

/// Most events one poll returns per room; the client polls again at once for the rest.
const POLL_PAGE: usize = 256;

fn session_key(session: &str) -> Result<SessionKey, ApiError> {
    let valid = (8..=64).contains(&session.len())
        && session
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if !valid {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "session must be 8 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(session.to_owned())
}

/// The HTTP error for a request the driver refused: 503 `too_many_connections` for the session
/// caps (like a refused WebSocket), 429 `too_many_polls` for a session's own limits.
fn refusal_error(refusal: PollRefusal) -> ApiError {
    let status = match refusal {
        PollRefusal::SessionsPerUser(_) | PollRefusal::SessionsPerAddress(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        PollRefusal::PostInFlight | PollRefusal::HeldPolls(_) => StatusCode::TOO_MANY_REQUESTS,
        PollRefusal::OtherUser => StatusCode::FORBIDDEN,
        PollRefusal::Gone => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, refusal.code(), refusal.to_string())
}

/// A polling request's answer before it is an HTTP response: its status and JSON body, which
/// `POST /v1/polls` carries as they are for each of its polls.
pub(super) struct PollReply {
    pub(super) status: StatusCode,
    pub(super) body: String,
}

impl PollReply {
    /// 200 with these frames.
    fn frames(frames: &[Payload]) -> PollReply {
        let texts: Vec<&str> = frames.iter().map(|f| f.as_str()).collect();
        PollReply {
            status: StatusCode::OK,
            body: PollFrames::encode_raw(&texts),
        }
    }

    /// `[draining]`: the hub is gone (the server shuts down).
    fn draining(state: &AppState) -> PollReply {
        PollReply::frames(&[encode(&super::ws::draining(state))])
    }

    /// A refusal: its status and error body.
    pub(super) fn refused(error: ApiError) -> PollReply {
        PollReply {
            status: error.status,
            body: wire::json::to_string(&error.body),
        }
    }
}

impl IntoResponse for PollReply {
    fn into_response(self) -> Response {
        let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
        (self.status, json, self.body).into_response()
    }
}

/// `POST /v1/poll`
pub(super) async fn send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Response {
    let result = async {
        let identity = Arc::new(bearer(&state, &headers)?);
        let address = state.client_address(peer.ip(), &headers);
        let text =
            body.map_err(|rejection| body_refused(rejection.status(), rejection.body_text()))?;
        let batch = PollBatch::decode(&text).map_err(|err| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                err.to_string(),
            )
        })?;
        let session = session_key(&batch.session)?;
        if let Some(draining) = adopt(&state, &session, &identity, address).await? {
            return Ok(draining.into_response());
        }
        // Each frame is answered on its own, as the WebSocket connection task answers it:
        // refusals here, the rest by the hub.
        let mut refused = Vec::new();
        let mut frames = Vec::new();
        for frame in batch.frames {
            let answer = match frame {
                Err(err) => Some(err.answer()),
                Ok(ClientFrame::Hello(_) | ClientFrame::Auth(_)) => Some(ServerFrame::error(
                    ErrorCode::BadFrame,
                    "polling sends its token in the Authorization header of every request, not in hello or auth frames",
                    None,
                )),
                Ok(ClientFrame::Publish(p)) if p.body.len() > state.limits.max_frame_bytes => {
                    let message = format!(
                        "the body is {} bytes; the limit is {}",
                        p.body.len(),
                        state.limits.max_frame_bytes
                    );
                    Some(ServerFrame::Nack(Nack {
                        room: Some(p.room),
                        id: p.id,
                        code: ErrorCode::FrameTooLarge,
                        message,
                        head: None,
                        retry_after_ms: None,
                    }))
                }
                Ok(frame) => {
                    frames.push(frame);
                    None
                }
            };
            if let Some(answer) = answer {
                refused.push(encode(&answer));
            }
        }
        let answer = tokio::time::timeout(
            state.limits.poll_send_timeout,
            state.hub.ask(|reply| HubMsg::PollSend {
                session: session.clone(),
                identity,
                address,
                frames,
                reply,
            }),
        )
        .await;
        match answer {
            Ok(Some(Ok(mut replies))) => {
                share(&state, session).await;
                refused.append(&mut replies);
                Ok(PollReply::frames(&refused).into_response())
            }
            Ok(Some(Err(refusal))) => Err(refusal_error(refusal)),
            Ok(None) => Ok(PollReply::draining(&state).into_response()),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "the publishes were not acknowledged in time; retry them with the same ids",
            )),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// On the Redis engine, brings the session on this node in line with its shared record before
/// the request is handled (another node may have handled its last `POST`; see
/// `crate::bus::sessions`). `Some` is the answer to give instead (`draining`).
async fn adopt(
    state: &AppState,
    session: &SessionKey,
    identity: &Arc<crate::identity::Identity>,
    address: std::net::IpAddr,
) -> Result<Option<PollReply>, ApiError> {
    let Some(directory) = &state.sessions else {
        return Ok(None);
    };
    let Some(record) = directory.load(session).await else {
        return Ok(None);
    };
    if record.user != identity.user {
        // The session belongs to whoever opened it, on whichever node.
        return Err(refusal_error(PollRefusal::OtherUser));
    }
    let adopted = state.hub.ask(|reply| HubMsg::PollAdopt {
        session: session.clone(),
        identity: Arc::clone(identity),
        address,
        record,
        reply,
    });
    match tokio::time::timeout(state.limits.poll_send_timeout, adopted).await {
        Ok(Some(Ok(_))) | Err(_) => Ok(None),
        Ok(Some(Err(refusal))) => Err(refusal_error(refusal)),
        Ok(None) => Ok(Some(PollReply::draining(state))),
    }
}

/// On the Redis engine, records the session's rooms after a `POST` changed them, for the other
/// nodes to adopt.
async fn share(state: &AppState, session: SessionKey) {
    let Some(directory) = &state.sessions else {
        return;
    };
    let record = state
        .hub
        .ask(|reply| HubMsg::PollRecord {
            session: session.clone(),
            reply,
        })
        .await
        .flatten();
    if let Some(record) = record {
        directory.save(&session, &record).await;
    }
}

/// Parsed `GET /v1/poll` query.
struct PollQuery {
    session: String,
    rooms: Vec<PollCursor>,
    wait: Duration,
}

/// Parses the query. A room named twice is followed once (its first cursor counts); more
/// distinct rooms than a session may join (`max_rooms`) is refused, so one request can not
/// make the server read the same history, or more histories than a member could, many times.
fn parse_query(
    query: Option<String>,
    max_wait: Duration,
    max_rooms: usize,
) -> Result<PollQuery, ApiError> {
    let bad =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message);
    let parsed = wire::PollQuery::decode(query.as_deref().unwrap_or("")).map_err(bad)?;
    let mut seen = std::collections::HashSet::new();
    let rooms: Vec<PollCursor> = parsed
        .rooms
        .into_iter()
        .filter(|cursor| seen.insert(cursor.room.clone()))
        .collect();
    if rooms.len() > max_rooms {
        return Err(bad(format!(
            "the poll names {} rooms; a session may be in at most {max_rooms}",
            rooms.len()
        )));
    }
    Ok(PollQuery {
        session: parsed.session,
        rooms,
        wait: parsed
            .wait_ms
            .map_or(max_wait, |ms| Duration::from_millis(ms).min(max_wait)),
    })
}

/// Decrements the session's held-poll count when the poll ends, however it ends.
struct Held(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /v1/poll`: open, answer what is due, or hold until something may be (once).
pub(super) async fn poll(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut open = match OpenPoll::open(&state, peer.ip(), &headers, query).await {
        Ok(open) => open,
        Err(unopened) => return unopened.into_response(),
    };
    // The header values are slices of hyper's 8 KiB read buffer: kept while the poll is held,
    // they would pin it, and hyper would take another for its next read.
    drop(headers);
    let mut frames = open.due(&state).await;
    if frames.as_ref().is_some_and(Vec::is_empty)
        && tokio::time::timeout(open.wait, open.wake.changed())
            .await
            .is_ok()
    {
        frames = open.due(&state).await;
    }
    answer(&state, frames).into_response()
}

/// A poll's answer: its frames, or `draining` when the hub is gone (`None`).
pub(super) fn answer(state: &AppState, frames: Option<Vec<Payload>>) -> PollReply {
    match frames {
        Some(frames) => {
            EdgeCounters::bump(&state.counters.polls);
            PollReply::frames(&frames)
        }
        None => PollReply::draining(state),
    }
}

/// A long poll, opened: the session's connection, the rooms it follows and its wake. It
/// counts as one of the session's held polls until it is dropped. `GET /v1/poll` is one;
/// `POST /v1/polls` holds several (`super::polls`).
pub(super) struct OpenPoll {
    conn: crate::hub::ConnId,
    /// Changes whenever something happened in one of the rooms.
    pub(super) wake: tokio::sync::watch::Receiver<u64>,
    followed: Vec<PollCursor>,
    /// The rooms as the open saw them, for the first `due`; later ones ask the hub again.
    views: Option<Vec<Option<RoomView>>>,
    /// `forbidden` for each room the token does not grant, answered with the first `due`.
    refused: Vec<Payload>,
    /// How long the poll may be held (its `wait`).
    pub(super) wait: Duration,
    _held: Held,
}

impl OpenPoll {
    /// Opens a poll authorized by `headers` with this query string. `Err` is its whole answer:
    /// a refusal (401, 400, 403, 429, 503), or `draining`.
    pub(super) async fn open(
        state: &AppState,
        peer: std::net::IpAddr,
        headers: &HeaderMap,
        query: Option<String>,
    ) -> Result<OpenPoll, PollReply> {
        let opened = async {
            let identity = Arc::new(bearer(state, headers)?);
            let address = state.client_address(peer, headers);
            let query = parse_query(
                query,
                state.limits.poll_wait,
                state.limits.max_rooms_per_conn,
            )?;
            let session = session_key(&query.session)?;
            if let Some(draining) = adopt(state, &session, &identity, address).await? {
                return Ok(Err(draining));
            }
            let mut refused = Vec::new();
            let mut followed = Vec::new();
            for cursor in query.rooms {
                if identity.can_join(&cursor.room) {
                    followed.push(cursor);
                } else {
                    let message = format!("your token grants no access to room {}", cursor.room);
                    refused.push(encode(&ServerFrame::error(
                        ErrorCode::Forbidden,
                        message,
                        Some(cursor.room),
                    )));
                }
            }
            let rooms: Vec<RoomName> = followed.iter().map(|c| c.room.clone()).collect();
            let ticket = match state
                .hub
                .ask(|reply| HubMsg::PollOpen {
                    session,
                    identity,
                    address,
                    rooms,
                    reply,
                })
                .await
            {
                Some(Ok(ticket)) => ticket,
                Some(Err(refusal)) => return Err(refusal_error(refusal)),
                None => return Ok(Err(PollReply::draining(state))),
            };
            let PollTicket {
                conn,
                wake,
                views,
                held,
            } = ticket;
            Ok(Ok(OpenPoll {
                conn,
                wake,
                followed,
                views: Some(views),
                refused,
                wait: query.wait,
                _held: Held(held),
            }))
        };
        opened
            .await
            .unwrap_or_else(|err: ApiError| Err(PollReply::refused(err)))
    }

    /// What is due now: the refusals (the first time), the kept notices, then each room's
    /// frames. `None` when the hub is gone.
    pub(super) async fn due(&mut self, state: &AppState) -> Option<Vec<Payload>> {
        let views = match self.views.take() {
            Some(views) => views,
            None => {
                let rooms = self.followed.iter().map(|c| c.room.clone()).collect();
                let conn = self.conn;
                state
                    .hub
                    .ask(|reply| HubMsg::PollView { conn, rooms, reply })
                    .await
                    .flatten()?
            }
        };
        let mut frames = std::mem::take(&mut self.refused);
        frames.extend(kept_notices(state, self.conn).await);
        frames.extend(due_frames(state, &self.followed, &views).await);
        Some(frames)
    }
}

/// The notices the session kept since its last poll (see `hub::notices`), taken: a notice is
/// answered once, first in the answer.
async fn kept_notices(state: &AppState, conn: crate::hub::ConnId) -> Vec<Payload> {
    state
        .hub
        .ask(|reply| HubMsg::PollNotices { conn, reply })
        .await
        .unwrap_or_default()
}

/// Everything a client with these cursors has not seen yet, up to `--max-answer-bytes` of it:
/// once the answer is that large, the remaining rooms' history waits for the next poll (whose
/// cursors will have moved on), but an answer always carries at least one due event.
async fn due_frames(
    state: &AppState,
    cursors: &[PollCursor],
    views: &[Option<RoomView>],
) -> Vec<Payload> {
    let mut frames = Vec::new();
    let mut events = 0;
    let answer_bytes = |frames: &[Payload]| {
        frames
            .iter()
            .map(|frame| frame.as_str().len())
            .sum::<usize>()
    };
    for (cursor, view) in cursors.iter().zip(views) {
        let room = &cursor.room;
        if !view.as_ref().is_some_and(|v| v.member) {
            frames.push(encode(&ServerFrame::error(
                ErrorCode::NotJoined,
                format!("this session is not in room {room} on this server: POST a join frame (events keep coming from your cursor)"),
                Some(room.clone()),
            )));
        }
        if let Some(view) = view {
            let presence =
                (view.presence.version != cursor.presence_version).then(|| view.presence.clone());
            let typing =
                (view.typing.version != cursor.typing_version).then(|| view.typing.clone());
            let cursors_changed = view.cursors.version != cursor.cursor_version;
            let cursors = cursors_changed.then(|| view.cursors.cursors.clone());
            let cursor_version = cursors_changed.then_some(view.cursors.version);
            // Stream frames past the client's stream version (all of them when its version is
            // another node's, higher than this one's: `start` replaces, and clients ignore the
            // end of a stream they saw end).
            let streams =
                (view.stream_version != cursor.stream_version).then_some(view.stream_version);
            // Only for a client that follows locks (one that does not leaves the version out).
            let locks = cursor
                .lock_version
                .is_some_and(|version| version != view.locks.version)
                .then(|| view.locks.clone());
            if presence.is_some()
                || typing.is_some()
                || cursors.is_some()
                || streams.is_some()
                || locks.is_some()
            {
                frames.push(encode(&ServerFrame::State(RoomState {
                    room: room.clone(),
                    presence,
                    typing,
                    cursors,
                    cursor_version,
                    streams,
                    locks,
                })));
            }
            if streams.is_some() {
                let seen = if cursor.stream_version > view.stream_version {
                    0
                } else {
                    cursor.stream_version
                };
                for (version, frame) in &view.streams {
                    if *version > seen {
                        frames.push(encode(frame));
                    }
                }
            }
        }
        let Some(position) = cursor.cursor else {
            continue;
        };
        let budget = state
            .limits
            .max_answer_bytes
            .saturating_sub(answer_bytes(&frames));
        if budget == 0 && events > 0 {
            continue;
        }
        let limit = PageLimit {
            events: POLL_PAGE,
            bytes: budget,
        };
        let page = match state.store.read_bounded(room, position.seq, limit).await {
            Ok(page) => page,
            Err(err) => {
                frames.push(encode(&ServerFrame::error(
                    ErrorCode::StorageUnavailable,
                    err.to_string(),
                    Some(room.clone()),
                )));
                continue;
            }
        };
        let head = page.head;
        let reset = head.resume(position).err();
        match reset {
            Some(reason) => frames.push(encode(&ServerFrame::Reset(Reset {
                room: room.clone(),
                reason,
                epoch: head.epoch,
                head: head.head,
            }))),
            None => {
                events += page.events.len();
                frames.extend(page.events.iter().map(encode_event));
            }
        }
    }
    frames
}
