//! `GET /v1/rooms/{room}/locks`: the locks held in a room, read from the store (the authority
//! every node shares), so the answer is the same on every node whether or not anyone of the
//! room is connected to it.
//!
//! A backend reads locks and may publish as their holder with `if_lock` (`POST
//! /v1/rooms/{room}/events`); it does not take or release them: a grant belongs to a
//! connection, whose leaving ends it, and a backend has none.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chorus_sdk::wire::{ErrorCode, LocksBody};

use super::{ApiError, AppState, PathParts};

/// `GET /v1/rooms/{room}/locks` (a token with a grant on the room, or the API key).
pub(super) async fn room_locks(
    State(state): State<AppState>,
    PathParts(room): PathParts<String>,
    headers: HeaderMap,
) -> Result<Json<LocksBody>, ApiError> {
    let room = super::rest::room_for_reading(&state, &headers, room)?;
    let locks = state
        .store
        .locks(&room, crate::clock::unix_ms_now())
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                err.to_string(),
            )
        })?;
    Ok(Json(LocksBody { room, locks }))
}
