//! REST endpoints: history pages, presence, health, dev tokens.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use chorus_sdk::wire::{
    DevTokenRequest, DevTokenResponse, ErrorCode, EventsPage, HealthBody, PresenceBody,
    PresenceSnapshot, RoomName, RoomRight, TokenClaims,
};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Identity};

/// The most events one history page returns.
const MAX_PAGE: usize = 1000;

fn bearer(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AuthError::Missing);
    let refused =
        |err: AuthError| ApiError::new(StatusCode::UNAUTHORIZED, err.code(), err.to_string());
    state
        .auth
        .verify(token.map_err(|_| {
            refused(AuthError::Invalid(
                "send the token as `Authorization: Bearer <token>`".into(),
            ))
        })?)
        .map_err(refused)
}

fn room_for_reading(
    state: &AppState,
    headers: &HeaderMap,
    room: String,
) -> Result<RoomName, ApiError> {
    let room = RoomName::parse(room).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            err.to_string(),
        )
    })?;
    let identity = bearer(state, headers)?;
    if !identity.can_join(&room) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("your token grants no access to room {room}"),
        ));
    }
    Ok(room)
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// `GET /v1/rooms/{room}/events?after=&limit=`
pub(super) async fn room_events(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let Query(query) = query.map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            err.body_text(),
        )
    })?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = state
        .store
        .read(&room, query.after, limit)
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                err.to_string(),
            )
        })?;
    let last = page.events.last().map(|e| e.seq());
    let next_after = last.filter(|&seq| seq < page.head.head);
    Ok(Json(EventsPage {
        room,
        epoch: page.head.epoch,
        head: page.head.head,
        oldest: page.head.oldest,
        events: page.events.into_iter().map(|stored| stored.event).collect(),
        next_after,
    }))
}

/// `GET /v1/rooms/{room}/presence`
pub(super) async fn room_presence(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PresenceBody>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let presence = state
        .hub
        .presence(room.clone())
        .await
        .unwrap_or(PresenceSnapshot {
            version: 0,
            users: Vec::new(),
        });
    Ok(Json(PresenceBody {
        room,
        version: presence.version,
        users: presence.users,
    }))
}

/// `POST /v1/dev/token` (only with `--dev`): a token for any display name, valid for 12 hours.
pub(super) async fn dev_token(
    State(state): State<AppState>,
    body: Result<Json<DevTokenRequest>, JsonRejection>,
) -> Result<Json<DevTokenResponse>, ApiError> {
    if !state.dev {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "dev tokens are only issued with --dev",
        ));
    }
    let Json(request) = body.map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            err.body_text(),
        )
    })?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "name must be 1 to 64 bytes",
        ));
    }
    let user: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let claims = TokenClaims {
        sub: user.clone(),
        name: Some(name.to_owned()),
        exp: crate::unix_ms_now() / 1000 + 12 * 3600,
        rooms: [("*".to_owned(), RoomRight::Publish)].into_iter().collect(),
    };
    Ok(Json(DevTokenResponse {
        token: state.auth.issue(&claims),
        user,
    }))
}

/// `GET /healthz`
pub(super) async fn healthz() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".into(),
    })
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see docs/PROTOCOL.md",
    )
}
