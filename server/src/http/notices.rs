//! The backend's notice endpoints (API key): `POST /v1/notices` (every connection of every
//! node), `POST /v1/users/{user}/notices` (every connection of one user) and
//! `POST /v1/connections/{conn}/notices` (one WebSocket or polling session, by the id its
//! `welcome` and the room presence show). Each hands a [`Notice`] to the hub
//! ([`HubMsg::Notice`], see `hub::notices`) and answers [`NoticeSent`]. Also the notice
//! lines of `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use chorus_sdk::wire::{ErrorCode, EventId, NOTICE_LEVELS, Notice, NoticeSent, SendNotice};

use super::rest::{backend_only, bad_request, draining, json_body};
use super::{ApiError, AppState, PathParts};
use crate::driver::HubMsg;
use crate::hub::{NoticeFigures, NoticeOutcome, NoticeTarget};

/// `POST /v1/notices` (API key): every connection of every node.
pub(super) async fn to_everyone(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SendNotice>, JsonRejection>,
) -> Result<Json<NoticeSent>, ApiError> {
    backend_only(&state, &headers)?;
    send(&state, NoticeTarget::Everyone, json_body(body)?).await
}

/// `POST /v1/users/{user}/notices` (API key): every connection of the user, on every node.
pub(super) async fn to_user(
    State(state): State<AppState>,
    PathParts(user): PathParts<String>,
    headers: HeaderMap,
    body: Result<Json<SendNotice>, JsonRejection>,
) -> Result<Json<NoticeSent>, ApiError> {
    backend_only(&state, &headers)?;
    chorus_sdk::wire::check_user_id(&user).map_err(|err| bad_request(err.to_string()))?;
    send(&state, NoticeTarget::User(user), json_body(body)?).await
}

/// `POST /v1/connections/{conn}/notices` (API key): one connection.
pub(super) async fn to_connection(
    State(state): State<AppState>,
    PathParts(conn): PathParts<String>,
    headers: HeaderMap,
    body: Result<Json<SendNotice>, JsonRejection>,
) -> Result<Json<NoticeSent>, ApiError> {
    backend_only(&state, &headers)?;
    let well_formed = conn.rsplit_once('-').is_some_and(|(node, number)| {
        !node.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
    });
    if !well_formed {
        return Err(bad_request(format!(
            "{conn:?} is not a connection id: those look like `5f3a9c01-17` (welcome.conn, or \
             conns[].conn in a room's presence)"
        )));
    }
    send(&state, NoticeTarget::Connection(conn), json_body(body)?).await
}

async fn send(
    state: &AppState,
    target: NoticeTarget,
    request: SendNotice,
) -> Result<Json<NoticeSent>, ApiError> {
    if request.body.len() > state.limits.max_frame_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "the body is {} bytes; the limit is {}",
                request.body.len(),
                state.limits.max_frame_bytes
            ),
        ));
    }
    let level = request.level.unwrap_or_else(|| NOTICE_LEVELS[0].to_owned());
    if !NOTICE_LEVELS.contains(&level.as_str()) {
        return Err(bad_request(format!(
            "level {level:?} is not one of info, warning, critical"
        )));
    }
    let id = match request.id {
        Some(id) => EventId::parse(id)
            .map_err(|err| bad_request(format!("id: {err}")))?
            .as_str()
            .to_owned(),
        None => format!("notice-{:016x}", rand::random::<u64>()),
    };
    let notice = Notice {
        id: id.clone(),
        level,
        body: request.body,
        at: crate::clock::unix_ms_now(),
    };
    let described = match &target {
        NoticeTarget::Connection(conn) => Some(conn.clone()),
        _ => None,
    };
    let outcome = state
        .hub
        .ask(|reply| HubMsg::Notice {
            target,
            notice,
            reply,
        })
        .await
        .ok_or_else(|| draining("nothing was sent"))?;
    match outcome {
        NoticeOutcome::Delivered(delivered) => Ok(Json(NoticeSent {
            id,
            delivered: delivered as u64,
        })),
        NoticeOutcome::NoSuchConnection => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "no connection {} is open: it closed, or never was",
                described.unwrap_or_default()
            ),
        )),
    }
}

/// The notice counters of `/metrics`.
pub(super) async fn figures(state: &AppState) -> NoticeFigures {
    state
        .hub
        .ask(|reply| HubMsg::NoticeFigures { reply })
        .await
        .unwrap_or_default()
}

/// Appends the notice lines to a `/metrics` body.
pub(super) fn render(out: &mut String, figures: &NoticeFigures) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP chorus_notices_sent_total Notices the backend sent through this node, by target."
    );
    let _ = writeln!(out, "# TYPE chorus_notices_sent_total counter");
    for (target, count) in ["everyone", "user", "connection"].iter().zip(figures.sent) {
        let _ = writeln!(
            out,
            "chorus_notices_sent_total{{target=\"{target}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP chorus_notices_delivered_total Connections of this node handed a notice."
    );
    let _ = writeln!(out, "# TYPE chorus_notices_delivered_total counter");
    let _ = writeln!(out, "chorus_notices_delivered_total {}", figures.delivered);
}
