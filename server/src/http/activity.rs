//! The activity feed: `GET /v1/rooms/{room}/events` with `type` (the body's top-level `"type"`
//! string, `Json::event_type`), `user` (the sender, `from`) and/or `before` (backward paging:
//! the newest events older than a seq). The filters are applied in the store
//! (`Store::read_filtered`), which looks at no more than [`SCAN_BUDGET`] events per page, so
//! a page of rare events never scans the whole history: such a page may come back short, or
//! empty, with `next_after` (`next_before`) set to where the scan stopped; ask again from
//! there.

use axum::http::StatusCode;
use chorus_sdk::wire::{ErrorCode, EventsPage, MAX_EVENT_TYPE_BYTES, RoomName, check_user_id};

use super::rest::{bad_request, storage_unavailable};
use super::{ApiError, AppState};
use crate::store::{EventFilter, FilteredRead, PageLimit, ReadFrom};

/// The most events one filtered page looks at (matching or not).
pub(super) const SCAN_BUDGET: usize = 1000;

/// The activity part of a history query.
#[derive(Debug, Default)]
pub(super) struct ActivityQuery {
    /// Only events of this type.
    pub(super) event_type: Option<String>,
    /// Only events published by this user.
    pub(super) user: Option<String>,
    /// Backward: the newest events with a smaller seq.
    pub(super) before: Option<u64>,
}

impl ActivityQuery {
    /// Whether the query asks for anything beyond a plain forward page.
    pub(super) fn is_used(&self) -> bool {
        self.event_type.is_some() || self.user.is_some() || self.before.is_some()
    }
}

/// One filtered page (see the module doc).
pub(super) async fn filtered_page(
    state: &AppState,
    room: RoomName,
    after: Option<u64>,
    limit: PageLimit,
    query: ActivityQuery,
) -> Result<EventsPage, ApiError> {
    if let Some(kind) = &query.event_type
        && (kind.is_empty() || kind.len() > MAX_EVENT_TYPE_BYTES)
    {
        return Err(bad_request(format!(
            "type must be 1 to {MAX_EVENT_TYPE_BYTES} bytes (an event's type is its body's \
             top-level \"type\" string)"
        )));
    }
    if let Some(user) = &query.user {
        check_user_id(user).map_err(|err| bad_request(format!("user: {err}")))?;
    }
    let from = match (after, query.before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "give `after` (read forward) or `before` (read backward), not both",
            ));
        }
        (_, Some(before)) => ReadFrom::Before(before),
        (after, None) => ReadFrom::After(after.unwrap_or(0)),
    };
    let read = FilteredRead {
        filter: EventFilter {
            event_type: query.event_type,
            user: query.user,
        },
        from,
        limit,
        budget: SCAN_BUDGET,
    };
    let page = state
        .store
        .read_filtered(&room, read)
        .await
        .map_err(storage_unavailable)?;
    let head = page.head;
    let (next_after, next_before) = match (from, page.scanned) {
        (ReadFrom::After(_), Some(scanned)) => (Some(scanned).filter(|&s| s < head.head), None),
        (ReadFrom::Before(_), Some(scanned)) => (None, Some(scanned).filter(|&s| s > head.oldest)),
        (_, None) => (None, None),
    };
    Ok(EventsPage {
        room,
        epoch: head.epoch,
        head: head.head,
        oldest: head.oldest,
        events: page.events.into_iter().map(|stored| stored.event).collect(),
        next_after,
        next_before,
    })
}
