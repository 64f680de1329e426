//! The backend's stream endpoints (API key): `POST /v1/rooms/{room}/streams/{id}` takes one
//! step of a stream (start, append, finish, fail) as JSON; `POST
//! /v1/rooms/{room}/streams/{id}/text` streams a text stream in one request: the request body,
//! read as it arrives, is the text (start when the request begins, an append per piece of body
//! received, finish when the body ends, fail when it breaks off), so a backend can pipe an LLM's
//! output straight through. Both are thin: the hub decides everything (`hub/streams.rs`).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use chorus_sdk::wire::{
    BackendStreamOp, ErrorCode, EventId, RoomName, StreamAnswer, StreamKind, StreamStep,
    check_user_id,
};
use futures_util::StreamExt;
use serde::Deserialize;

use super::rest::{backend_only, bad_request, draining, json_body, parse_event_id, parse_room};
use super::{ApiError, AppState, PathParts};
use crate::driver::HubMsg;
use crate::hub::StreamReply;
use crate::store::AppendOutcome;

/// `POST /v1/rooms/{room}/streams/{id}` (API key): one step of a backend stream.
pub(super) async fn stream_step(
    State(state): State<AppState>,
    PathParts((room, id)): PathParts<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<BackendStreamOp>, JsonRejection>,
) -> Result<Json<StreamAnswer>, ApiError> {
    backend_only(&state, &headers)?;
    let room = parse_room(room)?;
    let id = parse_event_id(id)?;
    let op = json_body(body)?;
    let from = producer(op.from.clone())?;
    send_step(&state, room, id, from, op).await
}

/// The query of the streaming text endpoint.
#[derive(Debug, Deserialize)]
pub(super) struct TextQuery {
    /// The producer as members see it (default `"system"`).
    from: Option<String>,
}

/// `POST /v1/rooms/{room}/streams/{id}/text?from=` (API key): a whole text stream in one
/// request whose body is the text, appended as it arrives.
pub(super) async fn stream_text(
    State(state): State<AppState>,
    PathParts((room, id)): PathParts<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<TextQuery>, QueryRejection>,
    body: Body,
) -> Result<Json<StreamAnswer>, ApiError> {
    backend_only(&state, &headers)?;
    let room = parse_room(room)?;
    let id = parse_event_id(id)?;
    // A query that does not read (`from` twice, say) is a JSON `bad_request` like every
    // other refusal, not axum's plain-text rejection.
    let Query(query) = query.map_err(|rejection| bad_request(rejection.body_text()))?;
    let from = producer(query.from)?;
    let started = send_step(
        &state,
        room.clone(),
        id.clone(),
        from.clone(),
        text_step(StreamStep::Start),
    )
    .await?;
    // The body is the whole text from its first chunk: on a stream that has chunks already
    // (another request, or the JSON endpoint, is producing it) its appends would land on
    // indexes the stream has, and be dropped. That stream is left alone.
    if let Some(chunks @ 1..) = started.chunks {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::StreamConflict,
            format!(
                "stream {id} is open already with {chunks} chunks: the text endpoint sends a stream from its start; use another id, or append with the JSON endpoint"
            ),
        ));
    }
    if let Err((why, error)) = append_body(&state, &room, &id, &from, body).await {
        // The stream fails, and the answer says why (if anyone still reads it).
        let fail = BackendStreamOp {
            message: Some(why),
            ..text_step(StreamStep::Fail)
        };
        let _ = send_step(&state, room, id, from, fail).await;
        return Err(error);
    }
    send_step(&state, room, id, from, text_step(StreamStep::Finish)).await
}

/// A step of the streaming text endpoint's stream, with nothing else set.
fn text_step(op: StreamStep) -> BackendStreamOp {
    BackendStreamOp {
        op,
        from: None,
        kind: StreamKind::Text,
        n: None,
        chunk: None,
        meta: None,
        message: None,
    }
}

