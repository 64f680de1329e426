//! Shared documents over REST (docs/PROTOCOL.md, "Documents"; `crate::docs`):
//! - `GET /v1/rooms/{room}/docs/{doc}?sv=…`: what a client lacks (the document as one update
//!   relative to the client's state vector) and the seq it covers;
//! - `GET /v1/rooms/{room}/docs/{doc}/content?text=…&map=…&array=…&xml=…`: the content as JSON;
//! - `POST /v1/rooms/{room}/docs/{doc}` (API key): a backend's update, stored as the room's
//!   next `yjs` event (so every member receives it like any other).
//!
//! Each read loads the document (snapshot and tail) and, when its tail has grown past the
//! compaction threshold, saves the result as the new snapshot on the way.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chorus_sdk::wire::{
    BackendPublish, DocContent, DocState, DocUpdateBody, EventId, Json as WireJson, Published,
};
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, StateVector, Transact};

use super::rest::{
    backend_only, bad_request, json_body, parse_room, publish_as_backend, room_for_reading,
    storage_unavailable,
};
use super::{ApiError, AppState, PathParts};
use crate::docs::{self, Loaded};

/// A read's query: the client's state vector.
#[derive(Debug, serde::Deserialize)]
pub(super) struct StateQuery {
    sv: Option<String>,
}

/// A content read's query: the root types to show, by kind, comma-separated names.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ContentQuery {
    text: Option<String>,
    map: Option<String>,
    array: Option<String>,
    xml: Option<String>,
}

/// `GET /v1/rooms/{room}/docs/{doc}` (a token with a grant on the room, or the API key).
pub(super) async fn doc_state(
    State(state): State<AppState>,
    PathParts((room, doc)): PathParts<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Json<DocState>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let doc = docs::doc_name(doc).map_err(bad_request)?;
    let Query(query) = query.map_err(|err| bad_request(err.body_text()))?;
    let known = match &query.sv {
        Some(text) => Some(state_vector(text)?),
        None => None,
    };
    let loaded = load(&state, &room, &doc).await?;
    Ok(Json(DocState {
        update: docs::encode(&loaded.diff(known.as_ref())),
        state_vector: docs::encode(&loaded.state_vector()),
        room,
        doc,
        epoch: loaded.epoch,
        seq: loaded.seq,
    }))
}

/// `GET /v1/rooms/{room}/docs/{doc}/content` (a token with a grant on the room, or the API key).
pub(super) async fn doc_content(
    State(state): State<AppState>,
    PathParts((room, doc)): PathParts<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<ContentQuery>, QueryRejection>,
) -> Result<Json<DocContent>, ApiError> {
    let room = room_for_reading(&state, &headers, room)?;
    let doc = docs::doc_name(doc).map_err(bad_request)?;
    let Query(query) = query.map_err(|err| bad_request(err.body_text()))?;
    let roots = roots(&query)?;
    let loaded = load(&state, &room, &doc).await?;
    let content = content_json(&loaded.doc, &roots);
    Ok(Json(DocContent {
        room,
        doc,
        seq: loaded.seq,
        content: WireJson::from_text(content).map_err(|err| bad_request(err.into_message()))?,
    }))
}

/// `POST /v1/rooms/{room}/docs/{doc}` (API key): `{"update": BASE64, "from"?: USER}`. The
/// event's id is made from the update's bytes, so posting the same update again is answered
/// as a duplicate (and would change nothing anyway).
pub(super) async fn doc_update(
    State(state): State<AppState>,
    PathParts((room, doc)): PathParts<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<DocUpdateBody>, JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    backend_only(&state, &headers)?;
    let room = parse_room(room)?;
    let doc = docs::doc_name(doc).map_err(bad_request)?;
    let body = json_body(body)?;
    let update = docs::decode_update(&body.update).map_err(bad_request)?;
    let id = format!("yjs-{:016x}", fnv_hash(&update));
    let publish = BackendPublish {
        id: EventId::parse(id).expect("a valid id"),
        body: chorus_sdk::docs::update_body(&doc, &update),
        from: body.from,
        if_seq: None,
        if_lock: None,
    };
    publish_as_backend(&state, room, publish).await
}

async fn load(
    state: &AppState,
    room: &chorus_sdk::wire::RoomName,
    doc: &EventId,
) -> Result<Loaded, ApiError> {
    let every = state.docs.policy().every;
    let loaded = docs::load(state.store.as_ref(), room, doc)
        .await
        .map_err(storage_unavailable)?;
    if loaded.tail >= every {
        // A long tail: the compactor folds it in (a reader never waits for that).
        state.docs.stored(room.clone(), doc.clone());
    }
    Ok(loaded)
}

fn state_vector(text: &str) -> Result<StateVector, ApiError> {
    let bytes = chorus_sdk::docs::decode(text, "sv").map_err(bad_request)?;
    StateVector::decode_v1(&bytes)
        .map_err(|err| bad_request(format!("sv is not a Yjs state vector (v1 encoding): {err}")))
}

/// A root type to show: its kind and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root<'q> {
    Text(&'q str),
    Map(&'q str),
    Array(&'q str),
    Xml(&'q str),
}

fn roots(query: &ContentQuery) -> Result<Vec<Root<'_>>, ApiError> {
    let mut roots = Vec::new();
    let kinds = [
        (&query.text, 0),
        (&query.map, 1),
        (&query.array, 2),
        (&query.xml, 3),
    ];
    for (names, kind) in kinds {
        for name in names.iter().flat_map(|names| names.split(',')) {
            if name.is_empty() || name.len() > 64 {
                return Err(bad_request("a root type's name is 1 to 64 bytes"));
            }
            roots.push(match kind {
                0 => Root::Text(name),
                1 => Root::Map(name),
                2 => Root::Array(name),
                _ => Root::Xml(name),
            });
        }
    }
    if roots.is_empty() {
        return Err(bad_request(
            "name the root types to read: text=, map=, array= and/or xml= (comma-separated names); a Yjs update does not record its roots' types",
        ));
    }
    Ok(roots)
}

/// The roots' content as a JSON object by name.
fn content_json(doc: &Doc, roots: &[Root<'_>]) -> String {
    let mut content = serde_json::Map::new();
    for root in roots {
        let (name, value) = match *root {
            Root::Text(name) => {
                let text = doc.get_or_insert_text(name);
                (
                    name,
                    serde_json::Value::from(text.get_string(&doc.transact())),
                )
            }
            Root::Map(name) => {
                let map = doc.get_or_insert_map(name);
                (name, any_json(&map.to_json(&doc.transact())))
            }
            Root::Array(name) => {
                let array = doc.get_or_insert_array(name);
                (name, any_json(&array.to_json(&doc.transact())))
            }
            Root::Xml(name) => {
                let xml = doc.get_or_insert_xml_fragment(name);
                (
                    name,
                    serde_json::Value::from(xml.get_string(&doc.transact())),
                )
            }
        };
        content.insert(name.to_owned(), value);
    }
    serde_json::Value::Object(content).to_string()
}

fn any_json(any: &yrs::Any) -> serde_json::Value {
    serde_json::to_value(any).unwrap_or(serde_json::Value::Null)
}

/// FNV-1a of the update (the event id of a backend's update).
fn fnv_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}
