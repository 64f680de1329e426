//! REST endpoints: history pages, presence, backend publishing, direct messages, stats,
//! health, readiness, metrics and dev tokens.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_sdk::wire::{
    BackendPublish, DevTokenRequest, DevTokenResponse, ErrorCode, EventId, EventsPage, HealthBody,
    PresenceBody, PresenceSnapshot, Published, RoomName, RoomRight, Stats, TokenClaims,
    check_user_id, inbox_room,
};
use serde::Deserialize;

use super::{ApiError, AppState, PathParts};
use crate::auth::AuthError;
use crate::driver::HubMsg;
use crate::identity::Identity;
use crate::store::{AppendOutcome, AppendRequest, PageLimit};

/// The most events one history page returns.
const MAX_PAGE: usize = 1000;

/// Who is calling a room endpoint.
enum Caller {
    /// The application's backend (API key).
    Backend,
    /// A user (JWT).
    User(Identity),
}

fn bearer_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Verifies the `Authorization: Bearer <JWT>` header.
pub(super) fn bearer(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let refused =
        |err: AuthError| ApiError::new(StatusCode::UNAUTHORIZED, err.code(), err.to_string());
    let token = bearer_value(headers).ok_or_else(|| {
        refused(AuthError::Invalid(
            "send the token as `Authorization: Bearer <token>`".into(),
        ))
    })?;
    state.auth.verify(token).map_err(refused)
}

fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if api_key_matches(state, headers) {
        return Ok(Caller::Backend);
    }
    bearer(state, headers).map(Caller::User)
}

pub(super) fn backend_only(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if api_key_matches(state, headers) {
        return Ok(());
    }
    let message = if state.api_key.is_some() {
        "this endpoint needs the backend API key: `Authorization: Bearer <api key>`"
    } else {
        "this endpoint needs the backend API key, and the server has none (--api-key)"
    };
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        message,
    ))
}

/// Whether the request carries the backend API key (`Authorization: Bearer <key>`).
///
/// Compared in constant time by `subtle` (a timing side channel must not reveal how many
/// leading bytes of a guess are right). Only the length can show: keys are long random strings,
/// so their length is no secret worth keeping.
fn api_key_matches(state: &AppState, headers: &HeaderMap) -> bool {
    let (Some(key), Some(given)) = (&state.api_key, bearer_value(headers)) else {
        return false;
    };
    key_equals(key.as_bytes(), given.as_bytes())
}

fn key_equals(key: &[u8], given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(key.ct_eq(given))
}

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
}

/// Unwraps a JSON body or explains what is wrong with it (413 for oversized bodies).
pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|rejection| body_refused(rejection.status(), rejection.body_text()))
}

/// Why a request body was refused before it was read: 413 `body_too_large` for an oversized
/// one, 400 `bad_request` otherwise.
pub(super) fn body_refused(status: StatusCode, why: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            "the request body is larger than this endpoint allows",
        )
    } else {
        bad_request(why)
    }
}

pub(super) fn parse_room(room: String) -> Result<RoomName, ApiError> {
    RoomName::parse(room).map_err(|err| bad_request(err.to_string()))
}

pub(super) fn parse_event_id(id: String) -> Result<EventId, ApiError> {
    EventId::parse(id).map_err(|err| bad_request(err.to_string()))
}

/// The answer while the server shuts down (the hub takes no more requests): 503 `draining`,
/// with what the caller should do.
pub(super) fn draining(what_to_do: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Draining,
        format!("the server is shutting down; {what_to_do}"),
    )
}

