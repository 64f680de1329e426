//! `POST /v1/polls`: several long polls in one request, so that the tabs of a browser in
//! polling mode hold one request between them rather than one each (a browser allows about six
//! connections to a server over HTTP/1.1, and a held poll takes one).
//!
//! Each poll is exactly a `GET /v1/poll` of its own ([`OpenPoll`]): its token, query, session,
//! refusals and frames. The request answers once at least one poll has an answer: a poll is
//! answered when it has something due, when something happened in one of its rooms (as a `GET`
//! answers after it wakes, even empty), when its `wait` ran out, or at once when it was refused.
//! Polls not in the answer are not answered (and took nothing): the client asks again.

use std::time::{Duration, Instant};

use axum::extract::rejection::StringRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_sdk::wire::{self, ErrorCode, Json, PollAnswer, PollAnswers, PollMany};
use futures_util::future::select_all;

use super::poll::{OpenPoll, PollReply, answer};
use super::rest::body_refused;
use super::{ApiError, AppState};

/// Most polls one request may carry.
const MAX_POLLS: usize = 64;

/// `POST /v1/polls`
#[allow(clippy::disallowed_methods)] // an HTTP handler is a driver: it reads its own clock
pub(super) async fn many(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Result<String, StringRejection>,
) -> Response {
    let polls = match read(body) {
        Ok(polls) => polls,
        Err(err) => return err.into_response(),
    };
    let started = Instant::now();
    let mut answers = Vec::new();
    let mut open = Vec::new();
    for poll in polls.polls {
        let mut headers = headers.clone();
        let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {}", poll.token)) else {
            let refused = ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "the token holds characters no JWT has",
            );
            answers.push(answered(poll.id, PollReply::refused(refused)));
            continue;
        };
        headers.insert(header::AUTHORIZATION, bearer);
        match OpenPoll::open(&state, peer.ip(), &headers, Some(poll.query)).await {
            Ok(mut opened) => {
                let waited = Duration::from_millis(poll.waited.unwrap_or(0));
                opened.wait = opened.wait.saturating_sub(waited);
                open.push((poll.id, opened));
            }
            Err(unopened) => answers.push(answered(poll.id, unopened)),
        }
    }
    // Not held with the polls: its values pin hyper's read buffer (see `poll::poll`).
    drop(headers);
    // Answer what is due; hold the rest until one of them wakes or its wait runs out, then look
    // again at those (a poll whose rooms saw nothing has nothing new), until one is answered.
    let mut woken = None;
    let mut first = true;
    loop {
        let now = Instant::now();
        let mut holding = Vec::new();
        for (index, (id, mut poll)) in open.into_iter().enumerate() {
            let expired = started + poll.wait <= now;
            let changed = poll.wake.has_changed().unwrap_or(true);
            if !(first || expired || changed || woken == Some(index)) {
                holding.push((id, poll));
                continue;
            }
            let frames = poll.due(&state).await;
            // Like a GET, a poll that woke or ran out is answered, even empty.
            let done = expired || woken == Some(index);
            if done || frames.as_ref().is_none_or(|frames| !frames.is_empty()) {
                answers.push(answered(id, answer(&state, frames)));
            } else {
                holding.push((id, poll));
            }
        }
        open = holding;
        if !answers.is_empty() || open.is_empty() {
            break;
        }
        first = false;
        let deadline = open
            .iter()
            .map(|(_, poll)| started + poll.wait)
            .min()
            .unwrap_or(started);
        let wakes = open
            .iter_mut()
            .map(|(_, poll)| Box::pin(poll.wake.changed()));
        woken = tokio::time::timeout_at(deadline.into(), select_all(wakes))
            .await
            .ok()
            .map(|(_, index, _)| index);
    }
    let body = wire::json::to_string(&PollAnswers { polls: answers });
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Reads the request's body: 400 `bad_request` for one that is not a `PollMany`, has no poll
/// or more than [`MAX_POLLS`], or ids that are not valid or not distinct.
fn read(body: Result<String, StringRejection>) -> Result<PollMany, ApiError> {
    let text = body.map_err(|rejection| body_refused(rejection.status(), rejection.body_text()))?;
    let bad =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message);
    let polls: PollMany = wire::json::from_str(&text).map_err(|err| bad(err.to_string()))?;
    if polls.polls.is_empty() || polls.polls.len() > MAX_POLLS {
        return Err(bad(format!(
            "a request carries 1 to {MAX_POLLS} polls; this one has {}",
            polls.polls.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for poll in &polls.polls {
        let valid = (1..=64).contains(&poll.id.len())
            && poll
                .id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !valid {
            return Err(bad(format!(
                "poll id {:?} is not 1 to 64 letters, digits, '_', '.' or '-'",
                poll.id
            )));
        }
        if !seen.insert(poll.id.as_str()) {
            return Err(bad(format!("poll id {:?} is used twice", poll.id)));
        }
    }
    Ok(polls)
}

/// One poll's answer in the request's: the status and body its `GET` would have had.
fn answered(id: String, reply: PollReply) -> PollAnswer {
    PollAnswer {
        id,
        status: u64::from(reply.status.as_u16()),
        // A poll's body is the codec's own JSON (frames, or an error body).
        body: Json::from_encoded(reply.body),
    }
}
