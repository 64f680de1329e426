//! Document snapshots in SQLite (`crate::docs`): one row per room and document, replaced by the
//! rule of [`DocSnapshot::replaces`] in one statement, so two compactions racing keep the newer.
//! Read on a reader connection; written by the writer thread, in order with the appends.

use chorus_sdk::wire::{EventId, RoomName};
use rusqlite::{Connection, OptionalExtension, params};

use super::backend;
use crate::store::{DocSnapshot, StoreError};

/// The document's snapshot, if one is kept.
pub(super) fn read(
    conn: &Connection,
    room: &RoomName,
    doc: &EventId,
) -> Result<Option<DocSnapshot>, StoreError> {
    conn.prepare_cached("SELECT epoch, seq, state FROM doc_snapshots WHERE room = ?1 AND doc = ?2")
        .map_err(backend)?
        .query_row(params![room.as_str(), doc.as_str()], |row| {
            Ok(DocSnapshot {
                room: room.clone(),
                doc: doc.clone(),
                epoch: row.get::<_, i64>(0)? as u64,
                seq: row.get::<_, i64>(1)? as u64,
                state: row.get(2)?,
            })
        })
        .optional()
        .map_err(backend)
}

/// Keeps `snapshot` unless the kept one is of the same epoch and not older.
pub(super) fn write(conn: &Connection, snapshot: &DocSnapshot) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO doc_snapshots (room, doc, epoch, seq, state) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (room, doc) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq,
             state = excluded.state
         WHERE excluded.epoch != doc_snapshots.epoch OR excluded.seq > doc_snapshots.seq",
    )
    .map_err(backend)?
    .execute(params![
        snapshot.room.as_str(),
        snapshot.doc.as_str(),
        snapshot.epoch as i64,
        snapshot.seq as i64,
        snapshot.state,
    ])
    .map_err(backend)?;
    Ok(())
}