pub(super) fn room_for_reading(
    state: &AppState,
    headers: &HeaderMap,
    room: String,
) -> Result<RoomName, ApiError> {
    let room = parse_room(room)?;
    match caller(state, headers)? {
        Caller::Backend => Ok(room),
        Caller::User(identity) if identity.can_join(&room) => Ok(room),
        Caller::User(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("your token grants no access to room {room}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    after: Option<u64>,
    limit: Option<usize>,
    /// Activity feed filters and backward paging (see `http::activity`); not flattened
    /// into a struct of their own, because serde's `flatten` reads numbers in a query as text.
    #[serde(rename = "type")]
    event_type: Option<String>,
    user: Option<String>,
    before: Option<u64>,
}

/// `GET /v1/rooms/{room}/events?after=&limit=`: at most `limit` events and at most
/// `--max-answer-bytes` of them; `next_after` is set whenever events after the page remain.
/// With `type`, `user` or `before`, a filtered page (`http::activity`).
pub(super) async fn room_events(
    State(state): State<AppState>,
    PathParts(room): PathParts<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let Query(query) = query.map_err(|err| bad_request(err.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let limit = PageLimit {
        events: limit,
        bytes: state.limits.max_answer_bytes,
    };
    let activity = super::activity::ActivityQuery {
        event_type: query.event_type,
        user: query.user,
        before: query.before,
    };
    if activity.is_used() {
        return super::activity::filtered_page(&state, room, query.after, limit, activity)
            .await
            .map(Json);
    }
    let after = query.after.unwrap_or(0);
    let page = state
        .store
        .read_bounded(&room, after, limit)
        .await
        .map_err(storage_unavailable)?;
    let last = page.events.last().map(|e| e.seq());
    let next_after = last.filter(|&seq| seq < page.head.head);
    Ok(Json(EventsPage {
        room,
        epoch: page.head.epoch,
        head: page.head.head,
        oldest: page.head.oldest,
        events: page.events.into_iter().map(|stored| stored.event).collect(),
        next_after,
        next_before: None,
    }))
}

/// 503 `storage_unavailable` for a read that failed.
pub(super) fn storage_unavailable(err: crate::store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageUnavailable,
        err.to_string(),
    )
}

/// `GET /v1/rooms/{room}/presence`
pub(super) async fn room_presence(
    State(state): State<AppState>,
    PathParts(room): PathParts<String>,
    headers: HeaderMap,
) -> Result<Json<PresenceBody>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let presence = (state.hub.presence(room.clone()).await)
        .map_err(|_| {
            let message = format!(
                "this node observes as many rooms for presence lookups as it may; retry in {} s",
                crate::hub::OBSERVE_KEEP.as_secs()
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                message,
            )
        })?
        // Nobody in the room: version 0 on every node.
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

/// `POST /v1/rooms/{room}/events` (API key)
pub(super) async fn backend_publish(
    State(state): State<AppState>,
    PathParts(room): PathParts<String>,
    headers: HeaderMap,
    body: Result<Json<BackendPublish>, JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    backend_only(&state, &headers)?;
    let room = parse_room(room)?;
    publish_as_backend(&state, room, json_body(body)?).await
}

/// `POST /v1/users/{user}/events` (API key): a direct message, kept in the user's inbox `@user`.
pub(super) async fn direct_message(
    State(state): State<AppState>,
    PathParts(user): PathParts<String>,
    headers: HeaderMap,
    body: Result<Json<BackendPublish>, JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    backend_only(&state, &headers)?;
    let room = inbox_room(&user)
        .map_err(|err| bad_request(format!("user {user:?} has no inbox room: {err}")))?;
    publish_as_backend(&state, room, json_body(body)?).await
}

pub(super) async fn publish_as_backend(
    state: &AppState,
    room: RoomName,
    publish: BackendPublish,
) -> Result<Json<Published>, ApiError> {
    let from = publish.from.unwrap_or_else(|| "system".to_owned());
    check_user_id(&from).map_err(|err| bad_request(err.to_string()))?;
    crate::docs::check_body(&publish.body).map_err(bad_request)?;
    if publish.body.len() > state.limits.max_frame_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "the body is {} bytes; the limit is {}",
                publish.body.len(),
                state.limits.max_frame_bytes
            ),
        ));
    }
    let request = AppendRequest {
        room: room.clone(),
        id: publish.id,
        from,
        at: crate::clock::unix_ms_now(),
        body: publish.body,
        if_seq: publish.if_seq,
        if_lock: publish.if_lock.clone(),
    };
    let outcome = state
        .hub
        .ask(|reply| HubMsg::BackendPublish { request, reply })
        .await
        .ok_or_else(|| draining("retry with the same id"))?;
    match outcome {
        Ok(AppendOutcome::Stored(stored)) => Ok(Json(Published {
            room,
            seq: stored.seq(),
            duplicate: false,
        })),
        Ok(AppendOutcome::Duplicate { seq }) => Ok(Json(Published {
            room,
            seq,
            duplicate: true,
        })),
        Ok(AppendOutcome::Conflict { head }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!("the room's head is {head}: someone published first"),
        )),
        Ok(AppendOutcome::LockLost { current }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::LockLost,
            match &publish.if_lock {
                Some(fence) => crate::store::locks::lock_lost_message(fence, current.as_ref()),
                None => "the stated lock grant is not held; nothing was stored".to_owned(),
            },
        )),
        Err(err) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StorageUnavailable,
            format!("{err}; nothing was stored, retry with the same id"),
        )),
    }
}

