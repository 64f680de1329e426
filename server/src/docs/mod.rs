//! Shared documents (docs/PROTOCOL.md, "Documents"): Yjs documents carried by a room.
//!
//! A document's updates are ordinary durable events of the room whose body is
//! `{"type":"yjs","doc":NAME,"update":BASE64}` (a Yjs update in its v1 encoding), so they get
//! everything events get: the outbox, ordering, resume, polling, history, fan-out across nodes.
//! Yjs updates are idempotent and commute, so a client applies every such event it sees,
//! whatever the order or how often.
//!
//! What the server adds:
//! - It refuses a `yjs` event whose update does not decode ([`check_body`]), so no client ever
//!   receives one that would break its document.
//! - It keeps each document compact: [`load`] merges the last snapshot and the updates stored
//!   after it into one `yrs::Doc`, and [`compact`] saves that as the new snapshot
//!   ([`DocSnapshot`], in the store), which the [`compactor`] does when a document's tail grows
//!   and shortly after it changes. History retention may then drop old updates: the snapshot
//!   holds them.
//! - The REST API (`http/docs.rs`) hands a client what it lacks (the document as one update
//!   relative to the client's state vector, with the seq it covers, so the client follows the
//!   room's events from there), reads the content as JSON, and applies a backend's update.

pub mod compactor;

use chorus_sdk::wire::{EventId, Json, RoomName};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::store::{EventFilter, FilteredRead, PageLimit, ReadFrom, Store, StoreError};

/// How many candidate events one page of [`load`]'s tail read looks at.
const TAIL_PAGE: usize = 1000;

/// A document's compacted state as the store keeps it: every update stored up to `seq` (in the
/// room's history of epoch `epoch`), merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocSnapshot {
    /// The room.
    pub room: RoomName,
    /// The document's name within the room.
    pub doc: EventId,
    /// The history epoch `seq` belongs to.
    pub epoch: u64,
    /// The last seq merged in.
    pub seq: u64,
    /// The whole document as one Yjs update (v1 encoding).
    pub state: Vec<u8>,
}

pub use chorus_sdk::docs::{DOC_EVENT_TYPE, DocUpdate, decode_update, encode};

/// Checks a durable event's body: `Ok(None)` for any event that is not a document update,
/// `Ok(Some)` for a valid one, and the reason for a `yjs` event that is malformed (the SDK's
/// [`chorus_sdk::docs::read_update`]: one definition for both sides).
pub fn check_body(body: &Json) -> Result<Option<DocUpdate>, String> {
    chorus_sdk::docs::read_update(body)
}

/// The document a stored event updates, if it is a document update (cheap for other events;
/// the update is neither copied nor decoded: [`check_body`] checked it when it was published).
pub fn doc_of(body: &Json) -> Option<EventId> {
    if !body.as_text().contains("\"yjs\"") {
        return None;
    }
    chorus_sdk::docs::stored_doc(body)
}

/// A stored event's update of document `name` (another document's is not even decoded from
/// base64), not checked again (see [`doc_of`]).
fn stored_update(body: &Json, name: &EventId) -> Option<DocUpdate> {
    chorus_sdk::docs::read_stored_of(body, name).ok().flatten()
}

/// A document name: the event id rules (1 to 64 of `A-Z a-z 0-9 _ - . :`).
pub fn doc_name(name: String) -> Result<EventId, String> {
    EventId::parse(name).map_err(|err| format!("the document name is not valid: {err}"))
}

/// A document as [`load`] read it.
pub struct Loaded {
    /// Every update of the document the store has, merged.
    pub doc: Doc,
    /// The history epoch the document was read in.
    pub epoch: u64,
    /// The room's head when the read ended: every update stored up to it is in `doc`.
    pub seq: u64,
    /// How many updates came from history after the snapshot (what compaction would fold in).
    pub tail: usize,
    /// The snapshot's seq (0 without one, or when it belongs to an older epoch).
    pub snapshot_seq: u64,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("epoch", &self.epoch)
            .field("seq", &self.seq)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// What a client with state vector `known` lacks, as one update (everything for `None`).
    pub fn diff(&self, known: Option<&StateVector>) -> Vec<u8> {
        let txn = self.doc.transact();
        txn.encode_state_as_update_v1(known.unwrap_or(&StateVector::default()))
    }