/// Appends the request body to the stream as it arrives, in pieces that fit a chunk. On
/// failure: why the stream fails, and the request's answer.
async fn append_body(
    state: &AppState,
    room: &RoomName,
    id: &EventId,
    from: &str,
    body: Body,
) -> Result<(), (String, ApiError)> {
    let refused = |why: &str| (why.to_owned(), bad_request(why));
    let mut body = body.into_data_stream();
    let mut n = 0u64;
    // The end of a piece that stopped inside a UTF-8 character waits for the next piece.
    let mut carry: Vec<u8> = Vec::new();
    let max_chunk = state.limits.max_stream_chunk_bytes;
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|err| refused(&format!("the request body broke off: {err}")))?;
        carry.extend_from_slice(&piece);
        let valid = match std::str::from_utf8(&carry) {
            Ok(text) => text.len(),
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => return Err(refused("the request body is not UTF-8 text")),
        };
        let rest = carry.split_off(valid);
        let text = String::from_utf8(std::mem::replace(&mut carry, rest))
            .expect("checked to be UTF-8 up to here");
        for piece in pieces(&text, max_chunk) {
            let append = BackendStreamOp {
                n: Some(n),
                chunk: Some(chorus_sdk::wire::Json::encode(&piece.to_owned())),
                ..text_step(StreamStep::Append)
            };
            let _appended = send_step(state, room.clone(), id.clone(), from.to_owned(), append)
                .await
                .map_err(|err| ("the stream's request was refused".to_owned(), err))?;
            n += 1;
        }
    }
    if !carry.is_empty() {
        return Err(refused("the request body ended inside a UTF-8 character"));
    }
    Ok(())
}

/// Cuts `text` into pieces whose JSON strings fit `max` bytes (each character may take up to
/// six bytes escaped, so a piece holds at most `max / 6` bytes of text, cut at characters).
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let limit = (max.saturating_sub(2) / 6).max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(limit);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

fn producer(from: Option<String>) -> Result<String, ApiError> {
    let from = from.unwrap_or_else(|| "system".to_owned());
    check_user_id(&from).map_err(|err| bad_request(err.to_string()))?;
    Ok(from)
}

/// Hands one step to the hub and turns its reply into the answer.
async fn send_step(
    state: &AppState,
    room: RoomName,
    id: EventId,
    from: String,
    op: BackendStreamOp,
) -> Result<Json<StreamAnswer>, ApiError> {
    let (room_, id_) = (room.clone(), id.clone());
    let reply = state
        .hub
        .ask(|reply| HubMsg::BackendStream {
            room: room_,
            id: id_,
            from,
            op,
            reply,
        })
        .await
        .ok_or_else(|| draining("retry on another node"))?;
    let answer = |chunks, seq, duplicate| {
        Json(StreamAnswer {
            room,
            id,
            chunks,
            seq,
            duplicate,
        })
    };
    match reply {
        StreamReply::Done(chunks) => Ok(answer(Some(chunks), None, false)),
        StreamReply::Finished(Ok(AppendOutcome::Stored(stored))) => {
            Ok(answer(None, Some(stored.seq()), false))
        }
        StreamReply::Finished(Ok(AppendOutcome::Duplicate { seq })) => {
            Ok(answer(None, Some(seq), true))
        }
        StreamReply::Finished(Ok(AppendOutcome::Conflict { head })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!("the room's head is {head}"),
        )),
        // A finish states no lock grant, so the store never answers it with this.
        StreamReply::Finished(Ok(AppendOutcome::LockLost { .. })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::LockLost,
            "the stream's result was refused for a lock grant; nothing was stored".to_owned(),
        )),
        StreamReply::Finished(Err(err)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StorageUnavailable,
            format!("{err}; nothing was stored, finish again"),
        )),
        // A step that does not fit its stream's kind is a bad request body here.
        StreamReply::Refused((ErrorCode::BadFrame, message)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            message,
        )),
        StreamReply::Refused((code, message)) => Err(ApiError::new(status_of(code), code, message)),
    }
}

/// The HTTP status of a refused stream step.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::StreamNotFound => StatusCode::NOT_FOUND,
        ErrorCode::StreamConflict => StatusCode::CONFLICT,
        ErrorCode::StreamTooLarge | ErrorCode::MetaTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Draining => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cut_at_characters_and_fit_the_limit() {
        assert_eq!(pieces("", 64), Vec::<&str>::new());
        assert_eq!(pieces("hello", 64), vec!["hello"]);
        // 64 bytes of JSON hold 10 bytes of text, whatever it escapes to.
        assert_eq!(pieces("abcdefghijKL", 64), vec!["abcdefghij", "KL"]);
        // "é" is two bytes: a cut never splits it.
        assert_eq!(pieces("ééééééé", 64), vec!["ééééé", "éé"]);
    }
}