/// `GET /v1/stats` (API key)
pub(super) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Stats>, ApiError> {
    backend_only(&state, &headers)?;
    let own = current_stats(&state).await?;
    Ok(Json(match &state.node_stats {
        Some(directory) => directory.deployment(own, crate::clock::unix_ms_now()).await,
        None => own,
    }))
}

async fn current_stats(state: &AppState) -> Result<Stats, ApiError> {
    state
        .hub
        .ask(|reply| HubMsg::Stats { reply })
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                "the hub has stopped",
            )
        })
}

/// `GET /metrics`: Prometheus text exposition format.
pub(super) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.private_metrics {
        backend_only(&state, &headers)?;
    }
    let stats = current_stats(&state).await?;
    let mut body = super::metrics::render(&stats, &state.counters, &state.capacity);
    super::metrics::render_engine(
        &mut body,
        state.store.figures().as_ref(),
        state.bus.figures().as_ref(),
    );
    super::notices::render(&mut body, &super::notices::figures(&state).await);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// `GET /readyz`: 200 when the hub runs, the store answers and the bus hears the other nodes
/// (always, on one node), 503 otherwise.
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthBody>, ApiError> {
    current_stats(&state).await?;
    state.store.ready().await.map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            format!("storage: {err}"),
        )
    })?;
    state.bus.ready().map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            format!("bus: {err}"),
        )
    })?;
    Ok(Json(HealthBody {
        status: "ready".into(),
    }))
}

/// The longest (and default) life of a dev token: 12 hours.
const DEV_TOKEN_MAX_TTL_SECONDS: u64 = 12 * 3600;
/// The most room grants a dev token may be asked for.
const DEV_TOKEN_MAX_GRANTS: usize = 64;

/// `POST /v1/dev/token` (only with `--dev`): a token for any display name, valid for
/// `ttl_seconds` (1 to 12 hours' worth; default 12 hours), with the `rooms` grants asked for
/// (default: publish on every room).
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
    let request = json_body(body)?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(bad_request("name must be 1 to 64 bytes"));
    }
    let ttl = request.ttl_seconds.unwrap_or(DEV_TOKEN_MAX_TTL_SECONDS);
    if !(1..=DEV_TOKEN_MAX_TTL_SECONDS).contains(&ttl) {
        return Err(bad_request(format!(
            "ttl_seconds must be 1 to {DEV_TOKEN_MAX_TTL_SECONDS}"
        )));
    }
    let user: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let rooms = match request.rooms {
        Some(rooms) => {
            if rooms.len() > DEV_TOKEN_MAX_GRANTS
                || rooms
                    .keys()
                    .any(|pattern| pattern.is_empty() || pattern.len() > 256)
            {
                return Err(bad_request(format!(
                    "rooms must hold at most {DEV_TOKEN_MAX_GRANTS} patterns of 1 to 256 bytes"
                )));
            }
            rooms
        }
        None => [("*".to_owned(), RoomRight::Publish)].into_iter().collect(),
    };
    let claims = TokenClaims {
        sub: user.clone(),
        name: Some(name.to_owned()),
        exp: crate::clock::unix_ms_now() / 1000 + ttl,
        rooms,
    };
    Ok(Json(DevTokenResponse {
        token: state.auth.issue(&claims),
        user,
    }))
}

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".into(),
    })
}

/// A method an endpoint does not take: `bad_request` with 405 (axum adds `Allow`).
pub(super) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        format!(
            "{} does not take {method}; see docs/PROTOCOL.md",
            uri.path()
        ),
    )
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see docs/PROTOCOL.md",
    )
}

#[cfg(test)]
mod tests {
    use super::key_equals;

    #[test]
    fn the_api_key_matches_only_itself() {
        let key = b"k3y-with-enough-entropy";
        assert!(key_equals(key, key));
        for given in [
            &b""[..],
            b"k3y-with-enough-entrop",
            b"k3y-with-enough-entropyy",
            b"K3y-with-enough-entropy",
            b"k3y-with-enough-entropY",
        ] {
            assert!(!key_equals(key, given), "{given:?}");
        }
    }
}