    /// The document's state vector (v1 encoding).
    pub fn state_vector(&self) -> Vec<u8> {
        use yrs::updates::encoder::Encode;
        self.doc.transact().state_vector().encode_v1()
    }
}

/// Reads a document: its snapshot, then every update stored after the snapshot's seq (or, when
/// the snapshot is from an older epoch of the room's history, every update the history holds:
/// applying one twice changes nothing).
pub async fn load(
    store: &dyn Store,
    room: &RoomName,
    name: &EventId,
) -> Result<Loaded, StoreError> {
    let snapshot = store.doc_snapshot(room, name).await?;
    let doc = Doc::new();
    if let Some(snapshot) = &snapshot {
        apply(&doc, &snapshot.state, room, name);
    }
    let mut after = snapshot.as_ref().map_or(0, |s| s.seq);
    let mut snapshot_seq = after;
    let mut tail = 0;
    let mut epoch_checked = false;
    loop {
        let read = FilteredRead {
            filter: EventFilter {
                event_type: Some(DOC_EVENT_TYPE.to_owned()),
                user: None,
            },
            from: ReadFrom::After(after),
            limit: PageLimit::events(TAIL_PAGE),
            budget: TAIL_PAGE,
        };
        let page = store.read_filtered(room, read).await?;
        if !epoch_checked {
            epoch_checked = true;
            if snapshot
                .as_ref()
                .is_some_and(|s| s.epoch != page.head.epoch)
                && after > 0
            {
                // The snapshot's seqs name another history: read this one from its start.
                (after, snapshot_seq) = (0, 0);
                continue;
            }
            if snapshot_seq > 0 && page.head.oldest > snapshot_seq + 1 {
                tracing::warn!(%room, doc = %name, snapshot_seq, oldest = page.head.oldest,
                    "history was trimmed past this document's snapshot: updates stored in between may be missing from it");
            }
        }
        for stored in &page.events {
            if let Some(update) = stored_update(&stored.event.body, name) {
                apply(&doc, &update.update, room, name);
                tail += 1;
            }
        }
        match page.scanned {
            Some(scanned) if scanned < page.head.head => after = scanned,
            _ => {
                return Ok(Loaded {
                    doc,
                    epoch: page.head.epoch,
                    seq: page.head.head.max(after),
                    tail,
                    snapshot_seq,
                });
            }
        }
    }
}

/// Applies one update (checked when it was stored; a failure here is logged, not fatal).
fn apply(doc: &Doc, update: &[u8], room: &RoomName, name: &EventId) {
    let result = Update::decode_v1(update)
        .map_err(|err| err.to_string())
        .and_then(|update| {
            doc.transact_mut()
                .apply_update(update)
                .map_err(|err| err.to_string())
        });
    if let Err(err) = result {
        tracing::error!(%room, doc = %name, "a stored document update does not apply: {err}");
    }
}

/// Folds a document's tail into a new snapshot (when it has one); returns the loaded document.
pub async fn compact(
    store: &dyn Store,
    room: &RoomName,
    name: &EventId,
) -> Result<Loaded, StoreError> {
    let loaded = load(store, room, name).await?;
    if loaded.tail > 0 || loaded.snapshot_seq != loaded.seq {
        let snapshot = DocSnapshot {
            room: room.clone(),
            doc: name.clone(),
            epoch: loaded.epoch,
            seq: loaded.seq,
            state: loaded.diff(None),
        };
        store.save_doc_snapshot(snapshot).await?;
    }
    Ok(loaded)
}
